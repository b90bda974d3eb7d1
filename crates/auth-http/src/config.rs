//! Configuration from environment variables (names kept from the original service; see the
//! README's table). Parsed once into typed values; every problem is reported at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono::TimeDelta;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

pub use crate::cors::CorsOrigins;

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Refuses to start on development defaults.
    Production,
    /// Anything else.
    Development,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Signing algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with `JWT_SECRET_KEY`.
    Hs256,
    /// RSA PKCS#1 v1.5 SHA-256.
    Rs256,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV` (`production` or anything else).
    pub app_env: AppEnv,
    /// `HOST` (default 0.0.0.0).
    pub host: IpAddr,
    /// `PORT` (default 5000).
    pub port: u16,
    /// `METRICS_PORT`: when set, `/metrics` is served on this port only (same `HOST`), not
    /// on `PORT`.
    pub metrics_port: Option<u16>,
    /// `METRICS_TOKEN`: when set, `/metrics` answers only requests that carry it as
    /// `Authorization: Bearer`, wherever it is served (`PORT` or `METRICS_PORT`), in every
    /// environment. Production needs it or `METRICS_PORT`.
    pub metrics_token: Option<SecretString>,
    /// `DATABASE_URL`; none means the embedded SQLite file.
    pub database_url: Option<SecretString>,
    /// `DATABASE_POOL_SIZE` (default 10).
    pub database_pool_size: usize,
    /// `DATABASE_CONNECT_TIMEOUT` seconds (default 5).
    pub database_connect_timeout: TimeDelta,
    /// `DATABASE_STATEMENT_TIMEOUT` seconds (default 10; 0 = none).
    pub database_statement_timeout: TimeDelta,
    /// `AUTO_MIGRATE` (default true): apply pending migrations at start.
    pub auto_migrate: bool,
    /// `CLEANUP_INTERVAL` seconds between deletions of expired rows (default 3600; 0 = off).
    pub cleanup_interval: TimeDelta,
    /// `AUTH_DATA_DIR` (default `./data`): SQLite file and generated secrets.
    pub data_dir: PathBuf,
    /// `SECRET_KEY`: root of the personal-data keys and the pepper.
    pub secret_key: Option<SecretString>,
    /// `ENCRYPTION_KEY`, `BLIND_INDEX_KEY`, `PASSWORD_PEPPER`: explicit 32-byte keys
    /// (base64) instead of the ones derived from `SECRET_KEY`, e.g. from a secrets manager.
    pub explicit_keys: ExplicitKeys,
    /// `JWT_SECRET_KEY` for HS256.
    pub jwt_secret_key: Option<SecretString>,
    /// `JWT_PRIVATE_KEY` (PEM) for RS256/ES256/EdDSA.
    pub jwt_private_key: Option<SecretString>,
    /// `JWT_PUBLIC_KEY` (PEM); several keys may be concatenated (rotation).
    pub jwt_public_key: Option<String>,
    /// `JWT_ALGORITHM` for asymmetric keys (default RS256).
    pub jwt_algorithm: JwtAlgorithm,
    /// `JWT_ISSUER` (default `auth-service`).
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE` (default `auth-service`).
    pub jwt_audience: String,
    /// `JWT_VERIFY_CACHE`: access tokens remembered after a full check (default 10000, 0: off).
    pub jwt_verify_cache: usize,
    /// `JWT_ACCESS_TOKEN_EXPIRES` seconds (default 900).
    pub access_ttl: TimeDelta,
    /// `JWT_REFRESH_TOKEN_EXPIRES` seconds (default 30 days).
    pub refresh_ttl: TimeDelta,
    /// `REFRESH_REUSE_INTERVAL` seconds (default 10).
    pub reuse_interval: TimeDelta,
    /// `BCRYPT_COST` (default 12).
    pub bcrypt_cost: u32,
    /// `HASH_CONCURRENCY`: hashes at once (default: the number of cores).
    pub hash_concurrency: usize,
    /// `APP_URL`: base of mailed links (default `http://localhost:3000`).
    pub app_url: String,
    /// `CORS_ORIGINS`: comma-separated origins, or `*` for any origin without credentials.
    pub cors_origins: CorsOrigins,
    /// `TRUSTED_PROXIES`, comma-separated CIDRs.
    pub trusted_proxies: Vec<IpNet>,
    /// `MAIL_SERVER`: the SMTP host; none means the log mailer.
    pub mail_server: Option<String>,
    /// `MAIL_DEFAULT_SENDER`: `Name <address>` or an address (default
    /// `Auth <no-reply@localhost>`; required in production).
    pub mail_default_sender: Option<String>,
    /// `MAIL_PORT` (default 587 with STARTTLS, 465 with implicit TLS, 25 without TLS).
    pub mail_port: Option<u16>,
    /// `MAIL_USERNAME`: authenticate (PLAIN, LOGIN or CRAM-MD5, as offered) when set.
    /// Secret: some providers use an API token as the username.
    pub mail_username: Option<SecretString>,
    /// `MAIL_PASSWORD`.
    pub mail_password: Option<SecretString>,
    /// `MAIL_USE_TLS`: STARTTLS (default true).
    pub mail_use_tls: bool,
    /// `MAIL_USE_SSL`: implicit TLS, usually on port 465 (default false).
    pub mail_use_ssl: bool,
    /// `MAIL_TIMEOUT` seconds for connecting and for each SMTP command (default 30).
    pub mail_timeout: TimeDelta,
    /// `MAIL_TEMPLATES_DIR`: files here replace the built-in templates of the same name.
    pub mail_templates_dir: Option<PathBuf>,
    /// `MAIL_PRODUCT_NAME`: how mails name the service (default `Auth`).
    pub mail_product_name: String,
    /// `MAIL_MAX_ATTEMPTS`: delivery attempts before a mail is dead (default 16).
    pub mail_max_attempts: u32,
    /// `MAIL_RETRY_DELAY` seconds before the first retry; each next one doubles, up to
    /// 4 hours (default 30).
    pub mail_retry_delay: TimeDelta,
    /// `MAIL_POLL_INTERVAL` seconds between outbox polls (default 5); mails queued by
    /// this instance go out at once.
    pub mail_poll_interval: TimeDelta,
    /// `MAIL_QUEUE_WARN_AGE` seconds: `/health` warns when the oldest queued mail is older
    /// (default 600).
    pub mail_queue_warn_age: TimeDelta,
    /// `REDIS_URL`: the cache shared by every instance; none means the in-process cache.
    pub redis_url: Option<SecretString>,
    /// `REDIS_KEY_PREFIX` (default `auth:`): every key the service writes starts with it.
    pub redis_key_prefix: String,
    /// `RATE_LIMIT_IP`: requests per minute per client IP and endpoint (default 30).
    pub rate_limit_ip: u32,
    /// `RATE_LIMIT_IDENTIFIER`: per identifier and endpoint (default 10).
    pub rate_limit_identifier: u32,
    /// `LOCKOUT_THRESHOLD` (default 5).
    pub lockout_threshold: u32,
    /// `LOCKOUT_DURATION` seconds of the first lock (default 900).
    pub lockout_duration: TimeDelta,
    /// `MAX_BODY_BYTES` (default 65536).
    pub max_body_bytes: usize,
    /// `SHUTDOWN_GRACE` seconds: on SIGTERM/SIGINT, how long in-flight requests (and then
    /// the mail being sent) may take to finish (default 30).
    pub shutdown_grace: TimeDelta,
    /// `WORKERS`: HTTP worker threads (default: the number of cores).
    pub workers: usize,
    /// `LOG_FORMAT` (`json` or `text`; default json in production, text otherwise).
    pub log_format: LogFormat,
    /// `DEBUG`: more logging.
    pub debug: bool,
}

