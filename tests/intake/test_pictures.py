"""A PNG or JPEG has no header: the upload page and the API ask what it would say."""

from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from medportal.imaging.ingest import GENERATED_MRN_PREFIX
from medportal.imaging.models import Instance, Patient, Series, Study
from tests.conftest import token_header

DETAILS = {"image_modality": "DX", "body_part": "left knee", "patient_name": "Ada  Lovelace"}


def picture(fmt: str = "PNG") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((40, 30)).save(out, format=fmt)
    return SimpleUploadedFile(f"knee.{fmt.lower()}", out.getvalue())


def test_the_page_asks_modality_body_part_and_name_of_a_picture_and_stores_nothing_without(
    client, technologist, image_store
):
    client.force_login(technologist)
    response = client.post(reverse("upload"), {"files": [picture()]})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "image_modality": ["Choose the modality of the picture."],
        "body_part": ["Say which body part the picture shows."],
        "patient_name": ["Give the patient's name."],
    }
    assert not Study.objects.exists()
    page = client.get(reverse("upload")).content.decode()
    assert '<datalist id="body-parts">' in page and '<option value="TIBIA">' in page


def test_pictures_of_one_upload_are_one_study_of_their_patient_with_a_marked_mrn(
    client, technologist, image_store
):
    client.force_login(technologist)
    response = client.post(reverse("upload"), {"files": [picture("PNG"), picture("JPEG")], **DETAILS})

    study = Study.objects.select_related("patient").get()
    assert response.status_code == 302
    assert (study.modality, study.body_part, study.accession_number) == ("DX", "LEFT KNEE", "")
    assert study.description == "Radiograph (DX) of left knee (png)"
    assert study.patient.name == "Ada Lovelace"
    assert study.patient.patient_id.startswith(GENERATED_MRN_PREFIX)
    assert Series.objects.get().body_part == "LEFT KNEE"
    assert sorted(Instance.objects.values_list("instance_number", flat=True)) == [1, 2]


def test_the_api_takes_the_mrn_and_accession_given_and_refuses_another_patients_mrn(
    client, technologist, image_store
):
    headers = token_header(technologist)
    fields = {"modality": "CR", "body_part": "CHEST", "patient_name": "Ada Lovelace", "mrn": "MRN-1"}

    first = client.post(
        reverse("api-studies"), {"files": [picture()], **fields, "accession_number": "ACC-9"}, **headers
    )
    wrong = client.post(
        reverse("api-studies"), {"files": [picture()], **fields, "patient_name": "Bob"}, **headers
    )
    missing = client.post(reverse("api-studies"), {"files": [picture()], "modality": "CR"}, **headers)

    assert first.status_code == 201, first.content
    study = Study.objects.select_related("patient").get()
    assert (study.patient.patient_id, study.accession_number, study.body_part) == ("MRN-1", "ACC-9", "CHEST")
    assert wrong.status_code == 400
    assert wrong.json()["rejected"][0]["reason"] == (
        "MRN MRN-1 belongs to Ada Lovelace, not Bob: check the MRN and the name"
    )
    assert missing.status_code == 400
    assert set(missing.json()["fields"]) == {"body_part", "patient_name"}
    assert Study.objects.count() == Patient.objects.count() == 1
