#!/usr/bin/env bash
# Install everything the test suite needs, then run it: README's second quick-start command.
# Needs the PostgreSQL (127.0.0.1:5432, database test) and MariaDB (127.0.0.1:3306, database test)
# servers running; see README, "Tests".
set -euo pipefail
cd "$(dirname "$0")/.."

have_servers() {
  command -v promtool >/dev/null \
    && { command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null; } \
    && command -v chromium >/dev/null  # renders the report (tests/test_report.py)
}

if ! have_servers; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager \
      chromium >/dev/null
  else
    echo "scripts/test.sh: install prometheus, prometheus-alertmanager and chromium" >&2
    exit 1
  fi
fi

python -m pip install --quiet -e ".[dev]"
python -m ruff check exporter tests
python -m pytest "$@"
