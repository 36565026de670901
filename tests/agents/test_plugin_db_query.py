"""The db_query plugin, called as the gateway calls it, against a scratch PostgreSQL database (and SQLite).

The scratch database is the module's own (created and dropped here, beside the test database), added to
Django's connections as the alias ``scratch``: the plugin reaches it through ``connections[alias]``, as it
reaches an operator's database.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema
import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agents.plugins import db_query
from agents.plugins.base import Call, PluginError
from agents.plugins.db_query import PLUGIN
from agents.plugins.sql_guard import check_query

SAMPLE = r"""
CREATE TABLE items (
    id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2), created timestamptz, day date, at time,
    span interval, uid uuid, raw bytea, tags text[], doc jsonb, data json, ok boolean, ratio float8,
    addr inet, period int4range
);
INSERT INTO items VALUES (
    1, 'apple', 1.25, '2026-01-02 03:04:05.123456+00', '2026-01-02', '12:34:56', '1 day 2 hours 3.5 seconds',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '{a,b}', '{"k": [1, 2.5, null]}', '{"j": true}', true,
    'NaN', '10.0.0.1', '[1,5)'
);
INSERT INTO items (id, name) VALUES (2, 'pear');
CREATE TABLE big AS SELECT g AS n FROM generate_series(1, 5000) AS g;
CREATE SEQUENCE counter_seq;
CREATE TABLE counter (n int NOT NULL);
INSERT INTO counter VALUES (0);
-- A function that writes, which no deny-list can know: only the READ ONLY transaction stops it.
CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ UPDATE counter SET n = n + 1 RETURNING n $$;
"""


def _server() -> dict[str, Any]:
    default = django_settings.DATABASES["default"]
    return {
        "host": default["HOST"] or "127.0.0.1",
        "port": default["PORT"] or 5432,
        "user": default["USER"],
        "password": default["PASSWORD"] or None,
    }


def _add_alias(alias: str, config: dict[str, Any]) -> None:
    connections.settings[alias] = connections.configure_settings({"default": {}, alias: config})[alias]


def _remove_alias(alias: str) -> None:
    connections[alias].close()
    del connections.settings[alias]
    if hasattr(connections._connections, alias):
        delattr(connections._connections, alias)


@pytest.fixture(scope="module")
def scratch(django_db_blocker):
    """The alias ``scratch``: a PostgreSQL database of its own with the SAMPLE tables."""
    name = f"{django_settings.DATABASES['default']['NAME']}_db_query_{os.getpid()}"
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dbname=name, autocommit=True, **_server()) as setup:
        setup.execute(SAMPLE)
    server = _server()
    _add_alias(
        "scratch",
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": server["host"],
            "PORT": server["port"],
            "USER": server["user"],
            "PASSWORD": server["password"] or "",
            "CONN_MAX_AGE": 60,
        },
    )
    with django_db_blocker.unblock():
        yield name
    _remove_alias("scratch")
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def admin(scratch):
    """A connection of the test's own to the scratch database, to look at what a call left behind."""
    with psycopg.connect(dbname=scratch, autocommit=True, **_server()) as connection:
        yield connection


@pytest.fixture
def allowed(scratch, settings):
    settings.DB_QUERY_DATABASES = ["scratch"]
    settings.DB_QUERY_TIMEOUT_MS = 5000
    settings.DB_QUERY_MAX_ROWS = 1000
    return settings


def call(seconds: float = 10.0) -> Call:
    return Call(run_id="run-1", app="app", plugin="db_query", deadline=time.monotonic() + seconds)


def query(sql: str, **arguments: Any) -> dict[str, Any]:
    arguments = {"sql": sql, **arguments}
    jsonschema.validate(arguments, PLUGIN.schema)  # as the gateway does before calling
    result = PLUGIN.function(arguments, call())
    jsonschema.validate(result, PLUGIN.result_schema)  # and after
    json.dumps(result, allow_nan=False)
    return result


def refusal(sql: str, **arguments: Any) -> PluginError:
    with pytest.raises(PluginError) as raised:
        query(sql, **arguments)
    return raised.value


