//! Opening the database: file, migrations, connection settings and the pool, and the one
//! way every operation reaches a connection ([`SqliteStore::run`]).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_domain::monitoring::PoolStatus;
use auth_domain::ports::PortError;
use diesel::connection::SimpleConnection;
use diesel::result::ConnectionError;
use diesel::{Connection, ConnectionResult, QueryResult, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::runtime::Handle;
use tracing::Instrument as _;

use crate::error::DbError;

/// The schema migrations, embedded at build time from `migrations/sqlite`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a query waits for a lock another connection holds before it fails with
/// `SQLITE_BUSY` (reported as [`PortError::Unavailable`]).
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// How long an operation waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Set on every connection: SQLite keeps none of these but `journal_mode` in the file.
/// WAL lets readers run alongside the one writer; `synchronous = NORMAL` is durable in WAL
/// mode except for the last transactions on power loss; foreign keys are off by default,
/// and the cascades that delete an account's sessions and tokens depend on them;
/// `secure_delete` overwrites deleted content with zeros, so an erased account, session or
/// token does not linger in free pages of the file (the WAL keeps it until the next
/// checkpoint: see docs/security.md).
fn pragmas() -> String {
    format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;"
    )
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

/// The SQLite store: a pool of connections to one database file. Cheap to clone.
///
/// Operations run as tasks on the Tokio runtime that [`SqliteStore::open`] was called
/// from, so keep that runtime alive as long as the store. A caller that stops waiting
/// (a dropped request) does not interrupt an operation: it completes or rolls back on its
/// own, and its connection goes back to the pool in a clean state.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<Conn>,
    runtime: Handle,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("SqliteStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

impl SqliteStore {
    /// Closes the pool (at shutdown): idle connections are dropped at once, the ones in
    /// use when they come back, and later calls fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Connections in use and idle, and operations waiting for one, now.
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus::from_counts(
            status.max_size,
            status.size,
            status.available,
            status.waiting,
        )
    }

    /// Opens (creating it if needed, with mode 0600) the database at `path`, applies the
    /// pending migrations and builds a pool of at most `pool_size` connections.
    pub async fn open(path: &Path, pool_size: usize) -> Result<Self, PortError> {
        if pool_size == 0 {
            return Err(PortError::unexpected("the pool size must be at least 1"));
        }
        let runtime = Handle::try_current().map_err(PortError::unexpected)?;
        let owned = path.to_path_buf();
        let applied = runtime
            .spawn_blocking(move || migrate(&owned))
            .await
            .map_err(join_error)??;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "sqlite: applied migrations");
        }

        let mut config = ManagerConfig::<Conn>::default();
        // A local file does not go away like a network peer: checking for an open
        // transaction (always done) is enough, no test query on every checkout.
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(|url| Box::pin(connect(url.to_owned())));
        let manager = AsyncDieselConnectionManager::new_with_config(database_url(path)?, config);
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(PortError::unexpected)?;

        let store = Self { pool, runtime };
        // Fail now, not on the first request, if a connection cannot be set up.
        store
            .run("connect", |conn| conn.batch_execute("SELECT 1"))
            .await?;
        Ok(store)
    }

    /// Runs `work` on a pooled connection, on a blocking thread. Multi-statement writes
    /// wrap their statements in `SqliteConnection::immediate_transaction` inside `work`:
    /// `BEGIN IMMEDIATE` takes the write lock up front, so two transactions never both
    /// read and then deadlock upgrading to write (an instant `SQLITE_BUSY`).
    ///
    /// The whole operation is a spawned task: if the caller's future is dropped, the task
    /// still finishes and returns the connection in a clean state.
    ///
    /// Traced as a `db` span (`db.system`, `db.operation`: the store's method, never its
    /// parameters) when it runs inside a request or a use case; see [`auth_store_core::db_span`].
    pub(crate) async fn run<R, F>(&self, op: &'static str, work: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        let task = self.runtime.spawn(
            async move {
                let mut conn = match tokio::time::timeout(POOL_WAIT, pool.get()).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => return Err(DbError::Port(PortError::unavailable(err))),
                    Err(_) => return Err(DbError::Port(PortError::unavailable(PoolExhausted))),
                };
                conn.spawn_blocking(work).await.map_err(DbError::from)
            }
            .instrument(auth_store_core::db_span("sqlite", op)),
        );
        task.await.map_err(|err| DbError::Port(join_error(err)))?
    }
}

/// No connection of the pool became free in time.
#[derive(Debug, thiserror::Error)]
#[error("no sqlite connection free after {POOL_WAIT:?}")]
struct PoolExhausted;

/// The database file could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare the database file {path}")]
struct FileError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Creates the database at `path` if needed and applies the pending migrations; returns
/// the versions applied. Blocking: for the `migrate` command, or inside `spawn_blocking`.
///
/// The parent directories are created. The file is created owner-only (0600) before
/// SQLite opens it, and set to 0600 if it existed: it holds password hashes and sealed
/// personal data. SQLite gives its `-wal` and `-shm` files the same mode.
pub fn migrate(path: &Path) -> Result<Vec<String>, PortError> {
    prepare_file(path).map_err(|source| {
        PortError::unavailable(FileError {
            path: path.to_path_buf(),
            source,
        })
    })?;
    let mut conn = establish(&database_url(path)?).map_err(PortError::unavailable)?;
    // One immediate transaction around check-and-apply: two processes starting at once
    // cannot both apply the same migration (each migration is a savepoint inside it).
    conn.immediate_transaction(|conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
    })
    .map_err(PortError::Unexpected)
}

fn prepare_file(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

fn database_url(path: &Path) -> Result<String, PortError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| PortError::unexpected(format!("database path {path:?} is not UTF-8")))
}

/// A plain connection with the settings every connection needs.
fn establish(url: &str) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(url)?;
    conn.batch_execute(&pragmas())
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The pool's connection factory: [`establish`] off the async workers, then wrapped.
async fn connect(url: String) -> ConnectionResult<Conn> {
    let conn = tokio::task::spawn_blocking(move || establish(&url))
        .await
        .map_err(|err| ConnectionError::BadConnection(err.to_string()))??;
    Ok(SyncConnectionWrapper::new(conn))
}

fn join_error(err: tokio::task::JoinError) -> PortError {
    if err.is_cancelled() {
        // The runtime is shutting down.
        PortError::unavailable(err)
    } else {
        PortError::unexpected(err)
    }
}
