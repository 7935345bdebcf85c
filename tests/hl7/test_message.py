"""What the ORU^R01 says, read back with an independent parser (the ``hl7`` package), and ACKs."""

from __future__ import annotations

import json

import hl7
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from medportal.access.roles import Role
from medportal.hl7.message import escape, parse_ack
from medportal.hl7.models import MessageStatus, OutboundMessage
from medportal.hl7.services import message_queue
from medportal.reporting.services import drafts, editing
from medportal.reporting.services.drafts import DraftProvenance
from tests.conftest import PASSWORD, make_user
from tests.hl7.conftest import new_study, sign, written_report

PROVENANCE = DraftProvenance(
    model_id="google/medgemma-4b-it",
    model_revision="rev-42",
    prompt="Describe the chest CT.\nFINDINGS then IMPRESSION.",
    generation_params={"max_new_tokens": 64, "do_sample": False},
    preprocessing={"size": [896, 896]},
)
HOSTILE = "a|b^c~d\\e&f\r\nsecond line\rthird\nMSH|^~\\&|EVIL\x0b\x1c\r\x1c\x7fend ünï"


@pytest.fixture
def hl7_on(settings):
    settings.MEDPORTAL_HL7_HOST = "127.0.0.1"
    settings.MEDPORTAL_HL7_SENDING_APPLICATION = "MEDPORTAL"
    settings.MEDPORTAL_HL7_SENDING_FACILITY = "RADIOLOGY"
    settings.MEDPORTAL_HL7_RECEIVING_APPLICATION = "EPIC"
    settings.MEDPORTAL_HL7_MRN_AUTHORITY = "HOSP"
    return settings


def doctor(username: str = "rita", first: str = "Rita", last: str = "Hayworth") -> User:
    user = make_user(username, Role.RADIOLOGIST)
    user.first_name, user.last_name = first, last
    user.save()
    return user


def ai_drafted_report(user, text: str):
    report = drafts.report_for_study(study=new_study())
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    drafts.draft_finish(claim=claim, text=text, provenance=PROVENANCE)
    report.refresh_from_db()
    return report


def field(message: hl7.Message, name: str, number: int) -> str:
    return message.unescape(str(message.segment(name)[number]))


@pytest.mark.django_db
def test_a_signed_report_is_an_oru_r01_with_status_f_its_sections_and_the_ai_provenance(hl7_on):
    rita = doctor()
    report = ai_drafted_report(rita, "FINDINGS: Clear lungs.\nNo effusion.\nIMPRESSION: Normal chest.")
    report = sign(report, rita)

    stored = message_queue(report_id=report.pk, addendum_id=None)
    message = hl7.parse(stored.payload)

    assert [str(s[0]) for s in message] == ["MSH", "PID", "PV1", "ORC", "OBR", "NTE", "NTE", "OBX", "OBX"]
    msh = message.segment("MSH")
    assert str(msh[1]) == "|" and str(msh[2]) == "^~\\&"
    assert [str(msh[n]) for n in (3, 4, 5, 9, 10, 11, 12)] == [
        "MEDPORTAL", "RADIOLOGY", "EPIC", "ORU^R01^ORU_R01", stored.control_id, "P", "2.5.1",
    ]  # fmt: skip
    pid = message.segment("PID")
    assert str(pid[3]) == "MRN-7^^^HOSP^MR"
    assert str(pid[5]) == "Doe^Jane" and str(pid[7]) == "19700131" and str(pid[8]) == "F"
    obr = message.segment("OBR")
    assert str(obr[3]) == "ACC-7^MEDPORTAL" and str(message.segment("ORC")[3]) == "ACC-7^MEDPORTAL"
    assert str(obr[4]) == "^CT CHEST" and field(message, "OBR", 13) == "Cough for 3 weeks."
    assert str(obr[25]) == "F"
    assert str(obr[32]).startswith("rita&Hayworth&Rita^")  # the signer, and when they signed
    findings, impression = message.segments("OBX")
    assert str(findings[2]) == "FT" and str(findings[3]) == "59776-5^Procedure findings^LN"
    assert message.unescape(str(findings[5])) == "Clear lungs.\rNo effusion."  # \.br\ read back
    assert str(impression[3]).startswith("19005-8^")
    assert message.unescape(str(impression[5])) == "Normal chest."
    assert str(findings[11]) == str(impression[11]) == "F"
    assert str(findings[16]) == "rita^Hayworth^Rita"
    line, full = (message.unescape(str(nte[3])) for nte in message.segments("NTE"))
    assert "AI-assisted: the draft was written by google/medgemma-4b-it (revision rev-42)" in line
    assert "signed by Rita Hayworth" in line
    provenance = json.loads(full.removeprefix("AI provenance: ").replace("\r", "\n"))
    assert provenance["model_revision"] == "rev-42" and provenance["prompt"] == PROVENANCE.prompt