def state(admin: psycopg.Connection) -> dict[str, Any]:
    """Everything the refused statements would have changed."""
    one = lambda sql: admin.execute(sql).fetchall()  # noqa: E731
    return {
        "items": one("SELECT id, name, price FROM items ORDER BY id"),
        "item_columns": one("SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass ORDER BY 1"),
        "tables": one("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"),
        "counter": one("SELECT n FROM counter"),
        "sequence": one("SELECT last_value, is_called FROM counter_seq"),
        "advisory_locks": one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        "large_objects": one("SELECT count(*) FROM pg_largeobject_metadata"),
        "comment": one("SELECT obj_description('items'::regclass)"),
    }


# --- the arguments' schema ------------------------------------------------------------------------


def test_schemas_are_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(PLUGIN.schema)
    jsonschema.Draft202012Validator.check_schema(PLUGIN.result_schema)
    assert PLUGIN.name == "db_query"
    assert PLUGIN.spec() == {"name": "db_query", "description": PLUGIN.description, "schema": PLUGIN.schema}


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"sql": ""},
        {"sql": 1},
        {"sql": "SELECT 1", "params": "1"},
        {"sql": "SELECT 1", "params": [{"a": 1}]},
        {"sql": "SELECT 1", "params": [[1]]},
        {"sql": "SELECT 1", "max_rows": 0},
        {"sql": "SELECT 1", "max_rows": 1.5},
        {"sql": "SELECT 1", "max_rows": "10"},
        {"sql": "SELECT 1", "database": ""},
        {"sql": "SELECT 1", "database": 3},
        {"sql": "SELECT 1", "limit": 3},
        {"sql": "x" * 100_001},
    ],
)
def test_bad_arguments_fail_schema_validation(arguments):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(PLUGIN.schema).validate(arguments)


def test_full_arguments_pass_schema_validation():
    arguments = {"sql": "SELECT $1", "params": ["a", 1, 2.5, True, None], "max_rows": 5, "database": "x"}
    jsonschema.Draft202012Validator(PLUGIN.schema).validate(arguments)


# --- which databases ------------------------------------------------------------------------------


def test_no_database_may_be_queried_unless_configured(scratch, settings):
    settings.DB_QUERY_DATABASES = []
    for database in (None, "scratch", "default"):
        arguments = {} if database is None else {"database": database}
        assert refusal("SELECT 1", **arguments).code == "database_not_allowed"


def test_the_control_planes_own_database_is_refused_unless_named(allowed):
    error = refusal("SELECT username, password FROM auth_user", database="default")
    assert error.code == "database_not_allowed"
    assert error.detail == {"allowed": ["scratch"]}


def test_an_unknown_or_unconfigured_alias_is_refused(allowed):
    allowed.DB_QUERY_DATABASES = ["scratch", "gone"]  # named by the operator, but not in DATABASES
    assert refusal("SELECT 1", database="gone").code == "database_not_allowed"
    assert refusal("SELECT 1", database="nope").code == "database_not_allowed"


def test_the_first_configured_database_is_the_default(allowed, tmp_path):
    _add_alias("scratch_lite", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "x.sqlite3")})
    try:
        allowed.DB_QUERY_DATABASES = ["scratch", "scratch_lite"]
        assert query("SELECT current_database()")["rows"] == [[connections["scratch"].settings_dict["NAME"]]]
        assert query("SELECT sqlite_version() IS NOT NULL", database="scratch_lite")["rows"] == [[1]]
    finally:
        _remove_alias("scratch_lite")


# --- what the parser refuses, before anything reaches the database -----------------------------------

