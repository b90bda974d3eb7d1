#!/usr/bin/env bash
# Generated clients, as client teams make them: validates the served /openapi.json
# (openapi-spec-validator), generates a TypeScript client (openapi-typescript, TypeScript 5,
# openapi-fetch) and a Python client (openapi-python-client), type-checks the TypeScript flow
# (strict) and runs both flows against a running instance on the embedded default. Every tool
# is pinned: npm packages in scripts/clients/package.json, PyPI ones below.
#
# Usage: scripts/clients.sh
# Env: AUTH_BIN (default: target/debug/auth-http, built first), CLIENTS_VENV (default
# /tmp/auth-clients-venv), CLIENTS_NODE (default /tmp/auth-clients-node).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/scripts/clients
bin=${AUTH_BIN:-}
venv=${CLIENTS_VENV:-/tmp/auth-clients-venv}
node_dir=${CLIENTS_NODE:-/tmp/auth-clients-node}
pypi="openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 httpx==0.28.1 attrs==26.1.0 python-dateutil==2.9.0.post0"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pinned" 2>/dev/null)" != "$pypi" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $pypi
  echo "$pypi" > "$venv/.pinned"
fi
mkdir -p "$node_dir"
if ! cmp -s "$src/package.json" "$node_dir/package.json" || [ ! -d "$node_dir/node_modules" ]; then
  cp "$src/package.json" "$node_dir/package.json"
  (cd "$node_dir" && npm install -q --no-audit --no-fund >/dev/null)
fi
if [ -z "$bin" ]; then
  cargo build -q -p auth-http --manifest-path "$root/Cargo.toml"
  bin=$root/target/debug/auth-http
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Mail goes to the log (the flows read their verification link there).
AUTH_DATA_DIR="$work/data" PORT="$port" HOST=127.0.0.1 BCRYPT_COST=4 LOG_FORMAT=text \
  RUST_LOG=warn,auth_mail=info "$bin" serve >"$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -sf -o /dev/null "$base/health/live" && break; sleep 0.05; done
curl -sf "$base/openapi.json" -o "$work/openapi.json"

echo "--> openapi-spec-validator"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

echo "--> TypeScript: openapi-typescript, tsc --strict, the flow with openapi-fetch"
mkdir -p "$work/ts"
cp "$src/flow.ts" "$src/tsconfig.json" "$src/package.json" "$work/ts/"
ln -s "$node_dir/node_modules" "$work/ts/node_modules"
(cd "$work/ts" \
  && ./node_modules/.bin/openapi-typescript "$work/openapi.json" -o schema.d.ts >/dev/null \
  && ./node_modules/.bin/tsc -p tsconfig.json \
  && BASE_URL="$base" LOG_FILE="$work/service.log" RUN_ID="$$" node dist/flow.js)

echo "--> Python: openapi-python-client, the flow"
printf 'post_hooks: []\n' > "$work/python-client.yml"
(cd "$work" && "$venv/bin/openapi-python-client" generate --path openapi.json --meta none \
  --config python-client.yml --output-path py/auth_service_client >/dev/null)
BASE_URL="$base" LOG_FILE="$work/service.log" RUN_ID="$$" PYTHONPATH="$work/py" \
  "$venv/bin/python" "$src/flow.py"
