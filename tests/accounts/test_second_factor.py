"""Optional TOTP: enrolment, the code step after the password, and codes at sign-off."""

import time

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from medportal.audit.models import AuditEvent, Outcome
from tests.conftest import PASSWORD


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=0):06d}"


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.mark.django_db
def test_a_user_enrols_by_entering_the_code_from_the_shown_key(client, radiologist):
    client.force_login(radiologist)
    page = client.get(reverse("totp-enrol"))
    assert page.status_code == 200 and b'id="totp-secret"' in page.content
    device = TOTPDevice.objects.get(user=radiologist, confirmed=False)
    wrong = client.post(
        reverse("totp-enrol"), {"code": "000000" if current_code(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 400 and b"not right" in wrong.content
    device = TOTPDevice.objects.get(user=radiologist, confirmed=False)
    time.sleep(1.1)  # django-otp slows down guessing: no new try within a second of a wrong code
    assert client.post(reverse("totp-enrol"), {"code": current_code(device)}).status_code == 302
    assert TOTPDevice.objects.get(user=radiologist).confirmed
    assert AuditEvent.objects.filter(description="Second factor enrolled", username="rita").exists()


@pytest.mark.django_db
def test_an_enrolled_user_needs_a_code_after_the_password(client, radiologist):
    device = enrolled(radiologist)
    response = client.post(reverse("login"), {"username": "rita", "password": PASSWORD})
    assert response.status_code == 302
    worklist = client.get(reverse("worklist"))
    assert worklist.status_code == 302 and worklist["Location"].startswith(reverse("login-second-factor"))
    bad = client.post(reverse("login-second-factor"), {"code": "12345", "next": "/"})
    assert bad.status_code == 400
    assert AuditEvent.objects.filter(
        description="Second factor refused (login)", outcome=Outcome.MINOR_FAILURE
    ).exists()
    time.sleep(1.1)
    good = client.post(reverse("login-second-factor"), {"code": current_code(device), "next": "/"})
    assert good.status_code == 302, good.content.decode()[-1500:]
    assert good["Location"] == "/"
    assert client.get(reverse("worklist")).status_code == 200


@pytest.mark.django_db
def test_sign_off_asks_an_enrolled_radiologist_for_a_code(client, radiologist, settings):
    from medportal.imaging.ingest import IncomingFile
    from medportal.intake.receive import studies_receive
    from medportal.reporting.services import editing
    from tests.conftest import dicom_bytes

    settings.MEDPORTAL_AUTO_DRAFT = False
    _, reports = studies_receive(
        files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))], uploader=radiologist, auto_draft=False
    )
    report = editing.report_save(
        report=reports[0], user=radiologist, findings="Clear.", impression="Normal.", expected_version=0
    )
    device = enrolled(radiologist)
    with pytest.raises(editing.ReauthenticationFailed, match="authenticator"):
        editing.report_sign(report=report, user=radiologist, password=PASSWORD, otp_code="")
    signed = editing.report_sign(
        report=report, user=radiologist, password=PASSWORD, otp_code=current_code(device)
    )
    assert signed.status == "signed"