REFUSED = [
    "INSERT INTO items (id, name) VALUES (9, 'x')",
    "UPDATE items SET name = 'x'",
    "DELETE FROM items",
    "MERGE INTO items USING (VALUES (1)) AS v(id) ON items.id = v.id WHEN MATCHED THEN DELETE",
    "TRUNCATE items",
    "DROP TABLE items",
    "CREATE TABLE evil (a int)",
    "ALTER TABLE items ADD COLUMN evil int",
    "COMMENT ON TABLE items IS 'evil'",
    "GRANT SELECT ON items TO PUBLIC",
    "COPY items TO STDOUT",
    "COPY items FROM STDIN",
    "COPY (SELECT 1) TO '/tmp/evil'",
    "SET statement_timeout = 0",
    "SET LOCAL transaction_read_only = off",
    "RESET ALL",
    "BEGIN",
    "START TRANSACTION READ WRITE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "LOCK TABLE items",
    "CALL some_procedure()",
    "DO $$ BEGIN DELETE FROM items; END $$",
    "EXPLAIN ANALYZE DELETE FROM items",
    "EXPLAIN SELECT 1",
    "PREPARE p AS DELETE FROM items",
    "EXECUTE p",
    "DECLARE c CURSOR FOR SELECT 1",
    "VACUUM items",
    "ANALYZE items",
    "CHECKPOINT",
    "DISCARD ALL",
    "LISTEN channel",
    "NOTIFY channel",
    "REFRESH MATERIALIZED VIEW some_view",
    "WITH gone AS (DELETE FROM items RETURNING *) SELECT * FROM gone",
    "WITH x AS (UPDATE counter SET n = 5 RETURNING n) SELECT n FROM x",
    "WITH x AS (INSERT INTO items (id, name) VALUES (9, 'x') RETURNING id) SELECT 1",
    "SELECT 1 FROM (WITH gone AS (DELETE FROM items RETURNING 1) SELECT * FROM gone) AS sub",
    "SELECT * INTO evil FROM items",
    "SELECT * FROM items FOR UPDATE",
    "SELECT * FROM items FOR NO KEY UPDATE",
    "SELECT * FROM items FOR SHARE",
    "SELECT * FROM items FOR KEY SHARE SKIP LOCKED",
    "SELECT 1; DELETE FROM items",
    "SELECT 1; SELECT 2",
    "SELECT 1 /* a comment ; */; DELETE FROM items -- and another",
    "SELECT 1 -- a comment\n; DELETE FROM items",
    "SELECT '\\'; DELETE FROM items; --'",
    "SELECT nextval('counter_seq')",
    "SELECT setval('counter_seq', 99)",
    "SELECT * FROM items WHERE id IN (SELECT nextval('counter_seq'))",
    "SELECT * FROM nextval('counter_seq')",
    "SELECT set_config('statement_timeout', '0', false)",
    "SELECT pg_catalog.set_config('statement_timeout', '0', false)",
    "SELECT \"set_config\"('statement_timeout', '0', false)",
    "SELECT pg_advisory_lock(42)",
    "SELECT pg_try_advisory_xact_lock(42)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_reload_conf()",
    "SELECT pg_rotate_logfile()",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1, '/tmp/evil')",
    "SELECT lo_unlink(1)",
    "SELECT lowrite(0, 'x')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT pg_stat_file('postgresql.conf')",
    "SELECT * FROM dblink('dbname=postgres', 'DELETE FROM items') AS t(a int)",
    "SELECT dblink_exec('DELETE FROM items')",
    "SELECT query_to_xml('DELETE FROM items RETURNING 1', true, true, '')",
    "SELECT ts_stat('DELETE FROM items RETURNING 1')",
    "SELECT txid_current()",
    "SELECT pg_current_xact_id()",
    "SELECT pg_notify('channel', 'x')",
    "SELECT pg_create_restore_point('x')",
    "SELECT pg_stat_reset()",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_a_statement_that_could_change_something_never_reaches_the_database(allowed, admin, sql):
    before = state(admin)
    connections["scratch"].close()
    error = refusal(sql)
    assert error.code in {"statement_not_allowed", "invalid_sql"}, error.message
    assert connections["scratch"].connection is None  # refused before connecting
    assert state(admin) == before


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DELETE FROM items", "not DELETE"),
        ("/* hello */ COPY items TO STDOUT", "not COPY"),
        ("LISTEN channel", "not LISTEN"),
        ("WITH gone AS (DELETE FROM items RETURNING *) SELECT * FROM gone", "contains DELETE"),
        ("SELECT * INTO evil FROM items", "SELECT … INTO"),
        ("SELECT * FROM items FOR UPDATE", "FOR UPDATE"),
        ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file()"),
        ("SELECT 1; DELETE FROM items", "found 2"),
    ],
)
def test_a_refusal_names_what_it_found(sql, words):
    with pytest.raises(PluginError) as raised:
        check_query(sql, dialect="postgres")
    assert words in raised.value.message


