# Recipes for the auth service. `just` alone lists them.

# List the recipes.
default:
    @just --list

# Start the service (embedded default: ./data, port 5000); extra arguments go to the binary.
run *args:
    cargo run -- {{args}}

# Run every crate's tests (the README's test command).
test *args:
    cargo test {{args}}

# Check formatting and lints as CI does.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Run what CI runs: fmt check, clippy, tests.
ci:
    bash .ci/run

# Create the database if needed and apply pending migrations, then exit.
migrate:
    cargo run -- migrate

# Save the running service's OpenAPI document (start it with `just run` first).
openapi url="http://127.0.0.1:5000" out="openapi.json":
    curl -fsS {{url}}/openapi.json -o {{out}}
    @echo "wrote {{out}}"

# Delete expired sessions, refresh tokens and one-time tokens once, then exit.
cleanup:
    cargo run -- cleanup

# schemathesis against the running service's /openapi.json, every check (what CI runs): [embedded|postgres|both] [examples per operation].
schemathesis which="both" examples="200":
    bash scripts/schemathesis.sh {{which}} {{examples}}

# Generated clients (what CI runs): validate /openapi.json, generate TypeScript and Python clients, walk the flow with both.
clients:
    bash scripts/clients.sh

# Passkeys in headless Chromium (what CI runs): register, passwordless, second factor, replay and counter checks. Needs `chromium`.
browser-passkeys:
    python3 scripts/browser-passkeys.py

# Soak (needs PostgreSQL and Redis): a mixed workload for [minutes] (default 30), errors, latency and memory over time. See docs/soak.md.
soak minutes="30" *args="":
    python3 scripts/soak.py --minutes {{minutes}} {{args}}

# Check the Dockerfile, docker-compose.yml, .env.example and deploy/k8s offline (validators pinned in a venv).
validate-deploy:
    bash scripts/validate-deploy.sh

# Benchmarks (needs wrk, PostgreSQL and Redis; about 5 min after the release build): verify-token, refresh, login vs the bcrypt bound, verify-token during a login flood, memory, start to ready, on SQLite and on PostgreSQL + Redis. `just bench 6 --write` updates docs/benchmarks.md. See docs/benchmarks.md.
bench seconds="6" *args="":
    python3 scripts/bench.py --seconds {{seconds}} {{args}}

# What TLS to PostgreSQL costs on refresh: sslmode=require vs sslmode=disable, same server, same run.
bench-tls seconds="6":
    python3 scripts/bench.py --tls-cost --seconds {{seconds}}

# Refresh and verify-token in each production connection mode (TLS to PostgreSQL, PgBouncer in transaction mode, Redis Cluster) against the plain one, same run (needs wrk and pgbouncer). `just bench-data-plane 6 --write` updates docs/benchmarks.md.
bench-data-plane seconds="6" *args="":
    python3 scripts/bench.py --data-plane --seconds {{seconds}} {{args}}

# POST /auth/mfa/verify against POST /auth/login (cost 4 and 12), on SQLite and on PostgreSQL + Redis, same run (needs wrk). `just bench-mfa 6 --write` updates docs/benchmarks.md.
bench-mfa seconds="6" *args="":
    python3 scripts/bench.py --mfa --seconds {{seconds}} {{args}}

# Whether any answer's timing tells if an account exists: register, login, forgot, resend, for existing vs absent accounts, on SQLite and PostgreSQL + Redis (build first). See docs/security.md.
enumeration-timing samples="30" *args="":
    python3 scripts/enumeration_timing.py --samples {{samples}} {{args}}

# Fuzz each cargo-fuzz target in fuzz/ for [seconds] (default 60; needs `cargo install cargo-fuzz`). See docs/hardening.md.
fuzz seconds="60":
    cd fuzz && for t in json_bodies jwt refresh_token; do RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t -- -max_total_time={{seconds}} || exit 1; done