/// Keys given one by one; each `None` is derived from `SECRET_KEY`.
#[derive(Clone, Default)]
pub struct ExplicitKeys {
    /// AES-256-GCM key of personal data.
    pub encryption: Option<[u8; 32]>,
    /// HMAC key of blind indexes.
    pub blind_index: Option<[u8; 32]>,
    /// HMAC key of the password pre-hash.
    pub pepper: Option<[u8; 32]>,
}

impl std::fmt::Debug for ExplicitKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExplicitKeys")
            .field("encryption", &self.encryption.map(|_| "***"))
            .field("blind_index", &self.blind_index.map(|_| "***"))
            .field("pepper", &self.pepper.map(|_| "***"))
            .finish()
    }
}

/// Where data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (secret: it may hold a password).
    Postgres(SecretString),
}

/// Every problem found in the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

struct Vars<'a> {
    map: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn parse<T: std::str::FromStr>(
        &mut self,
        name: &str,
        default: T,
        check: impl Fn(&T) -> bool,
        expected: &str,
    ) -> T {
        match self.get(name) {
            None => default,
            Some(raw) => match raw.parse::<T>() {
                Ok(v) if check(&v) => v,
                _ => {
                    self.problems
                        .push(format!("{name}={raw:?} is not valid: expected {expected}"));
                    default
                }
            },
        }
    }

    fn seconds(&mut self, name: &str, default: i64, min: i64) -> TimeDelta {
        let secs = self.parse(
            name,
            default,
            |v| *v >= min,
            &format!("whole seconds >= {min}"),
        );
        TimeDelta::seconds(secs)
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(|s| SecretString::from(s.to_owned()))
    }

    /// A 32-byte key given as base64; the value is never echoed in a problem.
    fn key32(&mut self, name: &str) -> Option<[u8; 32]> {
        use base64::Engine as _;
        let raw = self.get(name)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
        if decoded.is_none() {
            self.problems.push(format!(
                "{name} is not valid: expected 32 bytes in base64 (openssl rand -base64 32)"
            ));
        }
        decoded
    }

    fn flag(&mut self, name: &str) -> bool {
        self.flag_or(name, false)
    }

    fn flag_or(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                self.problems.push(format!(
                    "{name}={other:?} is not valid: expected true or false"
                ));
                false
            }
        }
    }
}

/// The fewest bytes a secret given as text (`SECRET_KEY`, `JWT_SECRET_KEY`,
/// `METRICS_TOKEN`) may have in production: 256 bits if every byte were random, which typed or placeholder values are
/// not, so this is a floor, not a target (the examples ask for `openssl rand -base64 48`).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the secret `name` is too weak for production, if it is: shorter than
/// [`MIN_SECRET_BYTES`], or one byte repeated (`xxxx…`, a base64 key of zeros). Names the
/// variable, never the value or its length.
fn weak_secret(name: &str, value: &[u8], min_len: usize) -> Option<String> {
    if value.len() < min_len {
        return Some(format!(
            "APP_ENV=production refuses {name} shorter than {min_len} bytes: generate one with openssl rand -base64 48"
        ));
    }
    if value.windows(2).all(|pair| pair[0] == pair[1]) {
        return Some(format!(
            "APP_ENV=production refuses {name}: it is one byte repeated, a placeholder rather than a secret"
        ));
    }
    None
}

