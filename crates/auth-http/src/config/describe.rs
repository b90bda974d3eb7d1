//! What `auth-http config check` shows of a configuration, and the list of variables
//! `auth-http serve --help` prints, both driven by the definitions: their names come from
//! clap's metadata, their values from serializing [`Config`] (each field shown as its
//! type, or its `serialize_with`, says). A few variables read better with a note that
//! depends on others ([`SPECIAL`]).

use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Config, CorsOrigins, Database, JwtAlgorithm, variables};

/// How a secret that is set is shown.
pub const MASKED: &str = "set (masked)";
/// How a variable without a value is shown.
const UNSET: &str = "unset";

/// `serialize_with` of secrets: whether one is set, never its value.
pub fn masked<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    secret.as_ref().map(|_| MASKED).serialize(s)
}

/// `serialize_with` of durations: whole seconds.
pub fn seconds<S: Serializer>(duration: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
    duration.num_seconds().serialize(s)
}

/// `serialize_with` of paths (which need not be UTF-8).
pub fn path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    path.display().to_string().serialize(s)
}

/// `serialize_with` of optional paths.
pub fn optional_path<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    path.as_ref().map(|p| p.display().to_string()).serialize(s)
}

/// `serialize_with` of `CORS_ORIGINS`.
pub fn cors<S: Serializer>(origins: &CorsOrigins, s: S) -> Result<S::Ok, S::Error> {
    origins.describe().serialize(s)
}

/// `serialize_with` of lists of what has a `Display`.
pub fn each_displayed<S: Serializer, T: std::fmt::Display>(
    items: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(ToString::to_string))
}

/// How one value is shown on its `NAME=value` line.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => UNSET.to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => UNSET.to_owned(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// How a variable is shown when its own value does not say enough.
type Special = fn(&Config) -> Option<String>;

/// The variables shown with something from other variables, or with what "unset" means.
pub(super) const SPECIAL: [(&str, Special); 14] = [
    ("METRICS_PORT", |c| {
        c.metrics_port.is_none().then(|| unset("/metrics on PORT"))
    }),
    ("DATABASE_URL", |c| Some(database(c))),
    ("JWT_PUBLIC_KEY", |c| {
        c.jwt_public_key.as_deref().map(pem_blocks)
    }),
    ("JWT_ALGORITHM", |c| {
        let shown = match (c.jwt_algorithm, c.jwt_private_key.is_some()) {
            (_, false) => "HS256 (JWT_PRIVATE_KEY is unset)",
            (JwtAlgorithm::Hs256, true) => "HS256",
            (JwtAlgorithm::Rs256, true) => "RS256",
            (JwtAlgorithm::Es256, true) => "ES256",
            (JwtAlgorithm::EdDsa, true) => "EdDSA",
        };
        Some(shown.to_owned())
    }),
    ("REDIS_URL", |c| {
        Some(c.redis_url.as_ref().map_or_else(
            || unset("in-process cache"),
            |url| crate::startup::redact_url(url.expose_secret()),
        ))
    }),
    ("REDIS_CLUSTER_NODES", |c| {
        c.redis_cluster_nodes.as_ref().map(|nodes| {
            super::cluster_nodes(nodes.expose_secret())
                .iter()
                .map(|node| crate::startup::redact_url(node))
                .collect::<Vec<_>>()
                .join(",")
        })
    }),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", |c| {
        Some(c.otel_exporter_otlp_endpoint.as_ref().map_or_else(
            || match c.otel_exporter_otlp_traces_endpoint {
                Some(_) => unset("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used"),
                None => unset("traces off"),
            },
            |url| crate::startup::redact_url(url),
        ))
    }),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", |c| {
        Some(c.traces_endpoint().map_or_else(
            || unset("traces off"),
            |url| crate::startup::redact_url(&url),
        ))
    }),
    ("OTEL_TRACES_SAMPLER_ARG", |c| {
        let ratio = c.otel_traces_sampler_arg.unwrap_or(1.0);
        Some(if c.otel_traces_sampler.takes_ratio() {
            ratio.to_string()
        } else {
            format!("{ratio} (unused by {})", sampler_name(c))
        })
    }),
    ("MAIL_SERVER", |c| {
        c.mail_server.is_none().then(|| unset("log mailer"))
    }),
    ("MAIL_PORT", |c| {
        let security = if c.mail_use_ssl {
            auth_mail_smtp::Security::ImplicitTls
        } else if c.mail_use_tls {
            auth_mail_smtp::Security::StartTls
        } else {
            auth_mail_smtp::Security::None
        };
        Some(
            c.mail_port
                .unwrap_or_else(|| security.default_port())
                .to_string(),
        )
    }),
    ("MAIL_USE_TLS", |c| {
        (c.mail_use_ssl && c.mail_use_tls).then(|| "true (unused: MAIL_USE_SSL wins)".to_owned())
    }),
    ("MAIL_DEFAULT_SENDER", |c| {
        c.mail_default_sender
            .is_none()
            .then(|| "Auth <no-reply@localhost>".to_owned())
    }),
    ("MAIL_TEMPLATES_DIR", |c| {
        c.mail_templates_dir
            .is_none()
            .then(|| unset("built-in templates"))
    }),
];

