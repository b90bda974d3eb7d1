//! The definitions: one field per environment variable. Its `#[arg]` gives the variable's
//! name, default and parser, its doc comment the help `auth-http serve --help` prints,
//! and its type (with `#[serde]` where the type needs it) what `auth-http config check`
//! shows. The README's table and `.env.example` are checked against these definitions.
//!
//! A new setting is a new field here (with a parser from `parse.rs`), its use, a row in
//! the README's table and a line in `.env.example` (the tests say when one is missing).
//!
//! Secrets have a secret type (`SecretString`, [`ExplicitKeys`]): secrecy gives them no
//! `Display` and no `Serialize`, so `config check` can only show them through
//! [`describe::masked`], and their parsers never quote the value in a problem.

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::TimeDelta;
use clap::ArgAction::Set;
use ipnet::IpNet;
use secrecy::SecretString;
use serde::Serialize;

use super::describe;
use super::parse::{
    app_env, at_least, between, cors_origins, flag, host, jwt_algorithm, key32, log_format,
    metrics_token, nonzero_port, otlp_endpoint, otlp_headers, path, pem, pem_secret, port, ratio,
    seconds_at_least, seconds_between, secret, text, trace_sampler, trusted_proxies, url_base,
};
use super::{AppEnv, CorsOrigins, JwtAlgorithm, LogFormat, TraceSampler};

