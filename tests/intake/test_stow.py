"""STOW-RS: instances stored over DICOMweb go through the one ingest path and open reports.

The interoperability tests use the dicomweb-client package against a real server
(daphne); limits that need other settings use the Django test client in-process.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pydicom
import pytest
import requests
from django.urls import reverse
from pydicom.dataset import Dataset

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.imaging.models import Instance, Study, storage_name_for
from medportal.imaging.multipart import parts_read
from medportal.intake.stow import instances_store
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_bytes, dicom_path, token_header
from tests.dicomweb_server import encoded, multipart_body, multipart_parts

CT_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
CT_SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
CT_SOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
MR_STUDY = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
MR_SERIES = "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457"
MR_SOP = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
RT_PLAN_SOP = "1.2.777.777.77.7.7777.7777.20030903150023"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"

# Failure Reason (0008,1197) values, PS3.18 Table I.2-2.
CANNOT_UNDERSTAND, DOES_NOT_MATCH, OUT_OF_RESOURCES, SOP_CLASS_NOT_SUPPORTED = 0xC000, 0xA900, 0xA700, 0x0122


def dataset(name: str) -> Dataset:
    return pydicom.dcmread(dicom_path(name))


@pytest.fixture
def server(dicomweb_server, transactional_db):
    return dicomweb_server


def post(server, user, parts: list[bytes], path: str = "studies") -> requests.Response:
    body, content_type = multipart_body(parts)
    return server.session(user).post(server.url(path), data=body, headers={"Content-Type": content_type})


def failures(response_json: dict) -> list[tuple[str, int, str]]:
    response = Dataset.from_json(response_json)
    return [
        (str(item.ReferencedSOPInstanceUID or ""), item.FailureReason, item.ErrorComment)
        for item in response.get("FailedSOPSequence", [])
    ]


def stored(response_json: dict) -> list[tuple[str, str]]:
    response = Dataset.from_json(response_json)
    return [
        (item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
        for item in response.get("ReferencedSOPSequence", [])
    ]


# -- storing, and reading back ------------------------------------------------------------------


def test_stored_instances_are_found_and_come_back_byte_for_byte(server, technologist, radiologist):
    ct, mr = dataset("CT_small.dcm"), dataset("MR_small.dcm")

    response = server.client(technologist).store_instances([ct, mr])

    assert [
        (i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in response.ReferencedSOPSequence
    ] == [
        (CT_IMAGE, CT_SOP),
        (MR_IMAGE, MR_SOP),
    ]
    assert "FailedSOPSequence" not in response
    assert response.ReferencedSOPSequence[0].RetrieveURL.endswith(
        f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SOP}"
    )
    assert response.RetrieveURL == ""  # two studies: no single study to point at

    reader = server.client(radiologist)
    found = [Dataset.from_json(r) for r in reader.search_for_studies()]
    assert [(s.StudyInstanceUID, s.PatientID) for s in found] == [(CT_STUDY, "1CT1"), (MR_STUDY, "4MR1")]
    for sent, (study, series, sop) in [
        (ct, (CT_STUDY, CT_SERIES, CT_SOP)),
        (mr, (MR_STUDY, MR_SERIES, MR_SOP)),
    ]:
        back = server.session(radiologist).get(server.url(f"studies/{study}/series/{series}/instances/{sop}"))
        [(_, data)] = multipart_parts(back)
        assert data == bytes(128) + encoded(sent)[128:]  # the preamble is never kept
        retrieved = reader.retrieve_instance(study, series, sop)
        assert np.array_equal(retrieved.pixel_array, sent.pixel_array)
    # The blob in the image store is named by its hash.
    instance = Instance.objects.get(sop_instance_uid=CT_SOP)
    assert (server.image_store / storage_name_for(instance.sha256)).read_bytes()[:128] == bytes(128)


def test_a_stored_study_gets_its_report_and_draft_as_an_upload_does(server, technologist):
    server.client(technologist).store_instances([dataset("CT_small.dcm")])

    study = Study.objects.get()
    assert (study.study_uid, study.uploaded_by) == (CT_STUDY, technologist)
    report = Report.objects.get(study=study)
    assert report.status == ReportStatus.QUEUED  # the server drafts automatically
    assert Instance.objects.get().original_name == "STOW-RS part 1"


def test_storing_is_audited_as_a_transfer_and_an_import_per_study(server, technologist):
    server.client(technologist).store_instances([dataset("CT_small.dcm"), dataset("MR_small.dcm")])

    imports = AuditEvent.objects.filter(event_type=EventType.IMPORT, description="Instances received")
    assert sorted(e.study_uid for e in imports) == [CT_STUDY, MR_STUDY]
    assert all(e.detail["source"] == "dicomweb" for e in imports)
    transfers = AuditEvent.objects.filter(event_type=EventType.INSTANCES_STORED)
    assert [(e.event_type, e.study_uid, e.patient_id) for e in transfers] == [
        ("110104", CT_STUDY, "1CT1"),
        ("110104", MR_STUDY, "4MR1"),
    ]
    for event in transfers:
        assert (event.action, event.outcome, event.user) == (Action.CREATE, Outcome.SUCCESS, technologist)
        assert event.description == "Instances stored (STOW-RS)"
        assert event.detail == {"service": "STOW-RS", "instances": 1}


def test_storing_into_a_study_url_and_again_is_idempotent(server, technologist):
    client = server.client(technologist)
    first = client.store_instances([dataset("CT_small.dcm")], study_instance_uid=CT_STUDY)
    again = client.store_instances([dataset("CT_small.dcm")], study_instance_uid=CT_STUDY)

    assert first.RetrieveURL.endswith(f"/dicomweb/studies/{CT_STUDY}")
    assert [i.ReferencedSOPInstanceUID for i in again.ReferencedSOPSequence] == [CT_SOP]
    assert (Study.objects.count(), Instance.objects.count(), Report.objects.count()) == (1, 1, 1)


def test_a_large_request_sent_in_chunks_is_stored(server, technologist):
    """Above its chunk size the client streams the body with chunked transfer encoding."""
    client = server.client(technologist, chunk_size=4096)
    response = client.store_instances([dataset("CT_small.dcm"), dataset("MR_small.dcm")])
    assert len(response.ReferencedSOPSequence) == 2
    assert Instance.objects.count() == 2


# -- bad parts ------------------------------------------------------------------------------------


def test_bad_parts_are_listed_with_a_reason_and_only_good_ones_stored(server, technologist):
    response = post(
        server,
        technologist,
        [
            encoded(dataset("CT_small.dcm")),
            dicom_bytes("MR_truncated.dcm"),
            dicom_bytes("rtplan.dcm"),  # not an image: stored all the same, as a PACS would
            b"Patient has a cough.\n",
            dicom_bytes("CT_small.dcm")[:128] + b"XXXX" + dicom_bytes("CT_small.dcm")[132:],
        ],
    )

    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/dicom+json"
    assert stored(response.json()) == [(CT_IMAGE, CT_SOP), (RT_PLAN, RT_PLAN_SOP)]
    # Each failure carries ingest's own reason (as audited), cut to Error Comment's 64 characters.
    refused = AuditEvent.objects.filter(event_type=EventType.IMPORT, outcome=Outcome.MINOR_FAILURE)
    reasons = [event.detail["reason"] for event in refused]
    assert reasons == [
        "DICOM file is broken: the pixel data is cut short (8,130 of 8,192 bytes)",
        "not a DICOM Part-10 file (no DICM marker)",
        "not a DICOM Part-10 file (no DICM marker)",
    ]
    assert failures(response.json()) == [
        (MR_SOP, CANNOT_UNDERSTAND, reasons[0][:64]),
        ("", CANNOT_UNDERSTAND, reasons[1]),
        ("", CANNOT_UNDERSTAND, reasons[2]),
    ]
    # Nothing of the bad parts was stored: no rows, no blobs.
    assert sorted(Instance.objects.values_list("sop_instance_uid", flat=True)) == sorted(
        [CT_SOP, RT_PLAN_SOP]
    )
    assert not Instance.objects.get(sop_instance_uid=RT_PLAN_SOP).is_image
    blob = hashlib.sha256(bytes(128) + dicom_bytes("MR_truncated.dcm")[128:]).hexdigest()
    assert not (server.image_store / storage_name_for(blob)).exists()
    assert [(e.description, e.detail["name"], e.detail["source"]) for e in refused] == [
        ("File refused", f"STOW-RS part {n}", "dicomweb") for n in (2, 4, 5)
    ]


def test_when_nothing_can_be_stored_the_answer_is_409(server, technologist):
    response = post(server, technologist, [dicom_bytes("MR_truncated.dcm")])

    assert response.status_code == 409
    assert stored(response.json()) == []
    assert failures(response.json()) == [
        (
            MR_SOP,
            CANNOT_UNDERSTAND,
            "DICOM file is broken: the pixel data is cut short (8,130 of 8,192 bytes)"[:64],
        )
    ]
    assert not Study.objects.exists()


def test_instances_of_another_study_are_refused_at_a_study_url(server, technologist):
    client = server.client(technologist)
    with pytest.raises(requests.HTTPError) as raised:
        client.store_instances([dataset("MR_small.dcm")], study_instance_uid=CT_STUDY)
    assert raised.value.response.status_code == 409

    response = post(
        server,
        technologist,
        [encoded(dataset("CT_small.dcm")), encoded(dataset("MR_small.dcm"))],
        f"studies/{CT_STUDY}",
    )
    assert response.status_code == 202
    assert stored(response.json()) == [(CT_IMAGE, CT_SOP)]
    assert failures(response.json()) == [
        (MR_SOP, DOES_NOT_MATCH, f"the instance belongs to study {MR_STUDY}, not {CT_STUDY}"[:64])
    ]
    assert list(Study.objects.values_list("study_uid", flat=True)) == [CT_STUDY]


@pytest.mark.parametrize(
    ("content_type", "status", "error"),
    [
        (
            "application/dicom",
            415,
            'Send multipart/related; type="application/dicom" (one DICOM file per part).',
        ),
        (
            'multipart/related; type="application/dicom+json"; boundary=x',
            415,
            'Send multipart/related; type="application/dicom" (one DICOM file per part).',
        ),
        ('multipart/related; type="application/dicom"', 400, "The Content-Type has no boundary."),
        (
            'multipart/related; type="application/dicom"; boundary=elsewhere',
            400,
            "The body is not multipart/related: no part was found (the boundary never occurs)",
        ),
    ],
)
def test_a_body_that_is_not_multipart_dicom_is_refused(server, technologist, content_type, status, error):
    body, _ = multipart_body([encoded(dataset("CT_small.dcm"))])
    response = server.session(technologist).post(
        server.url("studies"), data=body, headers={"Content-Type": content_type}
    )
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert not Instance.objects.exists()


def test_an_empty_multipart_body_is_a_400(server, technologist):
    response = server.session(technologist).post(
        server.url("studies"),
        data=b"--b--\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert (response.status_code, response.json()) == (400, {"error": "The request holds no instances."})


def test_a_body_cut_inside_a_part_stores_the_parts_before_it(server, technologist):
    ct, mr = encoded(dataset("CT_small.dcm")), encoded(dataset("MR_small.dcm"))
    body, content_type = multipart_body([ct, mr])
    cut = body[: body.index(mr) + 1000]

    response = server.session(technologist).post(
        server.url("studies"), data=cut, headers={"Content-Type": content_type}
    )

    assert response.status_code == 202
    assert stored(response.json()) == [(CT_IMAGE, CT_SOP)]
    assert failures(response.json()) == [("", CANNOT_UNDERSTAND, "the request ended inside this part")]


# -- limits and who may store (through the Django test client, with other settings) ---------------


def stow(client, user, parts: list[bytes]):
    body, content_type = multipart_body(parts)
    return client.generic(
        "POST", reverse("dicomweb-studies"), body, content_type=content_type, **token_header(user)
    )


def test_a_part_over_the_size_limit_is_refused_unread(client, technologist, settings, image_store):
    ct, mr = dicom_bytes("CT_small.dcm"), dicom_bytes("MR_small.dcm")
    settings.MAX_UPLOAD_FILE_BYTES = len(mr)  # CT_small is larger

    response = stow(client, technologist, [ct, mr])

    assert response.status_code == 202
    assert stored(response.json()) == [(MR_IMAGE, MR_SOP)]
    assert failures(response.json()) == [
        ("", OUT_OF_RESOURCES, f"the file is {len(ct):,} bytes; the limit is {len(mr):,} bytes")
    ]
    refused = AuditEvent.objects.get(event_type=EventType.IMPORT, outcome=Outcome.MINOR_FAILURE)
    assert refused.detail["name"] == "STOW-RS part 1"


def test_parts_beyond_the_file_count_limit_are_refused(client, technologist, settings, image_store):
    settings.MAX_UPLOAD_FILES = 1

    response = stow(client, technologist, [dicom_bytes("CT_small.dcm"), dicom_bytes("MR_small.dcm")])

    assert response.status_code == 202
    assert failures(response.json()) == [("", OUT_OF_RESOURCES, "more than 1 instances in one request")]
    assert Instance.objects.count() == 1


def test_a_study_sent_in_several_batches_is_drafted_once_all_are_in(technologist, settings, image_store):
    settings.MEDPORTAL_AUTO_DRAFT = True
    second = dataset("CT_small.dcm")
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = f"{CT_SOP}.2"
    body, content_type = multipart_body([dicom_bytes("CT_small.dcm"), encoded(second)])

    outcome = instances_store(
        parts=parts_read(io.BytesIO(body), content_type.split("boundary=")[1], max_part_bytes=10**6),
        uploader=technologist,
        target_study=None,
        url=lambda **uids: "",
        request=None,
        batch_files=1,
    )

    assert (len(outcome.stored), outcome.failed) == (2, [])
    events = AuditEvent.objects.filter(description__in=["Instances received", "AI draft requested"])
    assert [e.description for e in events] == [
        "Instances received",
        "Instances received",
        "AI draft requested",
    ]
    assert Report.objects.get().status == ReportStatus.QUEUED


def test_without_a_token_nothing_is_stored(client, db, image_store):
    body, content_type = multipart_body([dicom_bytes("CT_small.dcm")])
    response = client.generic("POST", reverse("dicomweb-studies"), body, content_type=content_type)
    assert response.status_code == 401
    assert not Instance.objects.exists()


@pytest.mark.parametrize("persona", ["auditor", "outsider"])
def test_a_role_that_may_not_upload_stores_nothing(client, request, persona, image_store):
    response = stow(client, request.getfixturevalue(persona), [dicom_bytes("CT_small.dcm")])
    assert (response.status_code, response.json()) == (403, {"error": "Your role does not allow this."})
    assert not Instance.objects.exists()


def test_another_method_on_the_studies_url_is_405(client, technologist):
    response = client.delete(reverse("dicomweb-studies"), **token_header(technologist))
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
