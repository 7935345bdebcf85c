"""Every route × every role: the outcome each role must get. A route without a rule here
fails the suite, so no new page, API endpoint or websocket goes out unprotected."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from medportal.access.roles import Role
from medportal.asgi import application
from medportal.communication.critical import critical_link_token
from medportal.communication.models import CriticalResult
from medportal.hl7.models import OutboundMessage
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance
from medportal.intake.receive import studies_receive
from medportal.reporting.models import ReportTemplate
from medportal.streaming.routing import websocket_urlpatterns
from tests.conftest import dicom_bytes, make_user, token_header

ANONYMOUS, OUTSIDER = "anonymous", "outsider"
PERSONAS = [ANONYMOUS, OUTSIDER, Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.AUDITOR, Role.ADMIN, Role.SERVICE]
STAFF = {Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.ADMIN}
UPLOAD = STAFF
VIEW = STAFF
DRAFT = STAFF
EDIT = {Role.RADIOLOGIST}
SIGN = {Role.RADIOLOGIST}
AUDIT = {Role.AUDITOR, Role.ADMIN}
# WADO-RS retrieve of the DICOM files: also the service accounts of workers on other hosts.
RETRIEVE = VIEW | {Role.SERVICE}
ADMIN = {Role.ADMIN}
# A signed report leaving MedPortal (downloads, Send to PACS): radiologists and admins, as for
# the de-identified export; technologists read reports on screen but do not send them out.
EXPORT = {Role.RADIOLOGIST, Role.ADMIN}
EVERYONE = set(PERSONAS)
# A service account never holds a session (its backend refuses it): on pages it is anonymous.
SESSIONLESS = {ANONYMOUS, Role.SERVICE}

# route name -> (method, who may, kind); kind "page" (session), "api" (token) or "public".
RULES: dict[str, tuple[str, set, str]] = {
    "login": ("GET", EVERYONE, "public"),
    "logout": ("POST", EVERYONE, "public"),
    "login-second-factor": ("GET", EVERYONE - SESSIONLESS, "page"),
    "totp-enrol": ("GET", EVERYONE - SESSIONLESS, "page"),
    "worklist": ("GET", VIEW, "page"),
    "upload": ("GET", UPLOAD, "page"),
    "sample-load": ("POST", UPLOAD, "page"),
    "study-detail": ("GET", VIEW, "page"),
    "study-indication": ("POST", DRAFT, "page"),
    "study-body-part": ("POST", DRAFT, "page"),
    "report-prior": ("POST", EDIT, "page"),
    "study-export-deidentified": ("GET", {Role.RADIOLOGIST, Role.ADMIN}, "page"),
    "instance-image": ("GET", VIEW, "page"),
    "instance-header": ("GET", VIEW, "page"),
    "report-panel": ("GET", VIEW, "page"),
    "report-draft": ("POST", DRAFT, "page"),
    "report-save": ("POST", EDIT, "page"),
    "report-sign": ("POST", SIGN, "page"),
    "report-addendum": ("POST", SIGN, "page"),
    "report-proofread-fix": ("POST", SIGN, "page"),
    "report-cancel": ("POST", {Role.RADIOLOGIST, Role.ADMIN}, "page"),
    "report-claim": ("POST", EDIT, "page"),
    "report-release": ("POST", EDIT, "page"),
    "report-assign": ("POST", {Role.ADMIN}, "page"),
    "report-export-pdf": ("GET", EXPORT, "page"),
    "report-export-fhir": ("GET", EXPORT, "page"),
    "report-export-sr": ("GET", EXPORT, "page"),
    "report-send-pacs": ("POST", EXPORT, "page"),
    "worklist-next": ("POST", EDIT, "page"),
    "template-list": ("GET", ADMIN, "page"),
    "template-create": ("POST", ADMIN, "page"),
    "template-import": ("POST", ADMIN, "page"),
    "template-edit": ("POST", ADMIN, "page"),
    "template-set-active": ("POST", ADMIN, "page"),
    "template-delete": ("POST", ADMIN, "page"),
    "audit-list": ("GET", AUDIT, "page"),
    "audit-export-csv": ("GET", AUDIT, "page"),
    "quality": ("GET", {Role.ADMIN}, "page"),
    "quality-export-csv": ("GET", {Role.ADMIN}, "page"),
    "hl7-outbox": ("GET", {Role.ADMIN}, "page"),
    "hl7-outbox-resend": ("POST", {Role.ADMIN}, "page"),
    "workers-status": ("GET", {Role.ADMIN}, "page"),
    "user-list": ("GET", ADMIN, "page"),
    "user-new": ("POST", ADMIN, "page"),
    "user-edit": ("POST", ADMIN, "page"),
    "user-active": ("POST", ADMIN, "page"),
    "user-password": ("POST", ADMIN, "page"),
    "communication-panel": ("GET", VIEW, "page"),
    "critical-mark": ("POST", EDIT, "page"),
    "critical-notify": ("POST", EDIT, "page"),
    "critical-read-back": ("POST", EDIT, "page"),
    "critical-list": ("GET", {Role.RADIOLOGIST, Role.ADMIN}, "page"),
    "followup-confirm": ("POST", EDIT, "page"),
    "followup-list": ("GET", {Role.RADIOLOGIST, Role.ADMIN}, "page"),
    # The clinician's acknowledgement link: no login, the signed link is the key.
    "critical-acknowledge": ("GET", EVERYONE, "public"),
    "api-studies": ("POST", UPLOAD, "api"),
    "api-study": ("GET", VIEW, "api"),
    "api-report": ("GET", VIEW, "api"),
    "api-report-draft": ("POST", DRAFT, "api"),
    "api-report-sign": ("POST", SIGN, "api"),
    "api-report-proofread": ("GET", SIGN, "api"),
    "api-report-fhir": ("GET", EXPORT, "api"),
    "api-report-pdf": ("GET", EXPORT, "api"),
    "api-report-sr": ("GET", EXPORT, "api"),
    # DICOMweb: STOW-RS (POST on the studies routes) is for UPLOAD, the same roles as VIEW.
    # WADO-RS retrieve of a study, series or instance is also for service accounts.
    **{name: ("GET", RETRIEVE, "api") for name in ["dicomweb-study", "dicomweb-series", "dicomweb-instance"]},
    **{
        name: ("GET", VIEW, "api")
        for name in [
            "dicomweb-studies",
            "dicomweb-all-series",
            "dicomweb-all-instances",
            "dicomweb-study-metadata",
            "dicomweb-study-series",
            "dicomweb-study-instances",
            "dicomweb-series-metadata",
            "dicomweb-series-instances",
            "dicomweb-instance-metadata",
            "dicomweb-instance-rendered",
            "dicomweb-frame-rendered",
            "dicomweb-frames",
            "dicomweb-pixel-data",
            "dicomweb-study-thumbnail",
            "dicomweb-series-thumbnail",
            "dicomweb-instance-thumbnail",
            "dicomweb-frame-thumbnail",
        ]
    },
    # The OHIF Viewer (its files, its configuration, its deep links): the roles that view studies.
    "viewer": ("GET", VIEW, "page"),
    "viewer-path": ("GET", VIEW, "page"),
    "viewer-config": ("GET", VIEW, "page"),
}
WEBSOCKET_RULES: dict[str, set] = {"ws-report": VIEW, "ws-worklist": VIEW, "ws-dictation": EDIT}


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
    template = ReportTemplate.objects.create(
        name="CT chest", modality="CT", body_part="CHEST", findings="Normal."
    )
    kwargs = {
        "study_id": report.study_id,
        "report_id": report.pk,
        "instance_id": instance.pk,
        "template_id": template.pk,
        # The Users page's routes name an account (an empty POST takes its roles away: audited).
        "user_id": make_user("user-managed", Role.TECHNOLOGIST).pk,
    }
    # An HL7 message that failed (the outbox's resend route names it).
    kwargs["message_id"] = OutboundMessage.objects.create(
        report=report, signed_at=timezone.now(), control_id="MATRIX1", payload="MSH|^~\\&\r", status="failed"
    ).pk
    critical = CriticalResult.objects.create(
        report=report,
        category="ACR category 1",
        finding="Matrix.",
        created_by=users[Role.RADIOLOGIST],
        link_nonce="matrix",
    )
    kwargs |= {"critical_id": critical.pk, "token": critical_link_token(critical)}
    # DICOMweb routes name things by their UIDs.
    kwargs |= {
        "study": report.study.study_uid,
        "series": instance.series.series_uid,
        "instance": instance.sop_instance_uid,
        "frame": 1,
        "frames": "1",
        "path": "viewer",
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
        elif persona == ANONYMOUS or (persona in SESSIONLESS and kind == "page"):
            assert denied, f"{persona} should not reach {method} {name}, got {response.status_code}"
        elif name == "worklist" and persona == Role.AUDITOR:
            # "/" is where login lands: the auditor is sent to the audit trail, not refused.
            assert (response.status_code, response["Location"]) == (302, reverse("audit-list"))
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


# Routes that show no patient data and change none: nothing to audit. (The template pages hold
# configuration, not patient data; each change to a template is audited, see tests/reporting/
# test_template_pages.py; so is each change to a user, see tests/accounts/test_user_pages.py.)
NO_PATIENT_DATA = {
    "login",
    "logout",
    "upload",
    "login-second-factor",
    "totp-enrol",
    "template-list",
    "user-list",
}
# The viewer's files and configuration hold no patient data; opening it on a study is audited
# (tests/imaging/test_dicomweb_viewer.py), and without a study it sends the user to the worklist.
NO_PATIENT_DATA |= {"viewer", "viewer-path", "viewer-config"}


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
