"""Issues an API token for a user (shown once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from medportal.accounts.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for USERNAME; the key is printed once and only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="script", help="what the token is for")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        _, key = ApiToken.issue(user=user, name=name)
        self.stdout.write(key)
