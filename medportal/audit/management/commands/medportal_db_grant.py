"""Give the application's PostgreSQL role what it needs, and no more, after ``migrate``.

Run as the role that owns the tables (the one migrations run as):

    python manage.py medportal_db_grant medportal_app

The application's role then reads and writes every table but owns none, so it cannot
disable a trigger or alter a table; on the audit table it may only SELECT and INSERT.
Idempotent: run it after every migrate (docker-compose.yml's migrate service does).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from medportal.audit.db_guards import TABLE, _quote, audit_privileges_restrict


class Command(BaseCommand):
    help = (
        "Grant the application's database role its privileges (PostgreSQL; run as the owner after migrate)."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role the application connects as (it must own no table)")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are PostgreSQL's; the embedded SQLite has none.")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise CommandError(f"There is no database role {role!r}; create it first (CREATE ROLE).")
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tableowner = %s",
                [role],
            )
            owned = [row[0] for row in cursor.fetchall()]
            if owned:
                raise CommandError(
                    f"The role {role!r} owns {', '.join(owned[:5])}: the application's role must own no "
                    "table (run migrations as another role, and REASSIGN OWNED to it)."
                )
            quoted = _quote(role)
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
            audit_privileges_restrict(cursor)
            cursor.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {quoted}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{role}: SELECT, INSERT, UPDATE, DELETE on every table; SELECT and INSERT only on {TABLE}."
            )
        )
