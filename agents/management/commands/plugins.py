"""``manage.py plugins [--json]``: the plugins installed here, which are enabled, and why the others are not;
exit status 1 when a plugin named in ``PLUGINS_ENABLED`` cannot be loaded."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from agents.models import App
from agents.plugins import registry


class Command(BaseCommand):
    help = (
        "List the installed plugins: enabled (PLUGINS_ENABLED), loaded, or why not; the apps declaring each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object per plugin, a list")

    def handle(self, *args: Any, **options: Any) -> None:
        registry.reset()
        rows = registry.installed()
        declared = self._declared()
        if options["json"]:
            self.stdout.write(json.dumps([self._as_dict(row, declared) for row in rows], indent=2))
        else:
            self._table(rows, declared)
        broken = [row.name for row in rows if row.status == registry.Status.BROKEN]
        if broken:
            raise CommandError(f"enabled but not loaded: {', '.join(broken)}", returncode=1)

    def _declared(self) -> dict[str, list[str]]:
        """The apps declaring each plugin; none when the database cannot say (not migrated yet)."""
        declared: dict[str, list[str]] = {}
        try:
            for slug, plugins in App.objects.order_by("slug").values_list("slug", "plugins"):
                for name in plugins or []:
                    declared.setdefault(name, []).append(slug)
        except DatabaseError as exc:
            self.stderr.write(f"(the apps declaring each plugin are unknown: {exc})")
        return declared

    def _as_dict(self, row: registry.Installed, declared: dict[str, list[str]]) -> dict[str, Any]:
        plugin = row.plugin
        return {
            "name": row.name,
            "source": row.source,
            "target": row.target,
            "enabled": row.enabled,
            "status": row.status,
            "reason": row.reason,
            "description": plugin.description if plugin else None,
            "limits": vars(plugin.limits) if plugin else None,
            "apps": declared.get(row.name, []),
        }

    def _table(self, rows, declared: dict[str, list[str]]) -> None:
        header = ("NAME", "STATUS", "SOURCE", "APPS", "DETAIL")
        lines = [header]
        for row in rows:
            if row.plugin is not None:
                limits = row.plugin.limits
                detail = f"timeout {limits.timeout_s:g} s, result ≤ {limits.max_result_bytes} B, "
                detail += f"{limits.calls_per_minute}/min per run, {limits.max_concurrency} at once"
            else:
                detail = row.reason
            lines.append(
                (row.name, row.status, row.source, ",".join(declared.get(row.name, [])) or "-", detail)
            )
        widths = [max(len(line[i]) for line in lines) for i in range(4)]
        for line in lines:
            cells = [cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
            self.stdout.write("  ".join([*cells, line[4]]))
