"""Critical results, closed loop: marked with a category, told by phone with a read-back or
e-mailed as a link the clinician opens and confirms, escalated when nobody acknowledges in
time, carried by the signed report's page, HL7 ORU and FHIR; every step audited."""

from __future__ import annotations

import datetime
import json
import re

import hl7
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from medportal.audit.models import AuditEvent
from medportal.communication import critical as service
from medportal.communication.lifecycle import CommunicationError, CriticalStatus
from medportal.communication.models import CriticalResult, Delivery, Method
from medportal.exports.content import signed_report
from medportal.exports.fhir import report_fhir_json
from medportal.exports.pdf import report_pdf
from medportal.hl7.message import oru_r01
from medportal.reporting.freezing import signed_snapshot
from tests.exports.conftest import pdf_text, received_report, signed

CATEGORY = "ACR category 1: immediate (minutes)"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def report(radiologist, image_store):
    return received_report(radiologist)


@pytest.fixture
def rita(client, radiologist):
    client.force_login(radiologist)
    return client


def events(critical) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="critical_result", object_id=str(critical.pk)).values_list(
            "description", flat=True
        )
    )


def mark(client, report, finding="Tension pneumothorax, right.") -> CriticalResult:
    response = client.post(
        reverse("critical-mark", args=[report.pk]), {"category": CATEGORY, "finding": finding}, **HTMX
    )
    assert response.status_code == 200, response.content
    return CriticalResult.objects.filter(report=report).latest("id")


def test_a_radiologist_marks_tells_by_phone_and_records_the_read_back(rita, report, radiologist):
    critical = mark(rita, report)
    assert critical.status == CriticalStatus.AWAITING
    page = rita.get(reverse("study-detail", args=[report.study_id])).content.decode()
    assert "Tension pneumothorax, right." in page and "Not yet communicated." in page
    response = rita.post(
        reverse("critical-notify", args=[critical.pk]),
        {"recipient": "Dr Jones", "method": Method.PHONE},
        **HTMX,
    )
    assert "Not yet acknowledged." in response.content.decode()
    response = rita.post(reverse("critical-read-back", args=[critical.pk]), {"name": "Dr Jones"}, **HTMX)
    critical.refresh_from_db()
    assert (critical.status, critical.acknowledged_by, critical.acknowledgement) == (
        CriticalStatus.ACKNOWLEDGED,
        "Dr Jones",
        "read_back",
    )
    statement = service.critical_statement(critical)
    assert "Communicated to Dr Jones by phone by rita" in statement
    assert "Acknowledged by Dr Jones (read back to the radiologist)" in statement
    assert statement in response.content.decode()
    assert events(critical) == [
        "Critical result marked",
        "Critical result communicated",
        "Critical result acknowledged",
    ]


