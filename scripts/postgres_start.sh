#!/usr/bin/env bash
# Start a PostgreSQL server for goal searches (optuna storage) in DIR and print its storage URL.
#   bash scripts/postgres_start.sh DIR [--port PORT] [--db NAME]
#   url=$(bash scripts/postgres_start.sh runs/pg)          # stdout: the URL only
#   infomorphic search --storage "$url" --study-name s1 ...
#   bash scripts/postgres_stop.sh runs/pg
#
# - Installs Debian's postgresql package when no server is found (as root: apt-get update and
#   apt-get install -y postgresql; otherwise it says what to run).  PG_BIN=/path/to/bin picks
#   another installation (the folder holding initdb, pg_ctl, psql).
# - A new DIR becomes a cluster: DIR/data (the database files), DIR/postgres.log, the unix socket
#   in DIR, DIR/url.  Run as root, the server runs as the system user postgres (PostgreSQL refuses
#   to run as root) and DIR belongs to it; otherwise as the calling user.
# - It listens on 127.0.0.1 only, on a free port (or --port, which is kept for later starts), and
#   trusts every connection from this machine: no password (the user is postgres).  Workers on
#   other machines reach it through an SSH tunnel (see the README), with the same URL.
# - Creates the database NAME (default infomorphic) when missing and prints
#   postgresql+psycopg://postgres@127.0.0.1:PORT/NAME (psycopg 3: pip install 'infomorphic[postgres]').
# - Idempotent: on a running DIR it prints the same URL; a stopped DIR is started again with its
#   data and port.  Errors are one line "error: ..." on stderr, exit 1 (2 for bad arguments).
set -euo pipefail

die() { echo "error: $*" >&2; exit "${code:-1}"; }
usage() { code=2 die "$* (usage: bash scripts/postgres_start.sh DIR [--port PORT] [--db NAME])"; }
say() { echo "postgres_start: $*" >&2; }

dir="" port="" db="infomorphic"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --port) [ "$#" -ge 2 ] || usage "--port needs a value"; port=$2; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    --db) [ "$#" -ge 2 ] || usage "--db needs a value"; db=$2; shift 2 ;;
    --db=*) db=${1#--db=}; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage "unknown option $1" ;;
    *) [ -z "$dir" ] || usage "one DIR only, got $dir and $1"; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || usage "give the cluster folder DIR"
if [ -n "$port" ] && ! { [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; }; then
  usage "--port must be a number from 1 to 65535, got '$port'"
fi
[[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || usage "--db must be letters, digits and _ (not first a digit), got '$db'"

# ------------------------------------------------------------------ the server's programs
find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] || die "PG_BIN=$PG_BIN holds no initdb and pg_ctl"
    echo "$PG_BIN"
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  found=$(command -v initdb 2>/dev/null || true)
  if [ -n "$found" ] && [ -x "$(dirname "$found")/pg_ctl" ]; then dirname "$found"; fi
}
bin=$(find_bin)
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ]; then
    die "PostgreSQL is not installed and installing it needs root: run 'sudo apt-get update && sudo apt-get install -y postgresql' (Debian/Ubuntu), or set PG_BIN to the folder holding initdb and pg_ctl"
  fi
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get here: install the PostgreSQL server and set PG_BIN to the folder holding initdb and pg_ctl"
  say "installing Debian's postgresql package (apt-get update; apt-get install -y postgresql)"
  log=$(mktemp)
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >"$log" 2>&1; then
    last=$(grep -E "^(E|W):" "$log" | tail -n 1 || tail -n 1 "$log")
    rm -f "$log"
    die "installing postgresql with apt-get failed (${last:-see the output of apt-get}); install it by hand: apt-get update && apt-get install -y postgresql"
  fi
  rm -f "$log"
  bin=$(find_bin)
  [ -n "$bin" ] || die "apt-get installed postgresql but no initdb was found in /usr/lib/postgresql/*/bin"
fi

# --------------------------------------------------------------------- who runs it
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || die "running as root, but there is no system user postgres to run the server (it comes with Debian's postgresql package); create it, or run this script as another user"
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd -P)
cd /  # the server user may not be allowed into the caller's folder
data="$dir/data"
url_file="$dir/url"

