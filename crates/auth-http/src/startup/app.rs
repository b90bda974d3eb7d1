//! The application: built from its configuration, then run until stopped. `main` runs it;
//! every HTTP test builds the same one (on a port of its own, with mail kept in memory).

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use auth_mail_log::MemoryMailbox;

use crate::config::Config;
use crate::outbox::{OutboxWorker, spawn_outbox_worker};
use crate::revocations::{RevocationKeeper, spawn_revocation_keeper};
use crate::state::AppState;

use super::lifecycle::{shutdown, spawn_cleanup, stop_on_signal};
use super::servers::{run, run_metrics};
use super::wiring::{Facts, StartupError, build_state};

/// What [`Application::build`] binds and where mail goes, when not from the configuration.
#[derive(Debug, Default)]
pub struct Overrides {
    /// Serve here instead of binding `HOST:PORT` (tests: `127.0.0.1:0`).
    pub listener: Option<TcpListener>,
    /// Serve `/metrics` here instead of binding `HOST:METRICS_PORT`.
    pub metrics_listener: Option<TcpListener>,
    /// Deliver mail to this mailbox instead of the log (ignored when `MAIL_SERVER` is set).
    pub mailbox: Option<MemoryMailbox>,
}

/// The service, built and serving; [`Application::run_until_stopped`] waits for a signal
/// (or a stop through [`Application::handle`]) and shuts down gracefully.
pub struct Application {
    state: web::Data<AppState>,
    facts: Facts,
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics: Option<Server>,
    worker: Option<OutboxWorker>,
    keeper: RevocationKeeper,
    ready_in: std::time::Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `HOST:PORT` (and `METRICS_PORT`), opens every adapter the configuration names,
    /// and starts the background tasks (outbox worker, revocation keeper, cleanup) and the
    /// servers. Must run on the actix runtime.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with(config, Overrides::default()).await
    }

    /// [`Self::build`] with `overrides` (tests, embedders).
    pub async fn build_with(config: Config, overrides: Overrides) -> Result<Self, StartupError> {
        let started = Instant::now();
        let listener = match overrides.listener {
            Some(listener) => listener,
            None => bind(&config, config.port, "PORT")?,
        };
        let metrics_listener = match (overrides.metrics_listener, config.metrics_port) {
            (Some(listener), _) => Some(listener),
            (None, Some(port)) => Some(bind(&config, port, "METRICS_PORT")?),
            (None, None) => None,
        };
        let port = local_port(&listener)?;
        let metrics_port = metrics_listener.as_ref().map(local_port).transpose()?;
        let mailbox = overrides.mailbox.filter(|_| config.mail_server.is_none());
        let (state, facts) = build_state(config, mailbox).await?;
        let state = web::Data::new(state);
        spawn_cleanup(state.clone());
        let worker = spawn_outbox_worker(state.clone());
        let keeper = spawn_revocation_keeper(state.clone());
        let server = run(listener, state.clone()).map_err(StartupError::Serve)?;
        let metrics = metrics_listener
            .map(|listener| run_metrics(listener, state.clone()))
            .transpose()
            .map_err(StartupError::Serve)?;
        Ok(Self {
            state,
            facts,
            port,
            metrics_port,
            server,
            metrics,
            worker: Some(worker),
            keeper,
            ready_in: started.elapsed(),
        })
    }

    /// The port the API is served on (the bound one: `PORT=0` picks a free port).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, when it has its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The state every request sees.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stops the API server (then [`Self::run_until_stopped`] shuts the rest down).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Hands the outbox worker to the caller, who then stops it (tests that stop and
    /// restart delivery); shutdown no longer does.
    pub fn take_worker(&mut self) -> Option<OutboxWorker> {
        self.worker.take()
    }

    /// The startup banner: version, time to ready, address, and each adapter in use.
    pub fn banner(&self) -> String {
        let config = &self.state.config;
        let shown_host = if config.host.is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            config.host.to_string()
        };
        let facts = &self.facts;
        format!(
            "auth-service {version} ready in {ms} ms on http://{host}:{port}\n  storage : {storage}\n  cache   : {cache}\n  mail    : {mail}\n  secrets : {secrets}\n  tokens  : {tokens}\n  passkeys: {passkeys}\n  docs    : http://{shown_host}:{port}/docs  (OpenAPI at /openapi.json)",
            version = env!("CARGO_PKG_VERSION"),
            ms = self.ready_in.as_millis(),
            host = config.host,
            port = self.port,
            storage = facts.storage,
            mail = facts.mail,
            secrets = facts.secrets,
            tokens = facts.tokens,
            cache = facts.cache,
            passkeys = facts.passkeys,
        )
    }

    /// Serves until SIGTERM/SIGINT or a stop through [`Self::handle`]: then stops accepting,
    /// lets in-flight requests finish within `SHUTDOWN_GRACE`, stops the metrics server and
    /// the outbox worker, and closes the pools.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics_handle = self.metrics.map(|metrics| {
            let handle = metrics.handle();
            actix_web::rt::spawn(metrics);
            handle
        });
        let stopper =
            actix_web::rt::spawn(stop_on_signal(self.server.handle(), metrics_handle.clone()));
        let served = self.server.await;
        let stop_began = if stopper.is_finished() {
            stopper.await.ok()
        } else {
            stopper.abort();
            None
        };
        if let Some(metrics) = metrics_handle {
            metrics.stop(true).await;
        }
        drop(self.keeper);
        shutdown(self.state, self.worker, stop_began).await;
        served
    }
}

fn bind(config: &Config, port: u16, name: &'static str) -> Result<TcpListener, StartupError> {
    TcpListener::bind((config.host, port)).map_err(|source| StartupError::Listen {
        address: format!("{}:{port} ({name})", config.host),
        source,
    })
}

fn local_port(listener: &TcpListener) -> Result<u16, StartupError> {
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(StartupError::Serve)
}
