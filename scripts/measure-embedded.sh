#!/usr/bin/env bash
# Quick throughput check of the embedded default (SQLite, in-process cache, log mailer):
# verify-token and login requests per second, with /health/live as the framework floor.
# Needs wrk (Debian package `wrk`). Usage: scripts/measure-embedded.sh [SECONDS] [BCRYPT_COST]
# The full benchmark suite (PostgreSQL + Redis, latency under load, memory) is `just bench`
# once issue 7 lands; this is the single measurement the foundation issue asks for.
set -euo pipefail
secs=${1:-10}
cost=${2:-12}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk"; exit 2; }
cargo build --release -q -p auth-http --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
# Rate limits off the path: this measures the service, not the limiter's refusals.
AUTH_DATA_DIR="$work/data" PORT=$port HOST=127.0.0.1 BCRYPT_COST=$cost LOG_FORMAT=text RUST_LOG=warn,auth_mail=info \
  RATE_LIMIT_IP=100000000 RATE_LIMIT_IDENTIFIER=100000000 LOCKOUT_THRESHOLD=100000000 \
  "$root/target/release/auth-http" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "$base/health/live" && break; sleep 0.1; done
curl -sf -o /dev/null -X POST "$base/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","username":"bench","password":"SecurePass123!","name":"Bench","surname":"Mark"}'
sleep 0.2
token=$(grep -o 'token=[A-Za-z0-9_-]*' "$work/log" | tail -1 | cut -d= -f2)
curl -sf -o /dev/null -X POST "$base/auth/verify-email" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}"
access=$(curl -sf -X POST "$base/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"SecurePass123!"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"SecurePass123!"}'
LUA
echo "machine: $(nproc) cores; release build; BCRYPT_COST=$cost; ${secs}s per run"
echo "== /health/live (framework floor)";  wrk -t2 -c32 -d"${secs}s" --latency "$base/health/live" | awk '/Requests\/sec|Non-2xx|50%|99%/'
echo "== GET /auth/verify-token";          wrk -t2 -c32 -d"${secs}s" --latency -H "Authorization: Bearer $access" "$base/auth/verify-token" | awk '/Requests\/sec|Non-2xx|50%|99%/'
echo "== POST /auth/login";                wrk -t2 -c8 -d"${secs}s" --latency -s "$work/login.lua" "$base/auth/login" | awk '/Requests\/sec|Non-2xx|50%|99%/'
