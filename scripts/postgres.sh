# Sourced by scripts/test: makes sure a PostgreSQL server answers at $YIBAO_TEST_DATABASE_URL.
# Starts the machine's cluster when it is installed but stopped; under CI installs Debian's
# PostgreSQL when it is missing. Prints what it did; returns non-zero when no server can be had.

pg_answers() {
    psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
    local url="$1"
    command -v psql >/dev/null 2>&1 && pg_answers "$url" && return 0
    if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
        echo "PostgreSQL is not installed: installing Debian's package"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || return 1
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
        for _ in $(seq 1 30); do
            pg_answers "$url" && return 0
            sleep 1
        done
        # A fresh Debian install wants a password over TCP: give the postgres role a local one.
        if [ "$(id -u)" = 0 ] && su postgres -c "psql -Atqc \"ALTER USER postgres PASSWORD 'yibao-test'\"" >/dev/null 2>&1; then
            export YIBAO_TEST_DATABASE_URL="postgres://postgres:yibao-test@127.0.0.1:5432/postgres"
            pg_answers "$YIBAO_TEST_DATABASE_URL" && return 0
        fi
    fi
    return 1
}

# Test databases left behind by an interrupted run.
drop_stale_test_databases() {
    local url="$1" name
    for name in $(psql "$url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'yibao\_test\_%'" 2>/dev/null); do
        psql "$url" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
