"""The prior exam a chest X-ray draft compares with (longitudinal CXR, MedGemma 1.5).

A prior is an earlier study of the same patient (the same Patient row: Patient ID, which
MedPortal keeps unique; an Issuer of Patient ID is not stored, so IDs from two issuers would
have to be told apart at ingest) that is also a chest radiograph (CR or DX, its body part
CHEST from its header or its descriptions, medportal.imaging.body_part) and whose report is
signed: its impression is given to the model with its image.

``prior_for_draft`` follows the report's ``prior_choice``: "auto", the latest candidate;
"chosen", the study the radiologist chose (medportal.reporting.prior_choice); "none", none.
"""

from __future__ import annotations

from django.db.models import Q

from medportal.imaging.body_part import BodyPartUnknown, body_part_resolve, study_texts
from medportal.imaging.models import Study
from medportal.reporting.drafting_scope import RADIOGRAPHS, normal_body_part
from medportal.reporting.lifecycle import FINAL
from medportal.reporting.models import Report


def is_chest_radiograph(study: Study) -> bool:
    if (study.modality or "").upper() not in RADIOGRAPHS:
        return False
    try:
        part, _ = body_part_resolve(body_part=study.body_part, texts=study_texts(study))
    except BodyPartUnknown:
        return False
    return normal_body_part(part) == "CHEST"


def prior_candidates(*, study: Study) -> list[Study]:
    """Earlier signed chest radiographs of the patient of ``study`` (itself a chest radiograph),
    latest first; none for any other study."""
    if not is_chest_radiograph(study):
        return []
    earlier = Q(received_at__lt=study.received_at)
    if study.study_date:
        earlier = Q(study_date__lt=study.study_date) | Q(
            study_date=study.study_date, received_at__lt=study.received_at
        )
    candidates = (
        Study.objects.filter(earlier, patient_id=study.patient_id, modality__in=sorted(RADIOGRAPHS))
        .filter(report__status__in=sorted(FINAL))
        .exclude(pk=study.pk)
        .select_related("report")
        .order_by("-study_date", "-received_at")
    )
    return [candidate for candidate in candidates if is_chest_radiograph(candidate)]


def prior_for_draft(*, report: Report) -> Study | None:
    """The prior the draft of ``report`` compares with, as its ``prior_choice`` says."""
    if report.prior_choice == "none":
        return None
    if report.prior_choice == "chosen" and report.prior_study_id:
        return report.prior_study
    candidates = prior_candidates(study=report.study)
    return candidates[0] if candidates else None


def prior_label(study: Study) -> str:
    """How a prior is named in a report's Comparison section: "CR chest, 2026-03-01"."""
    try:
        part, _ = body_part_resolve(body_part=study.body_part, texts=study_texts(study))
    except BodyPartUnknown:
        part = ""
    when = study.study_date or study.received_at.date()
    return f"{study.modality} {normal_body_part(part).lower() or 'radiograph'}, {when.isoformat()}"
