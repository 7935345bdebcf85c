"""`manage.py medportal_service_token`: a worker's account that may only retrieve instances by WADO-RS."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from medportal.access.roles import Role, roles_of
from medportal.audit.models import Action, AuditEvent, EventType
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance
from medportal.intake.receive import studies_receive
from tests.conftest import PASSWORD, dicom_bytes, make_user

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def issue(name: str, *args: str) -> str:
    out = StringIO()
    call_command("medportal_service_token", "--name", name, *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


@pytest.fixture
def instance(db, settings, tmp_path) -> Instance:
    images = settings.STORAGES["images"]
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {**images, "OPTIONS": {**images["OPTIONS"], "location": tmp_path / "images"}},
    }
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=make_user("uploader", Role.TECHNOLOGIST),
        auto_draft=False,
    )
    return Instance.objects.select_related("series__study").get(series__study=reports[0].study)


def retrieve_url(instance: Instance) -> str:
    series = instance.series
    return reverse(
        "dicomweb-instance", args=[series.study.study_uid, series.series_uid, instance.sop_instance_uid]
    )


def test_it_creates_a_service_account_without_password_and_prints_a_working_token(client, instance):
    key = issue("worker-gpu1")

    account = User.objects.get(username="worker-gpu1")
    assert roles_of(account) == {Role.SERVICE}
    assert not account.has_usable_password() and not account.is_staff and not account.is_superuser
    response = client.get(retrieve_url(instance), HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT=ACCEPT)
    assert response.status_code == 200
    assert dicom_bytes("CT_small.dcm")[132:200] in response.content
    issued = AuditEvent.objects.get(description="Service account token issued")
    assert issued.event_type == EventType.SECURITY_ALERT and issued.action == Action.CREATE
    assert issued.detail["account"] == "worker-gpu1" and issued.detail["account_created"] is True


def test_its_retrievals_are_audited_as_instance_access_by_the_service_account(client, instance):
    key = issue("worker-gpu1")

    client.get(retrieve_url(instance), HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT=ACCEPT)

    event = AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED).latest("id")
    assert event.username == "worker-gpu1" and event.role == "service"
    assert event.study_uid == instance.series.study.study_uid
    assert event.detail["sop_instance_uids"] == [instance.sop_instance_uid]


def test_the_token_reaches_nothing_but_wado_rs_retrieve(client, instance):
    key = issue("worker-gpu1")
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    study = instance.series.study

    refused = {
        "QIDO-RS search": client.get(reverse("dicomweb-studies"), **auth),
        "metadata": client.get(reverse("dicomweb-study-metadata", args=[study.study_uid]), **auth),
        "STOW-RS": client.post(reverse("dicomweb-studies"), b"", content_type="multipart/related", **auth),
        "the API's study": client.get(reverse("api-study", args=[study.pk]), **auth),
        "upload by API": client.post(reverse("api-studies"), {}, **auth),
        "sign by API": client.post(reverse("api-report-sign", args=[study.report.pk]), **auth),
    }

    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)


def test_a_service_account_cannot_log_in_even_when_given_a_password(client, db):
    issue("worker-gpu1")
    account = User.objects.get(username="worker-gpu1")
    account.set_password(PASSWORD)
    account.save()

    response = client.post(reverse("login"), {"username": "worker-gpu1", "password": PASSWORD})

    assert response.status_code == 200  # the form again, with its error
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("worklist")).status_code == 302


def test_running_it_again_adds_a_token_and_replace_revokes_the_earlier_ones(client, instance):
    first = issue("worker-gpu1")
    second = issue("worker-gpu1")
    url = retrieve_url(instance)

    assert client.get(url, HTTP_AUTHORIZATION=f"Token {first}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {second}").status_code == 200

    third = issue("worker-gpu1", "--replace")

    assert client.get(url, HTTP_AUTHORIZATION=f"Token {first}").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {second}").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {third}").status_code == 200
    assert User.objects.filter(username="worker-gpu1").count() == 1


def test_it_refuses_to_turn_a_person_into_a_service_account(db):
    person = make_user("rita", Role.RADIOLOGIST)

    with pytest.raises(CommandError, match="already exists and is not a service account"):
        issue("rita")

    person.refresh_from_db()
    assert roles_of(person) == {Role.RADIOLOGIST} and not person.api_tokens.exists()


def test_it_refuses_a_name_django_would_not_accept(db):
    with pytest.raises(CommandError, match="is not a valid account name"):
        issue("worker gpu/1")
    assert not User.objects.exists()
