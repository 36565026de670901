"""``manage.py file_roots [--sync] [--json]``: the file browser's roots, and whether each can be served."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from files.models import FileRoot, root_path_problem
from files.services import roots_sync_from_settings


class Command(BaseCommand):
    help = "List the file roots; --sync first writes those FILE_ROOTS declares to the database."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sync", action="store_true", help="Create or update the roots of FILE_ROOTS.")
        parser.add_argument("--json", action="store_true", help="One JSON document instead of a table.")

    def handle(self, *args, sync: bool, json: bool, **options) -> None:
        if sync:
            synced = roots_sync_from_settings()
            if not json:
                self.stdout.write(f"synced {len(synced)} root(s) from FILE_ROOTS")
        rows = [
            {
                "name": root.name,
                "path": root.path,
                "enabled": root.enabled,
                "from_settings": root.from_settings,
                "acls": root.acls.count(),
                "problem": root_path_problem(root.path),
            }
            for root in FileRoot.objects.order_by("name")
        ]
        if json:
            self.stdout.write(_dumps(rows))
            return
        for row in rows:
            state = "enabled" if row["enabled"] else "disabled"
            problem = f"  ! {row['problem']}" if row["problem"] else ""
            source = " (FILE_ROOTS)" if row["from_settings"] else ""
            self.stdout.write(
                f"{row['name']:<20} {state:<9} {row['acls']:>3} ACLs  {row['path']}{source}{problem}"
            )


def _dumps(rows: list[dict]) -> str:
    return json.dumps({"roots": rows}, indent=2, ensure_ascii=False)
