"""The AI quality page and its CSV, as an admin sees them; every other role is refused."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent, EventType
from tests.conftest import make_user
from tests.quality.conftest import DRAFT_MEASURED, drafted, edited, new_report

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_reports(db, radiologist, second_radiologist, sign):
    """rita signs two drafts unchanged; ravi changes one word (5 characters) of one."""
    for _ in range(2):
        sign(drafted(new_report("CR"), radiologist), radiologist)
    report = drafted(new_report("CT"), second_radiologist)
    report = edited(
        report,
        second_radiologist,
        "The lungs are clear.\nSmall pleural effusion.",
        "Normal chest radiograph.",
    )
    sign(report, second_radiologist)


@pytest.fixture
def ada(client, admin_user):
    client.force_login(admin_user)
    return client


def row_of(html: str, section: str, label: str) -> list[str]:
    """The cells of the row headed ``label`` in the table of section ``section``."""
    part = html.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    row = re.search(rf'<tr><th scope="row">{re.escape(label)}</th>(.*?)</tr>', part)
    assert row, f"no row {label!r} in {section}"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def test_an_admin_sees_the_figures_per_radiologist(signed_reports, ada):
    response = ada.get(reverse("quality"))

    assert response.status_code == 200
    html = response.content.decode()
    # reports, signed unchanged, mean distance, median distance, mean and median similarity
    assert row_of(html, "quality-by-radiologist", "rita")[:6] == ["2", "100%", "0.0", "0", "1.000", "1.000"]
    similarity = f"{1 - 5 / (len(DRAFT_MEASURED) + 3):.3f}"  # "No" -> "Small"
    assert row_of(html, "quality-by-radiologist", "ravi")[:6] == [
        "1",
        "0%",
        "5.0",
        "5",
        similarity,
        similarity,
    ]
    assert row_of(html, "quality-by-modality", "CT")[:2] == ["1", "0%"]
    assert row_of(html, "quality-by-model", "tiny @ rev-1")[:2] == ["3", "67%"]
    event = AuditEvent.objects.filter(description="AI quality viewed").get()
    assert event.event_type == EventType.QUERY and event.username == "ada"


def test_the_chart_is_inline_svg_with_a_table_of_the_same_numbers(signed_reports, ada):
    html = ada.get(reverse("quality")).content.decode()

    for chart in ("chart-accepted", "chart-similarity"):
        svg = html.split(f'<svg id="{chart}"', 1)[1].split("</svg>", 1)[0]
        assert 'role="img"' in svg and f'aria-labelledby="{chart}-title {chart}-desc"' in svg
        assert re.search(r'<path d="M[\d.]+ [\d.]+"', svg)
        points = re.findall(r"<circle [^>]*><title>(.*?)</title>", svg)
        assert len(points) == 1  # one model version, signed today: one point
    accepted = html.split('<svg id="chart-accepted"', 1)[1].split("</svg>", 1)[0]
    assert "tiny @ rev-1, day " in accepted and ": 67% (3 reports)" in accepted
    over_time = html.split('id="quality-over-time"', 1)[1]
    assert "Over time (per day)" in over_time
    assert re.search(r"<th scope=\"row\">tiny @ rev-1</th><td>3</td><td>67%</td>", over_time)
    # Nothing the CSP would block: no inline script or style.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html


def test_filters_narrow_the_page_and_htmx_gets_only_the_results(signed_reports, ada, second_radiologist):
    response = ada.get(reverse("quality"), {"radiologist": second_radiologist.pk}, **HTMX)

    html = response.content.decode()
    assert "<html" not in html and 'id="quality-results"' in html
    assert 'id="quality-by-radiologist"' in html
    assert ">ravi</th>" in html and ">rita</th>" not in html
    event = AuditEvent.objects.filter(description="AI quality viewed").get()
    assert event.detail == {"radiologist_id": str(second_radiologist.pk)}


def test_a_wrong_date_range_is_explained(signed_reports, ada):
    html = ada.get(reverse("quality"), {"date_from": "2026-03-10", "date_to": "2026-03-01"}).content.decode()
    assert "The start date is after the end date. (filters ignored)" in html


def test_no_outcomes_says_so(db, ada):
    html = ada.get(reverse("quality")).content.decode()
    assert "No signed reports with an AI draft match these filters." in html
    assert "<svg" not in html


def test_the_csv_has_the_tables_and_is_audited(signed_reports, ada):
    response = ada.get(reverse("quality-export-csv"))

    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by = {(r["grouping"], r["group"]): r for r in rows}
    assert by[("radiologist", "rita")]["reports"] == "2"
    assert by[("radiologist", "rita")]["accepted_unchanged_share"] == "1.0000"
    assert by[("radiologist", "ravi")]["mean_edit_distance"] == "5.00"
    assert by[("all", "All")]["reports"] == "3"
    day_rows = [r for r in rows if r["grouping"] == "day"]
    assert len(day_rows) == 1 and day_rows[0]["period_start"]
    assert AuditEvent.objects.filter(
        description="AI quality exported (CSV)", event_type=EventType.EXPORT
    ).exists()


@pytest.mark.parametrize("role", [Role.RADIOLOGIST, Role.TECHNOLOGIST, Role.AUDITOR])
def test_other_roles_are_refused(db, client, role):
    client.force_login(make_user(f"someone-{role.value}", role))
    assert client.get(reverse("quality")).status_code == 403
    assert client.get(reverse("quality-export-csv")).status_code == 403
    assert (
        "AI quality"
        not in client.get(reverse("audit-list" if role == Role.AUDITOR else "worklist")).content.decode()
    )


def test_the_menu_links_admins_to_the_page(db, ada):
    html = ada.get(reverse("quality")).content.decode()
    assert f'<a href="{reverse("quality")}">AI quality</a>' in html
