#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as the
# superuser POSTGRES_USER: the least-privilege roles of README.md, "Least privilege".
#   solarx_owner    NOLOGIN, owns the database and (after migration 0008) every schema object
#   solarx_migrate  LOGIN, member of solarx_owner: the compose file's one-shot `migrate`
#   solarx_app      LOGIN, the service's runtime role: rows only, granted by migration 0008
# Passwords come from the compose secrets (read by psql itself, so they are on no command line)
# and are quoted by psql (:'var').
set -euo pipefail

psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" <<'SQL'
\set migrate_password `cat /run/secrets/solarx_migrate_password`
\set app_password `cat /run/secrets/solarx_app_password`
CREATE ROLE solarx_owner NOLOGIN;
CREATE ROLE solarx_migrate LOGIN PASSWORD :'migrate_password' IN ROLE solarx_owner;
CREATE ROLE solarx_app LOGIN PASSWORD :'app_password';
ALTER DATABASE :"db" OWNER TO solarx_owner;
SQL