is_cluster() { [ -f "$data/PG_VERSION" ] && [ -f "$data/postgresql.conf" ]; }
if ! is_cluster; then
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty and not a cluster made by this script (no $data/PG_VERSION): give a new or empty folder"
fi
if [ "$owner" = postgres ]; then
  chown "$owner" "$dir" && chmod 700 "$dir" || die "cannot give $dir to the user postgres"
  as_owner test -w "$dir" -a -x "$dir" \
    || die "the user postgres cannot reach $dir (a folder above it is not open to other users, e.g. mode 700): choose a DIR under /tmp, /var/tmp or another folder that others may enter"
fi

# ------------------------------------------------------------------- port helpers
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p tries=0
  while [ "$tries" -lt 200 ]; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    listening "$p" || { echo "$p"; return; }
    tries=$((tries + 1))
  done
  die "found no free port between 20000 and 60000; give --port"
}
conf_port() { sed -n "s/^port = \([0-9]*\).*/\1/p" "$data/postgresql.conf" | tail -n 1; }
print_url() {
  local p=$1
  echo "postgresql+psycopg://postgres@127.0.0.1:$p/$db" >"$url_file.tmp" && mv "$url_file.tmp" "$url_file"
  cat "$url_file"
}
psql_() { "$bin/psql" -X -q -h "$dir" -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA -c "$2"; }
ensure_db() {
  local p=$1 out
  out=$(psql_ "$p" "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>&1) \
    || die "the server in $dir (port $p) does not answer: $(echo "$out" | tail -n 1)"
  if [ "$out" != 1 ]; then
    out=$(psql_ "$p" "CREATE DATABASE \"$db\"" 2>&1) || die "cannot create database $db: $(echo "$out" | tail -n 1)"
    say "created database $db"
  fi
}
running() { as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

# -------------------------------------------------------------- already running
if is_cluster && running; then
  current=$(conf_port)
  if [ -n "$port" ] && [ "$port" != "$current" ]; then
    die "the server in $dir is already running on port $current, not $port: stop it first (bash scripts/postgres_stop.sh $dir) to move it"
  fi
  ensure_db "$current"
  print_url "$current"
  exit 0
fi

# ----------------------------------------------------------------------- new cluster
if ! is_cluster; then
  [ -n "$port" ] && listening "$port" && die "port $port is in use by another program: give another --port, or leave it out for a free one"
  [ -n "$port" ] || port=$(free_port)
  socket="$dir/.s.PGSQL.$port"
  [ "${#socket}" -le 100 ] || die "the unix socket $socket would be longer than 100 characters (the system's limit is about 107): choose a shorter DIR"
  say "creating a cluster in $data ($(as_owner "$bin/initdb" --version))"
  out=$(as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C 2>&1) \
    || die "initdb failed: $(echo "$out" | grep -v '^$' | tail -n 1)"
  {
    echo ""
    echo "# written by scripts/postgres_start.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 200"
    echo "port = $port"
  } | as_owner tee -a "$data/postgresql.conf" >/dev/null
  # connections from this machine only (the socket and 127.0.0.1), no password
  printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 trust" | as_owner tee "$data/pg_hba.conf" >/dev/null
else
  stored=$(conf_port)
  if [ -n "$port" ] && [ "$port" != "$stored" ]; then
    listening "$port" && die "port $port is in use by another program: give another --port"
    socket="$dir/.s.PGSQL.$port"
    [ "${#socket}" -le 100 ] || die "the unix socket $socket would be longer than 100 characters: choose a shorter DIR"
    echo "port = $port" | as_owner tee -a "$data/postgresql.conf" >/dev/null
  else
    port=$stored
    listening "$port" && die "port $port of the cluster in $dir is in use by another program: start it with --port PORT (another port)"
  fi
fi

# --------------------------------------------------------------------------- start
log="$dir/postgres.log"
as_owner touch "$log"
if ! as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
  reason=$(grep -E "FATAL|ERROR|could not" "$log" | tail -n 1 || true)
  die "the server in $dir did not start (${reason:-see $log}); its log: $log"
fi
say "server running in $dir on 127.0.0.1:$port (log $log; stop: bash scripts/postgres_stop.sh $dir)"
ensure_db "$port"
print_url "$port"
