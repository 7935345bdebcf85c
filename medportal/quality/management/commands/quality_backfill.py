from django.core.management.base import BaseCommand

from medportal.quality.services import outcomes_backfill


class Command(BaseCommand):
    help = "Measure signed reports against their AI drafts where no measure exists yet (safe to rerun)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--again", action="store_true", help="measure every signed report again, not only the missing"
        )

    def handle(self, *args, **options):
        result = outcomes_backfill(again=options["again"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Measured {result.recorded} signed reports; "
                f"{result.without_draft} signed reports had no AI draft."
            )
        )
