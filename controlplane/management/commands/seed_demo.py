from django.core.management.base import BaseCommand, CommandError

from controlplane.demo import USERS, seed_demo
from rbac.services import DemoPasswordRefused


class Command(BaseCommand):
    help = (
        "Create the demo users, departments and apps that do not exist yet (idempotent). The apps run on "
        "the default executor."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-demo-passwords",
            action="store_true",
            help="create the demo accounts (printed passwords) even with DEBUG off",
        )

    def handle(self, *args, allow_demo_passwords: bool, **options):
        try:
            report = seed_demo(allow_demo_passwords=allow_demo_passwords)
        except DemoPasswordRefused as exc:
            raise CommandError(f"{exc} (--allow-demo-passwords)") from None
        if report.created:
            self.stdout.write(self.style.SUCCESS("Created: " + ", ".join(report.created)))
        else:
            self.stdout.write("The demo data exists already; nothing changed.")
        sign_ins = ", ".join(f"{user.username} / {user.password}" for user in USERS)
        self.stdout.write(f"Demo sign-ins (unless changed since): {sign_ins}")