@pytest.mark.parametrize(
    "sql", ["SELECT 'unterminated", "SELECT (1", "", "  ;  ", "SELECT " + "(" * 5000 + "1"]
)
def test_what_cannot_be_parsed_is_invalid_sql(allowed, sql):
    connections["scratch"].close()
    with pytest.raises(PluginError) as raised:
        PLUGIN.function({"sql": sql}, call())  # past the schema: "" would not reach the function
    assert (raised.value.code, raised.value.status) == ("invalid_sql", 400)
    assert raised.value.message
    assert connections["scratch"].connection is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "(SELECT 1)",
        "SELECT 1;",
        "VALUES (1), (2)",
        "TABLE items",
        "SELECT 1 UNION SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 1",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT count(*) FILTER (WHERE n > 1), sum(n) OVER () FROM big GROUP BY n",
        "SELECT 'DELETE FROM items; DROP TABLE items' AS \"insert\"",
        "SELECT currval('counter_seq'), pg_backend_pid(), now(), random()",
        "SELECT * FROM pg_catalog.pg_tables",
    ],
)
def test_queries_pass_the_check(sql):
    check_query(sql, dialect="postgres")


# --- what slips past the parser is refused by the database -----------------------------------------


def test_a_function_that_writes_is_refused_by_the_read_only_transaction(allowed, admin):
    before = state(admin)
    error = refusal("SELECT bump()")
    assert error.code == "statement_not_allowed"
    assert error.detail["sqlstate"] == "25006"  # read_only_sql_transaction
    assert error.detail["refused_by"] == "database"
    assert "read-only transaction" in error.message
    assert state(admin) == before


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM items",
        "UPDATE counter SET n = 7",
        "WITH gone AS (DELETE FROM items RETURNING *) SELECT * FROM gone",
        "SELECT 1; DELETE FROM items",
        "SELECT * INTO evil FROM items",
        "SELECT nextval('counter_seq')",
        "SELECT * FROM items FOR UPDATE",
        "COPY items TO STDOUT",
        "SET statement_timeout = 0",
    ],
)
def test_without_the_parser_the_database_still_changes_nothing(allowed, admin, monkeypatch, sql):
    monkeypatch.setattr(db_query, "check_query", lambda sql, dialect: None)
    before = state(admin)
    assert refusal(sql).code in {"statement_not_allowed", "query_failed"}
    assert state(admin) == before


def test_a_session_advisory_lock_outlives_the_rollback_so_only_the_parser_stops_it(
    allowed, admin, monkeypatch
):
    """Why pg_advisory_* is on the deny-list: READ ONLY allows it, and the lock stays with the connection."""
    locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"
    monkeypatch.setattr(db_query, "check_query", lambda sql, dialect: None)
    try:
        query("SELECT pg_advisory_lock(4242)")
        assert admin.execute(locks).fetchone() == (1,)
    finally:
        connections["scratch"].close()
    monkeypatch.undo()
    assert refusal("SELECT pg_advisory_lock(4242)").code == "statement_not_allowed"
    assert admin.execute(locks).fetchone() == (0,)


# --- time -----------------------------------------------------------------------------------------


def test_a_long_query_stops_at_the_timeout(allowed):
    allowed.DB_QUERY_TIMEOUT_MS = 300
    started = time.monotonic()
    error = refusal("SELECT pg_sleep(10)")
    assert (error.code, error.status) == ("timeout", 504)
    assert (error.detail["sqlstate"], error.detail["timeout_ms"]) == ("57014", 300)
    assert 0.3 <= time.monotonic() - started < 3
    assert query("SELECT 1")["rows"] == [[1]]  # the connection is fine afterwards


def test_the_timeout_is_never_past_the_gateways_deadline(allowed):
    allowed.DB_QUERY_TIMEOUT_MS = 60_000
    started = time.monotonic()
    with pytest.raises(PluginError) as raised:
        PLUGIN.function({"sql": "SELECT pg_sleep(10)"}, call(seconds=0.4))
    assert raised.value.code == "timeout"
    assert raised.value.detail["timeout_ms"] <= 400
    assert time.monotonic() - started < 3


def test_no_time_left_means_no_query(allowed):
    connections["scratch"].close()
    with pytest.raises(PluginError) as raised:
        PLUGIN.function({"sql": "SELECT 1"}, call(seconds=-1))
    assert raised.value.code == "timeout"
    assert connections["scratch"].connection is None


