//! The parsers of single values, named in the definitions' `value_parser`. Each refuses a
//! value with a [`Refusal`] saying what was expected; `Config::from_vars_with_problems`
//! turns it into a problem naming the variable. Rules between variables are in
//! `validate`.

use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::TimeDelta;
use ipnet::IpNet;
use secrecy::SecretString;

use super::{AppEnv, CorsOrigins, JwtAlgorithm, LogFormat, TraceSampler};

/// Why a value was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// What was expected; the problem quotes the value (`PORT="http" is not valid: …`).
    #[error("{0}")]
    Shown(String),
    /// What was expected; the value is a secret and never quoted.
    #[error("{0}")]
    Hidden(String),
    /// Whole problems, each naming the variable and the parts of the value at fault.
    #[error("{}", .0.join("; "))]
    Problems(Vec<String>),
}

type Parsed<T> = Result<T, Refusal>;

fn expected(what: impl Display) -> Refusal {
    Refusal::Shown(format!("expected {what}"))
}

/// Any text.
pub fn text(raw: &str) -> Parsed<String> {
    Ok(raw.to_owned())
}

/// A path.
pub fn path(raw: &str) -> Parsed<PathBuf> {
    Ok(PathBuf::from(raw))
}

/// A base URL; a trailing `/` is dropped (links append `/path`).
pub fn url_base(raw: &str) -> Parsed<String> {
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Any secret text.
pub fn secret(raw: &str) -> Parsed<SecretString> {
    Ok(SecretString::from(raw.to_owned()))
}

/// PEM keys in `.env` files often carry `\n` escapes instead of newlines.
fn unescape_pem(raw: &str) -> String {
    raw.replace("\\n", "\n")
}

/// A PEM private key.
pub fn pem_secret(raw: &str) -> Parsed<SecretString> {
    Ok(SecretString::from(unescape_pem(raw)))
}

/// PEM public keys.
pub fn pem(raw: &str) -> Parsed<String> {
    Ok(unescape_pem(raw))
}

/// `true`, `1`, `yes`, `on` or `false`, `0`, `no`, `off` (any case); anything else is
/// refused, never taken for true.
pub fn flag(raw: &str) -> Parsed<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(expected("true or false")),
    }
}

/// `production` or `prod` (any case); anything else is development.
pub fn app_env(raw: &str) -> Parsed<AppEnv> {
    Ok(match raw.to_ascii_lowercase().as_str() {
        "production" | "prod" => AppEnv::Production,
        _ => AppEnv::Development,
    })
}

/// `RS256`, `ES256`, `EdDSA` or `HS256` (any case).
pub fn jwt_algorithm(raw: &str) -> Parsed<JwtAlgorithm> {
    match raw.to_ascii_uppercase().as_str() {
        "RS256" => Ok(JwtAlgorithm::Rs256),
        "ES256" => Ok(JwtAlgorithm::Es256),
        "EDDSA" => Ok(JwtAlgorithm::EdDsa),
        "HS256" => Ok(JwtAlgorithm::Hs256),
        _ => Err(expected("RS256, ES256, EdDSA or HS256")),
    }
}

/// `json` or `text` (any case).
pub fn log_format(raw: &str) -> Parsed<LogFormat> {
    match raw.to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(expected("json or text")),
    }
}

/// An IP address.
pub fn host(raw: &str) -> Parsed<IpAddr> {
    raw.parse().map_err(|_| expected("an IP address"))
}

/// A port number, 0 included (the system then chooses one).
pub fn port(raw: &str) -> Parsed<u16> {
    raw.parse().map_err(|_| expected("a port number"))
}

/// A port number to connect to or listen on for certain: not 0.
pub fn nonzero_port(raw: &str) -> Parsed<u16> {
    port(raw)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| expected("a port number"))
}

/// The parser of an integer from `min` to `max`.
pub fn between<T>(min: T, max: T) -> impl Fn(&str) -> Parsed<T> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |raw| {
        raw.parse::<T>()
            .ok()
            .filter(|v| *v >= min && *v <= max)
            .ok_or_else(|| expected(format!("an integer from {min} to {max}")))
    }
}

/// The parser of an integer of at least `min`.
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Parsed<T> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |raw| {
        raw.parse::<T>()
            .ok()
            .filter(|v| *v >= min)
            .ok_or_else(|| expected(format!("an integer >= {min}")))
    }
}

fn seconds_within(raw: &str, min: i64, max: i64) -> Option<TimeDelta> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| (min..=max).contains(s))
        .and_then(TimeDelta::try_seconds)
}

