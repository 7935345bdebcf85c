"""Password authentication for people; service accounts authenticate with tokens only."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from medportal.access.roles import Role


class PeopleModelBackend(ModelBackend):
    """Django's ModelBackend, except that a service account never gets a session, even if an
    admin gives it a password: its role is meant for WADO-RS with a token, never for pages."""

    def user_can_authenticate(self, user) -> bool:
        return (
            super().user_can_authenticate(user) and not user.groups.filter(name=Role.SERVICE.value).exists()
        )
