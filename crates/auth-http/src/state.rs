//! The adapters this binary wires in, and the state every request sees.

use std::time::Instant;

use crate::cache::CacheBackend;
use crate::storage::Storage;
use auth_crypto::{BcryptHasher, JwtCodec, OsRandom, SecretKeyring, SystemClock};
use auth_domain::model::Mail;
use auth_domain::ports::{MailQueue, PortError};
use auth_domain::{Adapters, AuthService};
use auth_mail_log::{LogMailer, MemoryMailbox};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// The embedded default: SQLite, the in-process cache, and a mailer without a server.
#[derive(Debug)]
pub struct Embedded;

impl Adapters for Embedded {
    type Store = Storage;
    type Cache = CacheBackend;
    type Mail = Mailer;
    type Clock = SystemClock;
    type Random = OsRandom;
    type Hasher = BcryptHasher;
    type Tokens = JwtCodec;
    type Keys = SecretKeyring;
}

/// The service as this binary runs it.
pub type Service = AuthService<Embedded>;

/// The mailers of this build.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// Development: mails (with links) go to the log.
    Log(LogMailer),
    /// Mails kept in memory (tests, embedders).
    Memory(MemoryMailbox),
}

impl MailQueue for Mailer {
    async fn enqueue(&self, mail: Mail) -> Result<(), PortError> {
        match self {
            Self::Log(m) => m.enqueue(mail).await,
            Self::Memory(m) => m.enqueue(mail).await,
        }
    }
}

impl Mailer {
    /// Name for health output and the banner.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Log(_) => "log (development: mails are written to the log, not sent)",
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
    /// The mailer's name.
    pub mailer_backend: &'static str,
}
