"""Creates the role groups and, when there is no admin yet, a first admin user."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from medportal.access.roles import Role


class Command(BaseCommand):
    help = "Create the role groups; with --admin, create a first admin user if none exists."

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin", metavar="USERNAME", help="create this admin user when no superuser exists"
        )

    def handle(self, *args, admin=None, **options):
        for role in Role:
            Group.objects.get_or_create(name=role.value)
        User = get_user_model()
        if not admin or User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=admin, email="", password=password)
        user.groups.add(
            Group.objects.get(name=Role.ADMIN.value), Group.objects.get(name=Role.RADIOLOGIST.value)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the first admin user.\n  username: {admin}\n  password: {password}\n"
                "Change the password after logging in (Users in the menu), where you also create "
                "accounts with the roles technologist, radiologist, auditor and admin."
            )
        )
