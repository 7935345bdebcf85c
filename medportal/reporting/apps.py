from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "medportal.reporting"
    label = "reporting"

    def audit_verify(self) -> str:
        """Called by ``manage.py audit_verify`` once the audit chain holds: every signed report's
        frozen content against the hash its signature's audit event recorded."""
        from django.core.management.base import CommandError

        from medportal.reporting.freezing import signed_contents_verify

        checked, problems = signed_contents_verify()
        if problems:
            raise CommandError("Signed reports do not match their signatures: " + "; ".join(problems[:20]))
        return f"Signed reports intact: {checked} frozen signatures match their audit events."
