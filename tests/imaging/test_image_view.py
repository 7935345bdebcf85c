"""GET /instances/<id>/image.png: the image as a viewer shows it, for permitted roles, audited."""

import io

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.imaging.ingest import IncomingFile, study_ingest
from medportal.imaging.models import Instance
from medportal.imaging.pixels import display_array
from tests.conftest import dicom_bytes, dicom_path

pytestmark = pytest.mark.usefixtures("image_store")


def stored_instance(user, name: str, data: bytes, **kwargs) -> Instance:
    study_ingest(files=[IncomingFile(name, data)], uploader=user, **kwargs)
    return Instance.objects.get(original_name=name)


@pytest.fixture
def ct_instance(technologist) -> Instance:
    return stored_instance(technologist, "CT_small.dcm", dicom_bytes("CT_small.dcm"))


def image_url(instance: Instance) -> str:
    return reverse("instance-image", args=[instance.pk])


def views_of(instance: Instance):
    return AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED, object_id=str(instance.pk))


@pytest.mark.parametrize("persona", ["technologist", "radiologist"])
def test_a_permitted_role_gets_the_image_as_png(client, request, ct_instance, persona):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(image_url(ct_instance))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-cache"  # every look comes back, and is audited
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    assert (image.size, image.mode) == ((128, 128), "L")
    # The pixels are the CT as the viewer shows it by default.
    expected = display_array(pydicom.dcmread(dicom_path("CT_small.dcm")))
    assert np.array_equal(np.asarray(image), expected)


def test_viewing_an_image_is_audited(client, radiologist, ct_instance):
    client.force_login(radiologist)
    client.get(image_url(ct_instance), REMOTE_ADDR="10.1.2.3")

    event = views_of(ct_instance).get()
    assert event.event_type == "110103"
    assert (event.action, event.outcome, event.description) == (Action.READ, Outcome.SUCCESS, "Image viewed")
    assert (event.user, event.username, event.role) == (radiologist, "rita", "radiologist")
    assert event.network_address == "10.1.2.3"
    study = ct_instance.series.study
    assert (event.patient_id, event.study_uid) == ("1CT1", study.study_uid)
    assert (event.object_type, event.detail) == ("instance", {"frame": 0})


def test_a_matching_etag_answers_304_without_the_image(client, technologist, ct_instance):
    client.force_login(technologist)
    first = client.get(image_url(ct_instance))
    etag = first["ETag"]
    assert etag

    again = client.get(image_url(ct_instance), HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert views_of(ct_instance).count() == 2  # each look is recorded


def test_a_stale_etag_gets_the_image(client, technologist, ct_instance):
    client.force_login(technologist)
    response = client.get(image_url(ct_instance), HTTP_IF_NONE_MATCH='"0123456789abcdef-0"')
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"


def test_different_images_have_different_etags(client, technologist, ct_instance):
    mr = stored_instance(technologist, "MR_small.dcm", dicom_bytes("MR_small.dcm"))
    client.force_login(technologist)
    assert client.get(image_url(ct_instance))["ETag"] != client.get(image_url(mr))["ETag"]


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "JPEG2000.dcm"])
def test_compressed_dicom_is_shown_too(client, technologist, name):
    instance = stored_instance(technologist, name, dicom_bytes(name))
    client.force_login(technologist)

    response = client.get(image_url(instance))

    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (instance.columns, instance.rows)


def test_a_stored_png_is_shown_as_png(client, technologist):
    out = io.BytesIO()
    Image.linear_gradient("L").resize((32, 20)).save(out, format="PNG")
    instance = stored_instance(technologist, "cxr.png", out.getvalue(), image_modality="CR")
    client.force_login(technologist)

    response = client.get(image_url(instance))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (32, 20)
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(out)))


def test_a_frame_that_does_not_exist_is_404(client, technologist, ct_instance):
    client.force_login(technologist)
    assert client.get(image_url(ct_instance), {"frame": 1}).status_code == 404
    assert client.get(image_url(ct_instance), {"frame": "x"}).status_code == 404
    assert not views_of(ct_instance).exists()


def test_an_instance_that_does_not_exist_is_404(client, technologist):
    client.force_login(technologist)
    assert client.get(reverse("instance-image", args=[999999])).status_code == 404


@pytest.mark.parametrize("persona", ["outsider", "auditor"])
def test_a_user_without_a_viewing_role_is_refused(client, request, ct_instance, persona):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(image_url(ct_instance))

    assert response.status_code == 403
    assert response.get("Content-Type") != "image/png"
    assert not views_of(ct_instance).exists()


def test_an_anonymous_visitor_is_sent_to_log_in(client, ct_instance):
    response = client.get(image_url(ct_instance))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={image_url(ct_instance)}"
    assert not views_of(ct_instance).exists()
