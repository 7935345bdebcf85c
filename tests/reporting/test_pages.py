"""The upload page, the sample study and the study page, through the Django test client."""

import io
import re

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance, Study
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_bytes

CT_STUDY_UID = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
HTMX = {"HTTP_HX_REQUEST": "true"}


pytestmark = pytest.mark.usefixtures("image_store")


@pytest.fixture
def tom(client, technologist):
    client.force_login(technologist)
    return client


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((48, 48)).save(out, format="PNG")
    return out.getvalue()


def text_of(response) -> str:
    return response.content.decode()


# -- the upload page ---------------------------------------------------------------------------


def test_the_upload_page_shows_the_form_and_a_progress_bar(tom):
    response = tom.get(reverse("upload"))

    assert response.status_code == 200
    page = text_of(response)
    assert "<h1>Upload a study</h1>" in page
    assert 'id="upload-form"' in page
    assert 'enctype="multipart/form-data"' in page
    assert f'hx-post="{reverse("upload")}"' in page
    assert '<input type="file" name="files"' in page
    assert "multiple" in page
    assert 'name="indication"' in page
    assert 'name="image_modality"' in page
    assert '<progress id="upload-progress" value="0" max="100" hidden></progress>' in page
    assert "Load a sample study" in page
    assert f'action="{reverse("sample-load")}"' in page
    assert "Limit per file: 512.0\xa0MB" in page


def test_htmx_upload_of_a_good_and_a_bad_file_lists_the_study_and_the_reason(tom):
    response = tom.post(
        reverse("upload"),
        {
            "files": [
                upload("CT_small.dcm", dicom_bytes("CT_small.dcm"), "application/dicom"),
                upload("notes.txt", b"Cough for three weeks.\n", "text/plain"),
            ],
            "indication": "Cough for three weeks.",
            "image_modality": "DX",
        },
        **HTMX,
    )

    assert response.status_code == 200
    fragment = text_of(response)
    assert "<html" not in fragment  # the outcome partial only
    study = Study.objects.get()
    assert study.study_uid == CT_STUDY_UID
    assert study.indication == "Cough for three weeks."
    assert f'href="{reverse("study-detail", args=[study.pk])}"' in fragment
    assert "Stored 1 image." in fragment
    assert "1 file refused; nothing of it was stored" in fragment
    assert "<strong>notes.txt</strong>: not a DICOM Part-10 file, PNG or JPEG" in fragment
    assert Report.objects.get().study == study


def test_an_empty_file_in_an_upload_is_refused_by_name_and_the_others_are_stored(tom):
    response = tom.post(
        reverse("upload"),
        {"files": [upload("ct.dcm", dicom_bytes("CT_small.dcm")), upload("empty.dcm", b"")]},
        **HTMX,
    )

    assert response.status_code == 200
    fragment = text_of(response)
    assert "<strong>empty.dcm</strong>: the file is empty" in fragment
    assert "Stored 1 image." in fragment
    assert Study.objects.get().study_uid == CT_STUDY_UID
    refused = AuditEvent.objects.get(event_type=EventType.IMPORT, outcome=Outcome.MINOR_FAILURE)
    assert refused.detail["name"] == "empty.dcm"


def test_htmx_upload_of_only_a_bad_file_is_400_with_the_reason(tom, image_store):
    response = tom.post(
        reverse("upload"),
        {"files": [upload("MR_truncated.dcm", dicom_bytes("MR_truncated.dcm"))]},
        **HTMX,
    )

    assert response.status_code == 400
    fragment = text_of(response)
    assert "<strong>MR_truncated.dcm</strong>: DICOM file is broken: the pixel data is cut short" in fragment
    assert "Stored" not in fragment
    assert not Study.objects.exists()
    assert not image_store.exists() or not any(p.is_file() for p in image_store.rglob("*"))
    event = AuditEvent.objects.get(event_type=EventType.IMPORT)
    assert event.outcome == Outcome.MINOR_FAILURE


def test_htmx_upload_of_the_same_study_again_says_it_was_already_here(tom):
    data = dicom_bytes("CT_small.dcm")
    tom.post(reverse("upload"), {"files": [upload("ct.dcm", data)]}, **HTMX)

    response = tom.post(reverse("upload"), {"files": [upload("ct.dcm", data)]}, **HTMX)

    assert response.status_code == 200
    assert "Stored 0 images (1 already here)." in text_of(response)
    assert Study.objects.count() == Instance.objects.count() == Report.objects.count() == 1


