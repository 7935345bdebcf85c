"""Tamper evidence of the audit trail: 100 varied tamperings, each must be found at its exact row.

An attacker with the database owner's rights (triggers disabled, any SQL) but without the
audit key tampers with a trail of events whose head was anchored outside the database:

- ``edit``: one field of one row changed;
- ``delete``: a row in the middle deleted;
- ``reorder``: two rows' places (their seq) swapped;
- ``tail``: the last rows deleted (after the last anchor was written);
- ``truncate``: the table emptied;
- ``recompute``: one row edited and the chain recomputed from it to the end without the key
  (plain SHA-256, as the chain was before it was keyed);
- ``guess_key``: the same with a guessed key;
- ``forge``: a made-up row appended at the end, with a guessed key.

Each tampering is undone (a savepoint) before the next. A tampering counts as detected when
``audit_chain_verify`` names the seq where the trail stops being what was written. Prints
``tamper_detected=N/100``.

Usage: DATABASE_URL=postgres://user@host:5432/any .venv/bin/python bench/audit_tamper.py [--events 2000]
(it creates, migrates and drops the database ``medportal_bench_audit`` on that server).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "medportal_bench_audit"
KINDS = ("edit", "delete", "reorder", "tail", "truncate", "recompute", "guess_key", "forge")
FIELDS = ("username", "patient_id", "description", "object_id", "study_uid")


def _rows(cursor) -> list[tuple[int, int]]:
    cursor.execute("SELECT id, seq FROM audit_auditevent ORDER BY seq")
    return cursor.fetchall()


def _rechain(cursor, from_seq: int, *, key: bytes | None) -> None:
    """Recompute every hash from ``from_seq`` on, as an attacker without the audit key would:
    plain SHA-256 (``key`` None, marked unkeyed) or HMAC with a guessed key."""
    from medportal.audit.models import AuditEvent
    from medportal.audit.services import canonical_row

    previous = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
    previous = previous or "0" * 64
    for event in AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq"):
        event.keyed = key is not None
        message = previous.encode() + canonical_row(event)
        digest = (
            hmac.new(key, message, hashlib.sha256).hexdigest() if key else hashlib.sha256(message).hexdigest()
        )
        cursor.execute(
            "UPDATE audit_auditevent SET previous_hash = %s, hash = %s, keyed = %s WHERE id = %s",
            [previous, digest, event.keyed, event.pk],
        )
        previous = digest


def tamper(kind: str, rng: random.Random) -> int:
    """Tamper with the trail (triggers disabled, as its owner could); returns the seq where
    the trail must be found broken."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        rows = _rows(cursor)
        last_seq = rows[-1][1]
        middle = rows[1:-1]
        if kind == "edit":
            row_id, seq = rng.choice(rows)
            field = rng.choice(FIELDS)
            cursor.execute(f"UPDATE audit_auditevent SET {field} = {field} || 'x' WHERE id = %s", [row_id])
            return seq
        if kind == "delete":
            row_id, seq = rng.choice(middle)
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [row_id])
            return seq
        if kind == "reorder":
            (a_id, a_seq), (b_id, b_seq) = sorted(rng.sample(rows, 2), key=lambda r: r[1])
            cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE id = %s", [a_id])
            cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a_seq, b_id])
            cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b_seq, a_id])
            return a_seq
        if kind == "tail":
            count = rng.randint(1, 50)
            cursor.execute("DELETE FROM audit_auditevent WHERE seq > %s", [last_seq - count])
            return last_seq - count + 1
        if kind == "truncate":
            cursor.execute("TRUNCATE audit_auditevent")
            return 1
        if kind in ("recompute", "guess_key"):
            row_id, seq = rng.choice(rows)
            cursor.execute("UPDATE audit_auditevent SET username = 'someone-else' WHERE id = %s", [row_id])
            _rechain(cursor, seq, key=None if kind == "recompute" else os.urandom(32).hex().encode())
            return seq
        if kind == "forge":
            cursor.execute(
                """INSERT INTO audit_auditevent (seq, keyed, occurred_at, event_type, action, outcome,
                   description, username, role, is_requestor, patient_id, study_uid, accession_number,
                   object_type, object_id, detail, previous_hash, hash)
                   SELECT seq + 1, true, occurred_at, event_type, action, outcome, 'Study viewed',
                   'rita', role, is_requestor, 'P-1', study_uid, accession_number, object_type,
                   object_id, detail, hash, md5(random()::text) || md5(random()::text)
                   FROM audit_auditevent WHERE seq = %s""",
                [last_seq],
            )
            _rechain(cursor, last_seq + 1, key=os.urandom(32).hex().encode())
            return last_seq + 1
    raise ValueError(kind)


def tamper_campaign(*, attempts: int = 100, seed: int = 20261129) -> tuple[int, list[str]]:
    """Run ``attempts`` tamperings (the kinds in turn), each undone before the next; returns
    how many were found at their exact row and a line for each that was not."""
    from django.db import transaction

    from medportal.audit.verify import audit_chain_verify

    rng = random.Random(seed)
    detected, misses = 0, []
    with transaction.atomic():
        for attempt in range(attempts):
            kind = KINDS[attempt % len(KINDS)]
            savepoint = transaction.savepoint()
            expected = tamper(kind, rng)
            _, broken = audit_chain_verify()
            transaction.savepoint_rollback(savepoint)
            if broken is not None and broken.seq == expected:
                detected += 1
            else:
                misses.append(f"{kind}: expected seq {expected}, verify said {broken}")
    return detected, misses


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=100)
    args = parser.parse_args()

    bench_url = _database(os.environ.get("DATABASE_URL", ""), create=True)
    os.environ["DATABASE_URL"] = bench_url
    data_dir = tempfile.mkdtemp(prefix="medportal-bench-audit-")
    os.environ.setdefault("MEDPORTAL_DATA_DIR", data_dir)
    os.environ["MEDPORTAL_AUDIT_ANCHOR_DIR"] = str(Path(data_dir) / "anchors")
    os.environ["DJANGO_SETTINGS_MODULE"] = "medportal.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from medportal.audit.anchors import audit_anchor_write
    from medportal.audit.models import Action, EventType
    from medportal.audit.services import audit_record

    try:
        call_command("migrate", verbosity=0)
        for n in range(args.events):
            audit_record(
                event_type=EventType.INSTANCES_ACCESSED,
                action=Action.READ,
                description="Image viewed",
                username=f"user{n % 7}",
                patient_id=f"P{n % 37}",
                object_type="instance",
                object_id=n,
            )
        audit_anchor_write()
        detected, misses = tamper_campaign(attempts=args.attempts)
        for miss in misses:
            print("missed:", miss)
        print(f"events={args.events} kinds={','.join(KINDS)}")
        print(f"tamper_detected={detected}/{args.attempts}")
        return 0 if detected == args.attempts else 1
    finally:
        connections.close_all()
        _database(bench_url, create=False)


def _database(url: str, *, create: bool) -> str:
    """Drop ``medportal_bench_audit`` on the server of ``url`` (and create it afresh); its URL."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("bench/audit_tamper.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    params = {k.lower(): config[k] or None for k in ("HOST", "PORT", "USER", "PASSWORD")}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        if create:
            admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    userinfo = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    return f"postgres://{userinfo}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{BENCH_DB}"


if __name__ == "__main__":
    sys.exit(main())