# --- rows -----------------------------------------------------------------------------------------


def test_a_big_table_returns_at_most_the_cap_and_says_it_was_truncated(allowed):
    allowed.DB_QUERY_MAX_ROWS = 100
    result = query("SELECT n FROM big ORDER BY n")
    assert result["rows"] == [[n] for n in range(1, 101)]
    assert (result["row_count"], result["truncated"]) == (100, True)
    assert query("SELECT n FROM big ORDER BY n", max_rows=10)["rows"] == [[n] for n in range(1, 11)]
    assert query("SELECT n FROM big", max_rows=100_000)["row_count"] == 100  # never raises the cap


def test_exactly_the_cap_is_not_truncated(allowed):
    allowed.DB_QUERY_MAX_ROWS = 100
    result = query("SELECT n FROM big WHERE n <= 100")
    assert (result["row_count"], result["truncated"]) == (100, False)
    empty = query("SELECT 1 WHERE false")
    assert (empty["rows"], empty["row_count"], empty["truncated"]) == ([], 0, False)


def test_rows_past_the_cap_are_never_computed(allowed):
    # Row 12 divides by zero: it fails only if the database computes it (a server-side cursor does not).
    result = query("SELECT n, 1 / (n - 12) FROM generate_series(1, 100) AS n", max_rows=10)
    assert (result["row_count"], result["truncated"]) == (10, True)
    assert (
        refusal("SELECT n, 1 / (n - 12) FROM generate_series(1, 100) AS n", max_rows=11).code
        == "query_failed"
    )


def test_rows_are_cut_before_the_result_outgrows_the_gateways_limit(allowed):
    result = query("SELECT n, repeat('x', 10000) FROM big ORDER BY n")
    assert result["truncated"] is True
    assert 50 < result["row_count"] < 100
    assert len(json.dumps(result)) <= PLUGIN.limits.max_result_bytes


def test_huge_rows_stop_at_the_byte_budget_without_reaching_memory_all_at_once(allowed):
    # 300 rows of 1 MB: fetched at once they would be 300 MB in this process; in batches, a few MB.
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = query("SELECT n, repeat('x', 1000000) FROM generate_series(1, 300) AS n")
    assert (result["rows"], result["truncated"]) == ([], True)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100_000


def test_column_types_come_from_the_database_and_values_are_json_safe(allowed):
    result = query("SELECT * FROM items ORDER BY id")
    assert [(column["name"], column["type"]) for column in result["columns"]] == [
        ("id", "integer"),
        ("name", "text"),
        ("price", "numeric"),
        ("created", "timestamp with time zone"),
        ("day", "date"),
        ("at", "time without time zone"),
        ("span", "interval"),
        ("uid", "uuid"),
        ("raw", "bytea"),
        ("tags", "text[]"),
        ("doc", "jsonb"),
        ("data", "json"),
        ("ok", "boolean"),
        ("ratio", "double precision"),
        ("addr", "inet"),
        ("period", "int4range"),
    ]
    assert result["rows"][0] == [
        1,
        "apple",
        "1.25",
        "2026-01-02T03:04:05.123456+00:00",
        "2026-01-02",
        "12:34:56",
        "P1DT2H0M3.5S",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "AP8=",
        ["a", "b"],
        {"k": [1, 2.5, None]},
        {"j": True},
        True,
        "NaN",
        "10.0.0.1",
        {"lower": 1, "upper": 5, "bounds": "[)"},
    ]
    assert result["rows"][1] == [2, "pear"] + [None] * 14
    assert result["duration_ms"] >= 0


