//! The rules between variables and production's rules, applied to values that each
//! parsed: every problem found, one line each, naming variables but never a secret's value.

use std::net::IpAddr;

use secrecy::ExposeSecret;

use super::{AppEnv, Config, Database, JwtAlgorithm};

/// The fewest bytes a secret given as text (`SECRET_KEY`, `JWT_SECRET_KEY`,
/// `METRICS_TOKEN`) may have in production: 256 bits if every byte were random, which typed or placeholder values are
/// not, so this is a floor, not a target (the examples ask for `openssl rand -base64 48`).
pub const MIN_SECRET_BYTES: usize = 32;

/// Every problem of `config` as a whole, and of the URLs (checked here rather than by
/// their parsers so that `config check` shows, redacted, what was given); `given` says whether a variable was set to a
/// non-empty value (valid or not).
pub fn problems(config: &Config, given: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    if config.metrics_port.is_some_and(|p| p == config.port) {
        problems.push("METRICS_PORT is the same as PORT: choose another port, or unset it to serve /metrics on PORT".to_owned());
    }
    if config.jwt_private_key.is_some() && config.jwt_algorithm == JwtAlgorithm::Hs256 {
        problems.push("JWT_ALGORITHM=HS256 uses JWT_SECRET_KEY: unset JWT_PRIVATE_KEY, or choose RS256, ES256 or EdDSA".to_owned());
    }
    if let Some(url) = config
        .database_url
        .as_ref()
        .map(ExposeSecret::expose_secret)
        && !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        && !url.ends_with(".db")
        && !url.ends_with(".sqlite")
    {
        problems.push("DATABASE_URL is not valid: expected postgres://…, postgresql://…, sqlite://path or a path ending in .db".to_owned());
    }
    if let Some(url) = config
        .database_url
        .as_ref()
        .map(ExposeSecret::expose_secret)
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        // sslmode, sslrootcert and pgbouncer as the store will read them; a root file that
        // cannot be read is a problem now, not at the first connection.
        let pgbouncer = postgres_url_problem("DATABASE_URL", url, &mut problems);
        if pgbouncer == Some(true) && config.auto_migrate && config.database_direct_url.is_none() {
            problems.push("DATABASE_URL goes through PgBouncer (pgbouncer=true): set DATABASE_DIRECT_URL to a direct connection for migrations (their advisory lock needs a session), or AUTO_MIGRATE=false and run `auth-http migrate` with a direct DATABASE_URL".to_owned());
        }
    }
    if let Some(direct) = config
        .database_direct_url
        .as_ref()
        .map(ExposeSecret::expose_secret)
    {
        if !matches!(config.database(), Database::Postgres(_)) {
            problems.push("DATABASE_DIRECT_URL is set but DATABASE_URL is not PostgreSQL: it is for migrations behind PgBouncer".to_owned());
        } else if !direct.starts_with("postgres://") && !direct.starts_with("postgresql://") {
            problems.push(
                "DATABASE_DIRECT_URL is not valid: expected postgres://… or postgresql://…"
                    .to_owned(),
            );
        } else if postgres_url_problem("DATABASE_DIRECT_URL", direct, &mut problems) == Some(true) {
            problems.push("DATABASE_DIRECT_URL has pgbouncer=true: it must reach PostgreSQL itself, not PgBouncer".to_owned());
        }
    }
    if let Some(replicas) = config
        .database_replica_url
        .as_ref()
        .map(ExposeSecret::expose_secret)
    {
        if !matches!(config.database(), Database::Postgres(_)) {
            problems.push("DATABASE_REPLICA_URL is set but DATABASE_URL is not PostgreSQL: replicas are PostgreSQL's".to_owned());
        }
        let urls = Config::replica_urls_of(replicas);
        if urls.is_empty() {
            problems.push(
                "DATABASE_REPLICA_URL is empty: give one or more postgres:// URLs, comma-separated"
                    .to_owned(),
            );
        }
        for (n, url) in urls.iter().enumerate() {
            let variable = format!("DATABASE_REPLICA_URL (URL {})", n + 1);
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                problems.push(format!(
                    "{variable} is not valid: expected postgres://… or postgresql://…"
                ));
            } else {
                postgres_url_problem(&variable, url, &mut problems);
            }
        }
    }
    problems.extend(redis(config));
    problems.extend(mail(config, given));
    if config.app_env == AppEnv::Production {
        problems.extend(production(config));
    }
    problems
}