def test_what_cannot_be_done_is_refused_with_the_reason(rita, report, radiologist, technologist, client):
    response = rita.post(
        reverse("critical-mark", args=[report.pk]), {"category": "made up", "finding": "x"}, **HTMX
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    critical = mark(rita, report)
    with pytest.raises(CommunicationError, match="Nobody has been told"):
        service.critical_read_back(critical=critical, user=radiologist, name="Dr Jones")
    with pytest.raises(CommunicationError, match="phone call or in person"):
        service.critical_notify(
            critical=critical,
            user=radiologist,
            recipient="Dr J",
            method=Method.SECURE_MESSAGE,
            read_back=True,
        )
    client.force_login(technologist)
    assert (
        client.post(
            reverse("critical-mark", args=[report.pk]), {"category": CATEGORY, "finding": "x"}
        ).status_code
        == 403
    )


def test_medportal_emails_a_link_the_clinician_opens_and_confirms(
    rita, report, client, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_EMAIL_BACKEND = "file"  # e-mail is offered (the test's backend is Django's locmem)
    critical = mark(rita, report)
    with django_capture_on_commit_callbacks(execute=False):
        rita.post(
            reverse("critical-notify", args=[critical.pk]),
            {"recipient": "Dr Jones", "method": Method.EMAIL_LINK, "email": "jones@example.org"},
            **HTMX,
        )
    critical.refresh_from_db()
    assert (critical.status, critical.delivery) == (CriticalStatus.NOTIFIED, Delivery.PENDING)
    assert service.critical_email_deliver(critical_id=critical.pk) is None
    critical.refresh_from_db()
    assert critical.delivery == Delivery.SENT
    (message,) = mail.outbox
    assert message.to == ["jones@example.org"]
    link = re.search(r"http://testserver(/critical/ack/\S+/)", message.body).group(1)
    assert critical.link_nonce not in link.split(":")[-1]  # the signature, not the stored secret alone

    clinician = client.__class__()  # no login: the link is the key
    page = clinician.get(link)
    assert page.status_code == 200 and "Tension pneumothorax, right." in page.content.decode()
    critical.refresh_from_db()
    assert critical.status == CriticalStatus.NOTIFIED  # opening is not acknowledging
    done = clinician.post(link, {"name": "Dr A. Jones"})
    assert "Acknowledged by Dr A. Jones" in done.content.decode()
    critical.refresh_from_db()
    assert (critical.status, critical.acknowledgement) == (CriticalStatus.ACKNOWLEDGED, "link")
    assert events(critical)[-3:] == [
        "Critical result e-mail sent",
        "Critical result link opened",
        "Critical result acknowledged",
    ]
    forged = clinician.get(link[:-3] + "xx/")
    assert forged.status_code == 404 and "not valid" in forged.content.decode()
    assert AuditEvent.objects.filter(description="Critical result link refused").exists()


def test_an_unacknowledged_result_escalates_once_on_the_critical_results_page(
    rita, report, radiologist, settings
):
    settings.MEDPORTAL_CRITICAL_ESCALATE_MINUTES = 30
    late = mark(rita, report, "Free air under the diaphragm.")
    fresh = mark(rita, report, "Acute aortic dissection.")
    CriticalResult.objects.filter(pk=late.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=31)
    )
    page = rita.get(reverse("critical-list")).content.decode()
    late.refresh_from_db()
    fresh.refresh_from_db()
    assert late.escalated_at is not None and fresh.escalated_at is None
    waiting = page[page.index('id="critical-waiting"') : page.index('id="critical-done"')]
    assert waiting.index("Free air") < waiting.index("Acute aortic dissection")
    assert f'id="critical-row-{late.pk}"' in waiting and "Escalated" in waiting
    assert service.critical_escalate_overdue() == 0  # once only
    assert events(late).count("Critical result escalated: not acknowledged in time") == 1
    # Acknowledged, it leaves the waiting list.
    service.critical_notify(
        critical=late, user=radiologist, recipient="Dr Who", method=Method.PHONE, read_back=True
    )
    page = rita.get(reverse("critical-list")).content.decode()
    done = page[page.index('id="critical-done"') :]
    assert "Free air" in done


def test_the_signed_report_carries_the_flag_in_hl7_and_fhir_and_its_statement_in_the_pdf(
    radiologist, image_store
):
    # Marked and told before the sign-off: the signed report carries it.
    report = received_report(radiologist)
    critical = service.critical_mark(report=report, user=radiologist, category=CATEGORY, finding="Large PE.")
    service.critical_notify(
        critical=critical, user=radiologist, recipient="Dr Jones", method=Method.PHONE, read_back=True
    )
    report = signed(report, radiologist)
    message = hl7.parse(
        oru_r01(signed=signed_snapshot(report.pk), control_id="C1", created_at=timezone.now())
    )
    flags = {str(obx[8]) for obx in message.segments("OBX")}
    assert flags == {"AA"}
    notes = [message.unescape(str(nte[3])) for nte in message.segments("NTE")]
    assert any(n.startswith("Critical result, ACR category 1") and "Dr Jones" in n for n in notes)
    bundle = json.loads(report_fhir_json(signed_report(report)))
    (observation,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert observation["interpretation"][0]["coding"][0]["code"] == "AA"
    assert "Acknowledged by Dr Jones" in observation["note"][0]["text"]
    (diagnostic,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    assert diagnostic["result"][0]["reference"].endswith(observation["id"])
    text = " ".join(pdf_text(report_pdf(signed_report(report))).split())
    assert "Critical results" in text
    assert "Critical result, ACR category 1" in text and "Communicated to Dr Jones" in text


def test_a_result_told_after_the_sign_off_leaves_the_signed_outputs_as_they_were_signed(
    radiologist, image_store
):
    # Marked before the sign-off and told after it: the signed report keeps saying what it said
    # when signed ("Not yet communicated"); the telling is on the Critical results page.
    report = received_report(radiologist)
    critical = service.critical_mark(report=report, user=radiologist, category=CATEGORY, finding="Large PE.")
    report = signed(report, radiologist)

    def outputs() -> tuple[list[str], str, str]:
        message = hl7.parse(
            oru_r01(signed=signed_snapshot(report.pk), control_id="C1", created_at=timezone.now())
        )
        notes = [message.unescape(str(nte[3])) for nte in message.segments("NTE")]
        bundle = json.loads(report_fhir_json(signed_report(report)))
        (observation,) = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
        ]
        pdf = " ".join(pdf_text(report_pdf(signed_report(report))).split())
        return [n for n in notes if n.startswith("Critical result")], observation["note"][0]["text"], pdf

    hl7_before, fhir_before, pdf_before = outputs()
    assert hl7_before == [fhir_before]
    assert fhir_before.endswith("Not yet communicated.")
    assert "Not yet communicated" in pdf_before

    service.critical_notify(
        critical=critical, user=radiologist, recipient="Dr Jones", method=Method.PHONE, read_back=True
    )
    critical.refresh_from_db()
    assert critical.acknowledged_at is not None
    hl7_after, fhir_after, pdf_after = outputs()
    assert (hl7_after, fhir_after) == (hl7_before, fhir_before)
    assert "Not yet communicated" in pdf_after and "Dr Jones" not in pdf_after
    # The Critical results page shows the telling.
    assert "Communicated to Dr Jones" in service.critical_statement(critical)
