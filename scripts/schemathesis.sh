#!/usr/bin/env bash
# Schema-driven API testing: schemathesis (pinned, in a venv this script creates) against the
# service's own /openapi.json, every check, on the embedded default and on PostgreSQL +
# Redis. Each run starts the service on a free port with fresh storage, signs a user in for
# the Bearer operations, and fails on any schemathesis failure.
#
# Usage: scripts/schemathesis.sh [embedded|postgres|both] [examples per operation]
# Env: AUTH_BIN (default: target/debug/auth-http, built first), TEST_DATABASE_URL,
# TEST_REDIS_URL, ST_VENV (default /tmp/auth-schemathesis-venv), ST_REPORT_DIR.
set -euo pipefail
which=${1:-both}
examples=${2:-200}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${AUTH_BIN:-}
venv=${ST_VENV:-/tmp/auth-schemathesis-venv}
version=4.32.5
admin=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis=${TEST_REDIS_URL:-redis://127.0.0.1:6379}

if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version"
fi
if [ -z "$bin" ]; then
  cargo build -q -p auth-http --manifest-path "$root/Cargo.toml"
  bin=$root/target/debug/auth-http
fi

work=$(mktemp -d)
pid=""
db=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$db" ]; then psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_one() { # name, extra env...
  local name=$1; shift
  local port base token access
  port=$(free_port)
  base="http://127.0.0.1:$port"
  mkdir -p "$work/$name"
  # BCRYPT_COST 4: thousands of registrations and logins in a few minutes. The limits are
  # out of reach so that every generated request reaches the handler (the limiter's 429 is
  # tested elsewhere).
  env "$@" AUTH_DATA_DIR="$work/$name/data" PORT="$port" HOST=127.0.0.1 BCRYPT_COST=4 \
    LOG_FORMAT=text RUST_LOG=warn,auth_mail=info RATE_LIMIT_IP=100000000 \
    RATE_LIMIT_IDENTIFIER=100000000 LOCKOUT_THRESHOLD=100000000 \
    "$bin" serve >"$work/$name/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do curl -sf -o /dev/null "$base/health/live" && break; sleep 0.05; done
  curl -sf -o /dev/null -X POST "$base/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"schema@example.com","username":"schemauser","password":"SecurePass123!","name":"Schema","surname":"Thesis"}'
  for _ in $(seq 1 100); do
    token=$(grep -o 'token=[A-Za-z0-9_-]*' "$work/$name/log" | tail -1 | cut -d= -f2 || true)
    [ -n "$token" ] && break
    sleep 0.05
  done
  curl -sf -o /dev/null -X POST "$base/auth/verify-email" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}"
  access=$(curl -sf -X POST "$base/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"schemauser","password":"SecurePass123!"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  echo "== schemathesis on $name ($examples examples per operation)"
  # Operations that end the session or the account are left out: they would turn the
  # rest of the run into 401s (they are covered by the HTTP suite).
  local status=0
  ST_TOKEN="$access" "$venv/bin/st" --config-file "$root/schemathesis.toml" run "$base/openapi.json" \
    --max-examples "$examples" --seed 1 --no-color --workers 1 \
    --report junit --report-dir "${ST_REPORT_DIR:-$work/report}/$name" || status=$?
  if grep -q "panicked" "$work/$name/log"; then
    echo "the service panicked:"; grep -A5 panicked "$work/$name/log"; status=1
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  return $status
}

failed=0
if [ "$which" = embedded ] || [ "$which" = both ]; then
  run_one embedded || failed=1
fi
if [ "$which" = postgres ] || [ "$which" = both ]; then
  db="auth_schemathesis_$$"
  psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
  run_one postgres DATABASE_URL="${admin%/*}/$db" REDIS_URL="$redis" REDIS_KEY_PREFIX="$db:" || failed=1
fi
exit $failed
