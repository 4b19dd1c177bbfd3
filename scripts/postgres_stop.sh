#!/usr/bin/env bash
# Stop the PostgreSQL server that scripts/postgres_start.sh started in DIR (its data stay in DIR;
# start it again with postgres_start.sh DIR, or delete DIR).
#   bash scripts/postgres_stop.sh DIR
# A DIR whose server is not running is left as it is (exit 0).  Errors are one line "error: ..."
# on stderr, exit 1 (2 for bad arguments).
set -euo pipefail

die() { echo "error: $*" >&2; exit "${code:-1}"; }
[ "$#" -eq 1 ] && [ "${1#-}" = "$1" ] || code=2 die "give the cluster folder DIR (usage: bash scripts/postgres_stop.sh DIR)"
dir=$1
[ -d "$dir" ] || die "$dir does not exist"
dir=$(cd "$dir" && pwd -P)
cd /
data="$dir/data"
[ -f "$data/PG_VERSION" ] || die "$dir is not a cluster made by scripts/postgres_start.sh (no $data/PG_VERSION)"

bin=${PG_BIN:-/usr/lib/postgresql/$(cat "$data/PG_VERSION")/bin}
if [ ! -x "$bin/pg_ctl" ]; then
  found=$(command -v pg_ctl 2>/dev/null || true)
  [ -n "$found" ] || die "no pg_ctl for PostgreSQL $(cat "$data/PG_VERSION") (looked in $bin): set PG_BIN to the folder holding pg_ctl"
  bin=$(dirname "$found")
fi
if [ "$(id -u)" = 0 ]; then
  owner=$(stat -c %U "$data")
  [ "$owner" != root ] || die "$data belongs to root: PostgreSQL never runs as root, so no server of it can be running"
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  as_owner() { "$@"; }
fi

if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  echo "postgres_stop: the server in $dir is not running" >&2
  exit 0
fi
out=$(as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop 2>&1) || die "pg_ctl stop failed: $(echo "$out" | tail -n 1)"
echo "postgres_stop: stopped the server in $dir" >&2
