#!/usr/bin/env bash
# Make sure the database servers the test suite needs are up. Idempotent; safe to run repeatedly.
#
#   PostgreSQL  127.0.0.1:5432, user postgres (trust auth from 127.0.0.1), database "test"
#   MariaDB     127.0.0.1:3306, user root with an empty password, database "test"
#
# For each server: reachable and usable -> nothing to do; installed but stopped -> start it and wait
# until it answers (bounded wait); not installed -> install it from Debian's packages, start it, create
# the database and the login the tests use. Prints one line per service saying what it did.
# Needs root (or passwordless sudo) only when it has to start, install or configure something.
# Environment: CONNLINT_SERVICE_WAIT (seconds to wait for a server to come up, default 60).
set -euo pipefail

WAIT_SECONDS="${CONNLINT_SERVICE_WAIT:-60}"
PG_HOST=127.0.0.1
PG_PORT=5432
MY_HOST=127.0.0.1
MY_PORT=3306
export DEBIAN_FRONTEND=noninteractive
export PGCONNECT_TIMEOUT=3

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
fi
as_root() { "${SUDO[@]}" "$@"; }

# Each service runs in its own "set -e" subshell (see the bottom): a failing "die" ends that subshell.
die() {
    echo "$1: FAILED: $2" >&2
    return 1
}

# report SERVICE ACTION...: the one line per service, actions joined with "; "
report() {
    local service=$1 line
    shift
    line=$(printf '%s; ' "$@")
    echo "$service: ${line%; }"
}

# apt output goes to a log that is shown only when the install fails
APT_LOG="${TMPDIR:-/tmp}/connlint-ensure-services-apt.log"
apt_install() {
    if ! as_root apt-get update >"$APT_LOG" 2>&1; then
        echo "warning: apt-get update failed (trying the existing package lists); see $APT_LOG" >&2
    fi
    if ! as_root apt-get install -y --no-install-recommends "$@" </dev/null >>"$APT_LOG" 2>&1; then
        tail -n 20 "$APT_LOG" >&2
        return 1
    fi
}

# quietly CMD...: run CMD, showing its output only if it fails (keeps the report to one line per service)
quietly() {
    local out
    if ! out=$("$@" 2>&1 </dev/null); then
        printf '%s\n' "$out" >&2
        return 1
    fi
}

# wait_until SECONDS CMD...: poll CMD once a second; succeed as soon as it does, fail after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# ------------------------------------------------------------------------------------------ PostgreSQL

pg_usable() {  # the exact login the tests use
    command -v psql >/dev/null 2>&1 &&
        psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d test -Atqc 'SELECT 1' </dev/null >/dev/null 2>&1
}

pg_answers() {  # the server is up (whatever it thinks of our login)
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
}

pg_version() {  # the newest installed server version with a cluster config
    { ls /etc/postgresql 2>/dev/null || true; } | sort -V | tail -n 1
}

pg_psql_local() {  # as the postgres OS user over the Unix socket (peer auth): works before trust is set
    as_root runuser -u postgres -- psql -w -p "$PG_PORT" -Atq "$@" </dev/null
}

