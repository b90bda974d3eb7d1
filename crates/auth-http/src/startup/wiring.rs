//! Wiring: the adapters, policies and state the configuration asks for.

use std::time::Instant;

use auth_cache_memory::MemoryCache;
use auth_crypto::{
    Asymmetric, BcryptHasher, JwtCodec, Key32, KeyMaterial, OsRandom, SecretKeyring, SystemClock,
};
use auth_domain::policy::{LockoutPolicy, OutboxPolicy, Policy, RateLimit, RateLimits};
use auth_domain::{AuthService, Ports};
use auth_mail_log::{LogMailer, MemoryMailbox};
use auth_mail_smtp::{Security, SmtpConfig, SmtpMailer};
use auth_store_sqlite::SqliteStore;
use chrono::TimeDelta;
use secrecy::ExposeSecret;

use crate::cache::CacheBackend;
use crate::config::{Config, Database, JwtAlgorithm};
use crate::secrets;
use crate::state::{AppState, Mailer};
use crate::storage::{Backend, Storage};
use auth_cache_redis::{RedisCache, RedisOptions};
use auth_store_postgres::{PgOptions, PgStore};

use super::lifecycle::seconds;
use super::metrics::metrics_handle;

/// A cause of a startup failure, kept for its chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the service could not start. Each variant keeps its cause as its `source`: print the
/// whole chain with [`error_chain`].
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The secrets could not be loaded or generated.
    #[error("secrets")]
    Secrets(#[from] secrets::SecretsError),
    /// A JWT key is unusable.
    #[error("JWT keys")]
    Keys(#[from] auth_crypto::KeyError),
    /// The cache could not be reached.
    #[error("cache: {at}")]
    Cache {
        /// Which cache (its URL without credentials).
        at: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The database could not be opened, migrated or read at start.
    #[error("database: {at}")]
    Database {
        /// Which database, or what was being done.
        at: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The mail settings or templates are unusable.
    #[error("mail: {what}")]
    Mail {
        /// Which setting.
        what: &'static str,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A listening address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// `host:port (VARIABLE)`.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not start.
    #[error("cannot start the HTTP server")]
    Serve(#[source] std::io::Error),
    /// The password hasher could not be set up.
    #[error("password hashing")]
    Hasher(#[source] Cause),
}

impl StartupError {
    fn database(at: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Database {
            at: at.into(),
            source: source.into(),
        }
    }
}

/// What the startup banner says.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Storage line.
    pub storage: String,
    /// Secrets line.
    pub secrets: String,
    /// Tokens line.
    pub tokens: String,
    /// Cache line.
    pub cache: String,
    /// Mail line.
    pub mail: String,
}

pub use auth_domain::error::error_chain;

/// The domain's policies from the configuration.
pub fn policy(config: &Config) -> Policy {
    let minute = TimeDelta::minutes(1);
    Policy {
        access_ttl: config.access_ttl,
        refresh_ttl: config.refresh_ttl,
        reuse_interval: config.reuse_interval,
        lockout: LockoutPolicy {
            threshold: config.lockout_threshold,
            base_lock: config.lockout_duration,
            ..LockoutPolicy::default()
        },
        rate: RateLimits {
            per_ip: RateLimit {
                name: "ip",
                limit: config.rate_limit_ip,
                window: minute,
            },
            per_identifier: RateLimit {
                name: "identifier",
                limit: config.rate_limit_identifier,
                window: minute,
            },
            ..RateLimits::default()
        },
        app_url: config.app_url.clone(),
        outbox: OutboxPolicy {
            max_attempts: config.mail_max_attempts,
            first_retry: config.mail_retry_delay,
            // The lease stays short whatever MAIL_TIMEOUT is: the worker renews it while a
            // delivery runs (see `outbox::while_renewing`).
            ..OutboxPolicy::default()
        },
        ..Policy::default()
    }
}

/// The SMTP settings of `MAIL_*`; fails on a sender that is not an address.
pub fn smtp_config(config: &Config, host: &str) -> Result<SmtpConfig, StartupError> {
    let security = if config.mail_use_ssl {
        Security::ImplicitTls
    } else if config.mail_use_tls {
        Security::StartTls
    } else {
        Security::None
    };
    let sender = config
        .mail_default_sender
        .as_deref()
        .unwrap_or("Auth <no-reply@localhost>");
    let mut smtp = SmtpConfig::new(host, security, sender).map_err(|e| StartupError::Mail {
        what: "MAIL_DEFAULT_SENDER",
        source: e.into(),
    })?;
    if let Some(port) = config.mail_port {
        smtp.port = port;
    }
    if let (Some(username), Some(password)) = (&config.mail_username, &config.mail_password) {
        smtp = smtp.with_credentials(username.expose_secret(), password.clone());
    }
    let timeout = seconds(config.mail_timeout);
    smtp.connect_timeout = timeout;
    smtp.command_timeout = timeout;
    smtp.templates_dir = config.mail_templates_dir.clone();
    smtp.product_name = config.mail_product_name.clone();
    Ok(smtp)
}

/// The transport `MAIL_SERVER` names, or the log mailer; `mailbox` replaces both (tests).
pub fn open_mailer(
    config: &Config,
    mailbox: Option<MemoryMailbox>,
) -> Result<(Mailer, String), StartupError> {
    if let Some(mailbox) = mailbox {
        return Ok((
            Mailer::Memory(mailbox),
            "in-memory mailbox, through the outbox".to_owned(),
        ));
    }
    let Some(host) = &config.mail_server else {
        return Ok((
            Mailer::Log(LogMailer),
            "log (development: mails and their links are written to the log, not sent; set MAIL_SERVER to send)".to_owned(),
        ));
    };
    let smtp = smtp_config(config, host)?;
    let fact = format!(
        "SMTP {host}:{} ({}{}), from {}, through the outbox",
        smtp.port,
        match smtp.security {
            Security::ImplicitTls => "implicit TLS",
            Security::StartTls => "STARTTLS",
            Security::None => "no TLS",
        },
        if smtp.username.is_some() {
            ", authenticated"
        } else {
            ""
        },
        smtp.sender,
    );
    let mailer = SmtpMailer::new(smtp).map_err(|e| StartupError::Mail {
        what: "SMTP",
        source: e.into(),
    })?;
    Ok((Mailer::Smtp(Box::new(mailer)), fact))
}

/// Builds the service: secrets, keys, storage (migrated), cache, mailer. `mailbox` replaces
/// the log mailer (tests read mails from it).
pub async fn build_state(
    config: Config,
    mailbox: Option<MemoryMailbox>,
) -> Result<(AppState, Facts), StartupError> {
    let secrets = secrets::load(
        &config.data_dir,
        config.secret_key.as_ref(),
        config.jwt_secret_key.as_ref(),
    )?;
    let mut keys = KeyMaterial::derive(secrets.secret_key.expose_secret());
    let explicit = &config.explicit_keys;
    if let Some(k) = explicit.encryption {
        keys.seal = Key32(k);
    }
    if let Some(k) = explicit.blind_index {
        keys.index = Key32(k);
    }
    if let Some(k) = explicit.pepper {
        keys.pepper = Key32(k);
    }
    let (tokens, tokens_fact) = match &config.jwt_private_key {
        Some(pem) => {
            let alg = match config.jwt_algorithm {
                JwtAlgorithm::Es256 => Asymmetric::Es256,
                JwtAlgorithm::EdDsa => Asymmetric::EdDsa,
                JwtAlgorithm::Rs256 | JwtAlgorithm::Hs256 => Asymmetric::Rs256,
            };
            let codec = JwtCodec::asymmetric(
                alg,
                pem.expose_secret(),
                config.jwt_public_key.as_deref(),
                &config.jwt_issuer,
                &config.jwt_audience,
            )?
            .with_verify_cache(config.jwt_verify_cache);
            let fact = format!(
                "{} from JWT_PRIVATE_KEY, kid {}",
                codec.algorithm(),
                codec.key_id()
            );
            (codec, fact)
        }
        None => {
            let codec = JwtCodec::hs256(
                secrets.jwt_secret_key.expose_secret(),
                &config.jwt_issuer,
                &config.jwt_audience,
            )?
            .with_verify_cache(config.jwt_verify_cache);
            let source = if config.jwt_secret_key.is_some() {
                "JWT_SECRET_KEY"
            } else {
                "a generated secret"
            };
            let fact = format!(
                "HS256 from {source}, kid {} (JWKS stays empty: set JWT_PRIVATE_KEY for RS256)",
                codec.key_id()
            );
            (codec, fact)
        }
    };
    let pepper = keys.pepper.clone();
    let (cost, concurrency) = (config.bcrypt_cost, config.hash_concurrency);
    let hasher = tokio::task::spawn_blocking(move || BcryptHasher::new(cost, pepper, concurrency))
        .await
        .map_err(|e| StartupError::Hasher(e.into()))?
        .map_err(|e| StartupError::Hasher(e.into()))?
        .observed(crate::telemetry::password_hashed);
    let (store, storage_fact) = open_storage(&config).await?;
    let (cache, cache_fact) = open_cache(&config).await?;
    let (mailer, mail_fact) = open_mailer(&config, mailbox)?;
    let jwks = tokens.jwks();
    let ports = Ports::<crate::state::ConfiguredAdapters> {
        store,
        cache,
        mail: mailer,
        clock: SystemClock,
        random: OsRandom,
        hasher,
        tokens,
        keys: SecretKeyring::new(keys),
        events: crate::events::AppEvents::default(),
    };
    let service = AuthService::new(ports, policy(&config));
    let warmed = service
        .warm_revocations()
        .await
        .map_err(|e| StartupError::database("restoring the revocation list", e))?;
    if warmed > 0 {
        tracing::info!(
            revocations = warmed,
            "revocation list restored from storage"
        );
    }
    crate::outbox::release_leases_of_a_previous_run(&service)
        .await
        .map_err(|e| StartupError::database("releasing the outbox leases of a previous run", e))?;
    let facts = Facts {
        storage: storage_fact,
        secrets: match &secrets.generated_in {
            Some(file) => format!(
                "generated once and kept in {} (mode 0600); set SECRET_KEY and JWT_SECRET_KEY or JWT_PRIVATE_KEY in production",
                file.display()
            ),
            None => "from SECRET_KEY and JWT_SECRET_KEY".to_owned(),
        },
        tokens: tokens_fact,
        cache: cache_fact,
        mail: mail_fact,
    };
    let state = AppState {
        service,
        config,
        jwks,
        metrics: metrics_handle(),
        started: Instant::now(),
    };
    Ok((state, facts))
}

/// Connection URLs for messages, without their passwords (one rule for every adapter).
pub use auth_domain::monitoring::redact_url;

/// Opens the storage `DATABASE_URL` names, migrating it first unless `AUTO_MIGRATE=false`
/// (SQLite, the embedded default, always migrates). Returns it with the banner line.
pub async fn open_storage(config: &Config) -> Result<(Storage, String), StartupError> {
    match config.database() {
        Database::Sqlite(path) => {
            let pool_size = (config.workers * 2).max(4);
            let store = SqliteStore::open(&path, pool_size)
                .await
                .map_err(|e| StartupError::database(path.display().to_string(), e))?;
            Ok((
                Storage::new(Backend::Sqlite(store)),
                format!("SQLite file {} (embedded default)", path.display()),
            ))
        }
        Database::Postgres(url) => {
            let url = url.expose_secret();
            let shown = redact_url(url);
            let unreachable = |e: auth_domain::ports::PortError| {
                StartupError::database(format!("PostgreSQL at {shown}"), e)
            };
            if config.auto_migrate {
                let applied = auth_store_postgres::migrate(url)
                    .await
                    .map_err(unreachable)?;
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "postgresql: applied migrations");
                }
            }
            let statement = config.database_statement_timeout;
            let options = PgOptions {
                pool_size: config.database_pool_size,
                connect_timeout: seconds(config.database_connect_timeout),
                statement_timeout: (statement > TimeDelta::zero()).then(|| seconds(statement)),
                ..PgOptions::default()
            };
            let store = PgStore::connect(url, options).await.map_err(unreachable)?;
            let fact = format!(
                "PostgreSQL {shown} (pool {}{})",
                config.database_pool_size,
                if config.auto_migrate {
                    ", migrated at start"
                } else {
                    ", AUTO_MIGRATE=false"
                }
            );
            Ok((Storage::new(Backend::Postgres(store)), fact))
        }
    }
}

/// The cache `REDIS_URL` names (unreachable at start: an error), or the in-process one.
pub async fn open_cache(config: &Config) -> Result<(CacheBackend, String), StartupError> {
    let Some(url) = &config.redis_url else {
        return Ok((
            CacheBackend::Memory(MemoryCache::new()),
            "in-process (single instance; set REDIS_URL to share it)".to_owned(),
        ));
    };
    let url = url.expose_secret();
    let shown = redact_url(url);
    let redis = RedisCache::connect(url, &config.redis_key_prefix, RedisOptions::default())
        .await
        .map_err(|e| StartupError::Cache {
            at: format!("Redis at {shown}"),
            source: e.into(),
        })?;
    let fact = format!(
        "Redis {shown}, keys under {:?} (shared by every instance)",
        config.redis_key_prefix
    );
    Ok((
        CacheBackend::Redis {
            redis,
            fallback: MemoryCache::new(),
        },
        fact,
    ))
}