def test_a_png_is_uploaded_with_the_chosen_modality(tom):
    response = tom.post(
        reverse("upload"),
        {
            "files": [upload("chest.png", png_bytes(), "image/png")],
            "image_modality": "CR",
            "body_part": "chest",
            "patient_name": "Ada Lovelace",
        },
    )

    study = Study.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("study-detail", args=[study.pk])
    assert study.modality == "CR"
    assert Instance.objects.get().content_type == Instance.PNG


def test_a_plain_upload_of_good_files_goes_to_the_study_page(tom):
    response = tom.post(reverse("upload"), {"files": [upload("ct.dcm", dicom_bytes("CT_small.dcm"))]})

    study = Study.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("study-detail", args=[study.pk])


def test_a_plain_upload_with_a_bad_file_stays_on_the_page_and_shows_the_reason(tom):
    response = tom.post(
        reverse("upload"),
        {"files": [upload("ct.dcm", dicom_bytes("CT_small.dcm")), upload("notes.txt", b"hello")]},
    )

    assert response.status_code == 200
    page = text_of(response)
    assert "<h1>Upload a study</h1>" in page
    assert "<strong>notes.txt</strong>: not a DICOM Part-10 file, PNG or JPEG" in page
    assert f'href="{reverse("study-detail", args=[Study.objects.get().pk])}"' in page


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
@pytest.mark.parametrize("data", [{"indication": "Cough"}, {}], ids=["no-files", "empty-post"])
def test_posting_no_files_is_a_clear_400(tom, headers, data):
    response = tom.post(reverse("upload"), data, **headers)

    assert response.status_code == 400
    assert "<li>Choose at least one file to upload.</li>" in text_of(response)
    assert not Study.objects.exists()


def test_an_oversize_file_is_refused_on_the_page(tom, settings):
    settings.MAX_UPLOAD_FILE_BYTES = 1000
    response = tom.post(reverse("upload"), {"files": [upload("ct.dcm", dicom_bytes("CT_small.dcm"))]}, **HTMX)

    assert response.status_code == 400
    assert "the limit is 1,000 bytes" in text_of(response)
    assert not Study.objects.exists()


def test_a_user_without_a_role_cannot_upload(client, outsider):
    client.force_login(outsider)
    response = client.post(reverse("upload"), {"files": [upload("ct.dcm", dicom_bytes("CT_small.dcm"))]})
    assert response.status_code == 403
    assert not Study.objects.exists()


# -- the sample study --------------------------------------------------------------------------


def test_loading_the_sample_creates_the_ct_study_and_opens_it(tom):
    response = tom.post(reverse("sample-load"))

    study = Study.objects.get()
    assert study.study_uid == CT_STUDY_UID
    assert Instance.objects.get().original_name == "CT_small.dcm"
    assert response.status_code == 302
    assert response["Location"] == reverse("study-detail", args=[study.pk])
    page = text_of(tom.get(response["Location"]))
    assert "Sample study loaded from the DICOM files that ship with pydicom." in page
    assert "CompressedSamples CT1" in page
    event = AuditEvent.objects.filter(event_type=EventType.IMPORT).last()
    assert (event.description, event.detail["source"]) == ("Instances received", "sample")


def test_loading_the_sample_twice_opens_the_same_study_and_says_so(tom):
    first = tom.post(reverse("sample-load"), follow=True)
    second = tom.post(reverse("sample-load"), follow=True)
    assert first.redirect_chain == second.redirect_chain
    assert Study.objects.count() == 1
    assert "Sample study loaded" in first.content.decode()
    page = second.content.decode()
    assert "The sample study was already here" in page and "Sample study loaded" not in page


def test_the_sample_is_loaded_by_post_only(tom):
    assert tom.get(reverse("sample-load")).status_code == 405
    assert not Study.objects.exists()


# -- the study page ----------------------------------------------------------------------------


def second_slice_of_the_ct() -> bytes:
    """CT_small as another instance (slice 2) of the same series."""
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 2
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def two_slice_study(technologist) -> Study:
    _, [report] = studies_receive(
        files=[
            IncomingFile("slice1.dcm", dicom_bytes("CT_small.dcm")),
            IncomingFile("slice2.dcm", second_slice_of_the_ct()),
        ],
        uploader=technologist,
        indication="Fall from a ladder; headache. <b>urgent</b>",
    )
    return report.study


