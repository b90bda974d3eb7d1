#!/usr/bin/env bash
# Refresh-token requests per second on SQLite versus PostgreSQL, in one run, same machine.
# Each request presents a refresh token used by no one else (a pool of sessions, each
# chain continued with the successor it gets back), so every request is a real rotation.
# Needs wrk (Debian package `wrk`) and a PostgreSQL at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres). Usage: scripts/measure-refresh.sh [SECONDS] [SESSIONS]
set -euo pipefail
secs=${1:-10}
sessions=${2:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
admin=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk"; exit 2; }
cargo build --release -q -p auth-http --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
db="auth_bench_$$"
pid=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
pg_url="${admin%/*}/$db"

cat >"$work/refresh.lua" <<'LUA'
local tokens = {}
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  -- Each thread takes its own share (`id` is set by setup), so no token is presented twice.
  local share, mine = math.floor(#tokens / args[2]), {}
  for i = 1, share do mine[i] = tokens[(id - 1) * share + i] end
  tokens = mine
end
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function request()
  local token = table.remove(tokens)
  -- An exhausted pool would mean lost chains: send a bad token, counted as a non-2xx.
  if token == nil then token = "exhausted" end
  return wrk.format("POST", "/auth/refresh-token", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local next = string.match(body, '"refresh_token":"([^"]+)"')
  if next then tokens[#tokens + 1] = next end
end
LUA

run_one() { # name, extra env...
  local name=$1; shift
  local port=$((20000 + RANDOM % 20000)) base
  base="http://127.0.0.1:$port"
  env "$@" AUTH_DATA_DIR="$work/data-$name" PORT=$port HOST=127.0.0.1 BCRYPT_COST=4 LOG_FORMAT=text \
    RUST_LOG=warn,auth_mail=info RATE_LIMIT_IP=100000000 RATE_LIMIT_IDENTIFIER=100000000 \
    CLEANUP_INTERVAL=0 "$root/target/release/auth-http" >"$work/log-$name" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$base/health/live" && break; sleep 0.1; done
  curl -sf -o /dev/null -X POST "$base/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","username":"bench","password":"SecurePass123!","name":"Bench","surname":"Mark"}'
  sleep 0.2
  local token
  token=$(grep -o 'token=[A-Za-z0-9_-]*' "$work/log-$name" | tail -1 | cut -d= -f2)
  curl -sf -o /dev/null -X POST "$base/auth/verify-email" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}"
  : >"$work/tokens-$name"
  for _ in $(seq 1 "$sessions"); do
    curl -sf -X POST "$base/auth/login" -H 'Content-Type: application/json' \
      -d '{"username":"bench","password":"SecurePass123!"}' |
      python3 -c 'import sys,json; print(json.load(sys.stdin)["refresh_token"])' >>"$work/tokens-$name"
  done
  # Two threads, each with its own half of the sessions, 16 connections in all.
  local out
  out=$(wrk -t2 -c16 -d"${secs}s" --latency -s "$work/refresh.lua" "$base/auth/refresh-token" -- "$work/tokens-$name" 2 2>&1)
  echo "== $name: POST /auth/refresh-token"
  echo "$out" | awk '/Requests\/sec|Non-2xx|50%|99%/'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
echo "machine: $(nproc) cores; release build; ${secs}s per run; $sessions sessions"
run_one sqlite
run_one postgres DATABASE_URL="$pg_url"