@pytest.mark.django_db
def test_an_addendum_is_a_correction_with_status_c_carrying_the_report_and_its_addenda(hl7_on):
    rita, ravi = doctor(), doctor("ravi", "Ravi", "Shankar")
    report = sign(written_report(rita, findings="Nodule 4 mm.", impression="Follow up."), rita)
    first = editing.addendum_sign(report=report, user=rita, text="Left lower lobe.", password=PASSWORD)
    second = editing.addendum_sign(report=report, user=ravi, text="Compared: stable.", password=PASSWORD)

    final = hl7.parse(message_queue(report_id=report.pk, addendum_id=None).payload)
    correction = hl7.parse(message_queue(report_id=report.pk, addendum_id=second.pk).payload)
    earlier = hl7.parse(message_queue(report_id=report.pk, addendum_id=first.pk).payload)

    assert str(final.segment("OBR")[25]) == "F" and len(final.segments("OBX")) == 2  # no addenda
    assert str(correction.segment("OBR")[25]) == "C"
    assert str(correction.segment("OBR")[32]).startswith("ravi&Shankar&Ravi^")  # the addendum's signer
    texts = [correction.unescape(str(obx[5])) for obx in correction.segments("OBX")]
    assert texts == [
        "Nodule 4 mm.",
        "Follow up.",
        "Addendum 1: Left lower lobe.",
        "Addendum 2: Compared: stable.",
    ]
    assert {str(obx[11]) for obx in correction.segments("OBX")} == {"C"}
    assert [str(obx[3]) for obx in correction.segments("OBX")][2:] == ["55107-7^Addendum^LN"] * 2
    assert [str(obx[4]) for obx in correction.segments("OBX")] == ["1", "1", "1", "2"]
    assert len(earlier.segments("OBX")) == 3  # the report and its first addendum only
    # One message per signature, each with its own control id.
    assert message_queue(report_id=report.pk, addendum_id=second.pk).control_id == str(
        correction.segment("MSH")[10]
    )
    assert OutboundMessage.objects.filter(report=report).count() == 3
    assert len(set(OutboundMessage.objects.values_list("control_id", flat=True))) == 3


