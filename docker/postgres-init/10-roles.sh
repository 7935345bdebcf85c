#!/bin/sh
# The database roles of docker-compose.yml (run by the postgres image when the database volume is
# first created; for an existing volume run it once by hand:
#   docker compose exec db sh /docker-entrypoint-initdb.d/10-roles.sh
# it is idempotent).
#
# medportal_owner owns the schema and every table: migrations run as it (the migrate service).
# medportal_app is what web, workers and the DIMSE receiver connect as: it owns nothing, so it
# cannot alter a table or lift a trigger; `manage.py medportal_db_grant medportal_app` (run by the
# migrate service after each migrate) grants it rows of every table, and on the audit table only
# SELECT and INSERT.
set -eu
: "${MEDPORTAL_DB_OWNER_PASSWORD:?}" "${MEDPORTAL_DB_APP_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_password="$MEDPORTAL_DB_OWNER_PASSWORD" -v app_password="$MEDPORTAL_DB_APP_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE medportal_owner LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'medportal_owner')
\gexec
SELECT 'CREATE ROLE medportal_app LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'medportal_app')
\gexec
ALTER ROLE medportal_owner WITH LOGIN NOSUPERUSER PASSWORD :'owner_password';
ALTER ROLE medportal_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
SELECT format('ALTER DATABASE %I OWNER TO medportal_owner', current_database())
\gexec
ALTER SCHEMA public OWNER TO medportal_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO medportal_app;
-- Tables an earlier version created as the superuser go to the owner (a fresh database has none).
SELECT format('ALTER TABLE public.%I OWNER TO medportal_owner', tablename)
  FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'medportal_owner'
\gexec
SELECT format('ALTER SEQUENCE public.%I OWNER TO medportal_owner', sequencename)
  FROM pg_sequences WHERE schemaname = 'public' AND sequenceowner <> 'medportal_owner'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
                    WHERE c.relname = sequencename AND d.deptype IN ('a', 'i'))
\gexec
SELECT format('ALTER FUNCTION public.%I() OWNER TO medportal_owner', proname)
  FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'medportal\_%'
\gexec
SQL