def test_more_json_safe_values(allowed):
    result = query(
        "SELECT '-Infinity'::float8, 'NaN'::numeric, 12345678901234567890.000000001::numeric, "
        "interval '-30 seconds', ARRAY[[1, 2], [3, 4]], ARRAY[now()::date], 'empty'::int4range, "
        "'{[1,3), [5,7)}'::int4multirange, '(1,2)'::point, 12.5::money, 'x'::varchar(3), NULL::uuid"
    )
    assert result["rows"] == [
        [
            "-Infinity",
            "NaN",
            "12345678901234567890.000000001",
            "-P0DT0H0M30S",
            [[1, 2], [3, 4]],
            [result["rows"][0][5][0]],
            {"empty": True},
            [{"lower": 1, "upper": 3, "bounds": "[)"}, {"lower": 5, "upper": 7, "bounds": "[)"}],
            "(1,2)",
            "$12.50",
            "x",
            None,
        ]
    ]
    types = [column["type"] for column in result["columns"]]
    assert types[:5] == ["double precision", "numeric", "numeric", "interval", "integer[]"]
    assert types[-3:] == ["money", "character varying", "uuid"]


# --- parameters -----------------------------------------------------------------------------------


def test_parameters_are_bound_never_interpolated(allowed, admin):
    before = state(admin)
    assert query("SELECT name FROM items WHERE name = $1", params=["apple"])["rows"] == [["apple"]]
    assert query("SELECT name FROM items WHERE name = $1", params=["x' OR '1'='1"])["rows"] == []
    hostile = "'; DELETE FROM items; --"
    assert query("SELECT $1::text", params=[hostile])["rows"] == [[hostile]]
    assert query("SELECT $1::int + $2::int, $3::bool, $4::text IS NULL", params=[2, 3, True, None])[
        "rows"
    ] == [[5, True, True]]
    assert query("SELECT 'a%s%%', $1::text", params=["%s"])["rows"] == [["a%s%%", "%s"]]
    assert state(admin) == before


def test_a_wrong_number_of_parameters_is_a_query_error(allowed):
    assert refusal("SELECT $1::int + $2::int", params=[1]).code == "query_failed"


# --- database errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT * FROM missing_table", "42P01"),
        ("SELECT 1 / 0", "22012"),
        ("SELECT nope FROM items", "42703"),
    ],
)
def test_a_database_error_is_query_failed_with_its_sqlstate(allowed, sql, sqlstate):
    error = refusal(sql)
    assert (error.code, error.detail["sqlstate"]) == ("query_failed", sqlstate)
    assert error.message  # PostgreSQL's own words
    assert query("SELECT 2")["rows"] == [[2]]  # the aborted transaction did not poison the connection


def test_a_broken_connection_is_replaced_on_the_next_call(allowed, admin):
    pid = query("SELECT pg_backend_pid()")["rows"][0][0]
    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.1)
    assert query("SELECT pg_backend_pid()")["rows"][0][0] != pid


def test_a_connection_broken_during_the_query_fails_that_call_only(allowed, admin):
    pid = query("SELECT pg_backend_pid()")["rows"][0][0]
    with ThreadPoolExecutor(max_workers=1) as killer:
        killer.submit(lambda: (time.sleep(0.3), admin.execute("SELECT pg_terminate_backend(%s)", [pid])))
        error = refusal("SELECT pg_sleep(3)")
    assert (error.code, error.status) == ("database_unavailable", 503)
    assert query("SELECT pg_backend_pid()")["rows"][0][0] != pid


def test_calls_on_one_persistent_pool_thread_stay_independent(allowed):
    """As the gateway calls: the same thread, and so the same connection, for call after call."""
    allowed.DB_QUERY_TIMEOUT_MS = 300
    outcomes = []

    def one(sql: str) -> Any:
        try:
            return PLUGIN.function({"sql": sql}, call())["rows"]
        except PluginError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=1) as pool:
        for sql in ["SELECT 1", "SELECT 1 / 0", "SELECT pg_sleep(5)", "SELECT bump()", "SELECT 2"]:
            outcomes.append(pool.submit(one, sql).result())
        pool.submit(connections.close_all).result()
    assert outcomes == [[[1]], "query_failed", "timeout", "statement_not_allowed", [[2]]]


# --- generated input ------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_NAMES = st.one_of(
    st.sampled_from(["delete", "INSERT", "drop table items", "nextval", "pg_read_file", ";", "--", "/*"]),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=15
    ),
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@given(text=_TEXT, name=_NAMES)
def test_generated_strings_and_identifiers_never_break_the_check(text, name):
    check_query(f"SELECT {_literal(text)} AS {_identifier(name)}", dialect="postgres")
    check_query(f"SELECT {_literal(text)} AS {_identifier(name)}", dialect="sqlite")
    with pytest.raises(PluginError):
        check_query(f"SELECT {_literal(text)} AS {_identifier(name)}; DELETE FROM items", dialect="postgres")


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_TEXT, name=_NAMES)
def test_generated_strings_come_back_exactly(allowed, text, name):
    result = query(f"SELECT {_literal(text)}::text AS {_identifier(name)}, $1::text", params=[text])
    assert result["rows"] == [[text, text]]
    assert result["columns"][0] == {"name": name, "type": "text"}


