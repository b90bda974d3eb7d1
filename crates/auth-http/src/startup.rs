//! Building the service from its configuration, and running the HTTP server.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
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
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use secrecy::ExposeSecret;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::cache::CacheBackend;
use crate::config::{Config, Database, JwtAlgorithm};
use crate::error::ApiError;
use crate::extract::{json_config, payload_config};
use crate::openapi::ApiDoc;
use crate::state::{AppState, Mailer};
use crate::storage::{Backend, Storage};
use crate::{middleware, routes, secrets};
use auth_cache_redis::{RedisCache, RedisOptions};
use auth_store_postgres::{PgOptions, PgStore};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The secrets could not be loaded or generated.
    #[error("secrets: {0}")]
    Secrets(#[from] secrets::SecretsError),
    /// A JWT key is unusable.
    #[error("JWT keys: {0}")]
    Keys(#[from] auth_crypto::KeyError),
    /// The cache could not be reached.
    #[error("cache: {0}")]
    Cache(String),
    /// The database could not be opened.
    #[error("database: {0}")]
    Database(String),
    /// The mail settings or templates are unusable.
    #[error("mail: {0}")]
    Mail(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
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

/// An error and its causes on one line (`outer: cause: root cause`), for messages and
/// logs: the one place the crate walks a cause chain.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// How often histogram samples recorded since the last scrape are folded into their buckets.
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus recorder and its handle, with the service's histogram buckets.
///
/// The recorder keeps every histogram sample until the next upkeep or `/metrics` scrape
/// folds it into the buckets: run [`spawn_metrics_upkeep`] beside it, or memory grows with
/// every request while nobody scrapes.
pub fn metrics_recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".into()),
            &buckets,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("auth_mail_queue_wait_seconds".into()),
                &[
                    0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0, 86400.0,
                ],
            )
        })
        .and_then(|b| {
            // bcrypt: about 1 ms at cost 4, 0.2 s at cost 12, 0.8 s at 14; queues longer.
            b.set_buckets_for_metric(
                Matcher::Prefix("auth_password_hash_".into()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
        })
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

/// Folds pending histogram samples into their buckets every `every`, on a thread of its own
/// for the life of the process (not a task: tests run many runtimes, the recorder outlives
/// each). `build_recorder` does not do this; `/metrics` does it only when scraped.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                handle.run_upkeep();
            }
        })
        .map(drop)
}

/// The Prometheus recorder: installed globally once per process (tests start many apps),
/// with its upkeep thread.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (recorder, handle) = metrics_recorder();
            if let Err(e) = spawn_metrics_upkeep(handle.clone(), METRICS_UPKEEP_EVERY) {
                tracing::warn!(
                    "cannot start the metrics upkeep thread ({e}): latency samples pile up between /metrics scrapes"
                );
            }
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only this one's"
                );
            }
            crate::telemetry::describe();
            handle
        })
        .clone()
}

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
    let mut smtp = SmtpConfig::new(host, security, sender)
        .map_err(|e| StartupError::Mail(format!("MAIL_DEFAULT_SENDER: {e}")))?;
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
    let mailer = SmtpMailer::new(smtp).map_err(|e| StartupError::Mail(e.to_string()))?;
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
        .map_err(|e| StartupError::Other(e.to_string()))?
        .map_err(|e| StartupError::Other(error_chain(&e)))?
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
    };
    let service = AuthService::new(ports, policy(&config));
    let warmed = service
        .warm_revocations()
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?;
    if warmed > 0 {
        tracing::info!(
            revocations = warmed,
            "revocation list restored from storage"
        );
    }
    crate::outbox::release_leases_of_a_previous_run(&service)
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?;
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

/// After the HTTP server has stopped (in-flight requests finished or cut at
/// `SHUTDOWN_GRACE`): stops the outbox worker between mails (bounded by the grace too: an
/// unfinished batch is claimed again by another instance when its lease ends), says goodbye
/// to the SMTP server, and closes the database and cache pools.
pub async fn shutdown(
    state: web::Data<AppState>,
    worker: crate::outbox::OutboxWorker,
    stop_began: Option<std::time::Instant>,
) {
    tracing::info!("HTTP server stopped; stopping the outbox worker");
    // One deadline for both phases: what the requests left of SHUTDOWN_GRACE (at least a
    // second, to finish a mail in flight when the requests took it all).
    let full = seconds(state.config.shutdown_grace);
    let used = stop_began.map_or(std::time::Duration::ZERO, |t| t.elapsed());
    let grace = full
        .saturating_sub(used)
        .max(std::time::Duration::from_secs(1));
    if tokio::time::timeout(grace, worker.stop()).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "outbox worker still delivering at the end of the grace period; its mail is left to the next worker"
        );
    }
    let ports = state.service.ports();
    ports.mail.close().await;
    ports.store.close();
    ports.cache.close();
    tracing::info!("shutdown complete");
}