/// The whole configuration, one field per environment variable (durations in whole
/// seconds; an empty value means unset).
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Config {
    /// `production` (or `prod`) refuses to start on development defaults: it needs
    /// SECRET_KEY, JWT_PRIVATE_KEY or JWT_SECRET_KEY, MAIL_SERVER, MAIL_DEFAULT_SENDER, a
    /// PostgreSQL DATABASE_URL, and METRICS_TOKEN or METRICS_PORT, and refuses weak or
    /// reused secrets. Anything else is development.
    #[arg(long, env = "APP_ENV", default_value = "development", value_parser = app_env)]
    pub app_env: AppEnv,
    /// Listen address.
    #[arg(long, env = "HOST", default_value = "0.0.0.0", value_parser = host)]
    pub host: IpAddr,
    /// Listen port.
    #[arg(long, env = "PORT", default_value = "5000", value_parser = port)]
    pub port: u16,
    /// When set, /metrics is served on this port only (same HOST), not on PORT. Unset:
    /// /metrics on PORT.
    #[arg(long, env = "METRICS_PORT", value_parser = nonzero_port)]
    pub metrics_port: Option<u16>,
    /// When set, /metrics answers only requests that carry it as `Authorization: Bearer`,
    /// on PORT or METRICS_PORT alike. Production needs it (at least 32 bytes) or
    /// METRICS_PORT.
    #[arg(long, env = "METRICS_TOKEN", value_parser = metrics_token)]
    #[serde(serialize_with = "describe::masked")]
    pub metrics_token: Option<SecretString>,
    /// postgres://user:password@host:5432/db (or postgresql://) runs on PostgreSQL;
    /// sqlite://path or a path ending in .db or .sqlite on SQLite. Unset: the SQLite file
    /// {AUTH_DATA_DIR}/auth.db.
    // Its form is checked by `validate`, so that `config check` still shows (with the
    // password as ***) what was given.
    #[arg(long, env = "DATABASE_URL", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub database_url: Option<SecretString>,
    /// With DATABASE_URL through PgBouncer (?pgbouncer=true): a direct postgres:// URL to
    /// the same database, for migrations (their advisory lock needs a session). Unset:
    /// DATABASE_URL.
    #[arg(long, env = "DATABASE_DIRECT_URL", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub database_direct_url: Option<SecretString>,
    /// Read replicas of the PostgreSQL database (postgres:// URLs, comma-separated) for
    /// reads that may lag: the profile and the sessions list. Down or lagging ones are
    /// skipped.
    #[arg(long, env = "DATABASE_REPLICA_URL", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub database_replica_url: Option<SecretString>,
    /// Milliseconds a read replica may lag behind the primary and still serve reads.
    #[arg(long, env = "DATABASE_REPLICA_MAX_LAG_MS", default_value = "1000", value_parser = between(0u64, 3_600_000))]
    pub database_replica_max_lag_ms: u64,
    /// PostgreSQL connections per instance.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value = "10", value_parser = between(1usize, 1000))]
    pub database_pool_size: usize,
    /// Seconds to open a PostgreSQL connection, at start and while serving.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT", default_value = "5", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub database_connect_timeout: TimeDelta,
    /// Seconds a PostgreSQL statement may run (0: no limit).
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT", default_value = "10", value_parser = seconds_at_least(0))]
    #[serde(serialize_with = "describe::seconds")]
    pub database_statement_timeout: TimeDelta,
    /// Apply pending PostgreSQL migrations at start (false: run `auth-http migrate`
    /// yourself). SQLite always migrates.
    #[arg(long, env = "AUTO_MIGRATE", action = Set, default_value = "true", value_parser = flag)]
    pub auto_migrate: bool,
    /// Seconds between deletions of expired rows (0: never).
    #[arg(long, env = "CLEANUP_INTERVAL", default_value = "3600", value_parser = seconds_at_least(0))]
    #[serde(serialize_with = "describe::seconds")]
    pub cleanup_interval: TimeDelta,
    /// Holds the SQLite file (unless DATABASE_URL names one) and generated secrets.
    #[arg(long, env = "AUTH_DATA_DIR", default_value = "./data", value_parser = path)]
    #[serde(serialize_with = "describe::path")]
    pub data_dir: PathBuf,
    /// Root secret of the personal-data keys and the pepper (production: at least 32
    /// bytes). Unset: generated into AUTH_DATA_DIR/secrets.json.
    #[arg(long, env = "SECRET_KEY", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub secret_key: Option<SecretString>,
    /// Explicit keys instead of the ones derived from SECRET_KEY.
    #[command(flatten)]
    #[serde(flatten)]
    pub explicit_keys: ExplicitKeys,
    /// HS256 signing key, used when JWT_PRIVATE_KEY is unset (at least 32 bytes). Unset:
    /// generated into AUTH_DATA_DIR/secrets.json.
    #[arg(long, env = "JWT_SECRET_KEY", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub jwt_secret_key: Option<SecretString>,
    /// PEM private key for RS256, ES256 or EdDSA (see JWT_ALGORITHM); `\n` escapes are
    /// accepted.
    #[arg(long, env = "JWT_PRIVATE_KEY", value_parser = pem_secret)]
    #[serde(serialize_with = "describe::masked")]
    pub jwt_private_key: Option<SecretString>,
    /// With JWT_PRIVATE_KEY: extra PEM public keys (concatenated) still accepted and
    /// published during a key rotation.
    #[arg(long, env = "JWT_PUBLIC_KEY", value_parser = pem)]
    pub jwt_public_key: Option<String>,
    /// Algorithm of JWT_PRIVATE_KEY: RS256, ES256 or EdDSA (HS256 is used without a
    /// private key).
    #[arg(long, env = "JWT_ALGORITHM", default_value = "RS256", value_parser = jwt_algorithm)]
    pub jwt_algorithm: JwtAlgorithm,
    /// `iss` of issued tokens; verification requires it.
    #[arg(long, env = "JWT_ISSUER", default_value = "auth-service", value_parser = text)]
    pub jwt_issuer: String,
    /// `aud` of issued tokens; verification requires it.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "auth-service", value_parser = text)]
    pub jwt_audience: String,
    /// Access tokens remembered after a full check (0: off).
    #[arg(long, env = "JWT_VERIFY_CACHE", default_value = "10000", value_parser = at_least(0usize))]
    pub jwt_verify_cache: usize,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "JWT_ACCESS_TOKEN_EXPIRES", default_value = "900", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub access_ttl: TimeDelta,
    /// Absolute session lifetime in seconds (30 days); refreshing does not extend it.
    #[arg(long, env = "JWT_REFRESH_TOKEN_EXPIRES", default_value = "2592000", value_parser = seconds_at_least(60))]
    #[serde(serialize_with = "describe::seconds")]
    pub refresh_ttl: TimeDelta,
    /// Seconds a just-rotated refresh token still yields the same successor.
    #[arg(long, env = "REFRESH_REUSE_INTERVAL", default_value = "10", value_parser = seconds_at_least(0))]
    #[serde(serialize_with = "describe::seconds")]
    pub reuse_interval: TimeDelta,
    /// bcrypt cost.
    #[arg(long, env = "BCRYPT_COST", default_value = "12", value_parser = between(4u32, 31))]
    pub bcrypt_cost: u32,
    /// Password hashes computed at once (default: the number of cores).
    #[arg(long, env = "HASH_CONCURRENCY", default_value_t = cores(), hide_default_value = true, value_parser = at_least(1usize))]
    pub hash_concurrency: usize,
    /// Base of mailed links.
    #[arg(long, env = "APP_URL", default_value = "http://localhost:3000", value_parser = url_base)]
    pub app_url: String,
    /// The WebAuthn relying party id passkeys are bound to: a registrable domain, the host
    /// of `WEBAUTHN_ORIGIN` or a parent of it. Unset: the host of `APP_URL`.
    #[arg(long, env = "WEBAUTHN_RP_ID", value_parser = text)]
    pub webauthn_rp_id: Option<String>,
    /// The origin of the pages that call `navigator.credentials` (scheme://host[:port]).
    /// Unset: the origin of `APP_URL`.
    #[arg(long, env = "WEBAUTHN_ORIGIN", value_parser = url_base)]
    pub webauthn_origin: Option<String>,
    /// The relying party name authenticators show. Unset: `MAIL_PRODUCT_NAME`.
    #[arg(long, env = "WEBAUTHN_RP_NAME", value_parser = text)]
    pub webauthn_rp_name: Option<String>,
    /// The URL clients reach this API at, listed as the OpenAPI document's `servers`.
    /// Unset: the document names the origin it is fetched from.
    #[arg(long, env = "PUBLIC_URL", value_parser = url_base)]
    pub public_url: Option<String>,
    /// Comma-separated origins allowed cross-origin access (scheme://host[:port]), or `*`
    /// alone for any origin without credentials. Unset: none.
    #[arg(long, env = "CORS_ORIGINS", default_value = "", hide_default_value = true, value_parser = cors_origins)]
    #[serde(serialize_with = "describe::cors")]
    pub cors_origins: CorsOrigins,
    /// Comma-separated CIDRs or IPs of reverse proxies whose X-Forwarded-For is believed.
    /// Unset: none.
    // `std::vec::Vec`: the parser makes the whole list from one value (a plain `Vec`
    // would tell clap to expect the variable several times).
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", hide_default_value = true, value_parser = trusted_proxies)]
    #[serde(serialize_with = "describe::each_displayed")]
    pub trusted_proxies: std::vec::Vec<IpNet>,
    /// Requests per minute per client IP and endpoint.
    #[arg(long, env = "RATE_LIMIT_IP", default_value = "30", value_parser = at_least(1u32))]
    pub rate_limit_ip: u32,
    /// Requests per minute per identifier (email or username) and endpoint.
    #[arg(long, env = "RATE_LIMIT_IDENTIFIER", default_value = "10", value_parser = at_least(1u32))]
    pub rate_limit_identifier: u32,
    /// Consecutive failed logins that lock an identifier.
    #[arg(long, env = "LOCKOUT_THRESHOLD", default_value = "5", value_parser = at_least(1u32))]
    pub lockout_threshold: u32,
    /// Seconds of the first lock; each further lock within 24 h doubles it.
    #[arg(long, env = "LOCKOUT_DURATION", default_value = "900", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub lockout_duration: TimeDelta,
    /// Largest request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "65536", value_parser = at_least(1024usize))]
    pub max_body_bytes: usize,
    /// HTTP worker threads (default: the number of cores).
    #[arg(long, env = "WORKERS", default_value_t = cores(), hide_default_value = true, value_parser = at_least(1usize))]
    pub workers: usize,
    /// On SIGTERM or SIGINT: seconds in-flight requests (then the mail being sent) may take
    /// to finish.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "30", value_parser = seconds_between(0, 3600))]
    #[serde(serialize_with = "describe::seconds")]
    pub shutdown_grace: TimeDelta,
    /// Log output on stderr: json or text (default: json in production, text otherwise).
    // The default depends on APP_ENV: `Config::from_vars_with_problems` applies it.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", hide_default_value = true, value_parser = log_format)]
    pub log_format: LogFormat,
    /// true logs at debug level (RUST_LOG, when set, overrides it).
    #[arg(long, env = "DEBUG", action = Set, default_value = "false", value_parser = flag)]
    pub debug: bool,
    /// Base URL of an OTLP/HTTP receiver (an OpenTelemetry collector, Jaeger, Tempo):
    /// spans go to {it}/v1/traces as protobuf. Unset: traces are off.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = otlp_endpoint)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The full URL spans go to, instead of OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces (it
    /// too turns traces on).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_parser = otlp_endpoint)]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// Headers sent with every export, `key=value` pairs comma-separated, values
    /// percent-encoded (e.g. an API key of a hosted backend).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_HEADERS", value_parser = otlp_headers)]
    #[serde(serialize_with = "describe::masked")]
    pub otel_exporter_otlp_headers: Option<SecretString>,
    /// `service.name` of the spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "auth-service", value_parser = text)]
    pub otel_service_name: String,
    /// Which traces are recorded: always_on, always_off, traceidratio,
    /// parentbased_always_on, parentbased_always_off or parentbased_traceidratio
    /// (parentbased: an incoming traceparent's decision wins).
    #[arg(long, env = "OTEL_TRACES_SAMPLER", default_value = "parentbased_always_on", value_parser = trace_sampler)]
    pub otel_traces_sampler: TraceSampler,
    /// The ratio of the traceidratio samplers, from 0 to 1 (default 1).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", value_parser = ratio)]
    pub otel_traces_sampler_arg: Option<f64>,
    /// redis://host:6379[/db], or rediss:// for TLS: the cache shared by every instance.
    /// Unset: the in-process cache.
    #[arg(long, env = "REDIS_URL", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub redis_url: Option<SecretString>,
    /// A Redis Cluster instead of REDIS_URL: its seed nodes, comma-separated redis:// (or
    /// all rediss:// for TLS) URLs; the client learns the other nodes from them.
    #[arg(long, env = "REDIS_CLUSTER_NODES", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub redis_cluster_nodes: Option<SecretString>,
    /// Prefix of every key the service writes in Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "auth:", value_parser = text)]
    pub redis_key_prefix: String,
    /// With rediss://: a PEM file of the CA certificates to trust (a private CA) instead of
    /// the system's roots.
    #[arg(long, env = "REDIS_CA_CERT", value_parser = path)]
    #[serde(serialize_with = "describe::optional_path")]
    pub redis_ca_cert: Option<PathBuf>,
    /// SMTP host. Unset: mail is written to the log (development only).
    #[arg(long, env = "MAIL_SERVER", value_parser = text)]
    pub mail_server: Option<String>,
    /// SMTP port (default 587 with STARTTLS, 465 with MAIL_USE_SSL, 25 without TLS).
    #[arg(long, env = "MAIL_PORT", value_parser = nonzero_port)]
    pub mail_port: Option<u16>,
    /// STARTTLS, required once asked for.
    #[arg(long, env = "MAIL_USE_TLS", action = Set, default_value = "true", value_parser = flag)]
    pub mail_use_tls: bool,
    /// Implicit TLS, usually on port 465.
    #[arg(long, env = "MAIL_USE_SSL", action = Set, default_value = "false", value_parser = flag)]
    pub mail_use_ssl: bool,
    /// SMTP login (PLAIN, LOGIN or CRAM-MD5, as offered) when set; a secret, as some
    /// providers use an API token as the username.
    #[arg(long, env = "MAIL_USERNAME", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub mail_username: Option<SecretString>,
    /// SMTP password.
    #[arg(long, env = "MAIL_PASSWORD", value_parser = secret)]
    #[serde(serialize_with = "describe::masked")]
    pub mail_password: Option<SecretString>,
    /// `From` of every mail: `Name <address>` or an address (default `Auth
    /// <no-reply@localhost>`; required in production).
    #[arg(long, env = "MAIL_DEFAULT_SENDER", value_parser = text)]
    pub mail_default_sender: Option<String>,
    /// Seconds to connect and per SMTP command.
    #[arg(long, env = "MAIL_TIMEOUT", default_value = "30", value_parser = seconds_between(1, 300))]
    #[serde(serialize_with = "describe::seconds")]
    pub mail_timeout: TimeDelta,
    /// A directory whose files replace the built-in mail templates of the same name.
    #[arg(long, env = "MAIL_TEMPLATES_DIR", value_parser = path)]
    #[serde(serialize_with = "describe::optional_path")]
    pub mail_templates_dir: Option<PathBuf>,
    /// How mails name the service.
    #[arg(long, env = "MAIL_PRODUCT_NAME", default_value = "Auth", value_parser = text)]
    pub mail_product_name: String,
    /// Delivery attempts before a mail is dead.
    #[arg(long, env = "MAIL_MAX_ATTEMPTS", default_value = "16", value_parser = between(1u32, 100))]
    pub mail_max_attempts: u32,
    /// Seconds before the first retry; each next one doubles, up to 4 hours.
    #[arg(long, env = "MAIL_RETRY_DELAY", default_value = "30", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub mail_retry_delay: TimeDelta,
    /// Seconds between outbox polls (mail queued by this instance goes out at once).
    #[arg(long, env = "MAIL_POLL_INTERVAL", default_value = "5", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub mail_poll_interval: TimeDelta,
    /// /health reports degraded when the oldest queued mail is older (seconds).
    #[arg(long, env = "MAIL_QUEUE_WARN_AGE", default_value = "600", value_parser = seconds_at_least(1))]
    #[serde(serialize_with = "describe::seconds")]
    pub mail_queue_warn_age: TimeDelta,
}

