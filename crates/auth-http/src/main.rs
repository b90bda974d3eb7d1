//! `auth-http`: the auth service binary.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::process::ExitCode;

use actix_web::web;
use auth_http::config::{Config, LogFormat};
use auth_http::startup;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Authentication service: registration, login, JWT access tokens, rotating refresh tokens.
///
/// Configuration comes from environment variables (see the README); with none at all it
/// runs on the embedded default (a SQLite file under ./data, an in-process cache, mail
/// written to the log).
#[derive(Debug, Parser)]
#[command(name = "auth-http", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
}

fn init_tracing(config: &Config) {
    let default = if config.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("auth-http: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&config),
        Command::Serve => actix_web::rt::System::new().block_on(serve(config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("auth-http: {message}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(config: &Config) -> Result<(), String> {
    let path = config.sqlite_path();
    let applied = auth_store_sqlite::migrate(&path)
        .map_err(|e| format!("migrate {}: {e}", path.display()))?;
    tracing::info!(database = %path.display(), applied = applied.len(), "migrations up to date");
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    let started = std::time::Instant::now();
    let addr = (config.host, config.port);
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", addr.0, addr.1))?;
    let (state, facts) = startup::build_state(config, None)
        .await
        .map_err(|e| e.to_string())?;
    let shown_host = if state.config.host.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        state.config.host.to_string()
    };
    let port = state.config.port;
    let banner = format!(
        "auth-service {version} ready in {ms} ms on http://{host}:{port}\n  storage : {storage}\n  cache   : in-process (single instance)\n  mail    : {mail}\n  secrets : {secrets}\n  tokens  : {tokens}\n  docs    : http://{shown_host}:{port}/docs  (OpenAPI at /openapi.json)",
        version = env!("CARGO_PKG_VERSION"),
        ms = started.elapsed().as_millis(),
        host = state.config.host,
        storage = facts.storage,
        mail = state.mailer_backend,
        secrets = facts.secrets,
        tokens = facts.tokens,
    );
    tracing::info!("{banner}");
    let server = startup::run(listener, web::Data::new(state)).map_err(|e| e.to_string())?;
    server.await.map_err(|e| e.to_string())
}
