"""What every export of a signed report says: the snapshot frozen at its signature (its text,
patient, study, series, signer, template, AI provenance, institution) and its addenda's, in
order (medportal.reporting.freezing). Edits of the patient, study, user or settings after the
signature change none of it.

The PDF, FHIR and DICOM SR builders take this and nothing else, so the three say the same.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction

from medportal.accounts.names import display_name
from medportal.communication.critical import report_critical_statements
from medportal.reporting.freezing import (
    FrozenAddendum,
    FrozenPatient,
    FrozenReport,
    FrozenSeries,
    FrozenStudy,
    signed_snapshot,
)
from medportal.reporting.models import Report


class NotSigned(Exception):
    """Only a signed (or amended) report may leave MedPortal."""


@dataclass(frozen=True)
class SignedReport:
    report: FrozenReport
    study: FrozenStudy
    patient: FrozenPatient
    series: list[FrozenSeries]
    addenda: list[FrozenAddendum]
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
    def critical_statements(self) -> list[str]:
        """The communication statement of each critical result marked before the signature."""
        return report_critical_statements(self.report, signed_at=self.report.signed_at)

    @property
    def test_model(self) -> bool:
        """Drafted by the tiny random-weights model: its text is meaningless, and exports say so."""
        return self.report.model_id == "tiny"


def signed_report(report: Report) -> SignedReport:
    """The signed report as the exports show it; NotSigned (with a message) when it is not signed."""
    # Signing an addendum locks the report row first; so does this read, so an addendum
    # signed meanwhile is either in the export with its "amended" status or not at all.
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if not report.is_signed:
            raise NotSigned(
                f"Only a signed report can be exported; this one is {report.get_status_display().lower()}."
            )
        frozen = signed_snapshot(report.pk)
    return SignedReport(
        report=frozen.report,
        study=frozen.study,
        patient=frozen.patient,
        series=frozen.series,
        addenda=frozen.addenda,
        provenance=frozen.provenance,
        provenance_line=frozen.provenance_line,
        institution_name=frozen.institution_name,
        institution_address=frozen.institution_address,
    )
