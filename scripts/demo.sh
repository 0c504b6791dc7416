#!/usr/bin/env bash
# README's first quick-start command: install recmon, write two weeks of demo data, start the local
# Prometheus and Alertmanager when their binaries are installed, and serve the KPIs on :9747.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -e .
mkdir -p .demo
recmon simulate --out .demo/demo.db --days 14

children=()
trap 'kill "${children[@]}" 2>/dev/null || true' EXIT
if command -v prometheus >/dev/null; then
  prometheus --config.file=prometheus/prometheus.yml --storage.tsdb.path=.demo/prometheus \
    --storage.tsdb.retention.time=35d --web.listen-address=127.0.0.1:9090 \
    >.demo/prometheus.log 2>&1 &
  children+=($!)
  echo "Prometheus: http://127.0.0.1:9090 (log: .demo/prometheus.log)"
fi
alertmanager=$(command -v alertmanager || command -v prometheus-alertmanager || true)
if [ -n "$alertmanager" ]; then
  "$alertmanager" --config.file=alertmanager/alertmanager.yml --storage.path=.demo/alertmanager \
    --web.listen-address=127.0.0.1:9093 --cluster.listen-address= >.demo/alertmanager.log 2>&1 &
  children+=($!)
  echo "Alertmanager: http://127.0.0.1:9093 (log: .demo/alertmanager.log)"
fi
echo "recmon: http://127.0.0.1:9747/metrics (Ctrl-C stops everything)"
recmon serve --config.file examples/demo.yml
