//! The adapters the configuration names: storage, cache, mail.

use auth_cache_memory::MemoryCache;
use auth_cache_redis::{RedisCache, RedisOptions};
use auth_mail_log::{LogMailer, MemoryMailbox};
use auth_mail_smtp::{Security, SmtpConfig, SmtpMailer};
use auth_store_postgres::{PgOptions, PgStore};
use auth_store_sqlite::SqliteStore;
use std::time::Duration;

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use crate::cache::CacheBackend;
use crate::config::{Config, Database, cluster_nodes};
use crate::state::Mailer;
use crate::storage::{Backend, Storage};

use super::lifecycle::seconds;
use super::wiring::StartupError;

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
                let direct = config
                    .migration_url()
                    .unwrap_or_else(|| url.to_owned().into());
                let direct = direct.expose_secret();
                let applied = auth_store_postgres::migrate(direct).await.map_err(|e| {
                    StartupError::database(format!("PostgreSQL at {}", redact_url(direct)), e)
                })?;
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
            let replicas = config.replica_urls();
            for (position, replica) in replicas.iter().enumerate() {
                tracing::info!(replica = position + 1, url = %redact_url(replica), "postgresql: read replica");
            }
            let store = PgStore::connect(url, options.clone())
                .await
                .map_err(unreachable)?
                .with_replicas(
                    &replicas,
                    options,
                    Duration::from_millis(config.database_replica_max_lag_ms),
                )
                .map_err(|e| StartupError::database("a PostgreSQL read replica".to_owned(), e))?;
            let fact = format!(
                "PostgreSQL {shown} (pool {}{}{})",
                config.database_pool_size,
                match replicas.len() {
                    0 => String::new(),
                    n => format!(
                        ", {n} read replica{} within {} ms",
                        if n == 1 { "" } else { "s" },
                        config.database_replica_max_lag_ms
                    ),
                },
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

/// The cache `REDIS_URL` (one server) or `REDIS_CLUSTER_NODES` (a Redis Cluster) names
/// (unreachable at start: an error), or the in-process one.
pub async fn open_cache(config: &Config) -> Result<(CacheBackend, String), StartupError> {
    let nodes = config
        .redis_cluster_nodes
        .as_ref()
        .map(|nodes| cluster_nodes(nodes.expose_secret()));
    let url = config.redis_url.as_ref().map(ExposeSecret::expose_secret);
    if nodes.is_none() && url.is_none() {
        return Ok((
            CacheBackend::Memory(MemoryCache::new()),
            "in-process (single instance; set REDIS_URL or REDIS_CLUSTER_NODES to share it)"
                .to_owned(),
        ));
    }
    let ca_cert_pem = match &config.redis_ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| StartupError::Cache {
            at: format!("REDIS_CA_CERT {}", path.display()),
            source: e.into(),
        })?),
        None => None,
    };
    let options = RedisOptions {
        ca_cert_pem,
        ..RedisOptions::default()
    };
    let prefix = &config.redis_key_prefix;
    // Validation refuses both at once; the cluster wins if it ever came to that.
    let (connected, at, shown) = match (nodes, url) {
        (Some(nodes), _) => {
            let seeds = nodes
                .iter()
                .map(|node| redact_url(node))
                .collect::<Vec<_>>()
                .join(",");
            (
                RedisCache::connect_cluster(&nodes, prefix, options).await,
                format!("the Redis Cluster at {seeds}"),
                format!("Redis Cluster (seed nodes {seeds})"),
            )
        }
        (None, url) => {
            let url = url.unwrap_or_default();
            let shown = redact_url(url);
            (
                RedisCache::connect(url, prefix, options).await,
                format!("Redis at {shown}"),
                format!("Redis {shown}"),
            )
        }
    };
    let redis = connected.map_err(|e| StartupError::Cache {
        at,
        source: e.into(),
    })?;
    let fact = format!("{shown}, keys under {prefix:?} (shared by every instance)");
    Ok((
        CacheBackend::Redis {
            redis,
            fallback: MemoryCache::new(),
        },
        fact,
    ))
}
