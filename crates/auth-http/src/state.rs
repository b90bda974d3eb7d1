//! The adapters this binary wires in, and the state every request sees.

use std::time::Instant;

use crate::cache::CacheBackend;
use crate::storage::Storage;
use auth_crypto::{BcryptHasher, JwtCodec, OsRandom, SecretKeyring, SystemClock};
use auth_domain::model::Mail;
use auth_domain::ports::{DeliveryError, MailTransport};
use auth_domain::{Adapters, AuthService};
use auth_mail_log::{LogMailer, MemoryMailbox};
use auth_mail_smtp::SmtpMailer;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// The adapters this binary runs on, each chosen by configuration at start: storage
/// (SQLite or PostgreSQL), cache (in-process or Redis) and mail (the log or SMTP).
#[derive(Debug)]
pub struct ConfiguredAdapters;

impl Adapters for ConfiguredAdapters {
    type Store = Storage;
    type Cache = CacheBackend;
    type Mail = Mailer;
    type Clock = SystemClock;
    type Random = OsRandom;
    type Hasher = BcryptHasher;
    type Tokens = JwtCodec;
    type Keys = SecretKeyring;
    type Totp = auth_crypto::Rfc6238;
    type Passkeys = crate::passkeys::Passkeys;
    type Events = crate::events::AppEvents;
}

/// The service as this binary runs it.
pub type Service = AuthService<ConfiguredAdapters>;

/// The mail transports of this build, each behind the outbox worker.
#[derive(Debug)]
pub enum Mailer {
    /// SMTP (`MAIL_SERVER`).
    Smtp(Box<SmtpMailer>),
    /// Development: mails (with links) go to the log.
    Log(LogMailer),
    /// Mails kept in memory (tests, embedders).
    Memory(MemoryMailbox),
}

impl MailTransport for Mailer {
    async fn send(&self, mail: &Mail) -> Result<(), DeliveryError> {
        match self {
            Self::Smtp(m) => m.send(mail).await,
            Self::Log(m) => m.send(mail).await,
            Self::Memory(m) => m.send(mail).await,
        }
    }
}

impl Mailer {
    /// Says goodbye to the SMTP server, if a connection is open (at shutdown).
    pub async fn close(&self) {
        if let Self::Smtp(smtp) = self {
            smtp.close().await;
        }
    }

    /// Name for health output.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Log(_) => "log",
            Self::Memory(_) => "memory",
        }
    }
}

/// What every request sees.
#[derive(Debug)]
pub struct AppState {
    /// The use cases.
    pub service: Service,
    /// The configuration in force.
    pub config: Config,
    /// `GET /.well-known/jwks.json`, computed once.
    pub jwks: serde_json::Value,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// For uptime.
    pub started: Instant,
}