/// Whether `token` is an RFC 6750 `b64token`, the only thing a client can send after
/// `Bearer ` (so a token outside it could never be presented).
fn is_bearer_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the variable is set to a non-empty value.
fn v_explicit(map: &HashMap<String, String>, name: &str) -> bool {
    map.get(name).is_some_and(|s| !s.trim().is_empty())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// From a map of variables (tests build one without touching the environment).
    pub fn from_vars(map: HashMap<String, String>) -> Result<Self, ConfigError> {
        let (config, problems) = Self::from_vars_with_problems(map);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Like [`Config::from_vars`], but always returns a configuration, each invalid value
    /// replaced by its default, together with every problem found (`auth-http config
    /// check` shows both). The configuration is only fit to run when there is no problem.
    pub fn from_vars_with_problems(map: HashMap<String, String>) -> (Self, Vec<String>) {
        let mut v = Vars {
            map: &map,
            problems: Vec::new(),
        };
        let app_env = match v.get("APP_ENV").map(str::to_ascii_lowercase).as_deref() {
            Some("production" | "prod") => AppEnv::Production,
            _ => AppEnv::Development,
        };
        let jwt_algorithm = match v
            .get("JWT_ALGORITHM")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("RS256") => JwtAlgorithm::Rs256,
            Some("ES256") => JwtAlgorithm::Es256,
            Some("EDDSA") => JwtAlgorithm::EdDsa,
            Some("HS256") => JwtAlgorithm::Hs256,
            Some(other) => {
                v.problems.push(format!(
                    "JWT_ALGORITHM={other:?} is not valid: expected RS256, ES256, EdDSA or HS256"
                ));
                JwtAlgorithm::Rs256
            }
        };
        let log_format = match v.get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            None if app_env == AppEnv::Production => LogFormat::Json,
            None => LogFormat::Text,
            Some(other) => {
                v.problems.push(format!(
                    "LOG_FORMAT={other:?} is not valid: expected json or text"
                ));
                LogFormat::Text
            }
        };
        let mut trusted_proxies = Vec::new();
        let proxies = v.get("TRUSTED_PROXIES").unwrap_or_default().to_owned();
        for raw in proxies.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => v.problems.push(format!(
                    "TRUSTED_PROXIES entry {raw:?} is not a CIDR or IP address"
                )),
            }
        }
        let (cors_origins, cors_problems) =
            CorsOrigins::parse(v.get("CORS_ORIGINS").unwrap_or_default());
        v.problems.extend(cors_problems);

        let config = Config {
            app_env,
            host: v.parse(
                "HOST",
                IpAddr::from([0, 0, 0, 0]),
                |_| true,
                "an IP address",
            ),
            port: v.parse("PORT", 5000u16, |_| true, "a port number"),
            metrics_port: v
                .get("METRICS_PORT")
                .is_some()
                .then(|| v.parse("METRICS_PORT", 0u16, |p| *p > 0, "a port number")),
            metrics_token: v.secret("METRICS_TOKEN"),
            database_url: v.secret("DATABASE_URL"),
            database_pool_size: v.parse(
                "DATABASE_POOL_SIZE",
                10usize,
                |n| (1..=1000).contains(n),
                "an integer from 1 to 1000",
            ),
            database_connect_timeout: v.seconds("DATABASE_CONNECT_TIMEOUT", 5, 1),
            database_statement_timeout: v.seconds("DATABASE_STATEMENT_TIMEOUT", 10, 0),
            auto_migrate: !matches!(
                v.get("AUTO_MIGRATE")
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("false" | "0" | "no" | "off")
            ),
            cleanup_interval: v.seconds("CLEANUP_INTERVAL", 3600, 0),
            data_dir: PathBuf::from(v.get("AUTH_DATA_DIR").unwrap_or("./data")),
            secret_key: v.secret("SECRET_KEY"),
            explicit_keys: ExplicitKeys {
                encryption: v.key32("ENCRYPTION_KEY"),
                blind_index: v.key32("BLIND_INDEX_KEY"),
                pepper: v.key32("PASSWORD_PEPPER"),
            },
            jwt_secret_key: v.secret("JWT_SECRET_KEY"),
            jwt_private_key: v
                .secret("JWT_PRIVATE_KEY")
                .map(|k| SecretString::from(unescape_pem(&k))),
            jwt_public_key: v
                .get("JWT_PUBLIC_KEY")
                .map(|k| unescape_pem(&SecretString::from(k.to_owned()))),
            jwt_algorithm,
            jwt_issuer: v.get("JWT_ISSUER").unwrap_or("auth-service").to_owned(),
            jwt_audience: v.get("JWT_AUDIENCE").unwrap_or("auth-service").to_owned(),
            jwt_verify_cache: v.parse("JWT_VERIFY_CACHE", 10_000, |_| true, "an integer >= 0"),
            access_ttl: v.seconds("JWT_ACCESS_TOKEN_EXPIRES", 900, 1),
            refresh_ttl: v.seconds("JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 3600, 60),
            reuse_interval: v.seconds("REFRESH_REUSE_INTERVAL", 10, 0),
            bcrypt_cost: v.parse(
                "BCRYPT_COST",
                12u32,
                |c| (4..=31).contains(c),
                "an integer from 4 to 31",
            ),
            hash_concurrency: v.parse("HASH_CONCURRENCY", cores(), |n| *n >= 1, "an integer >= 1"),
            app_url: v
                .get("APP_URL")
                .unwrap_or("http://localhost:3000")
                .trim_end_matches('/')
                .to_owned(),
            cors_origins,
            trusted_proxies,
            mail_server: v.get("MAIL_SERVER").map(str::to_owned),
            mail_default_sender: v.get("MAIL_DEFAULT_SENDER").map(str::to_owned),
            mail_port: v
                .get("MAIL_PORT")
                .is_some()
                .then(|| v.parse("MAIL_PORT", 0u16, |p| *p > 0, "a port number")),
            mail_username: v.secret("MAIL_USERNAME"),
            mail_password: v.secret("MAIL_PASSWORD"),
            mail_use_tls: v.flag_or("MAIL_USE_TLS", true),
            mail_use_ssl: v.flag_or("MAIL_USE_SSL", false),
            mail_timeout: TimeDelta::seconds(v.parse(
                "MAIL_TIMEOUT",
                30i64,
                |s| (1..=300).contains(s),
                "whole seconds from 1 to 300",
            )),
            mail_templates_dir: v.get("MAIL_TEMPLATES_DIR").map(PathBuf::from),
            mail_product_name: v.get("MAIL_PRODUCT_NAME").unwrap_or("Auth").to_owned(),
            mail_max_attempts: v.parse(
                "MAIL_MAX_ATTEMPTS",
                16u32,
                |n| (1..=100).contains(n),
                "an integer from 1 to 100",
            ),
            mail_retry_delay: v.seconds("MAIL_RETRY_DELAY", 30, 1),
            mail_poll_interval: v.seconds("MAIL_POLL_INTERVAL", 5, 1),
            mail_queue_warn_age: v.seconds("MAIL_QUEUE_WARN_AGE", 600, 1),
            redis_url: v.secret("REDIS_URL"),
            redis_key_prefix: v.get("REDIS_KEY_PREFIX").unwrap_or("auth:").to_owned(),
            rate_limit_ip: v.parse("RATE_LIMIT_IP", 30u32, |n| *n >= 1, "an integer >= 1"),
            rate_limit_identifier: v.parse(
                "RATE_LIMIT_IDENTIFIER",
                10u32,
                |n| *n >= 1,
                "an integer >= 1",
            ),
            lockout_threshold: v.parse("LOCKOUT_THRESHOLD", 5u32, |n| *n >= 1, "an integer >= 1"),
            lockout_duration: v.seconds("LOCKOUT_DURATION", 900, 1),
            max_body_bytes: v.parse(
                "MAX_BODY_BYTES",
                65_536usize,
                |n| *n >= 1024,
                "an integer >= 1024",
            ),
            shutdown_grace: TimeDelta::seconds(v.parse(
                "SHUTDOWN_GRACE",
                30i64,
                |s| (0..=3600).contains(s),
                "whole seconds from 0 to 3600",
            )),
            workers: v.parse("WORKERS", cores(), |n| *n >= 1, "an integer >= 1"),
            log_format,
            debug: v.flag("DEBUG"),
        };
        let mut problems = v.problems;
        if config.metrics_port.is_some_and(|p| p == config.port) {
            problems.push("METRICS_PORT is the same as PORT: choose another port, or unset it to serve /metrics on PORT".to_owned());
        }
        if let Some(token) = &config.metrics_token
            && !is_bearer_token(token.expose_secret())
        {
            problems.push("METRICS_TOKEN is not valid: a Bearer token is letters, digits and - . _ ~ + / (then = only at the end); generate one with openssl rand -hex 32".to_owned());
        }
        if config.jwt_private_key.is_some() && config.jwt_algorithm == JwtAlgorithm::Hs256 {
            problems.push("JWT_ALGORITHM=HS256 uses JWT_SECRET_KEY: unset JWT_PRIVATE_KEY, or choose RS256, ES256 or EdDSA".to_owned());
        }
        if let Some(url) = config
            .database_url
            .as_ref()
            .map(ExposeSecret::expose_secret)
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
            && !url.ends_with(".db")
            && !url.ends_with(".sqlite")
        {
            problems.push(
                "DATABASE_URL is not valid: expected postgres://…, postgresql://…, sqlite://path or a path ending in .db"
                    .to_owned(),
            );
        }
        if let Some(url) = config.redis_url.as_ref().map(ExposeSecret::expose_secret)
            && !url.starts_with("redis://")
        {
            problems.push("REDIS_URL is not valid: expected redis://host:port[/db] (TLS, rediss://, is not supported yet)".to_owned());
        }
        if config.mail_use_ssl && config.mail_use_tls && v_explicit(&map, "MAIL_USE_TLS") {
            problems.push("MAIL_USE_TLS and MAIL_USE_SSL are both true: choose STARTTLS (MAIL_USE_TLS) or implicit TLS (MAIL_USE_SSL)".to_owned());
        }
        if config.mail_server.is_none() {
            for name in ["MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_PORT"] {
                if v_explicit(&map, name) {
                    problems.push(format!("{name} is set but MAIL_SERVER is not: set MAIL_SERVER to send mail over SMTP"));
                }
            }
        }
        if config.mail_password.is_some() && config.mail_username.is_none() {
            problems.push("MAIL_PASSWORD is set without MAIL_USERNAME".to_owned());
        }
        if config.mail_username.is_some() && config.mail_password.is_none() {
            problems.push("MAIL_USERNAME is set without MAIL_PASSWORD".to_owned());
        }
        if config.app_env == AppEnv::Production {
            if config.secret_key.is_none() {
                problems.push(
                    "APP_ENV=production needs SECRET_KEY (generated secrets are for development)"
                        .to_owned(),
                );
            }
            if config.jwt_secret_key.is_none() && config.jwt_private_key.is_none() {
                problems
                    .push("APP_ENV=production needs JWT_PRIVATE_KEY or JWT_SECRET_KEY".to_owned());
            }
            problems.extend(config.weak_secrets());
            if config.mail_server.is_none() {
                problems.push(
                    "APP_ENV=production needs MAIL_SERVER (the log mailer is for development)"
                        .to_owned(),
                );
            }
            if let Some(host) = &config.mail_server
                && !config.mail_use_tls
                && !config.mail_use_ssl
                && config.mail_username.is_some()
                && !is_loopback(host)
            {
                problems.push("APP_ENV=production refuses to send the SMTP password in the clear: set MAIL_USE_TLS=true or MAIL_USE_SSL=true".to_owned());
            }
            if config.mail_default_sender.is_none() {
                problems.push(
                    "APP_ENV=production needs MAIL_DEFAULT_SENDER (e.g. \"Example <no-reply@example.com>\")"
                        .to_owned(),
                );
            }
            if config.metrics_token.is_none() && config.metrics_port.is_none() {
                problems.push("APP_ENV=production does not serve /metrics to anyone on the public port: set METRICS_TOKEN (a Bearer token Prometheus sends, at least 32 bytes) or METRICS_PORT (a port kept off the public network), or both".to_owned());
            }
            if !matches!(config.database(), Database::Postgres(_)) {
                problems.push("APP_ENV=production needs DATABASE_URL=postgres://… (SQLite is the single-machine development default)".to_owned());
            }
        }
        (config, problems)
    }

    /// Production's rules for the secrets given as values: each long enough and not one
    /// byte repeated; the explicit keys (always exactly 32 bytes) not one byte repeated;
    /// the root secret not reused as the JWT key, which every HS256 verifier holds; and
    /// the metrics token, which Prometheus holds, not reused as either.
    fn weak_secrets(&self) -> Vec<String> {
        let signing = [
            ("SECRET_KEY", self.secret_key.as_ref()),
            ("JWT_SECRET_KEY", self.jwt_secret_key.as_ref()),
        ];
        let text = [
            signing[0],
            signing[1],
            ("METRICS_TOKEN", self.metrics_token.as_ref()),
        ];
        let keys = [
            ("ENCRYPTION_KEY", self.explicit_keys.encryption),
            ("BLIND_INDEX_KEY", self.explicit_keys.blind_index),
            ("PASSWORD_PEPPER", self.explicit_keys.pepper),
        ];
        let mut problems: Vec<String> = text
            .iter()
            .filter_map(|(name, secret)| {
                let value = (*secret)?.expose_secret().as_bytes();
                weak_secret(name, value, MIN_SECRET_BYTES)
            })
            .chain(
                keys.iter()
                    .filter_map(|(name, key)| weak_secret(name, key.as_ref()?, 32)),
            )
            .collect();
        if let (Some(root), Some(jwt)) = (&self.secret_key, &self.jwt_secret_key)
            && root.expose_secret() == jwt.expose_secret()
        {
            problems.push("APP_ENV=production refuses SECRET_KEY and JWT_SECRET_KEY with the same value: JWT_SECRET_KEY is shared with every service that verifies HS256 tokens, SECRET_KEY protects stored personal data and passwords".to_owned());
        }
        // Prometheus' configuration holds the metrics token: it must open nothing else.
        if let Some(token) = &self.metrics_token {
            for (name, other) in signing {
                if other.is_some_and(|o| o.expose_secret() == token.expose_secret()) {
                    problems.push(format!("APP_ENV=production refuses METRICS_TOKEN with the value of {name}: whoever scrapes /metrics would hold {name}"));
                }
            }
        }
        problems
    }

    /// What is allowed but deserves a second look, one line each: `serve` logs them as
    /// warnings at start and `config check` lists them, neither refuses to run.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.app_env == AppEnv::Production && self.cors_origins == CorsOrigins::Any {
            warnings.push("CORS_ORIGINS=* lets every web page call the API from a browser (without credentials): list your front ends' origins instead".to_owned());
        }
        warnings
    }

    /// Where data lives: PostgreSQL when `DATABASE_URL` says so; otherwise the SQLite file
    /// of `DATABASE_URL=sqlite://path`, or `{AUTH_DATA_DIR}/auth.db`.
    pub fn database(&self) -> Database {
        match self.database_url.as_ref().map(ExposeSecret::expose_secret) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(SecretString::from(url.to_owned()))
            }
            Some(url) => Database::Sqlite(PathBuf::from(
                url.trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:"),
            )),
            None => Database::Sqlite(self.data_dir.join("auth.db")),
        }
    }

    /// Every variable of the README's table with its effective value (the default when
    /// unset), in the table's order, for `auth-http config check`. Secrets show only
    /// whether they are set; a URL's password shows as `***`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        const MASKED: &str = "set (masked)";
        const UNSET: &str = "unset";
        fn masked(set: bool) -> String {
            (if set { MASKED } else { UNSET }).to_owned()
        }
        fn list(items: &[String]) -> String {
            if items.is_empty() {
                UNSET.to_owned()
            } else {
                items.join(",")
            }
        }
        let secs = |d: TimeDelta| d.num_seconds().to_string();
        let database = match self.database() {
            Database::Postgres(url) => crate::startup::redact_url(url.expose_secret()),
            Database::Sqlite(path) => match self.database_url.as_ref().map(|u| u.expose_secret()) {
                // Not a PostgreSQL URL, but it may still carry credentials (a mistake).
                Some(url) if url.contains("://") => crate::startup::redact_url(url),
                // A path (`x.db`, `x.sqlite`) is shown; anything else may be a libpq
                // `key=value` string with a password in it.
                Some(url) if url.ends_with(".db") || url.ends_with(".sqlite") => url.to_owned(),
                Some(_) => "set (masked: not a URL or a .db path)".to_owned(),
                None => format!("{UNSET} (SQLite file {})", path.display()),
            },
        };
        let security = if self.mail_use_ssl {
            auth_mail_smtp::Security::ImplicitTls
        } else if self.mail_use_tls {
            auth_mail_smtp::Security::StartTls
        } else {
            auth_mail_smtp::Security::None
        };
        let jwt_public_keys = self.jwt_public_key.as_deref().map_or(0, |pems| {
            pems.lines()
                .filter(|l| l.trim_start().starts_with("-----BEGIN"))
                .count()
        });
        vec![
            (
                "APP_ENV",
                match self.app_env {
                    AppEnv::Production => "production",
                    AppEnv::Development => "development",
                }
                .to_owned(),
            ),
            ("HOST", self.host.to_string()),
            ("PORT", self.port.to_string()),
            (
                "METRICS_PORT",
                self.metrics_port.map_or_else(
                    || format!("{UNSET} (/metrics on PORT)"),
                    |port| port.to_string(),
                ),
            ),
            ("METRICS_TOKEN", masked(self.metrics_token.is_some())),
            ("DATABASE_URL", database),
            ("DATABASE_POOL_SIZE", self.database_pool_size.to_string()),
            (
                "DATABASE_CONNECT_TIMEOUT",
                secs(self.database_connect_timeout),
            ),
            (
                "DATABASE_STATEMENT_TIMEOUT",
                secs(self.database_statement_timeout),
            ),
            ("AUTO_MIGRATE", self.auto_migrate.to_string()),
            ("CLEANUP_INTERVAL", secs(self.cleanup_interval)),
            ("AUTH_DATA_DIR", self.data_dir.display().to_string()),
            ("SECRET_KEY", masked(self.secret_key.is_some())),
            (
                "ENCRYPTION_KEY",
                masked(self.explicit_keys.encryption.is_some()),
            ),
            (
                "BLIND_INDEX_KEY",
                masked(self.explicit_keys.blind_index.is_some()),
            ),
            (
                "PASSWORD_PEPPER",
                masked(self.explicit_keys.pepper.is_some()),
            ),
            ("JWT_SECRET_KEY", masked(self.jwt_secret_key.is_some())),
            ("JWT_PRIVATE_KEY", masked(self.jwt_private_key.is_some())),
            (
                "JWT_PUBLIC_KEY",
                if self.jwt_public_key.is_some() {
                    format!(
                        "set ({jwt_public_keys} PEM block{})",
                        if jwt_public_keys == 1 { "" } else { "s" }
                    )
                } else {
                    UNSET.to_owned()
                },
            ),
            (
                "JWT_ALGORITHM",
                match (self.jwt_algorithm, self.jwt_private_key.is_some()) {
                    (_, false) => "HS256 (JWT_PRIVATE_KEY is unset)",
                    (JwtAlgorithm::Hs256, true) => "HS256",
                    (JwtAlgorithm::Rs256, true) => "RS256",
                    (JwtAlgorithm::Es256, true) => "ES256",
                    (JwtAlgorithm::EdDsa, true) => "EdDSA",
                }
                .to_owned(),
            ),
            ("JWT_ISSUER", self.jwt_issuer.clone()),
            ("JWT_AUDIENCE", self.jwt_audience.clone()),
            ("JWT_VERIFY_CACHE", self.jwt_verify_cache.to_string()),
            ("JWT_ACCESS_TOKEN_EXPIRES", secs(self.access_ttl)),
            ("JWT_REFRESH_TOKEN_EXPIRES", secs(self.refresh_ttl)),
            ("REFRESH_REUSE_INTERVAL", secs(self.reuse_interval)),
            ("BCRYPT_COST", self.bcrypt_cost.to_string()),
            ("HASH_CONCURRENCY", self.hash_concurrency.to_string()),
            ("APP_URL", self.app_url.clone()),
            ("CORS_ORIGINS", self.cors_origins.describe()),
            (
                "TRUSTED_PROXIES",
                list(
                    &self
                        .trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                ),
            ),
            ("RATE_LIMIT_IP", self.rate_limit_ip.to_string()),
            (
                "RATE_LIMIT_IDENTIFIER",
                self.rate_limit_identifier.to_string(),
            ),
            ("LOCKOUT_THRESHOLD", self.lockout_threshold.to_string()),
            ("LOCKOUT_DURATION", secs(self.lockout_duration)),
            ("MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("SHUTDOWN_GRACE", secs(self.shutdown_grace)),
            ("WORKERS", self.workers.to_string()),
            (
                "LOG_FORMAT",
                match self.log_format {
                    LogFormat::Json => "json",
                    LogFormat::Text => "text",
                }
                .to_owned(),
            ),
            ("DEBUG", self.debug.to_string()),
            (
                "REDIS_URL",
                self.redis_url.as_ref().map_or_else(
                    || format!("{UNSET} (in-process cache)"),
                    |url| crate::startup::redact_url(url.expose_secret()),
                ),
            ),
            ("REDIS_KEY_PREFIX", self.redis_key_prefix.clone()),
            (
                "MAIL_SERVER",
                self.mail_server
                    .clone()
                    .unwrap_or_else(|| format!("{UNSET} (log mailer)")),
            ),
            (
                "MAIL_PORT",
                self.mail_port
                    .unwrap_or_else(|| security.default_port())
                    .to_string(),
            ),
            (
                "MAIL_USE_TLS",
                if self.mail_use_ssl && self.mail_use_tls {
                    "true (unused: MAIL_USE_SSL wins)".to_owned()
                } else {
                    self.mail_use_tls.to_string()
                },
            ),
            ("MAIL_USE_SSL", self.mail_use_ssl.to_string()),
            ("MAIL_USERNAME", masked(self.mail_username.is_some())),
            ("MAIL_PASSWORD", masked(self.mail_password.is_some())),
            (
                "MAIL_DEFAULT_SENDER",
                self.mail_default_sender
                    .clone()
                    .unwrap_or_else(|| "Auth <no-reply@localhost>".to_owned()),
            ),
            ("MAIL_TIMEOUT", secs(self.mail_timeout)),
            (
                "MAIL_TEMPLATES_DIR",
                self.mail_templates_dir.as_ref().map_or_else(
                    || format!("{UNSET} (built-in templates)"),
                    |dir| dir.display().to_string(),
                ),
            ),
            ("MAIL_PRODUCT_NAME", self.mail_product_name.clone()),
            ("MAIL_MAX_ATTEMPTS", self.mail_max_attempts.to_string()),
            ("MAIL_RETRY_DELAY", secs(self.mail_retry_delay)),
            ("MAIL_POLL_INTERVAL", secs(self.mail_poll_interval)),
            ("MAIL_QUEUE_WARN_AGE", secs(self.mail_queue_warn_age)),
        ]
    }
}

