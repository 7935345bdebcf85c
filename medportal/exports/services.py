"""Exports of a signed report (PDF, FHIR, DICOM SR) and sending its SR to the PACS.

Every export is audited: a download as Export (DCM 110106), a send to the PACS as DICOM
Instances Transferred (DCM 110104), refusals and failures too, each with the patient,
study and report it concerns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medportal.audit.models import Action, EventType, Outcome
from medportal.exports import dicom_sr, fhir, pdf
from medportal.exports.content import NotSigned, SignedReport, signed_report
from medportal.exports.pacs import PacsError, pacs_destination, pacs_send
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report


class ExportRefused(Exception):
    """The export cannot be made; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ExportFormat:
    label: str
    content_type: str
    filename: str  # no patient data: file names end up in download folders and histories
    build: Callable[[SignedReport], bytes]


def _sr_file(content: SignedReport) -> bytes:
    return dicom_sr.sr_bytes(dicom_sr.report_sr(content))


FORMATS: dict[str, ExportFormat] = {
    "pdf": ExportFormat("PDF", "application/pdf", "report-{id}.pdf", pdf.report_pdf),
    "fhir": ExportFormat(
        "FHIR R4 JSON", "application/fhir+json", "report-{id}-fhir.json", fhir.report_fhir_json
    ),
    "sr": ExportFormat("DICOM SR", "application/dicom", "report-{id}-sr.dcm", _sr_file),
}


@dataclass(frozen=True)
class Export:
    data: bytes
    content_type: str
    filename: str


def _signed(report: Report, *, what: str, event_type: EventType, request, user, detail: dict) -> SignedReport:
    try:
        return signed_report(report)
    except NotSigned as exc:
        report_audit(
            report,
            f"Report {what} refused: not signed",
            action=Action.READ,  # DICOM audit: an export reads the data it sends
            event_type=event_type,
            outcome=Outcome.MINOR_FAILURE,
            request=request,
            user=user,
            detail={**detail, "reason": str(exc), "status": report.status},
        )
        raise ExportRefused(str(exc)) from None


def report_export(*, report: Report, fmt: str, user, request=None) -> Export:
    """The signed report in ``fmt`` (a key of FORMATS); ExportRefused when it is not signed."""
    export_format = FORMATS[fmt]
    detail = {"format": fmt}
    content = _signed(
        report, what="export", event_type=EventType.EXPORT, request=request, user=user, detail=detail
    )
    try:
        data = export_format.build(content)
    except pdf.PdfUnavailable as exc:
        report_audit(
            report,
            f"Report export failed ({export_format.label})",
            action=Action.READ,  # DICOM audit: an export reads the data it sends
            event_type=EventType.EXPORT,
            outcome=Outcome.SERIOUS_FAILURE,
            request=request,
            user=user,
            detail={**detail, "reason": str(exc)},
        )
        raise ExportRefused(str(exc), status=503) from None
    detail["addenda"] = len(content.addenda)
    if fmt == "sr":
        detail["sop_instance_uid"] = dicom_sr.sr_uids(content)[1]
    report_audit(
        report,
        f"Report exported ({export_format.label})",
        action=Action.READ,  # DICOM audit: an export reads the data it sends
        event_type=EventType.EXPORT,
        request=request,
        user=user,
        detail=detail,
    )
    return Export(data, export_format.content_type, export_format.filename.format(id=report.pk))


@dataclass(frozen=True)
class PacsSent:
    destination: str
    sop_instance_uid: str


def report_send_to_pacs(*, report: Report, user, request=None) -> PacsSent:
    """Store the report's DICOM SR in the configured PACS.

    ExportRefused (409) when there is no PACS or the report is not signed; (502) when the
    PACS could not be reached or did not store it, with its reason.
    """
    destination = pacs_destination()
    detail = {"format": "sr", "destination": str(destination) if destination else ""}
    event = EventType.INSTANCES_STORED  # DCM 110104 "DICOM Instances Transferred"
    if destination is None:
        message = "No PACS is configured (MEDPORTAL_PACS_STOW_URL, or MEDPORTAL_PACS_HOST for C-STORE)."
        report_audit(
            report,
            "Report send to PACS refused: no PACS",
            action=Action.READ,  # DICOM audit: an export reads the data it sends
            event_type=event,
            outcome=Outcome.MINOR_FAILURE,
            request=request,
            user=user,
            detail={**detail, "reason": message},
        )
        raise ExportRefused(message)
    content = _signed(
        report, what="send to PACS", event_type=event, request=request, user=user, detail=detail
    )
    sr = dicom_sr.report_sr(content)
    detail["sop_instance_uid"] = str(sr.SOPInstanceUID)
    detail["addenda"] = len(content.addenda)
    try:
        pacs_send(destination=destination, dataset=sr, data=dicom_sr.sr_bytes(sr))
    except PacsError as exc:
        report_audit(
            report,
            "Report send to PACS failed",
            action=Action.READ,  # DICOM audit: an export reads the data it sends
            event_type=event,
            outcome=Outcome.SERIOUS_FAILURE,
            request=request,
            user=user,
            detail={**detail, "reason": str(exc)[:500]},
        )
        raise ExportRefused(str(exc), status=502) from None
    report_audit(
        report,
        "Report sent to PACS (DICOM SR)",
        action=Action.READ,
        event_type=event,
        request=request,
        user=user,
        detail=detail,
    )
    return PacsSent(str(destination), str(sr.SOPInstanceUID))
