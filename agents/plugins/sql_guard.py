"""The parser-level check of ``db_query``: one read-only query, or a ``PluginError`` saying why not.

It is the first of three fences (the others: PostgreSQL runs the statement as a cursor of a READ ONLY
transaction, SQLite with ``PRAGMA query_only``), so it refuses whatever it cannot prove harmless:

* anything but exactly one statement, and any statement but a query (SELECT, WITH … SELECT, TABLE, VALUES,
  UNION / INTERSECT / EXCEPT of those): DML, DDL, COPY, SET / RESET, transaction control, LOCK, CALL, DO,
  EXPLAIN, PREPARE / EXECUTE, PRAGMA, ATTACH… — and what sqlglot only keeps as an unparsed command;
* inside a query: data-modifying statements (writable CTEs), ``SELECT … INTO``, ``FOR UPDATE / SHARE``;
* calls to functions that change state, run SQL text the check never saw, or read the server's files and
  processes (``DENIED_FUNCTIONS``, ``DENIED_FUNCTION_PREFIXES``), whether schema-qualified or quoted.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from agents.plugins.base import PluginError

_TERMINAL_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")

# A query, as the top of the tree. Anything else sqlglot parses as a statement is refused, including what
# it reads as a bare expression (`LISTEN x`, `CHECKPOINT` parse as a column with an alias).
_QUERIES = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)

# Nodes refused anywhere in the tree, with the words the refusal uses.
_REFUSED_NODES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.DML, "a data-modifying statement"),
    (exp.DDL, "a schema change"),
    (exp.Into, "SELECT … INTO"),
    (exp.Lock, "a locking clause (FOR UPDATE / FOR SHARE)"),
    (exp.Command, "a statement the checker cannot parse"),
)

DENIED_FUNCTIONS = frozenset(
    {
        # sequences and transaction ids: they change state even in a query
        "nextval",
        "setval",
        "txid_current",
        "txid_current_if_assigned",
        "pg_export_snapshot",
        # settings and server processes
        "set_config",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_notify",
        "pg_stat_file",
        "pg_import_system_collations",
        # run SQL text this check never saw
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "ts_stat",
        "ts_rewrite",
        # large objects read and write server files and rows (lo_* below too)
        "loread",
        "lowrite",
        # SQLite: native code and files
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
    }
)
DENIED_FUNCTION_PREFIXES = (
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_terminate_",
    "pg_cancel_",
    "pg_signal_",
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_ls_",  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir…
    "pg_file_",  # adminpack: pg_file_write, pg_file_unlink…
    "pg_current_",  # pg_current_xact_id, pg_current_logfile, pg_current_wal_lsn
    "pg_stat_reset",
    "pg_stat_statements_reset",
    "pg_create_",  # restore points, replication slots
    "pg_drop_",
    "pg_copy_",
    "pg_replication_",
    "pg_logical_",
    "pg_switch_",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_",
    "pg_log_",
    "pg_clear_",
    "pg_restore_",
    "pg_sync_",
    "binary_upgrade_",
    "lo_",
    "dblink",
)


def check_query(sql: str, *, dialect: str) -> None:
    """Raise ``PluginError`` unless ``sql`` is exactly one query that cannot change anything."""
    tree = _parse_one(sql, dialect)
    if not isinstance(tree, _QUERIES):
        raise _refused(
            f"only a query may run (SELECT, WITH … SELECT, VALUES), not {_first_word(sql, dialect)}"
        )
    for node in tree.walk():
        if reason := _refusal(node):
            raise _refused(f"the statement contains {reason}")


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    try:
        statements = [tree for tree in sqlglot.parse(sql, read=dialect) if tree is not None]
    except SqlglotError as exc:
        raise PluginError(
            "invalid_sql", f"cannot parse the statement: {_parse_message(exc)}", status=400
        ) from None
    except RecursionError:
        raise PluginError("invalid_sql", "the statement is nested too deeply to check", status=400) from None
    if not statements:
        raise PluginError("invalid_sql", "the statement is empty", status=400)
    if len(statements) > 1:
        raise _refused(f"exactly one statement may run, found {len(statements)}")
    return statements[0]


def _parse_message(exc: SqlglotError) -> str:
    """The parser's message, without the terminal escapes it underlines the culprit with."""
    if isinstance(exc, ParseError) and exc.errors:
        first = exc.errors[0]
        return (
            f"{first['description']} (line {first['line']}, column {first['col']}, at {first['highlight']!r})"
        )
    return _TERMINAL_ESCAPES.sub("", str(exc))


def _refusal(node: exp.Expr) -> str | None:
    for kind, words in _REFUSED_NODES:
        if isinstance(node, kind):
            return words
    if isinstance(node, exp.Func):
        denied = sorted(name for name in _function_names(node) if _is_denied(name))
        if denied:
            return f"a call to {denied[0]}()"
    return None


def _function_names(node: exp.Func) -> set[str]:
    """The names a call may go by: what was written for an unknown function, every alias for a known one."""
    if isinstance(node, exp.Anonymous):
        return {node.name.lower()}
    return {name.lower() for name in type(node).sql_names()}


def _is_denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES)


def _first_word(sql: str, dialect: str) -> str:
    """The statement's first keyword (``COPY``, ``LISTEN``…), comments skipped: what the refusal names."""
    return sqlglot.tokenize(sql, read=dialect)[0].text.upper()


def _refused(message: str) -> PluginError:
    return PluginError("statement_not_allowed", message)
