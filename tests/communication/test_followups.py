"""Follow-up recommendations: found in the signed text, confirmed by the radiologist, closed
when a matching study of the patient arrives (and not by another), flagged when overdue."""

from __future__ import annotations

import datetime
import io

import pydicom
import pytest
from django.urls import reverse
from django.utils import timezone
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent
from medportal.communication.followups import followup_confirm, followups_flag_overdue, recommendations_find
from medportal.communication.lifecycle import CommunicationError
from medportal.communication.models import FollowUp, FollowUpStatus
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.services import editing
from tests.conftest import PASSWORD
from tests.exports.conftest import received_report

HTMX = {"HTTP_HX_REQUEST": "true"}
MONDAY = datetime.date(2026, 3, 2)


@pytest.mark.parametrize(
    ("text", "modality", "days"),
    [
        ("CT chest in 3 months for the 6 mm nodule.", "CT", 90),
        ("Follow-up ultrasound within 6 weeks is advised.", "US", 42),
        ("Recommend follow-up in one year.", "", 365),
        ("MRI of the knee in 2-4 weeks if symptoms persist.", "MR", 14),
    ],
)
def test_a_recommendation_with_an_interval_is_found_with_its_due_date(text, modality, days):
    (found,) = recommendations_find(f"Small nodule. {text}", since=MONDAY)
    assert (found.text, found.modality, found.due_date) == (
        text,
        modality,
        MONDAY + datetime.timedelta(days=days),
    )


@pytest.mark.parametrize(
    "text", ["Stable compared with the study of 2 years ago.", "Unchanged in 2 years.", "No acute findings."]
)
def test_history_and_plain_findings_are_not_recommendations(text):
    assert recommendations_find(text, since=MONDAY) == []


def ct_of_the_same_patient(modality: str = "CT") -> IncomingFile:
    """Another study of CT_small's patient: new UIDs, same Patient ID."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.Modality = modality
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return IncomingFile(f"later-{modality}.dcm", buffer.getvalue())


@pytest.fixture
def signed_report(radiologist, image_store):
    report = received_report(radiologist)
    report = editing.report_save(
        report=report,
        user=radiologist,
        findings="A 6 mm nodule in the right upper lobe.",
        impression="Right upper lobe nodule, 6 mm. CT chest in 3 months for the 6 mm nodule.",
        expected_version=report.version,
    )
    return editing.report_sign(report=report, user=radiologist, password=PASSWORD)


def test_the_radiologist_confirms_what_the_signed_report_recommends(client, radiologist, signed_report):
    client.force_login(radiologist)
    page = client.get(reverse("study-detail", args=[signed_report.study_id])).content.decode()
    assert "Found in the report" in page and 'value="CT chest in 3 months for the 6 mm nodule."' in page
    due = timezone.localdate() + datetime.timedelta(days=90)
    response = client.post(
        reverse("followup-confirm", args=[signed_report.pk]),
        {"text": "CT chest in 3 months for the 6 mm nodule.", "modality": "CT", "due_date": due.isoformat()},
        **HTMX,
    )
    assert response.status_code == 200
    follow_up = FollowUp.objects.get(report=signed_report)
    assert (follow_up.modality, follow_up.due_date, follow_up.status) == ("CT", due, FollowUpStatus.OPEN)
    assert "Found in the report" not in response.content.decode()  # confirmed: no longer offered
    assert f'id="follow-up-{follow_up.pk}"' in response.content.decode()
    listing = client.get(reverse("followup-list")).content.decode()
    assert f'id="follow-up-row-{follow_up.pk}"' in listing and "Overdue" not in listing
    assert AuditEvent.objects.filter(description="Follow-up confirmed", object_id=str(follow_up.pk)).exists()


def test_a_follow_up_is_refused_on_an_unsigned_report_or_with_a_past_date(
    radiologist, signed_report, image_store
):
    with pytest.raises(CommunicationError, match="signed report"):
        followup_confirm(
            report=received_report(radiologist, data=ct_of_the_same_patient().data),
            user=radiologist,
            text="CT in 3 months.",
            modality="CT",
            due_date=timezone.localdate() + datetime.timedelta(days=9),
        )
    with pytest.raises(CommunicationError, match="after the report was signed"):
        followup_confirm(
            report=signed_report, user=radiologist, text="CT.", modality="CT", due_date=timezone.localdate()
        )


def test_a_follow_up_closes_when_a_matching_study_of_the_patient_arrives(
    radiologist, signed_report, django_capture_on_commit_callbacks
):
    follow_up = followup_confirm(
        report=signed_report,
        user=radiologist,
        text="CT chest in 3 months.",
        modality="CT",
        due_date=timezone.localdate() + datetime.timedelta(days=90),
    )
    with django_capture_on_commit_callbacks(execute=True):
        studies_receive(files=[ct_of_the_same_patient("MR")], uploader=radiologist, auto_draft=False)
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.OPEN  # an MR does not close a CT follow-up
    with django_capture_on_commit_callbacks(execute=True):
        _, (report,) = studies_receive(
            files=[ct_of_the_same_patient("CT")], uploader=radiologist, auto_draft=False
        )
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.closed_by_study) == (FollowUpStatus.DONE, report.study)
    assert AuditEvent.objects.filter(
        description="Follow-up closed: the study arrived", object_id=str(follow_up.pk)
    ).exists()


def test_an_overdue_follow_up_is_flagged_once_and_shown_as_overdue(client, radiologist, signed_report):
    follow_up = followup_confirm(
        report=signed_report,
        user=radiologist,
        text="CT chest in 3 months.",
        modality="CT",
        due_date=timezone.localdate() + datetime.timedelta(days=90),
    )
    later = timezone.localdate() + datetime.timedelta(days=91)
    assert followups_flag_overdue(today=later) == 1
    assert followups_flag_overdue(today=later) == 0
    FollowUp.objects.filter(pk=follow_up.pk).update(
        due_date=timezone.localdate() - datetime.timedelta(days=1)
    )
    client.force_login(radiologist)
    listing = client.get(reverse("followup-list")).content.decode()
    row = listing[listing.index(f'id="follow-up-row-{follow_up.pk}"') :]
    assert "Overdue" in row[: row.index("</tr>")]
    assert (
        AuditEvent.objects.filter(description="Follow-up overdue", object_id=str(follow_up.pk)).count() == 1
    )
