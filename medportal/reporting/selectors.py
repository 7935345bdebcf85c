"""Reads of reports for views, the API and the stream."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import F, Lookup, Q, QuerySet
from django.utils import timezone

from medportal.imaging.models import Patient, Priority, Study
from medportal.reporting import lifecycle
from medportal.reporting.diff import DiffPiece, is_changed, text_diff
from medportal.reporting.models import Report, ReportVersion
from medportal.reporting.sections import split_sections


def report_stream_path(report_id: int) -> str:
    """The websocket path of a report's draft stream (routed in medportal.streaming.routing)."""
    return f"/ws/reports/{report_id}/"


def report_snapshot(*, report_id: int) -> dict:
    """What a stream subscriber needs to (re)start: the database's text is the truth."""
    report = Report.objects.get(pk=report_id)
    return {
        "report_id": report.pk,
        "status": report.status,
        "status_display": report.get_status_display(),
        "attempt": report.attempt,
        "stream": f"{report.attempt}.{report.draft_claim}",
        "text": report.draft_text,
        "failure_reason": report.failure_reason,
        "version": report.version,
    }


# -- the editor: the AI draft beside the working text ----------------------------------

# The sections a report's text has, in the order a report shows them.
SECTIONS = [
    ("technique", "Technique"),
    ("comparison", "Comparison"),
    ("findings", "Findings"),
    ("impression", "Impression"),
]


def report_ai_draft(report: Report) -> dict[str, str] | None:
    """The sections of the current attempt's AI draft, as the worker wrote them; None when
    this attempt has no finished draft (never asked, still drafting, failed)."""
    if report.status in (lifecycle.S.QUEUED, lifecycle.S.DRAFTING) or not report.draft_requested_at:
        return None
    version = (
        ReportVersion.objects.filter(
            report=report, source=ReportVersion.AI, created_at__gte=report.draft_requested_at
        )
        .order_by("number")
        .first()
    )
    if version is not None:
        return {name: getattr(version, name) for name, _ in SECTIONS}
    if report.model_id and not report.versions.filter(source=ReportVersion.AI).exists():
        # Drafted before each draft was kept as a version: the draft's text is all there is.
        findings, impression = split_sections(report.draft_text)
        return {"technique": "", "comparison": "", "findings": findings, "impression": impression}
    return None


@dataclass(frozen=True)
class SectionChange:
    name: str
    label: str
    ai_text: str
    pieces: list[DiffPiece]

    @property
    def changed(self) -> bool:
        return is_changed(self.pieces)


def report_changes(report: Report, ai_draft: dict[str, str] | None) -> list[SectionChange]:
    """Each section that either the AI draft or the report has, with the word diff between them."""
    if ai_draft is None:
        return []
    return [
        SectionChange(name, label, ai_draft[name], text_diff(ai_draft[name], getattr(report, name)))
        for name, label in SECTIONS
        if ai_draft[name] or getattr(report, name)
    ]


# -- the worklist -----------------------------------------------------------------------

WORKLIST_PAGE_SIZE = 50
# Counting every match of a filter over 100,000 studies costs more than the page itself;
# past this many the page says "1,000+".
WORKLIST_COUNT_CAP = 1000
# Status filter values beyond the report statuses.
OPEN = "open"  # not yet signed or cancelled
# Above this many patients matching a search, their ids are not sent back in the query.
SEARCH_PATIENT_LIMIT = 2000

# Sort key -> the columns it orders by (ascending; "-key" reverses them all). Ties go by id.
WORKLIST_SORTS: dict[str, tuple[str, ...]] = {
    "priority": ("priority", "received_at"),  # STAT first, then oldest: the reading order
    "patient": ("patient__name",),
    "mrn": ("patient__patient_id",),
    "accession": ("accession_number",),
    "modality": ("modality",),
    "body_part": ("body_part",),
    "study_date": ("study_date",),
    "received": ("received_at",),
    "ai_draft": ("report__status",),  # the draft's state is read from the report's status
    "status": ("report__status",),
    "assigned": ("report__assigned_to__username",),
}
_NULLABLE_SORTS = {"study_date", "assigned"}
# The reading order: STAT, then urgent, then routine; the oldest first within each.
WORKLIST_DEFAULT_SORT = "priority"


