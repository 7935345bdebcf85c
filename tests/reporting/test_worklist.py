"""The worklist page: columns, filters, search, sort, pages; claim, release, assign, next study."""

from __future__ import annotations

import datetime
import io
import itertools
import threading
from html.parser import HTMLParser

import pydicom
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.models import Patient, Priority, Study
from medportal.reporting import selectors
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.selectors import WORKLIST_PAGE_SIZE
from tests.conftest import dicom_bytes, make_user, token_header

HTMX = {"HTTP_HX_REQUEST": "true"}
HEADINGS = [
    "Priority",
    "Patient",
    "MRN",
    "Accession",
    "Modality",
    "Body part",
    "Study date",
    "Received",
    "AI draft",
    "Report",
    "Radiologist",
    "Actions",
]
MRN_COLUMN = HEADINGS.index("MRN")


pytestmark = pytest.mark.usefixtures("image_store")


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", Role.ADMIN)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rita(radiologist) -> Client:
    return logged_in(radiologist)


# -- what the page shows ---------------------------------------------------------------------


class _Worklist(HTMLParser):
    """The worklist table as text: headings, then one list of cell texts per row."""

    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self._in_table = self._in_row = False
        self._cell: list[str] | None = None
        self._in_option = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "worklist" in (attrs.get("class") or ""):
            self._in_table = True
        elif self._in_table and tag == "tr":
            self._in_row = True
            self._current: list[str] = []
        elif self._in_row and tag in ("td", "th"):
            self._cell = []
        elif tag == "option":
            self._in_option = True  # the assign list is not a cell's visible text

    def handle_endtag(self, tag):
        if tag == "option":
            self._in_option = False
        elif tag == "table":
            self._in_table = False
        elif self._in_row and tag in ("td", "th") and self._cell is not None:
            self._current.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._in_row and tag == "tr":
            self._in_row = False
            if self.headings:
                self.rows.append(self._current)
            else:
                self.headings = self._current

    def handle_data(self, data):
        if self._cell is not None and not self._in_option:
            self._cell.append(data)


def worklist_of(response) -> _Worklist:
    parser = _Worklist()
    parser.feed(response.content.decode())
    return parser


def mrns(response) -> list[str]:
    """The MRN column of the rows shown, top to bottom (empty when no study is listed)."""
    rows = worklist_of(response).rows
    return [row[MRN_COLUMN] for row in rows if len(row) > 1]


def page(client: Client, **params) -> object:
    response = client.get(reverse("worklist"), params)
    assert response.status_code == 200
    return response


# -- studies -----------------------------------------------------------------------------------

_numbers = itertools.count(1)
T0 = datetime.datetime(2026, 1, 10, 9, 0, tzinfo=datetime.UTC)


def add_study(
    *,
    mrn: str | None = None,
    name: str = "Doe Jane",
    accession: str | None = None,
    modality: str = "CT",
    body_part: str = "CHEST",
    study_date: datetime.date | None = None,
    priority: Priority = Priority.ROUTINE,
    received: datetime.datetime | None = None,
    status: ReportStatus = ReportStatus.RECEIVED,
    assigned_to: User | None = None,
    model_id: str = "",
    attempt: int = 0,
) -> Study:
    n = next(_numbers)
    patient, _ = Patient.objects.get_or_create(patient_id=mrn or f"MRN-{n}", defaults={"name": name})
    study = Study.objects.create(
        study_uid=f"1.2.826.0.1.3680043.10.{n}",
        patient=patient,
        accession_number=accession if accession is not None else f"ACC-{n}",
        modality=modality,
        body_part=body_part,
        study_date=study_date,
        priority=priority,
    )
    # received_at is set on insert (auto_now_add); tests need chosen times.
    Study.objects.filter(pk=study.pk).update(received_at=received or T0 + datetime.timedelta(minutes=n))
    Report.objects.create(
        study=study, status=status, assigned_to=assigned_to, model_id=model_id, attempt=attempt
    )
    return Study.objects.get(pk=study.pk)