/// Keys given one by one (32 bytes, base64, e.g. from a secrets manager); each `None` is
/// derived from `SECRET_KEY`. Neither `Debug` nor `Serialize` shows them.
#[derive(Clone, Default, clap::Args)]
pub struct ExplicitKeys {
    /// AES-256-GCM key of personal data (32 bytes, base64). Unset: derived from SECRET_KEY.
    #[arg(long, env = "ENCRYPTION_KEY", value_parser = key32)]
    pub encryption: Option<[u8; 32]>,
    /// HMAC key of blind indexes (32 bytes, base64). Unset: derived from SECRET_KEY.
    #[arg(long, env = "BLIND_INDEX_KEY", value_parser = key32)]
    pub blind_index: Option<[u8; 32]>,
    /// HMAC key of the password pre-hash (32 bytes, base64). Unset: derived from
    /// SECRET_KEY.
    #[arg(long, env = "PASSWORD_PEPPER", value_parser = key32)]
    pub pepper: Option<[u8; 32]>,
}

impl ExplicitKeys {
    fn shown(&self) -> [(&'static str, Option<&'static str>); 3] {
        let mask = |key: Option<[u8; 32]>| key.map(|_| describe::MASKED);
        [
            ("encryption", mask(self.encryption)),
            ("blind_index", mask(self.blind_index)),
            ("pepper", mask(self.pepper)),
        ]
    }
}

impl std::fmt::Debug for ExplicitKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("ExplicitKeys");
        for (name, shown) in self.shown() {
            out.field(name, &shown.map(|_| "***"));
        }
        out.finish()
    }
}

impl Serialize for ExplicitKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("ExplicitKeys", 3)?;
        for (name, shown) in self.shown() {
            out.serialize_field(name, &shown)?;
        }
        out.end()
    }
}

/// The default of `HASH_CONCURRENCY` and `WORKERS`.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
