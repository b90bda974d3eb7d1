# syntax=docker/dockerfile:1
#
# The auth service image: `auth-http` on a slim Debian, running as an unprivileged user.
#
#   docker build -t auth-service .
#   docker run --rm -p 5000:5000 --env-file .env auth-service          # serve
#   docker run --rm --env-file .env auth-service migrate                # migrate, then exit
#
# Images are built by CI/release machinery, never on our development machines (no Docker
# engine runs there); `scripts/validate-deploy.sh` lints this file offline with hadolint.

# Builder and runtime must be the same Debian release: the binary links the system's
# glibc and OpenSSL (openssl-sys, for josekit's JOSE keys in auth-crypto), so building on
# one release and running on another risks a missing symbol or libssl soname at start.
# Rust: the lockfile's dependencies need 1.89 or later (actix-web, uuid); 1.95 is what the
# developers use.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------
# chef: the Rust toolchain plus cargo-chef. The full (non-slim) rust image already has
# pkg-config, libssl-dev and a C compiler (aws-lc-sys builds with cc, bundled SQLite too),
# so nothing else is installed. cargo-chef is pinned and built from crates.io once; the
# layer is cached from then on.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

# ---------------------------------------------------------------------------------------
# planner: reduce the workspace to a recipe (manifests and Cargo.lock only). The recipe
# changes only when dependencies change, so editing our code does not invalidate the
# dependency layer below.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------
# builder: compile the dependencies alone (the cached layer), then our crates.
FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# Same profile, package and --locked as the real build below, or the cache would not be
# reused. --locked: the image gets exactly the dependency versions CI tested.
RUN cargo chef cook --release --locked -p auth-http --recipe-path recipe.json
COPY . .
# The commit that `auth_build_info{git_sha}` on /metrics names, read at compile time
# (option_env!): `--build-arg AUTH_GIT_SHA=$(git rev-parse HEAD)`. Declared after the
# dependency layer, which a new commit therefore does not invalidate.
ARG AUTH_GIT_SHA=""
RUN cargo build --release --locked -p auth-http \
    && install -D -m 0755 target/release/auth-http /out/auth-http

# ---------------------------------------------------------------------------------------
# runtime: only what the binary needs at run time.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# - libssl3: the binary links OpenSSL dynamically (openssl-sys, not vendored).
# - ca-certificates: SMTP over TLS verifies the server against the system's trusted roots
#   (rustls-platform-verifier reads them).
# - curl: the HEALTHCHECK below; the slim image has no HTTP client and the binary has no
#   health subcommand. About 1 MB of extra packages, no extra privileges.
# Debian package versions are not pinned (DL3008): a stable release only ships security
# fixes, and pinning would break the build each time one replaces the pinned version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged UID/GID (10001): Kubernetes' runAsUser, file ownership on volumes
# and the compose file all name the same number. No home directory and no login shell.
RUN groupadd --system --gid 10001 auth \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin auth \
    && install -d -o 10001 -g 10001 -m 0700 /data

COPY --from=builder /out/auth-http /usr/local/bin/auth-http

# Production by default: the service then refuses to start without SECRET_KEY, a JWT key,
# MAIL_SERVER, MAIL_DEFAULT_SENDER, a PostgreSQL DATABASE_URL and METRICS_PORT or
# METRICS_TOKEN, rather than silently generating secrets inside a container that may be
# thrown away (or serving /metrics to anyone).
# AUTH_DATA_DIR: where secrets.json (generated when SECRET_KEY or JWT_SECRET_KEY is unset)
# and a SQLite file would go. Production uses PostgreSQL, so /data normally holds nothing
# that matters; it is a volume so that a read-only root filesystem still works.
ENV APP_ENV=production \
    AUTH_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=5000
VOLUME ["/data"]

USER 10001:10001
EXPOSE 5000

# Liveness only (`/health/live`): `/health/ready` also fails while PostgreSQL or Redis is
# down, and restarting the container would not bring them back. Through sh so that a PORT
# set at run time is honoured; `exit 1` because Docker reserves other codes (curl -f
# exits 22 or 7).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${PORT:-5000}/health/live\" || exit 1"]

# The binary is the entrypoint, so `docker run IMAGE migrate` (or `cleanup`) runs another
# subcommand with the same configuration; the default is to serve.
ENTRYPOINT ["/usr/local/bin/auth-http"]
CMD ["serve"]
