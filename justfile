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

# Check the Dockerfile, docker-compose.yml, .env.example and deploy/k8s offline (validators pinned in a venv).
validate-deploy:
    bash scripts/validate-deploy.sh

# Benchmarks (needs wrk, PostgreSQL and Redis; about 5 min after the release build): verify-token, refresh, login vs the bcrypt bound, verify-token during a login flood, memory, start to ready, on SQLite and on PostgreSQL + Redis. `just bench 6 --write` updates docs/benchmarks.md. See docs/benchmarks.md.
bench seconds="6" *args="":
    python3 scripts/bench.py --seconds {{seconds}} {{args}}