/// The parser of a duration of at least `min` whole seconds.
pub fn seconds_at_least(
    min: i64,
) -> impl Fn(&str) -> Parsed<TimeDelta> + Clone + Send + Sync + 'static {
    move |raw| {
        seconds_within(raw, min, i64::MAX)
            .ok_or_else(|| expected(format!("whole seconds >= {min}")))
    }
}

/// The parser of a duration from `min` to `max` whole seconds.
pub fn seconds_between(
    min: i64,
    max: i64,
) -> impl Fn(&str) -> Parsed<TimeDelta> + Clone + Send + Sync + 'static {
    move |raw| {
        seconds_within(raw, min, max)
            .ok_or_else(|| expected(format!("whole seconds from {min} to {max}")))
    }
}

/// A 32-byte key given as base64; never quoted.
pub fn key32(raw: &str) -> Parsed<[u8; 32]> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            Refusal::Hidden("expected 32 bytes in base64 (openssl rand -base64 32)".to_owned())
        })
}

/// A token a client can send after `Bearer `: an RFC 6750 `b64token`; never quoted.
pub fn metrics_token(raw: &str) -> Parsed<SecretString> {
    let body = raw.trim_end_matches('=');
    let sendable = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if sendable {
        secret(raw)
    } else {
        Err(Refusal::Hidden("a Bearer token is letters, digits and - . _ ~ + / (then = only at the end); generate one with openssl rand -hex 32".to_owned()))
    }
}

/// `CORS_ORIGINS`: see [`CorsOrigins::parse`].
pub fn cors_origins(raw: &str) -> Parsed<CorsOrigins> {
    let (origins, problems) = CorsOrigins::parse(raw);
    if problems.is_empty() {
        Ok(origins)
    } else {
        Err(Refusal::Problems(problems))
    }
}

/// Comma-separated CIDRs or IP addresses; a problem for each entry that is neither.
pub fn trusted_proxies(raw: &str) -> Parsed<Vec<IpNet>> {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(net) => nets.push(net),
            Err(_) => problems.push(format!(
                "TRUSTED_PROXIES entry {entry:?} is not a CIDR or IP address"
            )),
        }
    }
    if problems.is_empty() {
        Ok(nets)
    } else {
        Err(Refusal::Problems(problems))
    }
}

/// An OTLP/HTTP endpoint: an `http://` or `https://` URL with a host, as the exporter will
/// parse it (so that a malformed one is a configuration problem, not a failed start).
pub fn otlp_endpoint(raw: &str) -> Parsed<String> {
    let fine = raw.parse::<actix_web::http::Uri>().ok().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
    });
    if fine {
        Ok(raw.to_owned())
    } else {
        Err(expected("an http:// or https:// URL (OTLP over HTTP)"))
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs, comma-separated, values percent-encoded
/// (W3C baggage form); never quoted (a header may carry a token).
pub fn otlp_headers(raw: &str) -> Parsed<SecretString> {
    otlp_header_pairs(raw)?;
    secret(raw)
}

/// The pairs of an `OTEL_EXPORTER_OTLP_HEADERS` value, values percent-decoded.
pub fn otlp_header_pairs(raw: &str) -> Parsed<Vec<(String, String)>> {
    let refused = || {
        Refusal::Hidden(
            "expected key=value pairs, comma-separated (values percent-encoded)".to_owned(),
        )
    };
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(refused)?;
            let key = key.trim();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if key.is_empty() || !key.bytes().all(token) {
                return Err(refused());
            }
            let value = percent_decode(value.trim()).ok_or_else(refused)?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `OTEL_TRACES_SAMPLER`: one of the specification's samplers this service implements.
pub fn trace_sampler(raw: &str) -> Parsed<TraceSampler> {
    match raw.to_ascii_lowercase().as_str() {
        "always_on" => Ok(TraceSampler::AlwaysOn),
        "always_off" => Ok(TraceSampler::AlwaysOff),
        "traceidratio" => Ok(TraceSampler::TraceIdRatio),
        "parentbased_always_on" => Ok(TraceSampler::ParentbasedAlwaysOn),
        "parentbased_always_off" => Ok(TraceSampler::ParentbasedAlwaysOff),
        "parentbased_traceidratio" => Ok(TraceSampler::ParentbasedTraceIdRatio),
        _ => Err(expected(
            "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
        )),
    }
}

/// `OTEL_TRACES_SAMPLER_ARG`: a ratio from 0 to 1.
pub fn ratio(raw: &str) -> Parsed<f64> {
    raw.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| expected("a number from 0 to 1"))
}
