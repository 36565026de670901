"""``manage.py policy export [FILE]`` and ``manage.py policy import FILE [--prune] [--dry-run]
[--actor USERNAME]``: the access policy as a reviewable JSON file (agents.policy_file)."""

import json
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.policy_file import PolicyFileInvalid, policy_dumps, policy_export, policy_import


class Command(BaseCommand):
    help = "Export the access policy (roles, departments, bindings, app grants) as JSON, or import it."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True)
        export = commands.add_parser("export", help="write the policy as sorted, indented JSON")
        export.add_argument("file", nargs="?", help="where to write it (default: standard output)")
        load = commands.add_parser(
            "import", help="check a policy file whole, then apply it in one transaction"
        )
        load.add_argument("file", help="the policy file ('-': standard input)")
        load.add_argument(
            "--prune", action="store_true", help="also delete roles, bindings, grants not in it"
        )
        load.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
        load.add_argument("--actor", help="the username the audit log records as having made the changes")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "export":
            self._export(options.get("file"))
        else:
            self._import(
                options["file"], prune=options["prune"], dry_run=options["dry_run"], actor=options["actor"]
            )

    def _export(self, file: str | None) -> None:
        text = policy_dumps(policy_export())
        if file:
            Path(file).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    def _import(self, file: str, *, prune: bool, dry_run: bool, actor: str | None) -> None:
        policy = self._read(file)
        user = None
        if actor:
            user = get_user_model().objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"unknown user for --actor: {actor}")
        try:
            changes = policy_import(policy=policy, prune=prune, dry_run=dry_run, actor=user)
        except PolicyFileInvalid as exc:
            raise CommandError("the policy file was not applied:\n" + "\n".join(exc.problems)) from None
        for line in changes:
            self.stdout.write(line)
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"{len(changes)} {verb}" + (" (dry run: nothing applied)" if dry_run else ""))

    def _read(self, file: str) -> Any:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
            return json.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from None
