"""Every route × every role: the outcome each role must get. A route without a rule here
fails the suite, so no new page, API endpoint or websocket goes out unprotected."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from medportal.accounts.roles import Role
from medportal.asgi import application
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance
from medportal.reporting.intake import studies_receive
from medportal.streaming.routing import websocket_urlpatterns
from tests.conftest import dicom_bytes, make_user, token_header

ANONYMOUS, OUTSIDER = "anonymous", "outsider"
PERSONAS = [ANONYMOUS, OUTSIDER, Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.AUDITOR, Role.ADMIN]
STAFF = {Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.ADMIN}
UPLOAD = STAFF
VIEW = STAFF
DRAFT = STAFF
EDIT = {Role.RADIOLOGIST}
SIGN = {Role.RADIOLOGIST}
AUDIT = {Role.AUDITOR, Role.ADMIN}
EVERYONE = set(PERSONAS)

# route name -> (method, who may, kind); kind "page" (session), "api" (token) or "public".
RULES: dict[str, tuple[str, set, str]] = {
    "login": ("GET", EVERYONE, "public"),
    "logout": ("POST", EVERYONE, "public"),
    "login-second-factor": ("GET", EVERYONE - {ANONYMOUS}, "page"),
    "totp-enrol": ("GET", EVERYONE - {ANONYMOUS}, "page"),
    "worklist": ("GET", VIEW, "page"),
    "upload": ("GET", UPLOAD, "page"),
    "sample-load": ("POST", UPLOAD, "page"),
    "study-detail": ("GET", VIEW, "page"),
    "study-indication": ("POST", DRAFT, "page"),
    "study-export-deidentified": ("GET", {Role.RADIOLOGIST, Role.ADMIN}, "page"),
    "instance-image": ("GET", VIEW, "page"),
    "instance-header": ("GET", VIEW, "page"),
    "report-panel": ("GET", VIEW, "page"),
    "report-draft": ("POST", DRAFT, "page"),
    "report-save": ("POST", EDIT, "page"),
    "report-sign": ("POST", SIGN, "page"),
    "report-claim": ("POST", EDIT, "page"),
    "report-release": ("POST", EDIT, "page"),
    "report-assign": ("POST", {Role.ADMIN}, "page"),
    "worklist-next": ("POST", EDIT, "page"),
    "audit-list": ("GET", AUDIT, "page"),
    "audit-export-csv": ("GET", AUDIT, "page"),
    "workers-status": ("GET", {Role.ADMIN}, "page"),
    "api-studies": ("POST", UPLOAD, "api"),
    "api-study": ("GET", VIEW, "api"),
    "api-report": ("GET", VIEW, "api"),
    "api-report-draft": ("POST", DRAFT, "api"),
    "api-report-sign": ("POST", SIGN, "api"),
    # DICOMweb: STOW-RS (POST on the studies routes) is for UPLOAD, the same roles as VIEW.
    **{
        name: ("GET", VIEW, "api")
        for name in [
            "dicomweb-studies",
            "dicomweb-all-series",
            "dicomweb-all-instances",
            "dicomweb-study",
            "dicomweb-study-metadata",
            "dicomweb-study-series",
            "dicomweb-study-instances",
            "dicomweb-series",
            "dicomweb-series-metadata",
            "dicomweb-series-instances",
            "dicomweb-instance",
            "dicomweb-instance-metadata",
            "dicomweb-instance-rendered",
            "dicomweb-frame-rendered",
        ]
    },
}
WEBSOCKET_RULES: dict[str, set] = {"ws-report": VIEW, "ws-worklist": VIEW}


def route_names(resolver: URLResolver | None = None) -> list[str]:
    names = []
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # Django's admin: staff only, checked below
            names += route_names(pattern)
        elif isinstance(pattern, URLPattern):
            assert pattern.name, f"route {pattern.pattern} has no name, so it cannot have an access rule"
            names.append(pattern.name)
    return names


def test_every_route_has_an_access_rule():
    missing = sorted(set(route_names()) - set(RULES))
    assert not missing, f"routes without an access rule in this matrix: {missing}"
    ws_missing = sorted({p.name for p in websocket_urlpatterns} - set(WEBSOCKET_RULES))
    assert not ws_missing, f"websocket routes without an access rule: {ws_missing}"


@pytest.fixture
def world(db):
    users = {role: make_user(f"user-{role.value}", role) for role in Role}
    users[OUTSIDER] = make_user("user-outsider")
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=users[Role.ADMIN],
        auto_draft=False,
    )
    report = reports[0]
    instance = Instance.objects.get(series__study=report.study)
    kwargs = {"study_id": report.study_id, "report_id": report.pk, "instance_id": instance.pk}
    # DICOMweb routes name things by their UIDs.
    kwargs |= {
        "study": report.study.study_uid,
        "series": instance.series.series_uid,
        "instance": instance.sop_instance_uid,
        "frame": 1,
    }
    return users, kwargs


def url_for(name: str, kwargs: dict) -> str:
    pattern = next(p for p in get_resolver().reverse_dict.getlist(name))
    needed = pattern[0][0][1]
    return reverse(name, kwargs={k: kwargs[k] for k in needed})


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_role_gets_the_expected_answer(name, world, client, settings):
    settings.MEDPORTAL_AUTO_DRAFT = False
    users, kwargs = world
    method, allowed, kind = RULES[name]
    url = url_for(name, kwargs)
    for persona in PERSONAS:
        client.logout()
        headers = {}
        if persona != ANONYMOUS:
            if kind == "api":
                headers = token_header(users[persona])
            else:
                client.force_login(users[persona])
        response = client.generic(method, url, **headers)
        denied = response.status_code in (401, 403) or (
            response.status_code == 302 and response["Location"].startswith(reverse("login"))
        )
        if kind == "public":
            assert response.status_code < 400, f"{persona} on public {name}: {response.status_code}"
        elif persona in allowed:
            assert not denied, f"{persona} should reach {method} {name}, got {response.status_code}"
        elif persona == ANONYMOUS:
            assert denied, f"anonymous should not reach {method} {name}, got {response.status_code}"
        else:
            assert response.status_code == 403, f"{persona} on {method} {name}: {response.status_code}"


def test_the_admin_site_is_for_staff_only(world, client):
    users, _ = world
    client.force_login(users[Role.RADIOLOGIST])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(WEBSOCKET_RULES))
async def test_each_role_gets_the_expected_answer_on_websockets(name, settings):
    settings.MEDPORTAL_AUTO_DRAFT = False

    def build():
        users = {role: make_user(f"ws-{role.value}", role) for role in Role}
        users[OUTSIDER] = make_user("ws-outsider")
        _, reports = studies_receive(
            files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))],
            uploader=users[Role.ADMIN],
            auto_draft=False,
        )
        return users, {p: token_header(u)["HTTP_AUTHORIZATION"] for p, u in users.items()}, reports[0]

    users, headers, report = await database_sync_to_async(build)()
    path = next(p for p in websocket_urlpatterns if p.name == name)
    url = "/" + str(path.pattern).replace("<int:report_id>", str(report.pk))
    for persona in PERSONAS:
        auth = [] if persona == ANONYMOUS else [(b"authorization", headers[persona].encode())]
        communicator = WebsocketCommunicator(application, url, headers=auth)
        connected, _ = await communicator.connect()
        assert connected == (persona in WEBSOCKET_RULES[name]), (persona, name)
        await communicator.disconnect()


# Routes that show no patient data and change none: nothing to audit.
NO_PATIENT_DATA = {"login", "logout", "upload", "login-second-factor", "totp-enrol"}


@pytest.mark.parametrize("name", sorted(set(RULES) - NO_PATIENT_DATA))
def test_every_route_that_touches_patient_data_writes_an_audit_event(name, world, client, settings):
    """A new route that forgets to audit fails here. (A request refused by form validation
    before any data is read, a 400, is the one answer allowed to leave no event.)"""
    from medportal.audit.models import AuditEvent

    settings.MEDPORTAL_AUTO_DRAFT = False
    users, kwargs = world
    method, allowed, kind = RULES[name]
    persona = next(p for p in PERSONAS if p in allowed and p not in (ANONYMOUS, OUTSIDER))
    headers = token_header(users[persona]) if kind == "api" else {}
    if kind != "api":
        client.force_login(users[persona])
    before = AuditEvent.objects.count()
    response = client.generic(method, url_for(name, kwargs), **headers)
    if response.status_code == 400:
        return
    assert AuditEvent.objects.count() > before, (
        f"{method} {name} ({response.status_code}) wrote no audit event"
    )
