"""Handlers that subprocess workers load with ``runworker --handler tests.run_queue.handlers.<name>``."""

import os
import time

from django.db import connection

from run_queue.outcomes import Outcome

LOG_TABLE = "queue_test_log"


def record_start(entry) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LOG_TABLE} (run_id, worker, attempt) VALUES (%s, %s, %s)",
            [entry.run_id, str(os.getpid()), entry.attempts],
        )


def record(entry) -> Outcome:
    record_start(entry)
    return Outcome.done()


def slow(entry) -> Outcome:
    record_start(entry)
    time.sleep(float(os.environ.get("TEST_HANDLER_SLEEP", "30")))
    return Outcome.done()