@pytest.fixture
def three_studies(radiologist, second_radiologist) -> dict[str, Study]:
    """Values chosen so that every column sorts the three differently from received order."""
    return {
        "B": add_study(
            mrn="MRN-B",
            name="Carter Ann",
            accession="ACC-3",
            modality="MR",
            body_part="HEAD",
            study_date=datetime.date(2026, 1, 2),
            priority=Priority.STAT,
            received=datetime.datetime(2026, 1, 10, 10, 0, tzinfo=datetime.UTC),
            status=ReportStatus.DRAFTED,
            model_id="tiny",
            attempt=1,
            assigned_to=second_radiologist,
        ),
        "C": add_study(
            mrn="MRN-C",
            name="Adams Bob",
            accession="ACC-1",
            modality="CT",
            body_part="ABDOMEN",
            study_date=datetime.date(2026, 1, 3),
            priority=Priority.ROUTINE,
            received=datetime.datetime(2026, 1, 9, 9, 0, tzinfo=datetime.UTC),
            status=ReportStatus.RECEIVED,
        ),
        "A": add_study(
            mrn="MRN-A",
            name="Baker Cy",
            accession="ACC-2",
            modality="DX",
            body_part="CHEST",
            study_date=datetime.date(2026, 1, 1),
            priority=Priority.URGENT,
            received=datetime.datetime(2026, 1, 11, 11, 0, tzinfo=datetime.UTC),
            status=ReportStatus.SIGNED,
            assigned_to=radiologist,
        ),
    }


# -- columns -----------------------------------------------------------------------------------


def test_the_worklist_shows_every_column_of_each_study(rita, three_studies):
    table = worklist_of(page(rita))

    # STAT first by default (the reading order), and the heading says so.
    assert table.headings == [h if h != "Priority" else "Priority ▲" for h in HEADINGS]
    assert table.rows[0][:11] == [
        "STAT",
        "Carter Ann",
        "MRN-B",
        "ACC-3",
        "MR",
        "HEAD",
        "2026-01-02",
        "2026-01-10 10:00",
        "Ready",
        "Drafted",
        "ravi",
    ]
    assert table.rows[1][:11] == [
        "Urgent",
        "Baker Cy",
        "MRN-A",
        "ACC-2",
        "DX",
        "CHEST",
        "2026-01-01",
        "2026-01-11 11:00",
        "Not requested",
        "Signed",
        "rita",
    ]
    assert table.rows[2][0] == "Routine" and table.rows[2][8:11] == ["Not requested", "Awaiting draft", "—"]


def test_a_hostile_name_or_accession_is_shown_as_text_never_as_markup(rita, db):
    name, accession = '<img src=x onerror="alert(1)">', 'A"><script>alert(2)</script>'
    add_study(name=name, accession=accession, status=ReportStatus.DRAFTED)
    response = page(rita)
    body = response.content.decode()
    assert "<img src=x" not in body and "<script>alert(2)" not in body
    (row,) = worklist_of(response).rows
    assert row[1] == name and row[3] == accession  # the text itself, escaped in the HTML


def test_each_patient_links_to_the_study_page(rita, three_studies):
    body = page(rita).content.decode()
    for study in three_studies.values():
        assert f'<a href="{reverse("study-detail", args=[study.pk])}">{study.patient.name}</a>' in body


@pytest.mark.parametrize(
    ("status", "attempt", "model_id", "shown"),
    [
        (ReportStatus.RECEIVED, 0, "", "Not requested"),
        (ReportStatus.QUEUED, 1, "", "Queued"),
        (ReportStatus.DRAFTING, 1, "", "Drafting"),
        (ReportStatus.DRAFTED, 1, "tiny", "Ready"),
        (ReportStatus.FAILED, 1, "", "Failed"),
        (ReportStatus.DRAFTED, 1, "", "Failed"),  # the draft failed; the text was written by hand
    ],
)
def test_the_ai_draft_column_says_where_the_draft_is(rita, status, attempt, model_id, shown):
    add_study(status=status, attempt=attempt, model_id=model_id)
    row = worklist_of(page(rita)).rows[0]
    assert row[HEADINGS.index("AI draft")] == shown
    assert row[HEADINGS.index("Report")] == status.label


def test_viewing_the_worklist_is_audited_with_its_query(rita, three_studies):
    page(rita, status="open", q="MRN-C")
    event = AuditEvent.objects.filter(description="Worklist viewed").last()
    assert (event.event_type, event.username, event.outcome) == (EventType.QUERY, "rita", Outcome.SUCCESS)
    assert event.detail == {"status": "open", "q": "MRN-C", "sort": "priority", "page": "1"}


