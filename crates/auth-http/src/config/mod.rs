//! Configuration from environment variables (names kept from the original service).
//!
//! Each variable is defined once, as a field of [`Config`] in `vars.rs`: its clap
//! attributes give its name, default and parser, its doc comment its help. From those
//! definitions come the parsing here, `auth-http serve --help`
//! ([`variables_help`]), what `auth-http config check` shows ([`Config::describe`]), and
//! the checks that the README's table and `.env.example` list every variable. Parsed once
//! into typed values; every problem is reported at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::builder::Resettable;
use clap::error::{ContextKind, ContextValue};
use clap::{Args as _, FromArgMatches as _};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

pub use crate::cors::CorsOrigins;
pub use describe::variables_help;
pub use validate::MIN_SECRET_BYTES;
pub use vars::{Config, ExplicitKeys};

mod describe;
mod parse;
#[cfg(test)]
mod tests;
mod validate;
mod vars;

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    /// Refuses to start on development defaults.
    Production,
    /// Anything else.
    Development,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Signing algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with `JWT_SECRET_KEY`.
    #[serde(rename = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

/// `OTEL_TRACES_SAMPLER`: which traces are recorded (the OpenTelemetry specification's
/// names; the ratio comes from `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceSampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// A fraction of the traces, chosen by trace id.
    #[serde(rename = "traceidratio")]
    TraceIdRatio,
    /// The caller's decision when a `traceparent` came in, else every trace (the default).
    ParentbasedAlwaysOn,
    /// The caller's decision when a `traceparent` came in, else none.
    ParentbasedAlwaysOff,
    /// The caller's decision when a `traceparent` came in, else a fraction by trace id.
    #[serde(rename = "parentbased_traceidratio")]
    ParentbasedTraceIdRatio,
}

impl TraceSampler {
    /// Whether `OTEL_TRACES_SAMPLER_ARG` (a ratio) applies.
    pub fn takes_ratio(self) -> bool {
        matches!(self, Self::TraceIdRatio | Self::ParentbasedTraceIdRatio)
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

/// One environment variable, as its definition in [`Config`] states it.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its name, e.g. `PORT`.
    pub name: String,
    /// Its default, when it has one that does not depend on anything else (otherwise the
    /// help says what happens when it is unset).
    pub default: Option<String>,
    /// Its help: the definition's doc comment.
    pub help: String,
    /// The field (and the key `describe` finds its value under).
    id: String,
    /// The option it becomes in the command line given to clap.
    long: String,
    /// How clap names that option in its errors.
    shown_as: String,
}

/// The definitions as a clap command, which takes every variable as `--long=value`.
fn definitions() -> clap::Command {
    let command = clap::Command::new("auth-http configuration")
        .no_binary_name(true)
        .disable_help_flag(true);
    Config::augment_args(command)
}

/// The definitions without `env`, for parsing: the values come from the map given to
/// [`Config::from_vars`] alone, never from the process environment.
fn parsing_command() -> clap::Command {
    definitions().mut_args(|arg| arg.env(Resettable::Reset))
}

/// Every variable the configuration reads, in the definitions' order.
pub fn variables() -> &'static [Variable] {
    static VARIABLES: LazyLock<Vec<Variable>> = LazyLock::new(|| {
        let mut command = definitions();
        command.build();
        command
            .get_arguments()
            .filter_map(|arg| {
                let name = arg.get_env()?.to_str()?.to_owned();
                let default = (!arg.is_hide_default_value_set())
                    .then(|| arg.get_default_values().first())
                    .flatten()
                    .and_then(|d| d.to_str())
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned);
                Some(Variable {
                    name,
                    default,
                    help: arg
                        .get_long_help()
                        .or(arg.get_help())
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    id: arg.get_id().to_string(),
                    long: arg.get_long()?.to_owned(),
                    shown_as: arg.to_string(),
                })
            })
            .collect()
    });
    &VARIABLES
}

/// The process environment as a map. Variables that are not UTF-8 are skipped rather than
/// panicking: none of the service's is read that way.
pub fn environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The problems of `variable`'s value `raw`, from the error clap reports for it.
fn refused(variable: &Variable, raw: &str, err: &clap::Error) -> Vec<String> {
    let name = &variable.name;
    let refusal = std::error::Error::source(err).and_then(|e| e.downcast_ref::<parse::Refusal>());
    match refusal {
        Some(parse::Refusal::Shown(why)) => vec![format!("{name}={raw:?} is not valid: {why}")],
        Some(parse::Refusal::Hidden(why)) => vec![format!("{name} is not valid: {why}")],
        Some(parse::Refusal::Problems(problems)) => problems.clone(),
        // Not quoted: it may be a secret.
        None => vec![format!("{name} is not valid ({})", err.kind())],
    }
}

