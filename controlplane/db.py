"""Database helpers the ORM does not offer."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Model
from django.db.models.sql.subqueries import InsertQuery


def insert_together(objs: list[Model], *, notify: str | None = None) -> None:
    """Insert new model instances, in this order, as one statement on PostgreSQL; ``notify`` a channel with
    it (delivered at commit, like ``NOTIFY``).

    Each row is Django's own INSERT (defaults, ``auto_now_add``, field conversions), run as a data-modifying
    CTE of one statement: one round trip and one transaction where ``save()`` one by one takes a round trip
    per row plus ``BEGIN`` and ``COMMIT`` (creating a run: 8 round trips became 1). Foreign keys are
    checked at commit (Django declares them ``DEFERRABLE INITIALLY DEFERRED``), so the order of the rows
    does not matter to PostgreSQL. Primary keys must be set unless the database generates them; generated
    ones are not read back, and no ``save`` signals are sent. Elsewhere (SQLite), the rows are saved one by
    one in a transaction.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic(savepoint=False):
            for obj in objs:
                obj.save(force_insert=True)
        return
    statements = [_insert_sql(obj) for obj in objs]
    if notify is not None:
        statements.append(("SELECT pg_notify(%s, '')", [notify]))
    *ctes, (main_sql, main_params) = statements
    sql = "".join(f"{'WITH' if n == 0 else ','} i{n} AS ({cte_sql}) " for n, (cte_sql, _) in enumerate(ctes))
    params = [param for _, cte_params in ctes for param in cte_params]
    with connection.cursor() as cursor:
        cursor.execute(sql + main_sql, [*params, *main_params])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _insert_sql(obj: Model) -> tuple[str, list]:
    """The INSERT that ``obj.save()`` would run for a new row (as ``Model._save_table`` builds it)."""
    meta = obj._meta
    fields = [field for field in meta.local_concrete_fields if not field.generated]
    if obj.pk is None:
        fields = [field for field in fields if field is not meta.auto_field]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)
