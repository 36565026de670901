"""On PostgreSQL, a trigger refuses UPDATE and DELETE of file access events (the audit is append-only).

The table's owner can still drop the trigger or TRUNCATE the table; docs/operations.md shows how to run the
web processes as a role that can do neither. SQLite (the one-process demo) has no such trigger.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION files_access_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'files_fileaccessevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER files_access_event_append_only
    BEFORE UPDATE OR DELETE ON files_fileaccessevent
    FOR EACH ROW EXECUTE FUNCTION files_access_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS files_access_event_append_only ON files_fileaccessevent;
DROP FUNCTION IF EXISTS files_access_event_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("files", "0001_roots_acls_audit")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
