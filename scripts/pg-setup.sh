#!/usr/bin/env bash
# Start the local PostgreSQL 15 cluster and create the Tombola test role and databases (idempotent).
#
#   - installs the Debian package postgresql when PostgreSQL 15 is absent (as root);
#   - creates the cluster 15/main if it does not exist, starts it if it is down;
#   - waits until it accepts TCP connections on 127.0.0.1:5432;
#   - creates (or refreshes) role tombola_test / password tombola_test, LOGIN CREATEDB, and
#     a member of pg_signal_backend: `DROP DATABASE ... WITH (FORCE)` must be able to end an
#     autovacuum worker busy in a test database, which PostgreSQL 15 refuses to other roles;
#   - creates databases tombola_test_core and tombola_test_business owned by it.
#
# Tests connect over TCP with a password (the unix socket uses peer auth). The last line printed
# is the SQLAlchemy DSN base the tests take from TOMBOLA_TEST_PG_DSN.
set -euo pipefail

PG_VERSION=15
PG_CLUSTER=main
PG_HOST=127.0.0.1
PG_PORT=5432
ROLE=tombola_test
PASSWORD=tombola_test
DATABASES=(tombola_test_core tombola_test_business)
DSN="postgresql+psycopg://${ROLE}:${PASSWORD}@${PG_HOST}:${PG_PORT}/"

# The postgres user may not be able to enter the caller's directory (e.g. a clone under /root).
cd /

log() { printf '[pg-setup] %s\n' "$*" >&2; }
die() { printf '[pg-setup] ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the postgres OS user: runuser as root, directly as postgres, else sudo -n.
as_postgres() {
    if is_root; then
        runuser -u postgres -- "$@"
    elif [ "$(id -un)" = postgres ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n -u postgres -- "$@"
    else
        die "need root (or passwordless sudo) to run as the postgres user: $*"
    fi
}

# Run a privileged cluster command (pg_ctlcluster, pg_createcluster) as root or postgres.
as_admin() {
    if is_root || [ "$(id -un)" = postgres ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n -- "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"

# ------------------------------------------------------------------------- install
if [ ! -x "$PG_BIN/postgres" ]; then
    is_root || die "PostgreSQL ${PG_VERSION} is not installed. As root: apt-get update && apt-get install -y postgresql"
    log "PostgreSQL ${PG_VERSION} absent: installing the Debian package postgresql"
    export DEBIAN_FRONTEND=noninteractive
    # C.UTF-8 so that the cluster the package creates is UTF8, not SQL_ASCII.
    LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get update -qq
    LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get install -y -qq --no-install-recommends "postgresql-${PG_VERSION}"
    [ -x "$PG_BIN/postgres" ] || die "installing postgresql did not provide PostgreSQL ${PG_VERSION}"
fi

# ------------------------------------------------------------------------- cluster
cluster_line() { pg_lsclusters --no-header 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c'; }

if [ -z "$(cluster_line)" ]; then
    log "creating cluster ${PG_VERSION}/${PG_CLUSTER}"
    as_admin env LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --locale C.UTF-8 -p "$PG_PORT" \
        "$PG_VERSION" "$PG_CLUSTER" >/dev/null
fi

port="$(cluster_line | awk '{print $3}')"
[ "$port" = "$PG_PORT" ] || die "cluster ${PG_VERSION}/${PG_CLUSTER} listens on port $port, expected $PG_PORT"

if [ "$(cluster_line | awk '{print $4}')" != online ]; then
    log "starting cluster ${PG_VERSION}/${PG_CLUSTER}"
    as_admin pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi

# pg_isready: 0 accepting, 1 rejecting (starting up), 2 no response, 3 bad parameters.
ready=0
for _ in $(seq 1 60); do
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 1; then ready=1; break; fi
    sleep 0.5
done
[ "$ready" = 1 ] || die "PostgreSQL does not accept connections on ${PG_HOST}:${PG_PORT} (see /var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log)"

# ------------------------------------------------------------------------- role and databases
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"; }

# The password and attributes are (re)set every run so that a drifted role is repaired.
psql_admin <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}') THEN
        CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
    ELSE
        ALTER ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
    END IF;
END
\$\$;
GRANT pg_signal_backend TO ${ROLE};
SQL

for db in "${DATABASES[@]}"; do
    exists="$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")"
    if [ "$exists" != 1 ]; then
        log "creating database ${db}"
        as_postgres createdb -p "$PG_PORT" -O "$ROLE" -E UTF8 -T template0 "$db"
    fi
done

# Check the path the tests use: TCP + password.
PGPASSWORD="$PASSWORD" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$ROLE" -d "${DATABASES[0]}" \
    -v ON_ERROR_STOP=1 -tA -c 'SELECT 1' >/dev/null \
    || die "cannot log in as ${ROLE} over TCP ${PG_HOST}:${PG_PORT} (check pg_hba.conf)"

log "PostgreSQL ${PG_VERSION} ready; test DSN:"
echo "$DSN"