/// The sampler as `OTEL_TRACES_SAMPLER` names it.
fn sampler_name(config: &Config) -> String {
    serde_json::to_value(config.otel_traces_sampler)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn unset(meaning: &str) -> String {
    format!("{UNSET} ({meaning})")
}

fn pem_blocks(pems: &str) -> String {
    let blocks = pems
        .lines()
        .filter(|l| l.trim_start().starts_with("-----BEGIN"))
        .count();
    format!(
        "set ({blocks} PEM block{})",
        if blocks == 1 { "" } else { "s" }
    )
}

/// `DATABASE_URL`: a URL's password as `***`, and what may be a secret masked.
fn database(config: &Config) -> String {
    match config.database() {
        Database::Postgres(url) => crate::startup::redact_url(url.expose_secret()),
        Database::Sqlite(path) => match config.database_url.as_ref().map(|u| u.expose_secret()) {
            // Not a PostgreSQL URL, but it may still carry credentials (a mistake).
            Some(url) if url.contains("://") => crate::startup::redact_url(url),
            // A path (`x.db`, `x.sqlite`) is shown; anything else may be a libpq
            // `key=value` string with a password in it.
            Some(url) if url.ends_with(".db") || url.ends_with(".sqlite") => url.to_owned(),
            Some(_) => "set (masked: not a URL or a .db path)".to_owned(),
            None => unset(&format!("SQLite file {}", path.display())),
        },
    }
}

impl Config {
    /// Every variable of the definitions with its effective value (the default when
    /// unset), in their order, for `auth-http config check`. Secrets show only whether
    /// they are set; a URL's password shows as `***`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        // Fails only if a `serialize_with` does, and none does: nothing would be shown.
        let values = match serde_json::to_value(self) {
            Ok(Value::Object(values)) => values,
            _ => serde_json::Map::new(),
        };
        variables()
            .iter()
            .map(|var| {
                let name = var.name.as_str();
                let special = SPECIAL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, show)| show(self));
                let value = special.unwrap_or_else(|| {
                    values
                        .get(&var.id)
                        .map_or_else(|| "(not shown: a bug)".to_owned(), shown)
                });
                (name, value)
            })
            .collect()
    }
}

/// Every variable with its default and help, for `auth-http serve --help`.
pub fn variables_help() -> String {
    let mut out = String::from(
        "Configuration (environment variables; an empty value means unset, durations are whole seconds; `auth-http config check` shows the effective values):\n",
    );
    for var in variables() {
        out.push_str("\n  ");
        out.push_str(&var.name);
        if let Some(default) = &var.default {
            out.push_str(&format!(" [default: {default}]"));
        }
        for line in var.help.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str("\n      ");
            out.push_str(line);
        }
    }
    out.push('\n');
    out
}