# -- filters, search and sort ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({}, ["MRN-B", "MRN-A", "MRN-C"]),  # STAT, urgent, routine
        ({"status": "drafted"}, ["MRN-B"]),
        ({"status": "signed"}, ["MRN-A"]),
        ({"status": "open"}, ["MRN-B", "MRN-C"]),
        ({"modality": "DX"}, ["MRN-A"]),
        ({"priority": "stat"}, ["MRN-B"]),
        ({"priority": "urgent"}, ["MRN-A"]),
        ({"priority": "routine"}, ["MRN-C"]),
        ({"mine": "1"}, ["MRN-A"]),
        ({"date_from": "2026-01-10", "date_to": "2026-01-10"}, ["MRN-B"]),
        ({"date_from": "2026-01-10"}, ["MRN-B", "MRN-A"]),
        ({"date_to": "2026-01-09"}, ["MRN-C"]),
        ({"status": "open", "modality": "CT"}, ["MRN-C"]),
    ],
    ids=lambda value: "&".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_each_filter_shows_only_the_matching_studies(rita, three_studies, params, shown):
    assert mrns(page(rita, **params)) == shown


def test_mine_is_what_the_logged_in_radiologist_holds(three_studies, second_radiologist):
    assert mrns(page(logged_in(second_radiologist), mine="1")) == ["MRN-B"]


@pytest.mark.parametrize(
    ("q", "shown"),
    [
        ("MRN-C", ["MRN-C"]),  # MRN
        ("ACC-2", ["MRN-A"]),  # accession
        ("carter", ["MRN-B"]),  # any part of the name, any case
        ("ADAMS BOB", ["MRN-C"]),
        ("  MRN-C  ", ["MRN-C"]),
    ],
)
def test_search_finds_by_name_mrn_or_accession(rita, three_studies, q, shown):
    assert mrns(page(rita, q=q)) == shown


def test_a_search_matching_very_many_patients_still_finds_every_study(rita, monkeypatch):
    # Past the limit the patients are not looked up first; the answer must not change.
    monkeypatch.setattr(selectors, "SEARCH_PATIENT_LIMIT", 2)
    for n in range(4):
        add_study(mrn=f"COMMON-{n}", name=f"Common Name {n}")
    add_study(mrn="OTHER", name="Someone Else")
    # All routine: the oldest first.
    assert mrns(page(rita, q="common")) == ["COMMON-0", "COMMON-1", "COMMON-2", "COMMON-3"]


def test_a_search_without_matches_says_so(rita, three_studies):
    response = page(rita, q="Nobody")
    assert mrns(response) == []
    assert "No studies match these filters." in response.content.decode()


def test_an_empty_worklist_invites_an_upload(rita):
    assert "No studies yet. Upload one, or load the sample study." in page(rita).content.decode()


@pytest.mark.parametrize(
    ("sort", "ascending"),
    [
        ("priority", ["MRN-B", "MRN-A", "MRN-C"]),  # STAT, urgent, routine
        ("patient", ["MRN-C", "MRN-A", "MRN-B"]),
        ("mrn", ["MRN-A", "MRN-B", "MRN-C"]),
        ("accession", ["MRN-C", "MRN-A", "MRN-B"]),
        ("modality", ["MRN-C", "MRN-A", "MRN-B"]),
        ("body_part", ["MRN-C", "MRN-A", "MRN-B"]),
        ("study_date", ["MRN-A", "MRN-B", "MRN-C"]),
        ("received", ["MRN-C", "MRN-B", "MRN-A"]),
        ("status", ["MRN-B", "MRN-C", "MRN-A"]),
        ("ai_draft", ["MRN-B", "MRN-C", "MRN-A"]),
    ],
)
def test_each_column_sorts_both_ways(rita, three_studies, sort, ascending):
    assert mrns(page(rita, sort=sort)) == ascending
    assert mrns(page(rita, sort=f"-{sort}")) == ascending[::-1]


def test_sorting_by_radiologist_puts_unassigned_studies_last_both_ways(rita, three_studies):
    assert mrns(page(rita, sort="assigned")) == ["MRN-B", "MRN-A", "MRN-C"]  # ravi, rita, nobody
    assert mrns(page(rita, sort="-assigned")) == ["MRN-A", "MRN-B", "MRN-C"]