@pytest.mark.django_db
def test_hostile_text_cannot_break_out_of_its_field(hl7_on):
    rita = doctor("rita", first="R|ta^", last="Hay&worth~")
    study = new_study(
        name="O'Brien|X^Ann&Marie~Jo\\Q", mrn="M|1^2", accession="A&1~\\", description="CT ^chest|\r\nMSH"
    )
    study.indication = HOSTILE
    study.save()
    report = sign(written_report(rita, findings=HOSTILE, impression="IMP " + HOSTILE, study=study), rita)
    addendum = editing.addendum_sign(report=report, user=rita, text="ADD " + HOSTILE, password=PASSWORD)

    payload = message_queue(report_id=report.pk, addendum_id=addendum.pk).payload
    assert "\x0b" not in payload and "\x1c" not in payload and "\n" not in payload and "\x7f" not in payload
    message = hl7.parse(payload)
    names = [str(s[0]) for s in message]
    assert names == ["MSH", "PID", "PV1", "ORC", "OBR", "NTE", "OBX", "OBX", "OBX"]  # no segment injected
    assert len(message.segment("MSH")) == 19 and str(message.segment("MSH")[9]) == "ORU^R01^ORU_R01"

    expected = HOSTILE.replace("\r\n", "\r").replace("\n", "\r")
    texts = [message.unescape(str(obx[5])) for obx in message.segments("OBX")]
    assert texts == [expected, "IMP " + expected, "Addendum 1: ADD " + expected]
    for obx in message.segments("OBX"):
        assert len(obx) == 17 and not set("|^~&\r") & set(str(obx[5]))  # one field, one component
        assert str(obx[11]) == "C"
    pid = message.segment("PID")
    assert message.unescape(str(pid[3][0][0])) == "M|1^2" and str(pid[3][0][4]) == "MR"
    family, given = (message.unescape(str(pid[5][0][n])) for n in (0, 1))
    assert (family, given) == ("O'Brien|X", "Ann&Marie~Jo\\Q")
    obr = message.segment("OBR")
    assert message.unescape(str(obr[3][0][0])) == "A&1~\\"
    assert message.unescape(str(obr[4])) == "^CT ^chest| MSH"
    assert str(obr[25]) == "C"
    interpreter = str(obr[32][0][0]).split("&")
    assert [message.unescape(part) for part in interpreter] == ["rita", "Hay&worth~", "R|ta^"]
    assert message.unescape(str(obr[13])).startswith("a|b^c~d\\e&f second line third MSH|^~\\&|EVIL")


def test_escaping_turns_every_delimiter_and_control_character_into_an_escape_sequence():
    assert escape("|^~\\&") == "\\F\\\\S\\\\R\\\\E\\\\T\\"
    assert escape("a\r\nb\rc\nd", line_breaks=True) == "a\\.br\\b\\.br\\c\\.br\\d"
    assert escape("a\r\nb") == "a b"
    assert escape("\x0b\x1c\x00\x7f\t") == "\\X0B\\\\X1C\\\\X00\\\\X7F\\\t"


def test_an_ack_is_read_with_its_code_and_the_receiver_s_reason():
    header = b"MSH|^~\\&|EHR|H|MP|R|20260101||ACK|A1|P|2.5.1\r"
    v251 = header + b"MSA|AE|X1\rERR|||204^Unknown key^HL70357|E||||Patient \\T\\ MRN \\F\\ unknown\r"
    ack = parse_ack(v251)
    assert (ack.code, ack.control_id, ack.rejected) == ("AE", "X1", True)
    assert ack.reason() == "204 Unknown key Patient & MRN | unknown"
    v24 = header.replace(b"2.5.1", b"2.4") + b"MSA|AR|X2|Rejected\rERR|PID^1^3^101&Required field missing\r"
    assert parse_ack(v24).reason() == "Rejected; 101 Required field missing"
    assert parse_ack(header + b"MSA|AA|X3\r").accepted
    with pytest.raises(ValueError):
        parse_ack(b"HTTP/1.1 400 Bad Request\r\n\r\n")


@pytest.mark.django_db
def test_nothing_is_queued_when_hl7_is_not_configured_and_the_outbox_says_so(
    settings, client, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_HL7_HOST = ""
    rita, admin = doctor(), make_user("ada", superuser=True)
    report = written_report(rita, findings="Clear.", impression="Normal.")
    with django_capture_on_commit_callbacks(execute=True):
        sign(report, rita)  # report_signed reaches the HL7 receiver
    assert not OutboundMessage.objects.exists()

    client.force_login(admin)
    page = client.get(reverse("hl7-outbox")).content.decode()
    assert "HL7 is not configured: no messages are queued" in page and "No messages." in page

    settings.MEDPORTAL_HL7_HOST = "127.0.0.1"
    report = written_report(rita, findings="Clear.", impression="Normal.", study=new_study(accession="B"))
    report = sign(report, rita)
    stored = message_queue(report_id=report.pk, addendum_id=None)
    assert stored.status == MessageStatus.PENDING
    page = client.get(reverse("hl7-outbox")).content.decode()
    assert "127.0.0.1:2575" in page and stored.control_id in page and "not configured" not in page
