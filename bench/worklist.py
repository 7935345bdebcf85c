"""Worklist speed at scale: 100,000 studies in PostgreSQL, the real page, p50/p95 per variant.

1. Creates the database ``medportal_bench`` on the server of DATABASE_URL when it is
   missing, migrates it, and seeds it once: patients, studies and reports in a mix of
   statuses, priorities, modalities and claims (``--reseed`` starts again from nothing).
2. Logs in as a radiologist and requests the worklist through django.test.Client (URL
   routing, middleware, session, the view, its audit event, the template) for each
   variant: the default page, each filter, searches, sorts, a deep page, the htmx refresh.
3. Prints EXPLAIN ANALYZE of each variant's page query (the indexes it uses), then
   p50/p95 per variant; the last line holds worklist_p95_ms, the worst p95.

Usage: DATABASE_URL=postgres://user@host:5432/any .venv/bin/python bench/worklist.py [--requests 100]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "medportal_bench"
TARGET_P95_MS = 50.0

LAST_NAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Garcia",
    "Martin",
    "Lopez",
    "Nguyen",
    "Kim",
    "Chen",
    "Muller",
    "Schmidt",
    "Rossi",
    "Russo",
    "Dubois",
    "Moreau",
    "Laurent",
    "Novak",
    "Horvat",
    "Kowalski",
    "Nowak",
    "Jensen",
    "Hansen",
    "Larsen",
]
FIRST_NAMES = [
    "Oliver",
    "George",
    "Harry",
    "Jack",
    "Jacob",
    "Noah",
    "Charlie",
    "Thomas",
    "Oscar",
    "William",
    "James",
    "Amelia",
    "Olivia",
    "Isla",
    "Emily",
    "Poppy",
    "Ava",
    "Isabella",
    "Jessica",
    "Lily",
    "Sophie",
    "Grace",
    "Sophia",
    "Mia",
    "Evie",
    "Ruby",
    "Ella",
    "Scarlett",
    "Chloe",
    "Freya",
    "Anna",
    "Lucas",
    "Mateo",
    "Leon",
    "Elias",
    "Hugo",
    "Louis",
    "Ines",
    "Lea",
    "Nora",
    "Maja",
    "Sara",
    "Omar",
    "Yusuf",
    "Aisha",
    "Fatima",
    "Wei",
    "Jun",
    "Mei",
    "Hana",
]
MODALITIES = [("CR", 30), ("CT", 25), ("MR", 15), ("DX", 15), ("US", 10), ("MG", 5)]
BODY_PARTS = {
    "CR": ["CHEST"],
    "DX": ["CHEST", "HAND", "KNEE", "SPINE"],
    "CT": ["HEAD", "CHEST", "ABDOMEN", "PELVIS"],
    "MR": ["BRAIN", "KNEE", "SPINE", "SHOULDER"],
    "US": ["ABDOMEN", "PELVIS", "THYROID"],
    "MG": ["BREAST"],
}
# Two years of studies, evenly. Open (unsigned) work is the recent backlog: a study is read
# within its priority's turnaround, and a few older ones were left (failed, forgotten).
OPEN_STATUSES = [("received", 5), ("queued", 1), ("drafting", 1), ("drafted", 6), ("failed", 2)]
HISTORY_DAYS = 730
TURNAROUND = {1: datetime.timedelta(hours=1), 2: datetime.timedelta(hours=8), 3: datetime.timedelta(days=2)}
LEFT_OPEN = 0.005
PRIORITIES = [(1, 5), (2, 15), (3, 80)]  # STAT, urgent, routine
RADIOLOGISTS = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pick(rng: random.Random, weighted: list[tuple]) -> object:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def ensure_database(url: str) -> str:
    """The URL of ``medportal_bench`` on the same server, created when missing."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("bench/worklist.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    params = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    userinfo = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    host = f"{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}"
    return f"postgres://{userinfo}@{host}/{BENCH_DB}"


