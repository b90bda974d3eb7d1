//! Schema migrations: embedded at build time, applied under an advisory lock so that
//! several instances starting at once apply each migration exactly once.

use std::time::Duration;

use auth_domain::ports::PortError;
use diesel::connection::SimpleConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::pool::{Target, connection_config, describe, establish};

/// The schema migrations, embedded at build time from `migrations/postgres`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The key of the session-level advisory lock held while migrating (an arbitrary constant
/// of this service: "auth" "migr" in ASCII). Every instance takes the same lock, so
/// concurrent migrations queue up; the last to get it finds nothing left to apply.
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772;

/// How long opening the migration connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Applies the pending migrations to the database at `url` and returns the versions
/// applied (empty when the schema is up to date).
///
/// Safe when several instances start at once: the work runs on one connection holding
/// `pg_advisory_lock`, each migration in its own transaction. That lock belongs to the
/// session, so `url` must reach PostgreSQL itself: a URL with `pgbouncer=true` is refused. No statement timeout
/// applies (a migration may rewrite a large table). Callable from any Tokio runtime,
/// a current-thread one (`#[actix_web::main]`, `#[tokio::test]`) included: the blocking
/// migration harness runs on a thread of its own with its own small runtime.
pub async fn migrate(url: &str) -> Result<Vec<String>, PortError> {
    let config = connection_config(url, CONNECT_TIMEOUT, None)?;
    if config.begin.is_some() {
        return Err(PortError::unexpected(ThroughPgBouncer));
    }
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("pg-migrate".to_owned())
        .spawn(move || {
            // The receiver is gone only if the caller stopped waiting.
            let _ = sender.send(migrate_blocking(&config));
        })
        .map_err(PortError::unexpected)?;
    receiver
        .await
        .map_err(|_| PortError::unexpected("the migration thread ended without an answer"))?
}

/// The blocking part of [`migrate`], on a thread that is not a runtime worker.
fn migrate_blocking(config: &Target) -> Result<Vec<String>, PortError> {
    // Multi-thread (one worker), so that `Handle::block_on` from this thread, which the
    // connection wrapper uses for each statement, has a worker driving the socket.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pg-migrate-io")
        .enable_all()
        .build()
        .map_err(PortError::unexpected)?;
    let conn = runtime.block_on(establish(config)).map_err(|source| {
        PortError::unavailable(MigrationUnreachable {
            target: describe(&config.config),
            source,
        })
    })?;
    // Entered, the wrapper picks this runtime's handle instead of building its own.
    let _entered = runtime.enter();
    let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);

    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .map_err(crate::error::query_error)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(PortError::Unexpected);
    // Closing the connection would release the lock too; unlocking first frees the next
    // instance without waiting for the server to notice the closed socket.
    if let Err(err) = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")) {
        tracing::warn!(error = %err, "postgres: cannot release the migration lock");
    }
    drop(conn);
    applied
}

/// A URL with `pgbouncer=true` was given to [`migrate`].
#[derive(Debug, thiserror::Error)]
#[error(
    "migrations need a direct connection to PostgreSQL, not one through PgBouncer \
     (pgbouncer=true): the advisory lock they hold belongs to a session"
)]
struct ThroughPgBouncer;

/// The migration connection failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach PostgreSQL at {target} to migrate")]
struct MigrationUnreachable {
    target: String,
    #[source]
    source: diesel::ConnectionError,
}
