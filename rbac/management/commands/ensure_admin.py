from django.core.management.base import BaseCommand, CommandError

from rbac.services import DEMO_ADMIN_PASSWORD as DEMO_PASSWORD
from rbac.services import DemoPasswordRefused, demo_passwords_allowed, user_ensure


class Command(BaseCommand):
    help = "Create a superuser if it does not exist yet, and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument(
            "--allow-demo-password",
            action="store_true",
            help=f"accept the demo password {DEMO_PASSWORD!r} even with DEBUG off",
        )

    def handle(self, *args, username: str, password: str, email: str, allow_demo_password: bool, **options):
        try:
            if password == DEMO_PASSWORD:
                demo_passwords_allowed(allow=allow_demo_password)
        except DemoPasswordRefused as exc:
            raise CommandError(f"{exc} (--allow-demo-password)") from None
        _, created = user_ensure(username=username, password=password, email=email, superuser=True)
        if not created:
            self.stdout.write(f"Admin user {username!r} exists; its password is unchanged.")
            return
        self.stdout.write(self.style.SUCCESS(f"Created admin user: {username} / {password}"))
