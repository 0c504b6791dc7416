#!/usr/bin/env bash
# Create the files docker-compose.yml mounts as Docker secrets, in secrets/ (ignored by git):
# random passwords for Grafana's admin and PostgreSQL, the DSN recmon connects with, Grafana's
# secret key, and stand-ins for the Alertmanager receivers' credentials (replace them with your
# Slack webhook URL, PagerDuty routing key and dead man's switch token to get notifications).
# A file that exists is kept, so running it again changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

umask 077
mkdir -p secrets
chmod 700 secrets

create() { # NAME VALUE: write secrets/NAME unless it exists
  local file="secrets/$1"
  if [ -e "$file" ]; then
    return
  fi
  printf '%s' "$2" >"$file"
  # The containers read it as their own users (grafana, nobody, ...); the directory, mode 700,
  # is what keeps the other users of this machine out.
  chmod 644 "$file"
  echo "created $file"
}

random() { openssl rand -hex "$1"; }

create grafana_admin_password "$(random 24)"
create grafana_secret_key "$(random 32)"
create postgres_password "$(random 24)"
# Hex needs no escaping in a URL. PostgreSQL takes the password only when it creates the
# database, so after changing postgres_password remove the postgres-data volume.
create recmon_dsn "postgresql+psycopg://recmon:$(cat secrets/postgres_password)@postgres:5432/recmon"
# Stand-ins: Alertmanager starts and shows the alerts, and its notifications fail until these hold
# the real credentials (the URL points at a closed local port, so nothing leaves the stack).
create slack_api_url "http://127.0.0.1:9/replace-with-your-slack-webhook-url"
create pagerduty_routing_key "$(random 16)"
create deadmans_switch_token "$(random 32)"

echo "Grafana: http://localhost:3000, user admin, password in secrets/grafana_admin_password"