def test_priority_sort_puts_stat_first_then_the_oldest(rita):
    add_study(mrn="late-stat", priority=Priority.STAT, received=T0 + datetime.timedelta(hours=2))
    add_study(mrn="routine", priority=Priority.ROUTINE, received=T0 - datetime.timedelta(days=3))
    add_study(mrn="early-stat", priority=Priority.STAT, received=T0)
    add_study(mrn="urgent", priority=Priority.URGENT, received=T0 + datetime.timedelta(hours=5))
    assert mrns(page(rita, sort="priority")) == ["early-stat", "late-stat", "urgent", "routine"]


def test_the_column_headings_link_to_their_sort_and_keep_the_filters(rita, three_studies):
    table_html = page(rita, status="open", sort="patient").content.decode()
    # Sorted by patient ascending now: its heading reverses it; another heading sorts by itself.
    assert 'href="?status=open&amp;sort=-patient"' in table_html
    assert 'href="?status=open&amp;sort=mrn"' in table_html
    assert 'aria-sort="ascending"><a href="?status=open&amp;sort=-patient"' in table_html
    assert f'hx-get="{reverse("worklist")}?status=open&amp;sort=mrn"' in table_html


def test_a_bad_filter_value_is_reported_and_the_rest_apply(rita, three_studies):
    response = page(rita, date_from="yesterday", modality="DX")
    assert mrns(response) == ["MRN-A"]
    assert "Received from: Enter a valid date. (ignored)" in response.content.decode()


# -- pages -------------------------------------------------------------------------------------


def test_the_worklist_is_paged_and_the_links_keep_the_filters(rita):
    for n in range(WORKLIST_PAGE_SIZE * 2 + 10):
        add_study(mrn=f"P{n:03}", modality="CT", received=T0 + datetime.timedelta(minutes=n))
    add_study(mrn="MR-ONLY", modality="MR")

    first = page(rita, modality="CT", sort="received")
    body = first.content.decode()
    assert mrns(first) == [f"P{n:03}" for n in range(50)]
    assert "Studies 1–50 of 110" in body
    assert 'href="?modality=CT&amp;sort=received&amp;page=2"' in body
    assert 'rel="prev"' not in body

    third = page(rita, modality="CT", sort="received", page=3)
    body = third.content.decode()
    assert mrns(third) == [f"P{n:03}" for n in range(100, 110)]
    assert "Studies 101–110 of 110" in body
    assert 'href="?modality=CT&amp;sort=received&amp;page=2" hx-get' in body and 'rel="prev"' in body
    assert 'rel="next"' not in body


def test_a_page_past_the_end_is_empty_with_a_way_back(rita, three_studies):
    response = page(rita, page=5)
    assert mrns(response) == []
    assert 'href="?page=4"' in response.content.decode()


def test_past_a_thousand_matches_the_count_says_1000_plus(rita):
    patient = Patient.objects.create(patient_id="MANY", name="Many Studies")
    studies = Study.objects.bulk_create(
        Study(study_uid=f"2.25.{n}", patient=patient, modality="CT") for n in range(1005)
    )
    Report.objects.bulk_create(Report(study=study) for study in studies)
    assert "Studies 1–50 of 1,000+" in page(rita).content.decode()


def test_htmx_gets_the_list_alone_and_it_refreshes_itself_with_the_same_query(rita, three_studies):
    response = rita.get(reverse("worklist"), {"status": "open", "sort": "mrn"}, **HTMX)
    fragment = response.content.decode()
    assert "<html" not in fragment and 'id="worklist-filters"' not in fragment
    assert mrns(response) == ["MRN-B", "MRN-C"]
    assert f'id="worklist" class="worklist-area" hx-get="{reverse("worklist")}?status=open&amp;sort=mrn"' in (
        fragment
    )
    assert 'hx-trigger="worklist-changed from:body"' in fragment
    assert 'data-live-url="/ws/worklist/"' in fragment


