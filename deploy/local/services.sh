#!/usr/bin/env bash
# Local services for dev and test: Redis, MariaDB, SecantusDB (MongoDB wire) and
# moto_server (S3/SQS).
#
#   deploy/local/services.sh up       start whatever does not answer, then provision
#   deploy/local/services.sh status   which ports answer
#   deploy/local/services.sh down     stop what this script started
#
# Idempotent: a service whose port already answers is left alone, so this works
# beside the services a machine starts itself. Redis and MariaDB come from
# Debian's packages (installed when missing and running as root); SecantusDB and
# moto_server come from the project's virtualenv (.venv), dev/test only.
# Production points the same settings at real servers and never runs this.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${TOONPICK_RUN_DIR:-$ROOT/.run}
VENV=${TOONPICK_VENV:-$ROOT/.venv}
REDIS_PORT=${TOONPICK_REDIS_PORT:-6379}
MARIADB_PORT=${TOONPICK_MARIADB_PORT:-3306}
MONGO_PORT=${TOONPICK_MONGO_PORT:-27017}
MOTO_PORT=${TOONPICK_MOTO_PORT:-5000}
DB_USER=${TOONPICK_DB_USER:-toonpick}
DB_PASSWORD=${TOONPICK_DB_PASSWORD:-toonpick}

mkdir -p "$RUN_DIR"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    answers "$1" && return 0
    sleep 0.1
  done
  die "$2 did not answer on 127.0.0.1:$1 within $3 s (see $RUN_DIR/$2.log)"
}

apt_install() {  # package...
  if [ "$(id -u)" != 0 ]; then
    die "$* missing and not running as root: install with 'sudo apt-get install -y $*'"
  fi
  say "installing $* from Debian packages"
  if [ ! -f "$RUN_DIR/apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$RUN_DIR/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

up_redis() {
  answers "$REDIS_PORT" && { say "redis: already answering on $REDIS_PORT"; return; }
  command -v redis-server >/dev/null || apt_install redis-server
  say "redis: starting on $REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" \
    --pidfile "$RUN_DIR/redis.pid"
  wait_for "$REDIS_PORT" redis 20
}

up_mariadb() {
  if ! answers "$MARIADB_PORT"; then
    [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
    [ "$(id -u)" = 0 ] || die "mariadb is not running; start it as root or with your service manager"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    say "mariadb: starting on $MARIADB_PORT"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for "$MARIADB_PORT" mariadb 60
  else
    say "mariadb: already answering on $MARIADB_PORT"
  fi
  provision_mariadb
}

provision_mariadb() {
  # The project user owns every database named toonpick*: the main one, the test
  # profile's and the per-test databases the test suite creates and drops.
  local sql="CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON \`toonpick%\`.* TO '$DB_USER'@'localhost';
GRANT ALL ON \`toonpick%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON \`toonpick%\`.* TO '$DB_USER'@'%';
CREATE DATABASE IF NOT EXISTS toonpick CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS toonpick_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  if mysql -u"$DB_USER" -p"$DB_PASSWORD" -h127.0.0.1 -P"$MARIADB_PORT" -e "SELECT 1" \
      >/dev/null 2>&1 && mysql -u"$DB_USER" -p"$DB_PASSWORD" -h127.0.0.1 \
      -P"$MARIADB_PORT" -e "USE toonpick_test" >/dev/null 2>&1; then
    say "mariadb: user $DB_USER and databases ready"
    return
  fi
  # Debian's root logs in through the unix socket (unix_socket auth), not over TCP.
  if mysql -uroot -e "$sql" 2>/dev/null || mysql -uroot -h127.0.0.1 -P"$MARIADB_PORT" -e "$sql"; then
    say "mariadb: created user $DB_USER and databases toonpick, toonpick_test"
  else
    die "cannot log in to MariaDB as root to create user $DB_USER; run as root or create it by hand"
  fi
}

start_daemon() {  # name port command...
  local name=$1 port=$2
  shift 2
  if answers "$port"; then
    say "$name: already answering on $port"
    return
  fi
  [ -x "$1" ] || die "$1 not found: create the virtualenv first (./dev.sh setup)"
  say "$name: starting on $port"
  nohup setsid "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  wait_for "$port" "$name" 60
}

up_secantus() {
  mkdir -p "$RUN_DIR/mongo"
  start_daemon secantus "$MONGO_PORT" "$VENV/bin/secantusd-py" --host 127.0.0.1 \
    --port "$MONGO_PORT" --storage-path "$RUN_DIR/mongo"
}

up_moto() {
  start_daemon moto "$MOTO_PORT" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  # moto keeps everything in memory: buckets and queues are made again after a restart.
  "$VENV/bin/python" "$ROOT/deploy/local/provision_aws.py"
}

stop_pidfile() {  # name
  local pidfile="$RUN_DIR/$1.pid"
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then say "$1: stopped (pid $pid)"; fi
    rm -f "$pidfile"
  else
    say "$1: not started by this script"
  fi
}

status() {
  local name port
  for pair in "redis:$REDIS_PORT" "mariadb:$MARIADB_PORT" "secantus:$MONGO_PORT" "moto:$MOTO_PORT"; do
    name=${pair%%:*}
    port=${pair##*:}
    if answers "$port"; then say "$name: up ($port)"; else say "$name: down ($port)"; fi
  done
}

case "${1:-}" in
  up)
    up_redis
    up_mariadb
    up_secantus
    up_moto
    ;;
  down)
    stop_pidfile moto
    stop_pidfile secantus
    stop_pidfile redis
    ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
