from django.core.management.base import BaseCommand

from medportal.audit.anchors import anchor_log, audit_anchor_write


class Command(BaseCommand):
    help = (
        "Append the audit chain's head to the anchor log outside the database (MEDPORTAL_AUDIT_ANCHOR_DIR)."
    )

    def handle(self, *args, **options):
        anchor = audit_anchor_write()
        if anchor is None:
            self.stdout.write("Nothing new to anchor.")
        else:
            self.stdout.write(f"Anchored seq {anchor.seq} in {anchor_log()}.")