def test_the_full_page_has_the_filter_form_and_the_next_study_button(rita, three_studies):
    body = page(rita, priority="stat").content.decode()
    assert '<form id="worklist-filters"' in body and 'method="get"' in body
    assert '<option value="stat" selected>STAT</option>' in body
    assert 'name="mine"' in body
    assert f'action="{reverse("worklist-next")}"' in body and ">Next study</button>" in body


def test_a_technologist_sees_the_list_without_claim_or_next_study(client, technologist, three_studies):
    client.force_login(technologist)
    body = page(client).content.decode()
    assert len(mrns(page(client))) == 3
    assert "Next study" not in body and ">Claim</button>" not in body and 'name="mine"' not in body


# -- claim, release, assign --------------------------------------------------------------------


def claim(client: Client, study: Study, return_to: str = "", **headers):
    return client.post(reverse("report-claim", args=[study.report.pk]), {"return_to": return_to}, **headers)


def test_a_radiologist_claims_an_unclaimed_study_and_it_shows_as_theirs(rita, three_studies):
    study = three_studies["C"]
    response = claim(rita, study, return_to="status=open", **HTMX)

    assert response.status_code == 200
    fragment = response.content.decode()
    assert "You claimed Adams Bob, MRN MRN-C, CT." in fragment
    assert '<div id="worklist-notice" hx-swap-oob="true"' in fragment
    rows = {row[MRN_COLUMN]: row for row in worklist_of(response).rows}
    assert set(rows) == {"MRN-B", "MRN-C"}  # the list as the user had it: not signed only
    assert rows["MRN-C"][HEADINGS.index("Radiologist")] == "rita"
    assert rows["MRN-C"][-1] == "Release"
    assert Report.objects.get(pk=study.report.pk).assigned_to.username == "rita"
    event = AuditEvent.objects.filter(description="Study claimed").get()
    assert (event.username, event.patient_id, event.object_id) == ("rita", "MRN-C", str(study.report.pk))


def test_a_plain_claim_redirects_back_to_the_same_list_with_a_message(rita, three_studies):
    response = claim(rita, three_studies["C"], return_to="status=open&sort=mrn")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('worklist')}?status=open&sort=mrn"
    assert "You claimed Adams Bob, MRN MRN-C, CT." in rita.get(response["Location"]).content.decode()


def test_claiming_a_study_someone_else_holds_says_who_has_it(rita, three_studies):
    response = claim(rita, three_studies["B"], **HTMX)  # ravi's

    assert response.status_code == 409
    assert "ravi claimed this study first; it is on their list now." in response.content.decode()
    assert Report.objects.get(study=three_studies["B"]).assigned_to.username == "ravi"
    refused = AuditEvent.objects.get(description="Claim refused: already claimed")
    assert (refused.outcome, refused.detail) == (Outcome.MINOR_FAILURE, {"claimed_by": "ravi"})


def test_a_signed_study_cannot_be_claimed(rita, three_studies):
    response = claim(rita, three_studies["A"], **HTMX)
    assert response.status_code == 409
    assert "This report is signed; it cannot be claimed." in response.content.decode()


def test_a_radiologist_releases_their_own_claim(rita, radiologist, three_studies):
    study = three_studies["C"]
    claim(rita, study)
    response = rita.post(reverse("report-release", args=[study.report.pk]), {"return_to": ""}, **HTMX)

    assert response.status_code == 200
    assert "You released Adams Bob, MRN MRN-C, CT." in response.content.decode()
    row = next(r for r in worklist_of(response).rows if r[MRN_COLUMN] == "MRN-C")
    assert row[HEADINGS.index("Radiologist")] == "—" and row[-1] == "Claim"
    assert Report.objects.get(pk=study.report.pk).assigned_to is None
    assert AuditEvent.objects.filter(description="Claim released", username="rita").count() == 1


def test_a_radiologist_cannot_release_someone_elses_claim(rita, three_studies):
    study = three_studies["B"]
    response = rita.post(reverse("report-release", args=[study.report.pk]), {}, **HTMX)
    assert response.status_code == 409
    assert "ravi claimed this study; only they or an admin can release it." in response.content.decode()
    assert Report.objects.get(pk=study.report.pk).assigned_to.username == "ravi"


