//! `auth-http`: the auth service binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use auth_domain::ports::Store;
use auth_http::cli;
use auth_http::config::{Config, Database, LogFormat};
use auth_http::startup;
use auth_http::traces;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Authentication service: registration, login, JWT access tokens, rotating refresh tokens.
///
/// Configuration comes from environment variables (`auth-http serve --help` lists them);
/// with none at all it runs on the embedded default (a SQLite file under ./data, an
/// in-process cache, mail written to the log).
#[derive(Debug, Parser)]
#[command(name = "auth-http", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    #[command(after_help = auth_http::config::variables_help())]
    Serve,
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
    /// Delete expired sessions, refresh tokens and one-time tokens, then exit (the server
    /// also does this every CLEANUP_INTERVAL).
    Cleanup,
    /// JWT signing keys.
    Keys {
        #[command(subcommand)]
        command: cli::KeysCommand,
    },
    /// Check the configuration without starting anything.
    Config {
        #[command(subcommand)]
        command: cli::ConfigCommand,
    },
}

/// Logs on stderr (`LOG_FORMAT`, filtered by `DEBUG` / `RUST_LOG`) and, when an OTLP
/// endpoint is set, traces (see [`auth_http::traces`]); returns the exporter to flush at
/// the end. The OpenTelemetry layer has its own filter (spans of the service only), so
/// `RUST_LOG` shapes the logs, not the traces.
fn init_tracing(config: &Config) -> Result<Option<traces::Traces>, String> {
    let default = if config.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (otel, exporter) = match traces::pipeline::<tracing_subscriber::Registry>(config)? {
        Some((layer, exporter)) => (Some(layer), Some(exporter)),
        None => (None, None),
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let filter = filter.and(filter_fn(traces::not_trace_only));
    let logs = match config.log_format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .map_event_format(traces::WithTraceIds)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => logs.with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(otel).with(logs).init();
    Ok(exporter)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => run_with_config(migrate),
        Command::Cleanup => run_with_config(cleanup),
        Command::Serve => run_with_config(serve),
        // Offline tools: they need no valid configuration (reporting an invalid one is
        // `config check`'s job), so they run before it is loaded.
        Command::Keys { command } => cli::keys(&command),
        Command::Config { command } => cli::config(&command),
    }
}

/// Loads the configuration (exit 2 when it is invalid), starts logging, and runs
/// `command` on the actix runtime (exit 1, with its message, when it fails).
fn run_with_config<F, Fut>(command: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("auth-http: {err}");
            return ExitCode::from(2);
        }
    };
    let exporter = match init_tracing(&config) {
        Ok(exporter) => exporter,
        Err(message) => {
            eprintln!("auth-http: {message}");
            return ExitCode::FAILURE;
        }
    };
    let code = match actix_web::rt::System::new().block_on(command(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("auth-http: {message}");
            ExitCode::FAILURE
        }
    };
    // After the server and its runtime have stopped: the last spans go out.
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    code
}

async fn migrate(config: Config) -> Result<(), String> {
    let applied = match config.database() {
        Database::Sqlite(path) => {
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || auth_store_sqlite::migrate(&path))
                .await
                .map_err(|e| startup::error_chain(&e))?
                .map_err(|e| format!("migrate {shown}: {}", startup::error_chain(&e)))?
        }
        Database::Postgres(url) => {
            let url = config.migration_url().unwrap_or(url);
            let url = url.expose_secret();
            auth_store_postgres::migrate(url).await.map_err(|e| {
                format!(
                    "migrate {}: {}",
                    startup::redact_url(url),
                    startup::error_chain(&e)
                )
            })?
        }
    };
    tracing::info!(applied = applied.len(), "migrations up to date");
    Ok(())
}

async fn cleanup(config: Config) -> Result<(), String> {
    let access_ttl = config.access_ttl;
    let unverified_ttl = startup::policy(&config).unverified_ttl;
    let (store, _) = startup::open_storage(&config)
        .await
        .map_err(|e| startup::error_chain(&e))?;
    let now = chrono::Utc::now();
    let report = store
        .cleanup(
            now,
            now - access_ttl - chrono::TimeDelta::seconds(1),
            now - unverified_ttl,
        )
        .await
        .map_err(|e| format!("cleanup: {}", startup::error_chain(&e)))?;
    tracing::info!(
        sessions = report.sessions,
        one_time_tokens = report.one_time_tokens,
        user_revocations = report.user_revocations,
        dead_mails = report.dead_mails,
        unverified_users = report.unverified_users,
        "cleanup done"
    );
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    for warning in config.warnings() {
        tracing::warn!("configuration: {warning}");
    }
    let application = startup::Application::build(config)
        .await
        .map_err(|e| startup::error_chain(&e))?;
    tracing::info!("{}", application.banner());
    // Runs until SIGTERM/SIGINT: then stops accepting, and waits up to SHUTDOWN_GRACE for
    // in-flight requests.
    application
        .run_until_stopped()
        .await
        .map_err(|e| startup::error_chain(&e))
}