@dataclass(frozen=True)
class WorklistParams:
    """What the worklist shows: filters, search, sort and page (the page's GET parameters)."""

    status: str = ""
    modality: str = ""
    priority: Priority | None = None
    mine: bool = False
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    q: str = ""
    sort: str = WORKLIST_DEFAULT_SORT
    page: int = 1

    def query(self, **changes) -> str:
        """The query string of these parameters with ``changes``, defaults left out."""
        params = replace(self, **changes)
        values = {
            "q": params.q,
            "status": params.status,
            "modality": params.modality,
            "priority": params.priority.name.lower() if params.priority else "",
            "mine": "1" if params.mine else "",
            "date_from": params.date_from.isoformat() if params.date_from else "",
            "date_to": params.date_to.isoformat() if params.date_to else "",
            "sort": "" if params.sort == WORKLIST_DEFAULT_SORT else params.sort,
            "page": "" if params.page == 1 else str(params.page),
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def filtered(self) -> bool:
        return any(
            (self.status, self.modality, self.priority, self.mine, self.date_from, self.date_to, self.q)
        )

    def audit_detail(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items() if v not in ("", None, False)}


@dataclass
class WorklistPage:
    rows: list[Study]
    number: int
    has_next: bool
    total: int  # capped at WORKLIST_COUNT_CAP + 1
    start: int  # 1-based index of the first row

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def total_is_capped(self) -> bool:
        return self.total > WORKLIST_COUNT_CAP

    @property
    def end(self) -> int:
        return self.start + len(self.rows) - 1

    @property
    def total_label(self) -> str:
        return f"{WORKLIST_COUNT_CAP:,}+" if self.total_is_capped else f"{self.total:,}"


def _day_start(day: datetime.date) -> datetime.datetime:
    # A range on the column itself (not on its date) keeps the index usable.
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class _AnyOf(Lookup):
    """``column = ANY('{1,2,…}')``: a thousand ids as one parameter on PostgreSQL, where ``IN``
    sends one parameter per id, each compiled by Django and parsed by the driver (a common
    surname matches a thousand patients, and the page queries them twice). The array goes as
    untyped text, which PostgreSQL reads as the column's type: psycopg's typed ``int4[]`` made
    the planner test each row against the ids one by one (12 ms instead of 5 at 100,000 studies)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, "{" + ",".join(str(int(v)) for v in self.rhs) + "}"]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(self.rhs))})", [*lhs_params, *self.rhs]


def _search(q: str) -> Q:
    """Studies whose MRN or accession is ``q``, or whose patient's name contains it.

    The patients are looked up first (MRN: unique index; name: trigram index on
    PostgreSQL), so that the studies are then found through two indexes of their own
    (patient, accession). One OR across the joined tables would scan every study, and
    the planner joins a subquery by scanning them too.
    """
    patients = Patient.objects.filter(Q(patient_id=q) | Q(name__icontains=q)).values_list("id", flat=True)
    ids = list(patients[: SEARCH_PATIENT_LIMIT + 1])
    # A term as common as "an" matches thousands of patients: a subquery then, slower but complete.
    if len(ids) > SEARCH_PATIENT_LIMIT:
        by_patient = Q(patient__in=patients)
    else:
        by_patient = Q(_AnyOf(F("patient_id"), ids))
    return by_patient | Q(accession_number=q)


def worklist_query(*, user, params: WorklistParams) -> QuerySet[Study]:
    """The studies the worklist shows for ``params``, sorted, with what each row needs joined in."""
    studies = Study.objects.select_related("patient", "report", "report__assigned_to")
    if params.status == OPEN:
        # An IN list, not "<> signed": the status index finds the few open reports.
        studies = studies.filter(report__status__in=sorted(lifecycle.OPEN))
    elif params.status:
        studies = studies.filter(report__status=params.status)
    if params.modality:
        studies = studies.filter(modality=params.modality)
    if params.priority is not None:
        studies = studies.filter(priority=params.priority)
    if params.mine:
        studies = studies.filter(report__assigned_to=user)
    if params.date_from:
        studies = studies.filter(received_at__gte=_day_start(params.date_from))
    if params.date_to:
        studies = studies.filter(received_at__lt=_day_start(params.date_to + datetime.timedelta(days=1)))
    if params.q:
        studies = studies.filter(_search(params.q))
    key = params.sort.removeprefix("-")
    descending = params.sort.startswith("-")
    columns = [*WORKLIST_SORTS.get(key, WORKLIST_SORTS["received"]), "id"]
    nulls_last = {"nulls_last": True} if key in _NULLABLE_SORTS else {}
    return studies.order_by(
        *(F(column).desc(**nulls_last) if descending else F(column).asc(**nulls_last) for column in columns)
    )


def _cached_data_costs() -> None:
    """PostgreSQL: for this transaction, cost random reads like sequential ones.

    The worklist reads the hot end of the tables. With the default random_page_cost (4,
    for spinning disks) the planner answers "open studies, STAT first" by walking the
    priority index through every signed study (tens of thousands of rows) rather than
    starting from the few open reports; at 1.1, the usual value for SSDs and cached
    data, it starts from the reports (see bench/worklist.py).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL random_page_cost = 1.1")


def worklist_page(*, user, params: WorklistParams) -> WorklistPage:
    """One page of the worklist; the total is counted only up to WORKLIST_COUNT_CAP + 1."""
    studies = worklist_query(user=user, params=params)
    offset = (params.page - 1) * WORKLIST_PAGE_SIZE
    with transaction.atomic():
        _cached_data_costs()
        rows = list(studies[offset : offset + WORKLIST_PAGE_SIZE + 1])
        has_next = len(rows) > WORKLIST_PAGE_SIZE
        rows = rows[:WORKLIST_PAGE_SIZE]
        if params.page == 1 and not has_next:
            total = len(rows)  # the page holds them all: no count query
        else:
            total = studies.order_by()[: WORKLIST_COUNT_CAP + 1].count()
    return WorklistPage(rows=rows, number=params.page, has_next=has_next, total=total, start=offset + 1)