def test_an_admin_assigns_a_study_to_a_radiologist_and_can_unassign_it(admin_user, three_studies):
    ada = logged_in(admin_user)
    study = three_studies["C"]
    ravi = User.objects.get(username="ravi")
    body = page(ada).content.decode()
    assert 'name="assignee"' in body and f'<option value="{ravi.pk}">ravi</option>' in body

    response = ada.post(
        reverse("report-assign", args=[study.report.pk]), {"assignee": ravi.pk, "return_to": ""}, **HTMX
    )
    assert response.status_code == 200
    assert "Adams Bob, MRN MRN-C, CT is assigned to ravi." in response.content.decode()
    assert Report.objects.get(pk=study.report.pk).assigned_to == ravi
    event = AuditEvent.objects.get(description="Study assigned")
    assert (event.username, event.detail) == ("ada", {"from": None, "to": "ravi"})

    ada.post(reverse("report-assign", args=[study.report.pk]), {"assignee": ""})
    assert Report.objects.get(pk=study.report.pk).assigned_to is None
    assert AuditEvent.objects.get(description="Study unassigned").detail == {"from": "ravi", "to": None}


def test_only_an_admin_may_assign(rita, three_studies, second_radiologist):
    study = three_studies["C"]
    response = rita.post(
        reverse("report-assign", args=[study.report.pk]), {"assignee": second_radiologist.pk}
    )
    assert response.status_code == 403
    assert Report.objects.get(pk=study.report.pk).assigned_to is None
    assert 'name="assignee"' not in page(rita).content.decode()


def test_an_admin_cannot_assign_to_someone_who_is_not_a_radiologist(admin_user, technologist, three_studies):
    study = three_studies["C"]
    response = logged_in(admin_user).post(
        reverse("report-assign", args=[study.report.pk]), {"assignee": technologist.pk}, **HTMX
    )
    assert response.status_code == 400
    assert "Choose a radiologist from the list." in response.content.decode()
    assert Report.objects.get(pk=study.report.pk).assigned_to is None


@pytest.mark.django_db(transaction=True)
def test_two_radiologists_claiming_at_once_exactly_one_wins(radiologist, second_radiologist):
    clients = {"rita": logged_in(radiologist), "ravi": logged_in(second_radiologist)}
    for round_ in range(5):
        study = add_study(mrn=f"RACE-{round_}")
        start = threading.Barrier(2)
        answers: dict[str, object] = {}

        def attempt(name: str, study=study, start=start, answers=answers) -> None:
            try:
                start.wait()
                answers[name] = claim(clients[name], study, **HTMX)
            finally:
                connection.close()  # this thread's own connection

        threads = [threading.Thread(target=attempt, args=(name,)) for name in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        codes = sorted(response.status_code for response in answers.values())
        assert codes == [200, 409], codes
        winner = next(name for name, response in answers.items() if response.status_code == 200)
        loser = next(response for response in answers.values() if response.status_code == 409)
        assert f"{winner} claimed this study first" in loser.content.decode()
        assert Report.objects.get(study=study).assigned_to.username == winner
        assert (
            AuditEvent.objects.filter(description="Study claimed", patient_id=f"RACE-{round_}").count() == 1
        )


# -- next study --------------------------------------------------------------------------------


def test_next_study_claims_and_opens_studies_in_priority_then_oldest_order(
    rita, radiologist, second_radiologist
):
    day = datetime.timedelta(days=1)
    expected = [
        add_study(mrn="stat-older", priority=Priority.STAT, received=T0 + 2 * day),
        add_study(mrn="stat-newer", priority=Priority.STAT, received=T0 + 3 * day),
        add_study(mrn="urgent", priority=Priority.URGENT, received=T0 + day),
        add_study(mrn="routine", priority=Priority.ROUTINE, received=T0),
    ]
    add_study(mrn="signed-stat", priority=Priority.STAT, received=T0 - day, status=ReportStatus.SIGNED)
    add_study(mrn="ravis-stat", priority=Priority.STAT, received=T0 - day, assigned_to=second_radiologist)

    for study in expected:
        response = rita.post(reverse("worklist-next"))
        assert response.status_code == 302
        assert response["Location"] == reverse("study-detail", args=[study.pk])
        opened = rita.get(response["Location"]).content.decode()
        assert f"You claimed {study.patient.name}, MRN {study.patient.patient_id}, CT." in opened
        assert Report.objects.get(study=study).assigned_to == radiologist

    response = rita.post(reverse("worklist-next"))
    assert response["Location"] == reverse("worklist")
    assert "No unclaimed studies are waiting." in rita.get(response["Location"]).content.decode()
    assert AuditEvent.objects.filter(description="Study claimed (next study)").count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_radiologists_pressing_next_at_once_get_different_studies(radiologist, second_radiologist):
    for n in range(3):
        add_study(mrn=f"N{n}", priority=Priority.STAT)
    clients = [logged_in(radiologist), logged_in(second_radiologist)]
    start = threading.Barrier(2)
    locations: list[str] = []

    def press(client: Client) -> None:
        try:
            start.wait()
            locations.append(client.post(reverse("worklist-next"))["Location"])
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(locations)) == 2 and all(url.startswith("/studies/") for url in locations)
    assert sorted(
        Report.objects.exclude(assigned_to=None).values_list("assigned_to__username", flat=True)
    ) == [
        "ravi",
        "rita",
    ]


