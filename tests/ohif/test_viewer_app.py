"""The OHIF Viewer as MedPortal serves it under /viewer/: who gets it, its Content-Security-Policy,
its configuration, its files and deep links. (It draws a study in a real browser in
tests/e2e/test_ohif_browser.py.)"""

from __future__ import annotations

import gzip
import json
import re

import pytest
from django.template import Context, Template
from django.urls import reverse

from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from medportal.ohif.install import INTEGRITY, VERSION, installed_stamp
from medportal.ohif.links import viewer_url
from medportal.ohif.views import viewer_dist
from tests.conftest import dicom_bytes


@pytest.fixture
def dist():
    """The build bin/setup installed (python -m medportal.ohif.install)."""
    return viewer_dist()


@pytest.fixture
def study(db, technologist, settings) -> Study:
    settings.MEDPORTAL_AUTO_DRAFT = False
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=technologist,
        auto_draft=False,
    )
    return reports[0].study


def csp(response) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (d.split() for d in response["Content-Security-Policy"].split(";") if d.strip())
    }


def app_bundle(dist) -> str:
    return next(p.name for p in dist.glob("app.bundle.*.js") if not p.name.endswith(".gz"))


def test_the_installed_build_is_the_pinned_one_without_what_the_reading_room_does_not_use(dist):
    stamp = installed_stamp(dist)
    assert (stamp["version"], stamp["integrity"]) == (VERSION, INTEGRITY)
    for unused in [
        "ort",
        "dicom-microscopy-viewer",
        "sw.js",
        "init-service-worker.js",
        "google.js",
        "app-config.js",
    ]:
        assert not (dist / unused).exists(), unused
    assert not list(dist.rglob("*.map"))
    assert stamp["bytes_kept"] < 60e6 < stamp["bytes_in_package"]
    # Served under /viewer/: webpack's public path and the index's paths were moved there.
    bundle = (dist / app_bundle(dist)).read_text()
    assert '__webpack_require__.p = "/viewer/";' in bundle
    assert '__webpack_require__.p = "/";' not in bundle


@pytest.mark.parametrize("path", ["viewer/", "viewer/viewer?StudyInstanceUIDs=1.2.3", "viewer/app-config.js"])
def test_anonymous_visitors_are_sent_to_log_in(client, path, dist):
    response = client.get(f"/{path}")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_visitors_get_none_of_its_files(client, dist):
    response = client.get(f"/viewer/{app_bundle(dist)}")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_role_that_does_not_view_studies_is_refused(client, auditor, study, dist):
    client.force_login(auditor)
    assert client.get(viewer_url(study)).status_code == 403
    assert client.get(reverse("viewer-config")).status_code == 403


def test_a_deep_link_is_answered_by_the_apps_page_with_no_inline_script(client, radiologist, study, dist):
    client.force_login(radiologist)
    response = client.get(viewer_url(study))

    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    # app-config.js first (it sets what the build's inline scripts set), then the app; nothing inline.
    assert [(attrs.strip(), body) for attrs, body in scripts] == [
        ('src="/viewer/app-config.js"', ""),
        (f'defer src="/viewer/{app_bundle(dist)}"', ""),
    ]
    assert not re.search(r'(src|href)="/(?!viewer/)', html)
    assert response["Cache-Control"] == "private, no-cache"
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_the_viewers_policy_is_relaxed_only_as_far_as_ohif_needs(client, radiologist, study, dist):
    client.force_login(radiologist)
    policy = csp(client.get(viewer_url(study)))

    assert policy["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "blob:", "data:"]
    everything = " ".join(v for values in policy.values() for v in values)
    assert "'unsafe-eval'" not in everything and "http" not in everything and "*" not in everything
    assert "'unsafe-inline'" not in policy["script-src"]


def test_medportals_own_pages_keep_their_strict_policy(client, radiologist, study, dist):
    client.force_login(radiologist)
    for url in [reverse("worklist"), reverse("study-detail", args=[study.pk])]:
        response = client.get(url)
        policy = csp(response)
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "worker-src" not in policy
        assert response["X-Frame-Options"] == "DENY"


def test_the_viewer_without_a_study_is_the_worklist(client, radiologist, dist):
    client.force_login(radiologist)
    for url in ["/viewer/", "/viewer/viewer"]:
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, reverse("worklist"))


def test_the_configuration_names_only_medportals_own_dicomweb_and_no_token(client, radiologist, dist):
    client.force_login(radiologist)
    response = client.get(reverse("viewer-config"))

    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    script = response.content.decode()
    assert 'window.PUBLIC_URL = "/viewer/";' in script
    config = json.loads(re.search(r"window\.config = (\{.*?\n\});", script, flags=re.S).group(1))
    [source] = config["dataSources"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    roots = {source["configuration"][k] for k in ("qidoRoot", "wadoRoot", "wadoUriRoot")}
    assert roots == {"http://testserver/dicomweb"}
    assert config["defaultDataSourceName"] == source["sourceName"]
    assert (config["extensions"], config["modes"], config["showStudyList"]) == ([], [], False)
    assert set(re.findall(r"https?://[^/\"']+", script)) == {"http://testserver"}
    assert "Token" not in script and "Authorization" not in script
    assert "'unsafe-eval'" not in script and "eval(" not in script


def test_its_files_are_served_compressed_and_hashed_ones_kept_by_the_browser(client, radiologist, dist):
    client.force_login(radiologist)
    name = app_bundle(dist)
    plain = client.get(f"/viewer/{name}")
    packed = client.get(f"/viewer/{name}", HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert plain["Content-Type"] == "text/javascript; charset=utf-8" or plain["Content-Type"].startswith(
        "application/javascript"
    )
    assert plain.content == (dist / name).read_bytes()
    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert plain["Cache-Control"] == "private, max-age=31536000, immutable"
    assert "Accept-Encoding" in plain["Vary"]
    wasm = next(p.name for p in dist.glob("*.wasm"))
    assert client.get(f"/viewer/{wasm}")["Content-Type"] == "application/wasm"


@pytest.mark.parametrize(
    "path", ["/viewer/no-such.bundle.js", "/viewer/%2e%2e/pyproject.toml", "/viewer/.medportal-ohif.json"]
)
def test_what_is_not_a_file_of_the_build_is_not_served(client, radiologist, dist, path):
    client.force_login(radiologist)
    assert client.get(path).status_code == 404


def test_a_server_without_the_build_says_how_to_install_it(client, radiologist, settings, tmp_path):
    settings.MEDPORTAL_OHIF_DIR = tmp_path
    client.force_login(radiologist)
    response = client.get("/viewer/viewer?StudyInstanceUIDs=1.2.3")
    assert response.status_code == 503
    assert "run bin/setup" in response.content.decode()


def test_the_study_page_can_link_or_frame_the_viewer_on_a_study(study):
    url = viewer_url(study)
    assert url == f"/viewer/viewer?StudyInstanceUIDs={study.study_uid}"
    assert Template("{% load ohif %}{{ study|viewer_url }}").render(Context({"study": study})) == url.replace(
        "&", "&amp;"
    )