def drop_database(url: str) -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    with psycopg.connect(
        dbname="postgres",
        autocommit=True,
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def seed(studies: int, rng: random.Random) -> None:
    """Patients, studies and reports through the ORM's bulk_create (signals and services skipped)."""
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from medportal.access.roles import Role
    from medportal.imaging.models import Patient, Study
    from medportal.reporting.models import Report

    started = time.perf_counter()
    group, _ = Group.objects.get_or_create(name=Role.RADIOLOGIST.value)
    radiologists = []
    for n in range(RADIOLOGISTS):
        user = User.objects.create_user(username=f"bench-rad-{n}", password=None)
        user.groups.add(group)
        radiologists.append(user)
    now = datetime.datetime.now(datetime.UTC)
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            (
                Patient(
                    patient_id=f"MRN{n:07d}",
                    name=f"{rng.choice(LAST_NAMES)} {rng.choice(FIRST_NAMES)}",
                    birth_date=f"{rng.randint(1930, 2020)}0101",
                    sex=rng.choice("MF"),
                )
                for n in range(max(1, studies * 2 // 5))
            ),
            batch_size=5000,
        )
        study_rows, received = [], []
        for n in range(studies):
            modality = pick(rng, MODALITIES)
            age = datetime.timedelta(days=rng.uniform(0, HISTORY_DAYS))
            received.append(now - age)
            study_rows.append(
                Study(
                    study_uid=f"2.25.{n}",
                    patient=rng.choice(patients),
                    accession_number=f"ACC{n:08d}",
                    study_date=(now - age).date(),
                    description=f"{modality} {rng.choice(BODY_PARTS[modality]).lower()}",
                    modality=modality,
                    body_part=rng.choice(BODY_PARTS[modality]),
                    priority=pick(rng, PRIORITIES),
                )
            )
        created = Study.objects.bulk_create(study_rows, batch_size=5000)
        # received_at is auto_now_add, so bulk_create wrote "now": set the real times in one statement.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE imaging_study s SET received_at = v.received"
                " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, received) WHERE s.id = v.id",
                [[s.pk for s in created], received],
            )
        reports = []
        for study, when in zip(created, received, strict=True):
            signed = when < now - TURNAROUND[study.priority] and rng.random() >= LEFT_OPEN
            status = "signed" if signed else pick(rng, OPEN_STATUSES)
            reader = rng.choice(radiologists)
            claimed = signed or rng.random() < 0.3
            reports.append(
                Report(
                    study=study,
                    status=status,
                    attempt=0 if status == "received" else 1,
                    model_id="google/medgemma-4b-it" if status in ("drafted", "signed") else "",
                    findings="No acute abnormality." if status in ("drafted", "signed") else "",
                    version=1 if status in ("drafted", "signed") else 0,
                    signed_by=reader if signed else None,
                    signed_at=when + datetime.timedelta(hours=4) if signed else None,
                    assigned_to=reader if claimed else None,
                    assigned_at=when + datetime.timedelta(hours=1) if claimed else None,
                )
            )
        Report.objects.bulk_create(reports, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded {studies:,} studies, {len(patients):,} patients in {time.perf_counter() - started:.1f} s")


def variants(rng: random.Random) -> dict[str, list[dict]]:
    """Each variant's GET parameters, one dict per request (searches vary the term)."""
    from medportal.imaging.models import Patient, Study

    today = datetime.date.today()
    mrns = list(Patient.objects.order_by("?").values_list("patient_id", flat=True)[:200])
    accessions = list(Study.objects.order_by("?").values_list("accession_number", flat=True)[:200])
    return {
        "default (STAT first)": [{}],
        "htmx refresh": [{"_htmx": True}],
        "status=drafted": [{"status": "drafted"}],
        "status=open": [{"status": "open"}],
        "status=signed": [{"status": "signed"}],
        "modality=MR": [{"modality": "MR"}],
        "priority=stat": [{"priority": "stat"}],
        "mine": [{"mine": "1"}],
        "search MRN": [{"q": mrn} for mrn in mrns],
        "search accession": [{"q": acc} for acc in accessions],
        "search name": [{"q": rng.choice(LAST_NAMES).lower()} for _ in range(50)],
        "date range (7 days)": [
            {
                "date_from": (today - datetime.timedelta(days=37)).isoformat(),
                "date_to": (today - datetime.timedelta(days=30)).isoformat(),
            }
        ],
        "sort=received (oldest)": [{"sort": "received"}],
        "sort=priority": [{"sort": "priority"}],
        "open, sort=priority": [{"status": "open", "sort": "priority"}],
        "page 20": [{"page": "20"}],
    }


def explain(user, params: dict) -> str:
    from django.db import transaction
    from django.db.models import Q

    from medportal.imaging.models import Patient
    from medportal.reporting.forms import WorklistFilterForm
    from medportal.reporting.selectors import WORKLIST_PAGE_SIZE, _cached_data_costs, worklist_query

    clean = {k: v for k, v in params.items() if not k.startswith("_")}
    wp = WorklistFilterForm(clean).params()
    offset = (wp.page - 1) * WORKLIST_PAGE_SIZE
    query = worklist_query(user=user, params=wp)[offset : offset + WORKLIST_PAGE_SIZE + 1]
    with transaction.atomic():
        _cached_data_costs()  # as worklist_page runs it
        plan = query.explain(analyze=True, buffers=False)
    if wp.q:  # the search first finds the patients (MRN: unique index, name: trigram index)
        patients = Patient.objects.filter(Q(patient_id=wp.q) | Q(name__icontains=wp.q)).values_list("id")
        plan = f"-- patients:\n{patients.explain(analyze=True)}\n-- studies:\n{plan}"
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per variant")
    parser.add_argument("--reseed", action="store_true", help="drop medportal_bench and seed it again")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "DATABASE_URL is required and must point at PostgreSQL (postgres://user@host:port/db)"
        )
    if args.reseed:
        drop_database(url)
    os.environ["DATABASE_URL"] = ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")
    os.environ.setdefault("MEDPORTAL_DATA_DIR", tempfile.mkdtemp(prefix="medportal-bench-"))
    os.environ["DEBUG"] = "false"

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from medportal.imaging.models import Study

    call_command("migrate", verbosity=0)
    rng = random.Random(20261127)
    if Study.objects.count() != args.studies:
        if Study.objects.exists():
            raise SystemExit(f"{BENCH_DB} holds a different number of studies; run with --reseed")
        seed(args.studies, rng)
    user = User.objects.get(username="bench-rad-0")
    client = Client()
    client.force_login(user)
    url_path = reverse("worklist")

    plans = variants(rng)
    if not args.no_explain:
        for name, param_list in plans.items():
            print(f"\n== EXPLAIN ANALYZE: {name} {param_list[0]}")
            print(explain(user, param_list[0]))

    # Round after round, one request per variant each: a busy spell on the machine is
    # shared among the variants instead of landing on one.
    results: dict[str, list[float]] = {name: [] for name in plans}
    load_before = os.getloadavg()[0]
    for i in range(args.requests + 3):
        for name, param_list in plans.items():
            params = dict(param_list[i % len(param_list)])
            headers = {"HTTP_HX_REQUEST": "true"} if params.pop("_htmx", False) else {}
            started = time.perf_counter()
            response = client.get(url_path, params, **headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (name, response.status_code)
            if i >= 3:  # the first rounds warm caches and connections
                results[name].append(elapsed)
    load = max(load_before, os.getloadavg()[0])

    print(f"\nworklist over {Study.objects.count():,} studies, {args.requests} requests per variant (ms)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('shared_buffers'), pg_size_pretty(pg_database_size(%s))", [BENCH_DB]
        )
        shared_buffers, db_size = cursor.fetchone()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (a busy machine inflates these); "
        f"PostgreSQL shared_buffers {shared_buffers}, database {db_size}"
    )
    print(f"{'variant':<26} {'p50':>8} {'p95':>8} {'mean':>8}")
    for name, timings in results.items():
        p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
        print(f"{name:<26} {p50:8.1f} {p95:8.1f} {statistics.fmean(timings):8.1f}")
    worst = max(results, key=lambda n: percentile(results[n], 0.95))
    worst_p95 = percentile(results[worst], 0.95)
    print(
        f"worklist_p95_ms={worst_p95:.1f} worst_variant={worst!r} target_ms={TARGET_P95_MS:.0f} "
        f"studies={Study.objects.count()} requests_per_variant={args.requests} "
        f"{'ok' if worst_p95 <= TARGET_P95_MS else 'OVER TARGET'}"
    )


if __name__ == "__main__":
    main()
