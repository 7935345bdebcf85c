"""A NUL character or a lone surrogate in a request is a 400 that says so, never a 500, and
nothing is stored: in the API's JSON bodies, in DICOMweb paths and in query strings."""

from __future__ import annotations

import pytest
from django.urls import reverse

from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report
from tests.conftest import dicom_bytes, token_header


@pytest.fixture
def report(radiologist, settings):
    settings.MEDPORTAL_AUTO_DRAFT = False
    _, reports = studies_receive(
        files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))], uploader=radiologist, auto_draft=False
    )
    return reports[0]


@pytest.fixture
def api(client):
    client.raise_request_exception = False  # a 500 must show as a 500 here, not as an exception
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "findings, named",
    [
        ("Clear\\u0000 lungs.", "a NUL character (\\u0000)"),
        ("Clear\\ud800 lungs.", "a lone surrogate (\\ud800)"),
        ("Clear\\udfff", "a lone surrogate (\\udfff)"),
    ],
)
def test_a_report_edit_holding_unstorable_text_is_refused_and_nothing_is_saved(
    api, radiologist, report, findings, named
):
    before = Report.objects.get(pk=report.pk)
    body = f'{{"findings": "{findings}", "impression": "Normal.", "version": {report.version}}}'
    response = api.put(
        reverse("api-report", args=[report.pk]),
        data=body,
        content_type="application/json",
        **token_header(radiologist),
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(f'The request cannot be stored: "findings" contains {named}')
    after = Report.objects.get(pk=report.pk)
    assert (after.version, after.findings, after.impression) == (
        before.version,
        before.findings,
        before.impression,
    )


@pytest.mark.django_db
def test_unstorable_text_in_a_key_or_a_nested_value_is_refused_too(api, radiologist, report):
    url = reverse("api-report-sign", args=[report.pk])
    key = api.post(
        url, data='{"pass\\u0000word": "x"}', content_type="application/json", **token_header(radiologist)
    )
    assert key.status_code == 400 and "a key in the body contains a NUL" in key.json()["error"]
    nested = api.post(
        url,
        data='{"password": "x", "otp": ["\\ud83d"]}',
        content_type="application/json",
        **token_header(radiologist),
    )
    assert nested.status_code == 400 and '"otp" contains a lone surrogate' in nested.json()["error"]
    assert Report.objects.get(pk=report.pk).status == report.status


@pytest.mark.django_db
def test_a_surrogate_pair_is_a_character_and_is_saved(api, radiologist, report):
    """Escaped as a pair, U+1F600 is one character: only a lone half is refused."""
    body = f'{{"findings": "Smile \\ud83d\\ude00", "impression": "", "version": {report.version}}}'
    response = api.put(
        reverse("api-report", args=[report.pk]),
        data=body,
        content_type="application/json",
        **token_header(radiologist),
    )
    assert response.status_code == 200, response.content
    assert Report.objects.get(pk=report.pk).findings == "Smile \U0001f600"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/dicomweb/studies/1.2.3%00/series",
        "/dicomweb/studies/1.2%003",
        "/dicomweb/studies/1.2.3/series/4%00/instances",
        "/dicomweb/studies?PatientID=%00",
        "/dicomweb/studies?Patient%00ID=1",
    ],
)
def test_a_nul_in_a_dicomweb_path_or_query_is_a_400_with_the_reason(api, radiologist, path):
    response = api.get(path, **token_header(radiologist))
    assert response.status_code == 400
    assert "NUL character (%00)" in response.json()["error"]


@pytest.mark.django_db
def test_a_nul_in_a_page_address_is_a_400_with_the_reason(api, radiologist):
    api.force_login(radiologist)
    response = api.get("/?q=ab%00c")
    assert response.status_code == 400
    assert response.content.decode() == "The query contains a NUL character (%00); no search value holds one."
