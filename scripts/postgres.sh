# Sourced by scripts/test: makes sure a PostgreSQL server answers at $YIBAO_TEST_DATABASE_URL.
# Starts the machine's cluster when it is installed but stopped; under CI installs Debian's
# PostgreSQL when it is missing. Changes nothing else on a developer's machine unless asked
# (YIBAO_TEST_SET_POSTGRES_PASSWORD=1). Prints what it did; returns non-zero when no server can be had.

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
        # A fresh Debian install wants a password over TCP. Setting one changes the machine, so it
        # is done only when asked (YIBAO_TEST_SET_POSTGRES_PASSWORD=1) or on a CI machine, and said.
        if [ "$(id -u)" = 0 ] && { [ "${CI:-}" = "true" ] || [ "${YIBAO_TEST_SET_POSTGRES_PASSWORD:-}" = 1 ]; }; then
            echo "PostgreSQL refuses passwordless TCP logins: setting the password of its role postgres to 'yibao-test'"
            if su postgres -c "psql -Atqc \"ALTER USER postgres PASSWORD 'yibao-test'\"" >/dev/null 2>&1; then
                export YIBAO_TEST_DATABASE_URL="postgres://postgres:yibao-test@127.0.0.1:5432/postgres"
                pg_answers "$YIBAO_TEST_DATABASE_URL" && return 0
            fi
        elif [ "$(id -u)" = 0 ]; then
            echo "PostgreSQL runs but refuses $url: set YIBAO_TEST_DATABASE_URL to a URL that works," >&2
            echo "or run with YIBAO_TEST_SET_POSTGRES_PASSWORD=1 to let this script set the password of" >&2
            echo "the role postgres to 'yibao-test' (it changes your PostgreSQL: nothing is changed silently)" >&2
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
