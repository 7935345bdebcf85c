"""The study's clinical indication, as the report sees it: it goes into the next draft's prompt
and is frozen with the signature, so it cannot change once the report is signed."""

from __future__ import annotations

from django.db import transaction

from medportal.imaging.models import Study
from medportal.imaging.services import study_set_indication
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report
from medportal.reporting.services.signoff import refusal_audit

SIGNED = "This report is signed; corrections are addenda."


def study_indication_save(*, study: Study, indication: str, user, request=None) -> Study:
    """Save the indication; ReportError (audited) once the study's report is signed."""
    with transaction.atomic():
        report = (
            Report.objects.select_for_update().select_related("study__patient").filter(study=study).first()
        )
        if report is None or not report.is_signed:
            return study_set_indication(study=study, indication=indication, user=user, request=request)
    exc = ReportError(SIGNED)
    refusal_audit(report, exc, what="Clinical indication edit", user=user, request=request)
    raise exc