/// `REDIS_URL` or `REDIS_CLUSTER_NODES` (not both), and `REDIS_CA_CERT` with TLS only.
fn redis(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let redis_url = config.redis_url.as_ref().map(ExposeSecret::expose_secret);
    if let Some(url) = redis_url
        && !url.starts_with("redis://")
        && !url.starts_with("rediss://")
    {
        problems.push(
            "REDIS_URL is not valid: expected redis://host:port[/db], or rediss:// for TLS"
                .to_owned(),
        );
    }
    let nodes = config
        .redis_cluster_nodes
        .as_ref()
        .map(|nodes| super::cluster_nodes(nodes.expose_secret()));
    if redis_url.is_some() && nodes.is_some() {
        problems.push("REDIS_URL and REDIS_CLUSTER_NODES are both set: set REDIS_URL for one Redis server, or REDIS_CLUSTER_NODES for a Redis Cluster".to_owned());
    }
    let mut tls = redis_url.is_some_and(|url| url.starts_with("rediss://"));
    if let Some(nodes) = &nodes {
        let plain = nodes.iter().filter(|n| n.starts_with("redis://")).count();
        let secure = nodes.iter().filter(|n| n.starts_with("rediss://")).count();
        if nodes.is_empty() || plain + secure < nodes.len() {
            problems.push("REDIS_CLUSTER_NODES is not valid: expected comma-separated redis://host:port URLs, or rediss:// for TLS".to_owned());
        } else if plain > 0 && secure > 0 {
            problems.push("REDIS_CLUSTER_NODES mixes redis:// and rediss://: every node of a cluster is reached alike".to_owned());
        }
        tls |= secure > 0;
    }
    if let Some(path) = &config.redis_ca_cert {
        if !tls {
            problems.push(
                "REDIS_CA_CERT is set but REDIS_URL (or REDIS_CLUSTER_NODES) is not rediss://: the CA is used for TLS only"
                    .to_owned(),
            );
        }
        match std::fs::read_to_string(path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => problems.push(format!(
                "REDIS_CA_CERT {}: no PEM certificate in the file",
                path.display()
            )),
            Err(err) => problems.push(format!("REDIS_CA_CERT {}: {err}", path.display())),
        }
    }
    problems
}

/// The SMTP settings together.
fn mail(config: &Config, given: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    if config.mail_use_ssl && config.mail_use_tls && given("MAIL_USE_TLS") {
        problems.push("MAIL_USE_TLS and MAIL_USE_SSL are both true: choose STARTTLS (MAIL_USE_TLS) or implicit TLS (MAIL_USE_SSL)".to_owned());
    }
    if config.mail_server.is_none() {
        for name in ["MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_PORT"] {
            if given(name) {
                problems.push(format!(
                    "{name} is set but MAIL_SERVER is not: set MAIL_SERVER to send mail over SMTP"
                ));
            }
        }
    }
    if config.mail_password.is_some() && config.mail_username.is_none() {
        problems.push("MAIL_PASSWORD is set without MAIL_USERNAME".to_owned());
    }
    if config.mail_username.is_some() && config.mail_password.is_none() {
        problems.push("MAIL_USERNAME is set without MAIL_PASSWORD".to_owned());
    }
    problems
}

/// What production needs beyond development: no development default, strong secrets.
fn production(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if config.secret_key.is_none() {
        problems.push(
            "APP_ENV=production needs SECRET_KEY (generated secrets are for development)"
                .to_owned(),
        );
    }
    if config.jwt_secret_key.is_none() && config.jwt_private_key.is_none() {
        problems.push("APP_ENV=production needs JWT_PRIVATE_KEY or JWT_SECRET_KEY".to_owned());
    }
    problems.extend(weak_secrets(config));
    if config.mail_server.is_none() {
        problems.push(
            "APP_ENV=production needs MAIL_SERVER (the log mailer is for development)".to_owned(),
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
    problems
}

/// Production's rules for the secrets given as values: each long enough and not one
/// byte repeated; the explicit keys (always exactly 32 bytes) not one byte repeated;
/// the root secret not reused as the JWT key, which every HS256 verifier holds; and
/// the metrics token, which Prometheus holds, not reused as either.
fn weak_secrets(config: &Config) -> Vec<String> {
    let signing = [
        ("SECRET_KEY", config.secret_key.as_ref()),
        ("JWT_SECRET_KEY", config.jwt_secret_key.as_ref()),
    ];
    let text = [
        signing[0],
        signing[1],
        ("METRICS_TOKEN", config.metrics_token.as_ref()),
    ];
    let keys = [
        ("ENCRYPTION_KEY", config.explicit_keys.encryption),
        ("BLIND_INDEX_KEY", config.explicit_keys.blind_index),
        ("PASSWORD_PEPPER", config.explicit_keys.pepper),
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
    if let (Some(root), Some(jwt)) = (&config.secret_key, &config.jwt_secret_key)
        && root.expose_secret() == jwt.expose_secret()
    {
        problems.push("APP_ENV=production refuses SECRET_KEY and JWT_SECRET_KEY with the same value: JWT_SECRET_KEY is shared with every service that verifies HS256 tokens, SECRET_KEY protects stored personal data and passwords".to_owned());
    }
    // Prometheus' configuration holds the metrics token: it must open nothing else.
    if let Some(token) = &config.metrics_token {
        for (name, other) in signing {
            if other.is_some_and(|o| o.expose_secret() == token.expose_secret()) {
                problems.push(format!("APP_ENV=production refuses METRICS_TOKEN with the value of {name}: whoever scrapes /metrics would hold {name}"));
            }
        }
    }
    problems
}

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

/// `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads a PostgreSQL URL's own settings (`sslmode`, `sslrootcert`, `pgbouncer`) as the
/// store will, and its root file: a problem is pushed naming `variable`. Returns whether
/// it goes through PgBouncer, `None` when it cannot be read.
fn postgres_url_problem(variable: &str, url: &str, problems: &mut Vec<String>) -> Option<bool> {
    let read = auth_store_postgres::url::split_url(url)
        .map_err(|err| err.to_string())
        .and_then(|(_, settings)| {
            auth_store_postgres::tls::RustlsConnector::new(&settings.tls)
                .map(|_| settings.pgbouncer)
                .map_err(|err| err.to_string())
        });
    match read {
        Ok(pgbouncer) => Some(pgbouncer),
        Err(err) => {
            problems.push(format!("{variable}: {err}"));
            None
        }
    }
}