/// Deletes expired rows every `CLEANUP_INTERVAL` (unless 0), on the server's runtime.
pub fn spawn_cleanup(state: web::Data<AppState>) {
    let every = state.config.cleanup_interval;
    if every <= TimeDelta::zero() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(seconds(every));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match state.service.cleanup().await {
                Ok(r) => tracing::info!(
                    sessions = r.sessions,
                    one_time_tokens = r.one_time_tokens,
                    user_revocations = r.user_revocations,
                    dead_mails = r.dead_mails,
                    unverified_users = r.unverified_users,
                    "cleanup"
                ),
                Err(e) => ApiError::Domain(e).log_cause(),
            }
        }
    });
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    // A password may also come as a query parameter (`?password=…`).
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let mut shown = match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("pass") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

fn seconds(d: TimeDelta) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(d.num_seconds()).unwrap_or(0))
}

/// Opens the storage `DATABASE_URL` names, migrating it first unless `AUTO_MIGRATE=false`
/// (SQLite, the embedded default, always migrates). Returns it with the banner line.
pub async fn open_storage(config: &Config) -> Result<(Storage, String), StartupError> {
    match config.database() {
        Database::Sqlite(path) => {
            let pool_size = (config.workers * 2).max(4);
            let store = SqliteStore::open(&path, pool_size).await.map_err(|e| {
                StartupError::Database(format!("{}: {}", path.display(), error_chain(&e)))
            })?;
            Ok((
                Storage::new(Backend::Sqlite(store)),
                format!("SQLite file {} (embedded default)", path.display()),
            ))
        }
        Database::Postgres(url) => {
            let url = url.expose_secret();
            let shown = redact_url(url);
            let unreachable = |e: auth_domain::ports::PortError| {
                StartupError::Database(format!("PostgreSQL at {shown}: {}", error_chain(&e)))
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
        .map_err(|e| StartupError::Cache(format!("Redis at {shown}: {}", error_chain(&e))))?;
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

async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::RouteNotFound)
}

/// Starts serving on `listener` (bind port 0 in tests). The server runs once awaited or
/// spawned; SIGTERM/SIGINT stop it gracefully.
pub fn run(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
    let workers = state.config.workers;
    let grace = u64::try_from(state.config.shutdown_grace.num_seconds()).unwrap_or(30);
    let body_limit = state.config.max_body_bytes;
    let origins = state.config.cors_origins.clone();
    // With METRICS_PORT set, `/metrics` is served there only (see `run_metrics`).
    let metrics_here = state.config.metrics_port.is_none();
    let openapi = ApiDoc::openapi();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(json_config(body_limit))
            .app_data(payload_config(body_limit))
            .wrap(from_fn(middleware::rate_limit_headers))
            .wrap(crate::cors::middleware(&origins))
            .wrap(from_fn(middleware::problem_errors))
            .wrap(from_fn(middleware::security_headers))
            .wrap(from_fn(middleware::metrics))
            .wrap(from_fn(middleware::request_id))
            .configure(routes::auth::configure)
            .configure(routes::users::configure)
            .configure(routes::system::configure)
            .configure(|cfg| {
                if metrics_here {
                    routes::system::configure_metrics(cfg);
                }
            })
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .service(web::redirect("/docs", "/docs/"))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .shutdown_timeout(grace)
    // `serve` handles SIGTERM and SIGINT itself (`stop_on_signal`): actix's handler would
    // make SIGINT a forced stop. Tests stop servers through their handles.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serves `GET /metrics` alone on `listener` (bound to `HOST:METRICS_PORT`), so that it
/// need not be public; every other path is a 404. One worker; spawn it next to [`run`]
/// (which then leaves `/metrics` out). SIGTERM/SIGINT stop it too.
pub fn run_metrics(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(middleware::problem_errors))
            .wrap(from_fn(middleware::security_headers))
            .configure(routes::system::configure_metrics)
            .default_service(web::to(not_found))
    })
    .workers(1)
    .shutdown_timeout(1)
    // Stopped by `serve` after the main server (see `stop_on_signal`).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then stops `main` gracefully — no new
/// connections, in-flight requests get `SHUTDOWN_GRACE` — and then `extra` (the metrics
/// listener). Both servers run with actix's own signal handling off: it treats SIGINT as
/// a forced stop, and a second server's stop would end the whole system early. Returns
/// when the stop has begun, with the time the signal came.
pub async fn stop_on_signal(
    main: actix_web::dev::ServerHandle,
    extra: Option<actix_web::dev::ServerHandle>,
) -> std::time::Instant {
    let signal = wait_for_signal().await;
    let at = std::time::Instant::now();
    tracing::info!(
        signal,
        "stopping: no new connections; in-flight requests get SHUTDOWN_GRACE"
    );
    actix_web::rt::spawn(async move {
        main.stop(true).await;
        if let Some(extra) = extra {
            extra.stop(true).await;
        }
    });
    at
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_passwords_wherever_they_are() {
        assert_eq!(
            redact_url("postgres://auth:s3cret@db:5432/auth"),
            "postgres://auth:***@db:5432/auth"
        );
        assert_eq!(
            redact_url("postgres://db/auth?sslmode=disable&password=s3cret"),
            "postgres://db/auth?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("redis://redis:6379/0"), "redis://redis:6379/0");
        assert_eq!(redact_url("host=db password=s3cret"), "***");
    }
}