def test_the_study_page_is_a_reading_room_with_the_viewer_on_this_study(tom, two_slice_study):
    study = two_slice_study
    response = tom.get(reverse("study-detail", args=[study.pk]))

    assert response.status_code == 200
    page = text_of(response)
    # The images are the OHIF Viewer's, opened on this study in the page; none drawn by the server.
    viewer = f"/viewer/viewer?StudyInstanceUIDs={study.study_uid}"
    assert re.search(rf'<iframe id="viewer-frame" name="viewer-frame" src="{re.escape(viewer)}"', page)
    assert "<img " not in page
    assert 'id="viewer-image"' not in page and "viewer.js" not in page
    # The study in one line.
    header = page[page.index('id="study-header"') : page.index('class="study-layout"')]
    for fact in ("CompressedSamples CT1", "MRN</span> 1CT1", ">CT<", "2004-01-19"):
        assert fact in header
    assert "Fall from a ladder; headache. &lt;b&gt;urgent&lt;/b&gt;" in page
    assert "<b>urgent</b>" not in page
    assert ReportStatus.RECEIVED.label in page
    event = AuditEvent.objects.filter(event_type=EventType.PATIENT_RECORD, description="Study viewed").get()
    assert (event.study_uid, event.username) == (study.study_uid, "tom")


def test_the_reading_room_offers_the_patients_other_studies_beside_this_one(
    tom, technologist, two_slice_study
):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.StudyDate, ds.StudyDescription = "20020101", "Old head CT"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    studies_receive(files=[IncomingFile("prior.dcm", out.getvalue())], uploader=technologist)
    stranger = pydicom.dcmread(io.BytesIO(out.getvalue()))
    stranger.PatientID, stranger.StudyInstanceUID = "SOMEONE-ELSE", generate_uid()
    stranger.SOPInstanceUID = generate_uid()
    out = io.BytesIO()
    stranger.save_as(out, enforce_file_format=True)
    studies_receive(files=[IncomingFile("stranger.dcm", out.getvalue())], uploader=technologist)

    page = text_of(tom.get(reverse("study-detail", args=[two_slice_study.pk])))

    # Side by side: both studies and OHIF's hanging protocol for two.
    both = f"StudyInstanceUIDs={two_slice_study.study_uid}%2C{ds.StudyInstanceUID}"
    both += "&amp;hangingProtocolId=%40ohif%2FhpCompare"
    link = f'<a class="viewer-prior" href="/viewer/viewer?{both}" target="viewer-frame">'
    assert f"{link}2002-01-01 CT Old head CT</a>" in page
    assert page.count('class="viewer-prior"') == 1
    assert stranger.StudyInstanceUID not in page


def test_the_study_page_warns_that_the_tiny_models_text_is_meaningless(tom, settings, two_slice_study):
    settings.MEDPORTAL_MODEL = "tiny"
    page = text_of(tom.get(reverse("study-detail", args=[two_slice_study.pk])))
    assert 'id="test-model-banner"' in page
    assert "Their text is meaningless." in page


def test_no_warning_banner_with_the_real_model(tom, settings, two_slice_study):
    settings.MEDPORTAL_MODEL = "google/medgemma-4b-it"
    page = text_of(tom.get(reverse("study-detail", args=[two_slice_study.pk])))
    assert 'id="test-model-banner"' not in page
    assert "meaningless" not in page


def test_the_study_page_needs_a_viewing_role(client, auditor, two_slice_study):
    client.force_login(auditor)
    assert client.get(reverse("study-detail", args=[two_slice_study.pk])).status_code == 403


# -- landing, refusals, the page's frame ------------------------------------------------------


def test_an_auditor_lands_on_the_audit_trail_not_on_a_refusal(client, auditor):
    client.force_login(auditor)
    response = client.get(reverse("worklist"), follow=True)
    assert response.redirect_chain == [(reverse("audit-list"), 302)]
    assert response.status_code == 200


def test_a_refusal_is_a_styled_page_that_leads_home(client, technologist, outsider):
    client.force_login(technologist)
    response = client.get(reverse("audit-list"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "medportal.css" in page and "Not allowed" in page
    assert f'href="{reverse("worklist")}"' in page and "Go to your start page" in page
    client.force_login(outsider)
    response = client.get(reverse("worklist"))
    assert response.status_code == 403
    assert "Your account has no role yet" in response.content.decode()


def test_the_worklist_shows_no_template_comment_and_pages_have_a_favicon(tom):
    page = tom.get(reverse("worklist")).content.decode()
    assert "{#" not in page and "#}" not in page
    assert 'rel="icon"' in page and "favicon.svg" in page
