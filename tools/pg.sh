#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests, on 127.0.0.1, in a project-local folder.
#
#   tools/pg.sh start   create the cluster if needed, start it, print its URL
#   tools/pg.sh url     print the URL of the running server
#   tools/pg.sh stop    stop it and delete the cluster
#   tools/pg.sh install make sure initdb/pg_ctl are there (apt-get as root), start nothing
#
# CLEARHOUSE_PG_DIR picks the folder (default .tools/pg/default; the pytest fixture uses one per
# session so parallel runs never share a server). initdb/pg_ctl come from PATH, then
# /usr/lib/postgresql/*/bin; when missing, Debian's `postgresql` package is installed with apt-get
# (only as root). Exit code 3 means "PostgreSQL is not available here" (callers skip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CLEARHOUSE_PG_DIR:-$ROOT/.tools/pg/default}"
USER_NAME=clearhouse
# The cluster lives in $DIR/data, or where $DIR/datadir points when the server's user cannot reach
# the project folder (as root the server runs as 'postgres', and a clone under /root is private).
data_dir() {
    if [[ -f "$DIR/datadir" ]]; then cat "$DIR/datadir"; else echo "$DIR/data"; fi
}

find_bin() {
    local name="$1" candidate
    if candidate="$(command -v "$name" 2>/dev/null)"; then echo "$candidate"; return 0; fi
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$candidate/$name" ]]; then echo "$candidate/$name"; return 0; fi
    done
    return 1
}

ensure_binaries() {
    if find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null; then return 0; fi
    if [[ "$(id -u)" != 0 ]]; then
        echo "pg.sh: PostgreSQL (initdb, pg_ctl) is not installed and we are not root:" \
             "install Debian's 'postgresql' package to run the PostgreSQL tests" >&2
        exit 3
    fi
    echo "pg.sh: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null || {
        echo "pg.sh: postgresql installed but initdb/pg_ctl not found" >&2; exit 3; }
}

# PostgreSQL refuses to run as root: as root, run the server as the 'postgres' system user.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_url() {
    echo "postgresql+psycopg://$USER_NAME@127.0.0.1:$(cat "$DIR/port")/postgres"
}

is_running() {
    local data; data="$(data_dir)"
    [[ -f "$data/postmaster.pid" ]] && as_owner "$(find_bin pg_ctl)" -D "$data" status >/dev/null 2>&1
}

start() {
    ensure_binaries
    if is_running; then print_url; return 0; fi
    mkdir -p "$DIR"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$DIR"
        if ! runuser -u postgres -- test -w "$DIR" 2>/dev/null && [[ ! -f "$DIR/datadir" ]]; then
            local outside; outside="$(mktemp -d "${TMPDIR:-/tmp}/clearhouse-pg.XXXXXX")"
            chown postgres "$outside"
            echo "$outside/data" >"$DIR/datadir"
        fi
    fi
    local DATA; DATA="$(data_dir)"
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        as_owner "$(find_bin initdb)" -D "$DATA" -U "$USER_NAME" --auth=trust --encoding=UTF8 \
            --no-locale >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    free_port >"$DIR/port"
    # synchronous_commit=on is the default; written out because the store refuses anything else.
    local log; log="$(dirname "$DATA")/server.log"  # written by the server's user
    as_owner "$(find_bin pg_ctl)" -D "$DATA" -l "$log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -c port=$(cat "$DIR/port") -c unix_socket_directories='' -c synchronous_commit=on -c max_connections=200" \
        >/dev/null || { cat "$log" >&2; exit 1; }
    print_url
}

stop() {
    local data; data="$(data_dir)"
    if [[ -d "$data" ]] && find_bin pg_ctl >/dev/null; then
        as_owner "$(find_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [[ -f "$DIR/datadir" ]]; then rm -rf "$(dirname "$data")"; fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) ensure_binaries ;;
    url) is_running && print_url || { echo "pg.sh: not running" >&2; exit 1; } ;;
    *) echo "usage: $0 start|stop|url|install" >&2; exit 2 ;;
esac