/// Parses the values `map` sets (empty or blank ones count as unset) with the
/// definitions' parsers, and the defaults of the others. clap stops at the first value
/// it refuses: that one is recorded and left out, and the rest parsed again, so every
/// refused value is reported and replaced by its default.
fn parse_values(map: &HashMap<String, String>) -> (Config, Vec<String>) {
    let mut given: Vec<(&Variable, &str)> = variables()
        .iter()
        .filter_map(|var| {
            let value = map.get(&var.name)?.trim();
            (!value.is_empty()).then_some((var, value))
        })
        .collect();
    let command = parsing_command();
    let mut problems = Vec::new();
    loop {
        let argv = given
            .iter()
            .map(|(var, value)| format!("--{}={value}", var.long));
        let err = match command
            .clone()
            .try_get_matches_from(argv)
            .and_then(|matches| Config::from_arg_matches(&matches))
        {
            Ok(config) => return (config, problems),
            Err(err) => err,
        };
        let at_fault = match err.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => given.iter().position(|(v, _)| v.shown_as == *arg),
            _ => None,
        };
        match at_fault {
            Some(index) => {
                let (var, raw) = given.remove(index);
                problems.extend(refused(var, raw, &err));
            }
            None if !given.is_empty() => {
                problems.push(format!("the configuration cannot be read: {}", err.kind()));
                given.clear();
            }
            // Nothing given: the definitions' own defaults do not parse, a bug that
            // `the_defaults_parse_and_…` catches before it ships; no input can cause it.
            None => panic!("the configuration's defaults do not parse: {err}"),
        }
    }
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(environment())
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
        let given = |name: &str| map.get(name).is_some_and(|v| !v.trim().is_empty());
        let (mut config, mut problems) = parse_values(&map);
        if config.app_env == AppEnv::Production && !given("LOG_FORMAT") {
            config.log_format = LogFormat::Json;
        }
        problems.extend(validate::problems(&config, &given));
        (config, problems)
    }

    /// What is allowed but deserves a second look, one line each: `serve` logs them as
    /// warnings at start and `config check` lists them, neither refuses to run.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.app_env == AppEnv::Production && self.cors_origins == CorsOrigins::Any {
            warnings.push("CORS_ORIGINS=* lets every web page call the API from a browser (without credentials): list your front ends' origins instead".to_owned());
        }
        if self.otel_traces_sampler_arg.is_some() && !self.otel_traces_sampler.takes_ratio() {
            warnings.push("OTEL_TRACES_SAMPLER_ARG is set but OTEL_TRACES_SAMPLER is not traceidratio or parentbased_traceidratio: the ratio is unused".to_owned());
        }
        warnings
    }

    /// Where spans go, when traces are on: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given,
    /// else `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended (as the OpenTelemetry
    /// specification says). `None`: traces are off.
    pub fn traces_endpoint(&self) -> Option<String> {
        self.otel_exporter_otlp_traces_endpoint.clone().or_else(|| {
            self.otel_exporter_otlp_endpoint
                .as_deref()
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
    }

    /// The headers of `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,…`, values percent-decoded).
    pub fn otlp_headers(&self) -> Vec<(String, String)> {
        self.otel_exporter_otlp_headers
            .as_ref()
            .and_then(|raw| parse::otlp_header_pairs(raw.expose_secret()).ok())
            .unwrap_or_default()
    }

    /// Where data lives: PostgreSQL when `DATABASE_URL` says so; otherwise the SQLite file
    /// of `DATABASE_URL=sqlite://path`, or `{AUTH_DATA_DIR}/auth.db`.
    /// Where migrations run: `DATABASE_DIRECT_URL` when set (behind PgBouncer), else
    /// `DATABASE_URL`. `None` on SQLite.
    pub fn migration_url(&self) -> Option<SecretString> {
        match self.database() {
            Database::Postgres(url) => Some(self.database_direct_url.clone().unwrap_or(url)),
            Database::Sqlite(_) => None,
        }
    }

    /// The read replicas' URLs (`DATABASE_REPLICA_URL`, comma-separated), none when unset.
    pub fn replica_urls(&self) -> Vec<String> {
        self.database_replica_url
            .as_ref()
            .map(|raw| Self::replica_urls_of(raw.expose_secret()))
            .unwrap_or_default()
    }

    /// The URLs of a `DATABASE_REPLICA_URL` value: split at commas, trimmed, empty ones
    /// dropped.
    pub fn replica_urls_of(raw: &str) -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect()
    }

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
}

/// The seed nodes of `REDIS_CLUSTER_NODES`: its comma-separated entries, trimmed, empty ones
/// left out.
pub fn cluster_nodes(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .collect()
}
