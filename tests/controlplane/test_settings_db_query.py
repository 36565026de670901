"""The db_query plugin's settings: none of the operator's databases unless named, loud on bad values."""

import json
import os
import subprocess
import sys

import pytest

from tests.controlplane.test_settings import ROOT, assert_refused, start

PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'databases': s.DB_QUERY_DATABASES, 'timeout_ms': s.DB_QUERY_TIMEOUT_MS, "
    "'max_rows': s.DB_QUERY_MAX_ROWS, 'aliases': sorted(s.DATABASES), "
    "'sales': s.DATABASES.get('sales', {}).get('NAME'), "
    "'read': sorted(v for v in s.ENVIRONMENT_VARIABLES if v.startswith('DB_QUERY'))}))"
)


def settings_with(**overrides: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DB_QUERY")}
    environ.update(overrides, DJANGO_SETTINGS_MODULE="controlplane.settings")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_database_is_queryable_by_default():
    values = settings_with()
    assert values["databases"] == []
    assert (values["timeout_ms"], values["max_rows"]) == (5000, 1000)
    assert values["aliases"] == ["default"]


def test_a_named_alias_is_added_from_its_own_url():
    values = settings_with(
        DB_QUERY_DATABASES="sales,default",
        DB_QUERY_DATABASE_URL_SALES="postgres://reader:secret@db.example:5432/sales",
    )
    assert values["databases"] == ["sales", "default"]
    assert values["aliases"] == ["default", "sales"]
    assert values["sales"] == "sales"
    assert {"DB_QUERY_DATABASES", "DB_QUERY_DATABASE_URL_SALES", "DB_QUERY_TIMEOUT_MS"} <= set(values["read"])


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DB_QUERY_DATABASES": "Sales"}, "DB_QUERY_DATABASES"),
        ({"DB_QUERY_DATABASES": "sales"}, "DB_QUERY_DATABASE_URL_SALES"),
        (
            {"DB_QUERY_DATABASES": "sales", "DB_QUERY_DATABASE_URL_SALES": "mysql://h/db"},
            "DB_QUERY_DATABASE_URL_SALES",
        ),
        ({"DB_QUERY_TIMEOUT_MS": "0"}, "DB_QUERY_TIMEOUT_MS"),
        ({"DB_QUERY_MAX_ROWS": "many"}, "DB_QUERY_MAX_ROWS"),
    ],
)
def test_malformed_values_stop_startup(overrides, variable):
    assert_refused(start(**overrides), variable)
