//! The connection string: the settings that are libpq's or ours rather than
//! tokio-postgres' are taken out here, and the rest is left for tokio-postgres' parser
//! (which refuses keys it does not know).
//!
//! | key | meaning |
//! |---|---|
//! | `sslmode`, `sslrootcert` | TLS, as libpq (see [`crate::tls`]) |
//! | `pgbouncer=true` | the server is PgBouncer in transaction mode (as Prisma names it): see [`crate::PgStore`] |

use std::path::PathBuf;

use crate::tls::{RootCert, SslMode, TlsSettings, TlsSettingsError};

/// What [`split_url`] takes out of a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlSettings {
    /// `sslmode` and `sslrootcert`.
    pub tls: TlsSettings,
    /// `pgbouncer=true`: every operation runs in a transaction, with no prepared statement
    /// kept across transactions and nothing set on the session.
    pub pgbouncer: bool,
}

/// A setting of the connection string that cannot be used. Says which, never the rest of
/// the string (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// `sslmode` or `sslrootcert`.
    #[error(transparent)]
    Tls(#[from] TlsSettingsError),
    /// `pgbouncer` is neither true nor false.
    #[error("pgbouncer={0:?} is not true or false")]
    PgBouncer(String),
}

/// Takes `sslmode`, `sslrootcert` and `pgbouncer` out of `url` (URL or `key=value` form):
/// the string left for tokio-postgres, and the settings.
pub fn split_url(url: &str) -> Result<(String, UrlSettings), UrlError> {
    let mut settings = UrlSettings::default();
    let mut take = |key: &str, value: &str| -> Result<bool, UrlError> {
        match key {
            "sslmode" => settings.tls.mode = SslMode::parse(value)?,
            "sslrootcert" => {
                settings.tls.root_cert = Some(if value == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(value))
                });
            }
            "pgbouncer" => {
                settings.pgbouncer = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(UrlError::PgBouncer(other.to_owned())),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    if !take(key, &value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_owned(),
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !take(key, value.trim_matches('\''))? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbouncer_is_taken_out_of_both_forms() -> Result<(), UrlError> {
        let (rest, s) = split_url("postgres://u:p@pool:6432/auth?pgbouncer=true&sslmode=require")?;
        assert_eq!(rest, "postgres://u:p@pool:6432/auth");
        assert!(s.pgbouncer);
        assert_eq!(s.tls.mode, SslMode::Require);
        let (rest, s) = split_url("host=pool pgbouncer=false dbname=auth")?;
        assert_eq!(rest, "host=pool dbname=auth");
        assert!(!s.pgbouncer);
        assert!(!split_url("postgres://db/auth")?.1.pgbouncer);
        Ok(())
    }

    #[test]
    fn a_pgbouncer_value_that_is_not_a_boolean_is_refused_without_the_password() {
        let shown = split_url("postgres://u:secret@pool/auth?pgbouncer=yes-please")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            shown.contains("yes-please") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
