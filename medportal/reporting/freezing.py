"""A signed report frozen whole: at each signature, everything an output of the report shows
becomes one snapshot (``SignedContent``), hashed into the signature's audit event.

The report's own signature freezes: Technique, Comparison, Findings, Impression; the patient
(MRN, name, birth date, sex) and the study (UID, accession, date, description, modality, body
part, clinical indication) as they were; the series and their instance counts; the signer and
the time; the template and the AI provenance; the institution. An addendum's signature
freezes the addendum, its signer and its time. PDF, FHIR, DICOM SR, Send to PACS, HL7 and the
API read ``signed_snapshot``: later edits of the patient, study, user or settings rows change
none of them. The database refuses to change or delete a snapshot (``db_guards``), and
``audit_verify`` checks each against the hash its signature's audit event recorded.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from medportal.reporting.provenance import provenance_line, report_provenance

SCHEMA = 1


# -- freezing ------------------------------------------------------------------------------


def _user(user) -> dict:
    return {
        "id": user.pk,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def _instant(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class _Signed:
    """What provenance_line and report_provenance read, with the signer about to sign."""

    report: Any
    signed_by: Any

    def __getattr__(self, name: str):
        return getattr(self.report, name)


def report_content(report, *, signer, signed_at: datetime.datetime, series_model=None) -> dict:
    """The snapshot of ``report`` as ``signer`` signs it at ``signed_at``.

    Field reads only, so that a migration can freeze with its historical models
    (``series_model``: the Series model to count instances with)."""
    if series_model is None:
        from medportal.imaging.models import Series as series_model
    study, patient = report.study, report.study.patient
    series = (
        series_model.objects.filter(study_id=study.pk)
        .annotate(instance_count=Count("instances"))
        .order_by("series_number", "id")
    )
    signing = _Signed(report, FrozenUser(**_user(signer)))
    return {
        "schema": SCHEMA,
        "report": {
            "id": report.pk,
            "technique": report.technique,
            "comparison": report.comparison,
            "findings": report.findings,
            "impression": report.impression,
            "version": report.version,
            "template_id": report.template_id,
            "template_name": report.template_name,
            "model_id": report.model_id,
            "draft_started_at": _instant(report.draft_started_at),
            "draft_finished_at": _instant(report.draft_finished_at),
        },
        "patient": {
            "id": patient.pk,
            "patient_id": patient.patient_id,
            "name": patient.name,
            "birth_date": patient.birth_date,
            "sex": patient.sex,
        },
        "study": {
            "id": study.pk,
            "study_uid": study.study_uid,
            "accession_number": study.accession_number,
            "study_date": study.study_date.isoformat() if study.study_date else None,
            "description": study.description,
            "modality": study.modality,
            "body_part": study.body_part,
            "indication": study.indication,
        },
        "series": [
            {
                "series_uid": s.series_uid,
                "series_number": s.series_number,
                "modality": s.modality,
                "description": s.description,
                "instance_count": s.instance_count,
            }
            for s in series
        ],
        "signer": _user(signer),
        "signed_at": _instant(signed_at),
        "provenance": report_provenance(signing),
        "provenance_line": provenance_line(signing),
        "institution": {
            "name": settings.MEDPORTAL_INSTITUTION_NAME,
            "address": settings.MEDPORTAL_INSTITUTION_ADDRESS,
        },
    }


def addendum_content(addendum) -> dict:
    return {
        "schema": SCHEMA,
        "addendum": {
            "id": addendum.pk,
            "number": addendum.number,
            "text": addendum.text,
            "signer": _user(addendum.signed_by),
            "signed_at": _instant(addendum.signed_at),
        },
    }


def canonical(content: dict) -> str:
    """The one text of a snapshot: what is stored, and what its hash is of."""
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_freeze(*, report, content: dict, addendum=None, model=None, backfilled: bool = False):
    """Store the snapshot of a signature; returns the row (its ``sha256`` goes into the audit event)."""
    if model is None:
        from medportal.reporting.models import SignedContent as model
    text = canonical(content)
    return model.objects.create(
        report_id=report.pk,
        addendum_id=addendum.pk if addendum is not None else None,
        content=text,
        sha256=content_sha256(text),
        created_at=timezone.now(),
        backfilled=backfilled,
    )


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenUser:
    id: int
    username: str
    first_name: str
    last_name: str

    @property
    def pk(self) -> int:
        return self.id

    def get_username(self) -> str:
        return self.username

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class FrozenPatient:
    pk: int
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True)
class FrozenStudy:
    pk: int
    study_uid: str
    accession_number: str
    study_date: datetime.date | None
    description: str
    modality: str
    body_part: str
    indication: str


@dataclass(frozen=True)
class FrozenSeries:
    series_uid: str
    series_number: int | None
    modality: str
    description: str
    instance_count: int


@dataclass(frozen=True)
class FrozenReport:
    pk: int
    study: FrozenStudy
    technique: str
    comparison: str
    findings: str
    impression: str
    version: int
    template_name: str
    model_id: str
    signed_by: FrozenUser
    signed_at: datetime.datetime
    draft_started_at: datetime.datetime | None
    draft_finished_at: datetime.datetime | None

    @property
    def study_id(self) -> int:
        return self.study.pk


@dataclass(frozen=True)
class FrozenAddendum:
    pk: int
    number: int
    text: str
    signed_by: FrozenUser
    signed_at: datetime.datetime


@dataclass(frozen=True)
class SignedSnapshot:
    """A signed report as its outputs show it: the report's snapshot and its addenda's, in order."""

    report: FrozenReport
    study: FrozenStudy
    patient: FrozenPatient
    series: list[FrozenSeries]
    addenda: list[FrozenAddendum]
    provenance: dict
    provenance_line: str
    institution_name: str
    institution_address: str
    sha256: str


def _when(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def _snapshot(text: str, sha256: str, addenda: list[FrozenAddendum]) -> SignedSnapshot:
    data = json.loads(text)
    study_data = data["study"]
    study = FrozenStudy(
        pk=study_data["id"],
        study_uid=study_data["study_uid"],
        accession_number=study_data["accession_number"],
        study_date=datetime.date.fromisoformat(study_data["study_date"])
        if study_data["study_date"]
        else None,
        description=study_data["description"],
        modality=study_data["modality"],
        body_part=study_data["body_part"],
        indication=study_data["indication"],
    )
    r = data["report"]
    report = FrozenReport(
        pk=r["id"],
        study=study,
        technique=r["technique"],
        comparison=r["comparison"],
        findings=r["findings"],
        impression=r["impression"],
        version=r["version"],
        template_name=r["template_name"],
        model_id=r["model_id"],
        signed_by=FrozenUser(**data["signer"]),
        signed_at=_when(data["signed_at"]),
        draft_started_at=_when(r["draft_started_at"]),
        draft_finished_at=_when(r["draft_finished_at"]),
    )
    p = data["patient"]
    return SignedSnapshot(
        report=report,
        study=study,
        patient=FrozenPatient(p["id"], p["patient_id"], p["name"], p["birth_date"], p["sex"]),
        series=[FrozenSeries(**s) for s in data["series"]],
        addenda=addenda,
        provenance=data["provenance"],
        provenance_line=data["provenance_line"],
        institution_name=data["institution"]["name"],
        institution_address=data["institution"]["address"],
        sha256=sha256,
    )


def _addendum(text: str) -> FrozenAddendum:
    a = json.loads(text)["addendum"]
    return FrozenAddendum(a["id"], a["number"], a["text"], FrozenUser(**a["signer"]), _when(a["signed_at"]))


def signed_snapshot(report_id: int, *, up_to_addendum: int | None = None) -> SignedSnapshot:
    """The frozen report with its addenda in order (up to addendum number ``up_to_addendum``);
    SignedContent.DoesNotExist when the report was never signed."""
    from medportal.reporting.models import SignedContent

    rows = list(
        SignedContent.objects.filter(report_id=report_id).values_list("addendum_id", "content", "sha256")
    )
    own = next(((text, sha) for addendum_id, text, sha in rows if addendum_id is None), None)
    if own is None:
        raise SignedContent.DoesNotExist(f"report {report_id} has no signed content")
    addenda = sorted(
        (_addendum(text) for addendum_id, text, _ in rows if addendum_id is not None), key=lambda a: a.number
    )
    if up_to_addendum is not None:
        addenda = [a for a in addenda if a.number <= up_to_addendum]
    return _snapshot(own[0], own[1], addenda)


# -- verifying -----------------------------------------------------------------------------


def signed_contents_verify() -> tuple[int, list[str]]:
    """Check every signed report's snapshot (and its addenda's) against its own hash and the
    hash its signature's audit event recorded; also that no signature lacks one. Returns how
    many were checked and what does not match."""
    from medportal.audit.models import AuditEvent
    from medportal.reporting.lifecycle import FINAL
    from medportal.reporting.models import Addendum, Report, SignedContent

    vouched: dict[str, set[str]] = defaultdict(set)
    events = AuditEvent.objects.filter(object_type="report", detail__has_key="content_sha256")
    for object_id, detail in events.values_list("object_id", "detail"):
        vouched[object_id].add(detail["content_sha256"])
    problems, checked = [], 0
    for row in SignedContent.objects.order_by("id").iterator():
        what = f"report {row.report_id}" + (f" (addendum id {row.addendum_id})" if row.addendum_id else "")
        actual = content_sha256(row.content)
        if actual != row.sha256:
            problems.append(f"{what}: its frozen content does not match its hash (changed after signing)")
        elif actual not in vouched[str(row.report_id)]:
            problems.append(
                f"{what}: its frozen content is not the one its signature's audit event recorded "
                "(content and hash replaced after signing)"
            )
        checked += 1
    own = SignedContent.objects.filter(addendum__isnull=True).values("report_id")
    for report_id in Report.objects.filter(status__in=FINAL).exclude(pk__in=own).values_list("pk", flat=True):
        problems.append(f"report {report_id}: signed, but its frozen content is missing (deleted)")
    for report_id, number in Addendum.objects.filter(signed_content__isnull=True).values_list(
        "report_id", "number"
    ):
        problems.append(f"report {report_id}: addendum {number} has no frozen content (deleted)")
    return checked, problems