def test_next_study_is_for_radiologists_only(client, technologist):
    add_study()
    client.force_login(technologist)
    assert client.post(reverse("worklist-next")).status_code == 403
    assert not Report.objects.exclude(assigned_to=None).exists()


# -- priority on the way in --------------------------------------------------------------------


def dicom_with_priority(value: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))
    ds.RequestedProcedurePriority = value
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_the_upload_form_sets_the_priority(client, technologist):
    client.force_login(technologist)
    upload = SimpleUploadedFile("ct.dcm", dicom_bytes("CT_small.dcm"))
    assert '<select name="priority"' in client.get(reverse("upload")).content.decode()

    client.post(reverse("upload"), {"files": [upload], "priority": "stat"})

    assert Study.objects.get().priority == Priority.STAT
    assert worklist_of(page(client)).rows[0][0] == "STAT"


@pytest.mark.parametrize(
    ("header", "chosen", "expected"),
    [
        ("HIGH", "", Priority.URGENT),
        ("STAT", "", Priority.STAT),
        ("LOW", "", Priority.ROUTINE),
        ("HIGH", "routine", Priority.ROUTINE),  # the uploader's choice wins
    ],
)
def test_a_dicom_files_requested_procedure_priority_is_used_unless_one_is_chosen(
    client, technologist, header, chosen, expected
):
    client.force_login(technologist)
    upload = SimpleUploadedFile("ct.dcm", dicom_with_priority(header))
    client.post(reverse("upload"), {"files": [upload], "priority": chosen})
    assert Study.objects.get().priority == expected


def test_without_a_priority_a_study_is_routine(client, technologist):
    client.force_login(technologist)
    client.post(reverse("upload"), {"files": [SimpleUploadedFile("ct.dcm", dicom_bytes("CT_small.dcm"))]})
    assert Study.objects.get().priority == Priority.ROUTINE


def test_the_api_takes_a_priority_and_refuses_an_unknown_one(client, technologist):
    headers = token_header(technologist)
    upload = SimpleUploadedFile("ct.dcm", dicom_bytes("CT_small.dcm"))
    bad = client.post(reverse("api-studies"), {"files": [upload], "priority": "soon"}, **headers)
    assert bad.status_code == 400
    assert bad.json()["error"] == "priority must be one of: stat, urgent, routine."
    assert not Study.objects.exists()

    upload = SimpleUploadedFile("ct.dcm", dicom_bytes("CT_small.dcm"))
    good = client.post(reverse("api-studies"), {"files": [upload], "priority": "Urgent"}, **headers)
    assert good.status_code == 201
    assert good.json()["studies"][0]["priority"] == "urgent"
    assert Study.objects.get().priority == Priority.URGENT


def test_received_dates_are_whole_days_in_the_sites_time_zone(rita, settings):
    settings.TIME_ZONE = "Europe/Paris"  # UTC+1 in January
    add_study(mrn="late", received=datetime.datetime(2026, 1, 10, 23, 30, tzinfo=datetime.UTC))  # 11th, Paris
    add_study(mrn="early", received=datetime.datetime(2026, 1, 9, 23, 30, tzinfo=datetime.UTC))  # 10th, Paris
    assert mrns(page(rita, date_from="2026-01-10", date_to="2026-01-10")) == ["early"]
