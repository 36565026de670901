from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create a superuser if it does not exist yet, and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--email", default="admin@example.com")

    def handle(self, *args, username: str, password: str, email: str, **options):
        if password == DEMO_PASSWORD and not settings.DEBUG:
            raise CommandError("refusing the demo password with DEBUG off: pass --password")
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists; its password is unchanged.")
            return
        user_model.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin user: {username} / {password}"))