# --- SQLite ---------------------------------------------------------------------------------------


@pytest.fixture
def lite(tmp_path, settings, django_db_blocker):
    path = tmp_path / "sample.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.executescript(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, raw BLOB);"
            "INSERT INTO items VALUES (1, 'apple', 1.25, x'00ff'), (2, 'pear', NULL, NULL);"
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 500) "
            "INSERT INTO items (id, name) SELECT n + 2, 'n' || n FROM g;"
        )
    setup.close()
    _add_alias("lite", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    settings.DB_QUERY_DATABASES = ["lite"]
    settings.DB_QUERY_TIMEOUT_MS = 5000
    settings.DB_QUERY_MAX_ROWS = 1000
    with django_db_blocker.unblock():
        yield path
        _remove_alias("lite")


def _lite_rows(path) -> list:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT * FROM items ORDER BY id").fetchall()
    connection.close()
    return rows


def test_sqlite_query_with_storage_classes_and_parameters(lite):
    result = query("SELECT id, name, price, raw FROM items WHERE id <= ? ORDER BY id", params=[2])
    assert [column["type"] for column in result["columns"]] == ["integer", "text", "real", "blob"]
    assert result["rows"] == [[1, "apple", 1.25, "AP8="], [2, "pear", None, None]]
    assert query("SELECT NULL AS empty")["columns"] == [{"name": "empty", "type": None}]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO items (id) VALUES (999)",
        "REPLACE INTO items (id) VALUES (1)",
        "DELETE FROM items",
        "PRAGMA query_only = 0",
        "ATTACH DATABASE '/tmp/evil.sqlite3' AS evil",
        "VACUUM INTO '/tmp/evil.sqlite3'",
        "SELECT load_extension('evil')",
        "SELECT 1; DELETE FROM items",
        "WITH x AS (SELECT 1) DELETE FROM items",
    ],
)
def test_sqlite_refuses_writes_before_they_reach_the_database(lite, sql):
    before = _lite_rows(lite)
    assert refusal(sql).code == "statement_not_allowed"
    assert _lite_rows(lite) == before


def test_sqlite_without_the_parser_query_only_still_refuses_writes(lite, monkeypatch):
    monkeypatch.setattr(db_query, "check_query", lambda sql, dialect: None)
    before = _lite_rows(lite)
    error = refusal("DELETE FROM items")
    assert (error.code, error.detail["refused_by"]) == ("statement_not_allowed", "database")
    assert _lite_rows(lite) == before
    raw = connections["lite"].connection
    assert raw.execute("PRAGMA query_only").fetchone() == (0,)  # the connection is left as it was found


def test_sqlite_parameter_errors_are_query_errors(lite):
    assert refusal("SELECT ?", params=[2**70]).code == "query_failed"
    assert refusal("SELECT ?, ?", params=[1]).code == "query_failed"
    assert query("SELECT ?", params=[2**62])["rows"] == [[2**62]]


def test_postgres_takes_integers_past_64_bits(allowed):
    assert query("SELECT $1::numeric + 1", params=[2**70])["rows"] == [[str(2**70 + 1)]]


def test_sqlite_a_long_query_stops_at_the_timeout(lite, settings):
    settings.DB_QUERY_TIMEOUT_MS = 200
    started = time.monotonic()
    error = refusal("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
    assert (error.code, error.status) == ("timeout", 504)
    assert time.monotonic() - started < 3
    assert query("SELECT 1")["rows"] == [[1]]


def test_sqlite_rows_are_capped(lite, settings):
    settings.DB_QUERY_MAX_ROWS = 50
    result = query("SELECT id FROM items ORDER BY id")
    assert (result["row_count"], result["truncated"], result["rows"][-1]) == (50, True, [50])
