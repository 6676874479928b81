#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the lab's tests and torture runs.
#   tools/pg.sh up     initdb into a new temporary directory, start it, create database fmlab
#   tools/pg.sh down   stop it and delete the directory
#   tools/pg.sh url    print the connection URL of the running server
# State lives in .pg/ at the project's root (ignored by git): the data directory's path and
# the URL. PostgreSQL is installed from Debian's packages when no server binaries are found.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.pg
PORT=${FMLAB_PG_PORT:-54329}

bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$found" ] && command -v pg_ctl >/dev/null; then found=$(dirname "$(command -v pg_ctl)"); fi
  echo "$found"
}

as_owner() {
  # initdb and postgres refuse to run as root; Debian's package makes a postgres user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up() {
  if [ -f "$STATE/url" ] && down_quietly_if_dead; then cat "$STATE/url"; return; fi
  local bin
  bin=$(bindir)
  if [ -z "$bin" ]; then
    echo "pg: installing PostgreSQL from Debian's packages" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    bin=$(bindir)
  fi
  local data
  data=$(mktemp -d -t fmlab-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$data"
  as_owner "$bin/initdb" -D "$data/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
  # Durability as a real deployment keeps it (fsync on), a socket in the data directory,
  # TCP on loopback only, and enough connections for several worker processes of threads.
  as_owner "$bin/pg_ctl" -D "$data/data" -l "$data/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $PORT -k $data -c max_connections=200" start >/dev/null
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres fmlab
  mkdir -p "$STATE"
  echo "$data" > "$STATE/dir"
  echo "postgresql://postgres@127.0.0.1:$PORT/fmlab" > "$STATE/url"
  cat "$STATE/url"
}

down_quietly_if_dead() {
  # The server in .pg/ answers: keep it. It does not (a reboot, a killed session): forget it.
  local data
  data=$(cat "$STATE/dir" 2>/dev/null || true)
  if [ -n "$data" ] && as_owner "$(bindir)/pg_ctl" -D "$data/data" status >/dev/null 2>&1; then
    return 0
  fi
  rm -rf "$STATE" "$data"
  return 1
}

down() {
  [ -f "$STATE/dir" ] || return 0
  local data
  data=$(cat "$STATE/dir")
  as_owner "$(bindir)/pg_ctl" -D "$data/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$data" "$STATE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  url) cat "$STATE/url" ;;
  *) echo "usage: tools/pg.sh up|down|url" >&2; exit 2 ;;
esac
