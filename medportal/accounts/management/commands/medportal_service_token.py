"""Creates a service account for an inference worker (if needed) and prints a token for it once."""

from django.core.management.base import BaseCommand, CommandError

from medportal.accounts.services import ServiceAccountError, service_token_issue


class Command(BaseCommand):
    help = (
        "Issue a token for the service account NAME (created with the service role when missing): "
        "it may only retrieve instances over WADO-RS. The key is printed once; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="the account, e.g. worker-gpu1")
        parser.add_argument("--replace", action="store_true", help="revoke the account's earlier tokens")

    def handle(self, *args, name, replace, **options):
        try:
            _, key = service_token_issue(name=name, replace=replace)
        except ServiceAccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(key)
        self.stderr.write(
            f"Token for service account {name!r} (WADO-RS retrieve only). It is shown once. "
            "On the worker set MEDPORTAL_PIXEL_SOURCE=wado, MEDPORTAL_PORTAL_URL=<the portal's address> "
            "and MEDPORTAL_SERVICE_TOKEN (or MEDPORTAL_SERVICE_TOKEN_FILE) to it."
        )
