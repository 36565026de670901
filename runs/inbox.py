"""Each person's inbox channel: hints that the questions waiting for them may have changed.

The channel ``inbox-<user id>`` carries ``inbox.changed`` events (the run, and the question where known)
with no seq and no history: the list ``GET /api/human-loop/pending?scope=mine`` is the truth, and a page
reads it when its stream opens and after each hint. So a hint may be late, repeated or lost and the page
is still right once the next one arrives; the stream itself sends one whenever live delivery cannot prove
it is complete (a re-established Redis subscription, an overflowing buffer, every 30-60 s of quiet:
``runs.live``), so a lost publish only delays an update.

Hints are published after the transaction that changed the questions commits: by ``append_events`` for
a batch holding a question, an answer or the end of a run that asked (a check of the batch's types, no
query), and by ``human_loop_reply`` for an answer given here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Protocol

from runs import live

INBOX_PREFIX = "inbox-"
HINT = "inbox.changed"
# Event types that open or close a question. run.finished closes every open question of its run, so it
# counts only for a run that has asked (``Run.asked_human``).
QUESTION_EVENTS = frozenset({"human_loop.request", "human_loop.reply"})


class _Typed(Protocol):
    type: str


def inbox_channel(user_id: int) -> str:
    return f"{INBOX_PREFIX}{user_id}"


def batch_changes_questions(rows: Iterable[_Typed]) -> bool:
    """Whether a stored batch of a run that asked a person may change its open questions."""
    return any(row.type in QUESTION_EVENTS or row.type == "run.finished" for row in rows)


def hint_data(*, run_id, request_id=None, reason: str) -> str:
    body = {"run_id": str(run_id), "reason": reason}
    if request_id is not None:
        body["request_id"] = str(request_id)
    return json.dumps(body, separators=(",", ":"))


def publish_hint(user_id: int, *, run_id, request_id=None, reason: str) -> None:
    """Tell ``user_id``'s open inbox streams (in every web process) to read the list again."""
    data = hint_data(run_id=run_id, request_id=request_id, reason=reason)
    live.publish([(inbox_channel(user_id), [(0, HINT, data)])])
