"""What every export of a signed report says, read once: the report, its study and patient,
its addenda in order, who signed what and when, the institution and the AI provenance.

The PDF, FHIR and DICOM SR builders take this and nothing else, so the three say the same.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from medportal.accounts.names import display_name
from medportal.imaging.models import Patient, Series, Study
from medportal.reporting.models import Addendum, Report
from medportal.reporting.provenance import provenance_line, report_provenance


class NotSigned(Exception):
    """Only a signed (or amended) report may leave MedPortal."""


@dataclass(frozen=True)
class SignedReport:
    report: Report
    study: Study
    patient: Patient
    series: list[Series]
    addenda: list[Addendum]
    provenance: dict
    provenance_line: str
    institution_name: str
    institution_address: str

    @property
    def amended(self) -> bool:
        return bool(self.addenda)

    @property
    def signer_name(self) -> str:
        return display_name(self.report.signed_by)

    @property
    def signed_at(self) -> datetime.datetime:
        return self.report.signed_at

    @property
    def last_signed_at(self) -> datetime.datetime:
        """When the text took its present form: the sign-off, or the latest addendum."""
        return self.addenda[-1].signed_at if self.addenda else self.report.signed_at

    @property
    def sections(self) -> list[tuple[str, str]]:
        """(heading, text) in reading order; Technique and Comparison only when written."""
        report = self.report
        optional = [("Technique", report.technique), ("Comparison", report.comparison)]
        return [(h, t) for h, t in optional if t.strip()] + [
            ("Findings", report.findings),
            ("Impression", report.impression),
        ]

    @property
    def test_model(self) -> bool:
        """Drafted by the tiny random-weights model: its text is meaningless, and exports say so."""
        return self.report.model_id == "tiny"


def signed_report(report: Report) -> SignedReport:
    """The signed report as the exports show it; NotSigned (with a message) when it is not signed."""
    # Signing an addendum locks the report row first; so does this read, so an addendum
    # signed meanwhile is either in the export with its "amended" status or not at all.
    with transaction.atomic():
        report = (
            Report.objects.select_for_update(of=("self",))
            .select_related("study__patient", "signed_by")
            .get(pk=report.pk)
        )
        if not report.is_signed:
            raise NotSigned(
                f"Only a signed report can be exported; this one is {report.get_status_display().lower()}."
            )
        addenda = list(report.addenda.select_related("signed_by").order_by("number"))
        series = list(
            report.study.series.annotate(instance_count=Count("instances")).order_by("series_number", "id")
        )
    return SignedReport(
        report=report,
        study=report.study,
        patient=report.study.patient,
        series=series,
        addenda=addenda,
        provenance=report_provenance(report),
        provenance_line=provenance_line(report),
        institution_name=settings.MEDPORTAL_INSTITUTION_NAME,
        institution_address=settings.MEDPORTAL_INSTITUTION_ADDRESS,
    )
