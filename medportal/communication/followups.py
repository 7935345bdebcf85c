"""Follow-up recommendations: found in the signed text, confirmed by the radiologist as items
with a due date, closed when a matching study of the patient arrives, flagged when overdue.

Finding them is plain reading: a sentence that recommends or names an interval ("in 3 months",
"within 6 weeks"), with the modality it names (CT, MRI, ...). The radiologist confirms each (and
may correct its modality and date) before it becomes an item: nothing is tracked unasked.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from medportal.access.roles import CAN_COMMUNICATE_CRITICAL, has_role
from medportal.audit.models import Action
from medportal.communication.auditing import followup_audit
from medportal.communication.lifecycle import CommunicationError
from medportal.communication.models import FollowUp, FollowUpStatus
from medportal.imaging.models import Study
from medportal.reporting.models import Report

# Words for a modality, and the DICOM modality a matching study has.
MODALITY_WORDS = [
    (r"\bCT\b|computed tomography", "CT"),
    (r"\bMRI?\b|magnetic resonance", "MR"),
    (r"\bPET\b", "PT"),
    (r"ultrasound|\bUS\b|sonograph\w*", "US"),
    (r"mammogra\w*", "MG"),
    (r"radiograph\w*|x-?ray|\bCXR\b", "DX"),
]
# Radiographs arrive as CR or DX.
SAME_MODALITY = {"DX": {"DX", "CR"}, "CR": {"DX", "CR"}}
MODALITIES = ["CT", "MR", "PT", "US", "MG", "DX"]

_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "twelve": 12, "a": 1}
_INTERVAL = re.compile(
    r"\b(?:in|within|after)\s+(\d+|one|two|three|four|six|twelve|a)(?:\s*(?:-|to)\s*\d+)?\s*(day|week|month|year)s?\b",
    re.IGNORECASE,
)
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_RECOMMENDS = re.compile(r"\b(recommend\w*|follow[- ]?up|advise\w*|suggest\w*)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Recommendation:
    text: str
    modality: str  # "" when the sentence names none
    due_date: datetime.date


def recommendations_find(text: str, *, since: datetime.date) -> list[Recommendation]:
    """Each sentence of ``text`` that recommends a study after an interval, with its due date."""
    found = []
    for sentence in re.split(r"(?<=[.;!?])\s+|\n+", text):
        sentence = sentence.strip()
        interval = _INTERVAL.search(sentence)
        if not sentence or interval is None:
            continue
        modality = next((m for words, m in MODALITY_WORDS if re.search(words, sentence, re.IGNORECASE)), "")
        if not modality and not _RECOMMENDS.search(sentence):
            continue  # "stable in 2 years" is history, not a recommendation
        count = interval.group(1).lower()
        amount = int(count) if count.isdigit() else _NUMBERS[count]
        due = since + datetime.timedelta(days=amount * _DAYS[interval.group(2).lower()])
        found.append(Recommendation(text=sentence[:500], modality=modality, due_date=due))
    return found


def report_recommendations(report: Report) -> list[Recommendation]:
    """What the signed report recommends and is not yet an item."""
    if not report.is_signed:
        return []
    since = timezone.localtime(report.signed_at).date()
    confirmed = set(report.follow_ups.values_list("text", flat=True))
    text = "\n".join([report.impression, report.findings])
    return [r for r in recommendations_find(text, since=since) if r.text not in confirmed]


def followup_confirm(
    *, report: Report, user, text: str, modality: str, due_date: datetime.date, request=None
) -> FollowUp:
    """The radiologist confirms a recommendation of their signed report as an item to track."""
    text = text.strip()
    if not has_role(user, *CAN_COMMUNICATE_CRITICAL):
        raise CommunicationError("Only a radiologist can confirm a follow-up.")
    if not report.is_signed:
        raise CommunicationError("Follow-ups are confirmed from a signed report.")
    if not text:
        raise CommunicationError("Say what is recommended.")
    if modality and modality not in MODALITIES:
        raise CommunicationError("Choose a modality from the list, or none.")
    if due_date <= timezone.localtime(report.signed_at).date():
        raise CommunicationError("The due date must be after the report was signed.")
    with transaction.atomic():
        follow_up = FollowUp.objects.create(
            report=report,
            patient=report.study.patient,
            text=text[:500],
            modality=modality,
            due_date=due_date,
            created_by=user,
        )
        followup_audit(
            follow_up,
            "Follow-up confirmed",
            action=Action.CREATE,
            request=request,
            user=user,
            detail={"text": follow_up.text, "modality": modality, "due": due_date.isoformat()},
        )
    return follow_up


def followups_close_for_study(*, study: Study) -> list[FollowUp]:
    """A study of the patient arrived: close the open follow-ups it satisfies (same modality, or
    any when the follow-up names none), each with the study that closed it."""
    wanted = SAME_MODALITY.get(study.modality, {study.modality})
    closed = []
    candidates = FollowUp.objects.filter(
        patient_id=study.patient_id, status=FollowUpStatus.OPEN, created_at__lt=study.received_at
    ).select_related("report__study__patient")
    for follow_up in candidates:
        if follow_up.modality and follow_up.modality not in wanted:
            continue
        # Conditional: a study arriving twice (two receivers) closes it once.
        if FollowUp.objects.filter(pk=follow_up.pk, status=FollowUpStatus.OPEN).update(
            status=FollowUpStatus.DONE, closed_by_study=study, closed_at=timezone.now()
        ):
            followup_audit(
                follow_up,
                "Follow-up closed: the study arrived",
                action=Action.UPDATE,
                detail={"study_uid": study.study_uid, "accession": study.accession_number},
            )
            closed.append(follow_up)
    return closed


def followups_flag_overdue(*, today: datetime.date | None = None) -> int:
    """Flag (once) each open follow-up whose due date has passed."""
    today = today or timezone.localdate()
    overdue = list(
        FollowUp.objects.filter(
            status=FollowUpStatus.OPEN, due_date__lt=today, overdue_flagged_at__isnull=True
        ).select_related("report__study__patient")
    )
    for follow_up in overdue:
        if FollowUp.objects.filter(pk=follow_up.pk, overdue_flagged_at__isnull=True).update(
            overdue_flagged_at=timezone.now()
        ):
            followup_audit(
                follow_up,
                "Follow-up overdue",
                action=Action.UPDATE,
                detail={"due": follow_up.due_date.isoformat()},
            )
    return len(overdue)