ensure_postgresql() {
    local actions=()
    if pg_usable; then
        echo "postgresql: already running at $PG_HOST:$PG_PORT, nothing to do"
        return 0
    fi
    if [ -z "$(pg_version)" ] || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        apt_install postgresql || die postgresql "apt-get install postgresql failed"
        actions+=("installed $(dpkg-query -W -f='${Package} ${Version}' "postgresql-$(pg_version)" 2>/dev/null || echo postgresql)")
    fi
    local version
    version="$(pg_version)"
    [ -n "$version" ] || die postgresql "no cluster configuration under /etc/postgresql after install"
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        quietly as_root pg_createcluster "$version" main || die postgresql "pg_createcluster $version main failed"
        actions+=("created cluster $version/main")
    fi
    if ! pg_answers; then
        as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
        quietly as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
            die postgresql "pg_ctlcluster $version main start failed (see /var/log/postgresql/)"
        wait_until "$WAIT_SECONDS" pg_answers ||
            die postgresql "cluster $version/main started but not ready after ${WAIT_SECONDS}s"
        actions+=("started cluster $version/main")
    fi
    if ! pg_usable; then
        # trust for TCP logins from 127.0.0.1 (first matching line wins), then the database
        local hba
        hba="$(pg_psql_local -c 'SHOW hba_file')" || die postgresql "cannot connect as the postgres OS user"
        if ! as_root grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
            as_root sed -i '1i # added by connlint .ci/ensure-services.sh\nhost all all 127.0.0.1/32 trust' "$hba"
            pg_psql_local -c 'SELECT pg_reload_conf()' >/dev/null
            actions+=("enabled trust auth for 127.0.0.1")
            sleep 1
        fi
        if [ "$(pg_psql_local -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
            pg_psql_local -c 'CREATE DATABASE test' >/dev/null || die postgresql "CREATE DATABASE test failed"
            actions+=("created database test")
        fi
        pg_usable || die postgresql "still cannot log in as postgres to database test at $PG_HOST:$PG_PORT"
    fi
    report postgresql "${actions[@]}" "ready at $PG_HOST:$PG_PORT"
}

# ------------------------------------------------------------------------------------------ MariaDB

my_client() {
    if command -v mariadb >/dev/null 2>&1; then echo mariadb; else echo mysql; fi
}

my_usable() {  # root, empty password, over TCP, database test
    command -v "$(my_client)" >/dev/null 2>&1 &&
        "$(my_client)" --no-defaults --connect-timeout=3 -h "$MY_HOST" -P "$MY_PORT" -uroot \
            -D test -e 'SELECT 1' </dev/null >/dev/null 2>&1
}

my_answers() {  # "mysqladmin ping" exits 0 when the server is up, even if our login is refused
    local admin=mariadb-admin
    command -v "$admin" >/dev/null 2>&1 || admin=mysqladmin
    "$admin" --no-defaults --connect-timeout=2 -h "$MY_HOST" -P "$MY_PORT" -uroot ping </dev/null
}

my_local() {  # root over the Unix socket (unix_socket auth as OS root): works before the TCP login does
    as_root "$(my_client)" -uroot "$@" </dev/null
}

ensure_mariadb() {
    local actions=()
    if my_usable; then
        echo "mariadb: already running at $MY_HOST:$MY_PORT, nothing to do"
        return 0
    fi
    if [ ! -x /usr/sbin/mariadbd ]; then
        apt_install mariadb-server || die mariadb "apt-get install mariadb-server failed"
        actions+=("installed $(dpkg-query -W -f='${Package} ${Version}' mariadb-server 2>/dev/null || echo mariadb-server)")
    fi
    if [ ! -d /var/lib/mysql/mysql ]; then
        quietly as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db ||
            die mariadb "mariadb-install-db failed"
        actions+=("initialised /var/lib/mysql")
    fi
    if ! my_answers >/dev/null 2>&1; then
        as_root install -d -o mysql -g mysql -m 755 /run/mysqld
        quietly as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql ||
            die mariadb "start-stop-daemon could not start /usr/sbin/mariadbd"
        wait_until "$WAIT_SECONDS" my_answers ||
            die mariadb "mariadbd started but not answering after ${WAIT_SECONDS}s (see /var/log/mysql/error.log)"
        actions+=("started mariadbd")
    fi
    if ! my_usable; then
        # Debian's root@localhost logs in only via unix_socket; the tests log in over TCP with no password
        my_local -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
                     CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                     GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
                     CREATE DATABASE IF NOT EXISTS test;
                     FLUSH PRIVILEGES;" || die mariadb "cannot configure root over the Unix socket"
        actions+=("enabled root login with an empty password over TCP" "ensured database test")
        my_usable || die mariadb "still cannot log in as root to database test at $MY_HOST:$MY_PORT"
    fi
    report mariadb "${actions[@]}" "ready at $MY_HOST:$MY_PORT"
}

# Not "ensure_x || status=1": bash ignores "set -e" inside anything run on the left of "||".
status=0
set +e
(set -e; ensure_postgresql)
[ $? -eq 0 ] || status=1
(set -e; ensure_mariadb)
[ $? -eq 0 ] || status=1
exit "$status"