/// PEM keys in `.env` files often carry `\n` escapes instead of newlines.
fn unescape_pem(raw: &SecretString) -> String {
    use secrecy::ExposeSecret;
    raw.expose_secret().replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_configuration_at_all_gives_the_development_defaults() {
        let config = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.port, 5000);
        assert_eq!(config.bcrypt_cost, 12);
        assert_eq!(config.access_ttl, TimeDelta::minutes(15));
        assert!(
            matches!(config.database(), Database::Sqlite(p) if p == std::path::Path::new("./data/auth.db"))
        );
    }

    #[test]
    fn metrics_port_is_a_port_other_than_port_or_unset() {
        let unset = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(unset.metrics_port, None, "unset: /metrics on PORT");
        let set =
            Config::from_vars(vars(&[("METRICS_PORT", "9100")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.metrics_port, Some(9100));
        for (value, port, why) in [
            ("0", "5000", "0 is no port to listen on"),
            ("metrics", "5000", "not a number"),
            ("5001", "5001", "the same as PORT"),
        ] {
            let problems = Config::from_vars(vars(&[("METRICS_PORT", value), ("PORT", port)]))
                .err()
                .map(|e| e.0)
                .unwrap_or_default();
            assert!(
                problems.iter().any(|p| p.contains("METRICS_PORT")),
                "{why}: {problems:?}"
            );
        }
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let err = Config::from_vars(vars(&[
            ("PORT", "http"),
            ("BCRYPT_COST", "3"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, nope"),
        ]))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
        assert_eq!(err.len(), 3, "{err:?}");
    }

    #[test]
    fn explicit_keys_must_be_32_bytes_of_base64_and_are_never_echoed() {
        let good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let config =
            Config::from_vars(vars(&[("ENCRYPTION_KEY", good)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.explicit_keys.encryption.map(|k| k[31]), Some(31));
        assert!(!format!("{config:?}").contains(good));
        let err = Config::from_vars(vars(&[("BLIND_INDEX_KEY", "c2hvcnQ=")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("BLIND_INDEX_KEY") && !err.contains("c2hvcnQ="),
            "{err}"
        );
    }

    #[test]
    fn database_url_chooses_the_adapter() {
        let pg = Config::from_vars(vars(&[("DATABASE_URL", "postgres://u:p@db/auth")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(pg.database(), Database::Postgres(_)));
        assert!(
            !format!("{:?}", pg.database()).contains("u:p"),
            "the URL's password is secret"
        );
        let lite = Config::from_vars(vars(&[("DATABASE_URL", "sqlite:///tmp/x.db")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(lite.database(), Database::Sqlite(p) if p == std::path::Path::new("/tmp/x.db"))
        );
        assert!(Config::from_vars(vars(&[("DATABASE_URL", "mysql://db")])).is_err());
    }

    #[test]
    fn the_verify_cache_defaults_on_and_takes_zero_or_a_size() {
        let default = Config::from_vars(vars(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(default.jwt_verify_cache, 10_000);
        let off =
            Config::from_vars(vars(&[("JWT_VERIFY_CACHE", "0")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(off.jwt_verify_cache, 0);
        for bad in ["-1", "many", "1.5"] {
            let refused = Config::from_vars(vars(&[("JWT_VERIFY_CACHE", bad)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(refused.contains("JWT_VERIFY_CACHE"), "{bad}: {refused}");
        }
    }

    #[test]
    fn mail_settings_are_checked_together() {
        let both_tls = Config::from_vars(vars(&[
            ("MAIL_SERVER", "smtp.example.com"),
            ("MAIL_USE_TLS", "true"),
            ("MAIL_USE_SSL", "true"),
        ]));
        assert!(
            both_tls
                .err()
                .is_some_and(|e| e.to_string().contains("MAIL_USE_SSL"))
        );
        let ssl = Config::from_vars(vars(&[
            ("MAIL_SERVER", "smtp.example.com"),
            ("MAIL_USE_SSL", "yes"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ssl.mail_use_ssl && ssl.mail_use_tls,
            "SSL wins over the default STARTTLS"
        );
        let errors = Config::from_vars(vars(&[
            ("MAIL_USERNAME", "apikey"),
            ("MAIL_PORT", "0"),
            ("MAIL_TIMEOUT", "9999"),
        ]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        for expected in [
            "MAIL_USERNAME is set but MAIL_SERVER is not",
            "MAIL_USERNAME is set without MAIL_PASSWORD",
            "MAIL_PORT",
            "MAIL_TIMEOUT",
        ] {
            assert!(
                errors.contains(expected),
                "{expected} missing from: {errors}"
            );
        }
        let secret = Config::from_vars(vars(&[
            ("MAIL_SERVER", "smtp.example.com"),
            ("MAIL_USERNAME", "token-user-123"),
            ("MAIL_PASSWORD", "token-pass-456"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("token-user-123") && !shown.contains("token-pass-456"),
            "{shown}"
        );
    }

    #[test]
    fn production_refuses_an_smtp_password_in_the_clear_except_to_localhost() {
        let base = [
            ("APP_ENV", "production"),
            ("SECRET_KEY", "a production secret of enough length"),
            (
                "JWT_SECRET_KEY",
                "a jwt secret of at least thirty-two bytes",
            ),
            ("DATABASE_URL", "postgres://db/auth"),
            ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
            ("MAIL_USERNAME", "user"),
            ("MAIL_PASSWORD", "pass"),
            ("MAIL_USE_TLS", "false"),
            ("METRICS_PORT", "9090"),
        ];
        let remote = [base.as_slice(), &[("MAIL_SERVER", "smtp.example.com")]].concat();
        let err = Config::from_vars(vars(&remote))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("in the clear"), "{err}");
        let local = [base.as_slice(), &[("MAIL_SERVER", "127.0.0.1")]].concat();
        assert!(Config::from_vars(vars(&local)).is_ok());
    }

    /// The value `describe` shows for `name`.
    fn shown(config: &Config, name: &str) -> String {
        config
            .describe()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
            .unwrap_or_default()
    }

    #[test]
    fn cors_origins_are_checked_as_the_server_will_use_them() {
        let star = Config::from_vars(vars(&[("CORS_ORIGINS", "*")]))
            .unwrap_or_else(|e| panic!("* is the original service's any-origin: {e}"));
        assert_eq!(
            shown(&star, "CORS_ORIGINS"),
            "* (any origin, without credentials)"
        );
        let listed = Config::from_vars(vars(&[(
            "CORS_ORIGINS",
            "https://App.Example.com/, http://localhost:3000",
        )]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shown(&listed, "CORS_ORIGINS"),
            "https://app.example.com,http://localhost:3000",
            "in the form a browser sends"
        );
        for (value, why) in [
            ("*, https://app.example.com", "* mixed with a list"),
            (
                "app.example.com",
                "no scheme: never equal to an Origin header",
            ),
            ("https://app.example.com/login", "a path"),
            ("https://*.example.com", "a wildcard host"),
            (
                "https://exa mple.com",
                "not a URI: the middleware would refuse to start",
            ),
        ] {
            let err = Config::from_vars(vars(&[("CORS_ORIGINS", value)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("CORS_ORIGINS"),
                "{why}: {value:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn any_origin_in_production_is_a_warning_not_a_problem() {
        let star = production_with(&[("CORS_ORIGINS", "*")]).unwrap_or_else(|e| panic!("{e:?}"));
        let warnings = star.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("CORS_ORIGINS=*"), "{warnings:?}");
        let listed = production_with(&[("CORS_ORIGINS", "https://app.example.com")])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(listed.warnings().is_empty());
        let development =
            Config::from_vars(vars(&[("CORS_ORIGINS", "*")])).unwrap_or_else(|e| panic!("{e}"));
        assert!(development.warnings().is_empty(), "development stays quiet");
    }

    /// A production environment that passes, with `changes` applied (an empty value unsets).
    fn production_with(changes: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let mut map = vars(&[
            ("APP_ENV", "production"),
            ("SECRET_KEY", "a production secret of enough length"),
            (
                "JWT_SECRET_KEY",
                "a jwt secret of at least thirty-two bytes",
            ),
            ("DATABASE_URL", "postgres://db/auth"),
            ("MAIL_SERVER", "smtp.example.com"),
            ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
            ("METRICS_PORT", "9090"),
        ]);
        map.extend(vars(changes));
        Config::from_vars(map).map_err(|e| e.0)
    }

    #[test]
    fn production_refuses_secrets_shorter_than_32_bytes_naming_them_but_not_their_values() {
        assert!(production_with(&[]).is_ok(), "the base passes");
        let exactly_32 = "0123456789abcdefghijklmnopqrstuv";
        assert_eq!(exactly_32.len(), 32);
        assert!(
            production_with(&[("SECRET_KEY", exactly_32)]).is_ok(),
            "32 bytes are enough"
        );
        for (name, value) in [
            ("SECRET_KEY", "x"),
            ("SECRET_KEY", "0123456789abcdefghijklmnopqrstu"),
            ("JWT_SECRET_KEY", "short-jwt-Zq2"),
        ] {
            let problems = production_with(&[(name, value)]).err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{name}={value:?}: {problems:?}");
            assert!(
                problems[0].contains(name) && problems[0].contains("32 bytes"),
                "{problems:?}"
            );
            assert!(
                !problems[0].contains(value),
                "the value shows: {problems:?}"
            );
        }
        assert!(
            Config::from_vars(vars(&[("SECRET_KEY", "x")])).is_ok(),
            "development takes any secret"
        );
    }

    #[test]
    fn production_refuses_placeholder_keys_and_the_root_secret_reused_as_the_jwt_key() {
        let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for (changes, named) in [
            (vec![("SECRET_KEY", "x".repeat(64))], "SECRET_KEY"),
            (vec![("JWT_SECRET_KEY", "=".repeat(48))], "JWT_SECRET_KEY"),
            (vec![("ENCRYPTION_KEY", zeros.to_owned())], "ENCRYPTION_KEY"),
            (
                vec![("PASSWORD_PEPPER", zeros.to_owned())],
                "PASSWORD_PEPPER",
            ),
            (
                vec![
                    (
                        "SECRET_KEY",
                        "one secret for everything, long enough".to_owned(),
                    ),
                    (
                        "JWT_SECRET_KEY",
                        "one secret for everything, long enough".to_owned(),
                    ),
                ],
                "SECRET_KEY and JWT_SECRET_KEY",
            ),
        ] {
            let changes: Vec<(&str, &str)> =
                changes.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let problems = production_with(&changes).err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{named}: {problems:?}");
            assert!(problems[0].contains(named), "{named}: {problems:?}");
            for (_, value) in &changes {
                assert!(!problems[0].contains(value), "{problems:?}");
            }
        }
    }

    #[test]
    fn production_refuses_an_open_metrics_endpoint_naming_both_ways_to_close_it() {
        let problems = production_with(&[("METRICS_PORT", "")])
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("METRICS_TOKEN") && problems[0].contains("METRICS_PORT"),
            "{problems:?}"
        );
        let token = "0123456789abcdef0123456789abcdef";
        let with_token = production_with(&[("METRICS_PORT", ""), ("METRICS_TOKEN", token)])
            .unwrap_or_else(|p| panic!("{p:?}"));
        assert!(with_token.metrics_port.is_none() && with_token.metrics_token.is_some());
        assert!(production_with(&[("METRICS_TOKEN", token)]).is_ok(), "both");
        assert!(
            Config::from_vars(HashMap::new()).is_ok_and(|c| c.metrics_token.is_none()),
            "development keeps /metrics open on PORT"
        );
    }

    #[test]
    fn a_metrics_token_must_be_sendable_and_in_production_strong_and_its_own() {
        for bad in ["token with spaces", "tök", "=abc", "a,b"] {
            let err = Config::from_vars(vars(&[("METRICS_TOKEN", bad)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("METRICS_TOKEN"), "{bad:?}: {err}");
            assert!(!err.contains(bad), "the value shows: {err}");
        }
        for good in ["abc", "AZaz09-._~+/==", "0123456789abcdef"] {
            assert!(
                Config::from_vars(vars(&[("METRICS_TOKEN", good)])).is_ok(),
                "{good:?}: development takes any sendable token"
            );
        }
        let root = "a-production-secret-of-enough-length";
        for (token, named) in [
            ("short-metrics-Zq5", "32 bytes"),
            (&"m".repeat(40)[..], "one byte repeated"),
            (root, "the value of SECRET_KEY"),
        ] {
            let problems = production_with(&[("SECRET_KEY", root), ("METRICS_TOKEN", token)])
                .err()
                .unwrap_or_default();
            assert_eq!(problems.len(), 1, "{token}: {problems:?}");
            assert!(
                problems[0].contains("METRICS_TOKEN") && problems[0].contains(named),
                "{problems:?}"
            );
            assert!(
                !problems[0].contains(token),
                "the value shows: {problems:?}"
            );
        }
    }

    #[test]
    fn production_names_what_is_missing() {
        let err = Config::from_vars(vars(&[("APP_ENV", "production")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for missing in [
            "SECRET_KEY",
            "JWT_PRIVATE_KEY",
            "MAIL_SERVER",
            "DATABASE_URL",
            "METRICS_TOKEN",
            "METRICS_PORT",
        ] {
            assert!(err.contains(missing), "{missing} missing from: {err}");
        }
    }
}
