//! Connecting: settings of every connection, the pool, and the one way every operation
//! reaches a connection ([`PgStore::run`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use auth_domain::monitoring::PoolStatus;
use auth_domain::ports::PortError;
use diesel::connection::CacheSize;
use diesel::{ConnectionError, ConnectionResult, QueryResult};
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
};
use tokio::runtime::Handle;
use tokio_postgres::config::{Config, Host};
use tracing::Instrument as _;

use crate::error::DbError;
use crate::replicas::{self, PrimaryReads, ReplicaStatus, Replicas};
use crate::tls::RustlsConnector;
use crate::url::split_url;

/// A boxed future borrowing a connection for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How [`PgStore::connect`] sets up the pool and its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the pool opens (at least 1).
    pub pool_size: usize,
    /// How long opening one connection may take (TCP connect, per host).
    pub connect_timeout: Duration,
    /// Server-side limit on any one statement (`statement_timeout`, set when each
    /// connection starts); `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
    /// How long an operation waits for a connection (a free one, or a new one to open)
    /// before it fails with [`PortError::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(10)),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store: a pool of connections to one database. Cheap to clone.
///
/// Operations run as tasks on the Tokio runtime that [`PgStore::connect`] was called from,
/// so keep that runtime alive as long as the store (an actix-web main runtime is fine: it
/// runs until the server stops). A caller that stops waiting (a dropped request) does not
/// interrupt an operation: it completes or rolls back on its own, and its connection goes
/// back to the pool in a clean state.
///
/// Connections are checked with a round trip (`SELECT 1`) before each use and dropped
/// when closed or left in a broken state, so after the server restarts or
/// kills connections the store recovers on its own: operations fail with
/// [`PortError::Unavailable`] while the server is away, and succeed again once it is back.
///
/// # Behind PgBouncer
///
/// With `pgbouncer=true` in the URL the server is taken to be PgBouncer in transaction
/// mode, which lends a server connection for one transaction at a time. Then every
/// operation is one transaction (its statements cannot land on two server connections),
/// no prepared statement outlives it (diesel-async's statement cache is off, so each
/// statement is prepared, run and closed inside the transaction), the statement timeout
/// is `SET LOCAL` at its start instead of a startup option (which PgBouncer refuses), and
/// the session settings diesel-async makes when a connection opens run inside a
/// transaction too. Migrations need a direct connection (see [`crate::migrate`]).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    runtime: Handle,
    acquire_timeout: Duration,
    /// Behind PgBouncer: the statement that opens each operation's transaction.
    begin: Option<Arc<str>>,
    /// Read replicas, if any (see [`PgStore::with_replicas`]).
    replicas: Option<Arc<Replicas>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

impl PgStore {
    /// Closes the pool (at shutdown): idle connections are dropped at once, the ones in
    /// use when they come back, and later calls fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
        if let Some(replicas) = &self.replicas {
            replicas.close();
        }
    }

    /// The runtime operations run on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Adds read replicas (`urls`, each with a pool of its own built with `options`) for
    /// the reads that may lag: [`UserStore::user_for_display`](auth_domain::ports::UserStore::user_for_display)
    /// and [`SessionStore::active_sessions`](auth_domain::ports::SessionStore::active_sessions).
    /// A replica serves a read only while it is known to hold every commit acknowledged
    /// more than `max_lag` ago, and every write this store made for the account read (see
    /// [`crate::replicas`]); otherwise the primary answers, as it does when a replica fails.
    ///
    /// Replicas are not reached here: one that is down at start is skipped until it is
    /// back. A URL that does not parse, or a root certificate file that cannot be read, is
    /// an error.
    pub fn with_replicas(
        mut self,
        urls: &[String],
        options: PgOptions,
        max_lag: Duration,
    ) -> Result<Self, PortError> {
        if urls.is_empty() {
            return Ok(self);
        }
        let members = urls
            .iter()
            .map(|url| {
                let store = Self::build(url, &options, self.runtime.clone())?;
                let config = connection_config(url, options.connect_timeout, None)?;
                let name = describe(&config.config);
                // `user@` is not needed to tell replicas apart.
                let name = name
                    .split_once('@')
                    .map_or(name.clone(), |(_, at)| at.to_owned());
                Ok((name, store))
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        let replicas = Arc::new(Replicas::new(members, max_lag));
        replicas::monitor(&self, &replicas);
        self.replicas = Some(replicas);
        Ok(self)
    }

    /// The read replicas now, in the order given (empty without replicas).
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .as_ref()
            .map(|replicas| replicas.status())
            .unwrap_or_default()
    }

    /// Reads that could have gone to a replica but went to the primary, by reason (`None`
    /// without replicas).
    pub fn primary_reads(&self) -> Option<PrimaryReads> {
        self.replicas
            .as_ref()
            .map(|replicas| replicas.primary_reads())
    }

    /// Notes that a write for `user` ended: its next reads take the primary, or a replica
    /// that has replayed the write.
    pub(crate) fn wrote(&self, user: auth_domain::types::UserId) {
        if let Some(replicas) = &self.replicas {
            replicas.wrote(user);
        }
    }

    /// Notes, when the returned guard is dropped (the write ended, failed or was
    /// abandoned), that a write for `user` ended (see [`PgStore::wrote`]).
    pub(crate) fn writing(&self, user: auth_domain::types::UserId) -> Writing<'_> {
        Writing { store: self, user }
    }

    /// Runs a read of `user`'s data that may lag on a replica fresh enough for it, or on the
    /// primary. A failure on the replica runs it again on the primary.
    pub(crate) async fn run_read<R, F>(
        &self,
        op: &'static str,
        user: auth_domain::types::UserId,
        work: F,
    ) -> Result<R, DbError>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<R>>
            + Clone
            + Send
            + 'static,
        R: Send + 'static,
    {
        if let Some(replica) = self.replicas.as_ref().and_then(|r| r.pick(user)) {
            match replica.store.run(op, work.clone()).await {
                Ok(found) => {
                    replica.served();
                    return Ok(found);
                }
                Err(err) => {
                    replica.failed();
                    tracing::warn!(
                        replica = %replica.name,
                        error = %auth_domain::error::error_chain(&PortError::from(err)),
                        "postgres: a read failed on the replica: reading from the primary"
                    );
                }
            }
        }
        self.run(op, work).await
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

    /// Builds a pool of connections to the database at `url` (`postgres://user[:password]@
    /// host[:port]/dbname[?params]`, or libpq's `key=value` form) and checks that one
    /// connection works. Does not migrate: see [`crate::migrate`].
    ///
    /// An unreachable server, refused credentials or a missing database give
    /// [`PortError::Unavailable`]; the message names user, host, port and database, never
    /// the password. TLS follows `sslmode` (default `prefer`, as libpq) and `sslrootcert`
    /// (see [`crate::tls`]); a certificate `verify-full` refuses fails here, with the reason.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, PortError> {
        let runtime = Handle::try_current().map_err(PortError::unexpected)?;
        let target = describe(&connection_config(url, options.connect_timeout, None)?.config);
        let store = Self::build(url, &options, runtime)?;
        // Fail now, not on the first request, if the database cannot be reached.
        store
            .run("connect", |conn| Box::pin(conn.batch_execute("SELECT 1")))
            .await
            .map_err(|err| match PortError::from(err) {
                PortError::Unavailable(source) => {
                    PortError::unavailable(Unreachable { target, source })
                }
                other => other,
            })?;
        Ok(store)
    }

    /// The pool for `url`, without connecting.
    fn build(url: &str, options: &PgOptions, runtime: Handle) -> Result<Self, PortError> {
        if options.pool_size == 0 {
            return Err(PortError::unexpected("the pool size must be at least 1"));
        }
        let config = Arc::new(connection_config(
            url,
            options.connect_timeout,
            options.statement_timeout,
        )?);
        let begin = config.begin.clone();

        let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
        // A round trip before handing out a pooled connection: a connection the server
        // closed (restart, failover, pg_terminate_backend, idle timeout) is dropped and
        // replaced instead of failing the operation it was given to. A simple query, not
        // diesel-async's prepared `SELECT 1`, which PgBouncer could not keep between the
        // statement's preparation and its execution.
        manager_config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
            Box::pin(conn.batch_execute("SELECT 1"))
        }));
        manager_config.custom_setup = Box::new(move |_url| {
            let config = Arc::clone(&config);
            Box::pin(async move { establish(&config).await })
        });
        // The URL is not used: `custom_setup` connects with the parsed configuration.
        let manager = AsyncDieselConnectionManager::new_with_config(String::new(), manager_config);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .build()
            .map_err(PortError::unexpected)?;

        Ok(Self {
            pool,
            runtime,
            acquire_timeout: options.acquire_timeout,
            begin,
            replicas: None,
        })
    }

    /// Runs `work` on a pooled connection. Multi-statement writes wrap their statements in
    /// a transaction inside `work` (behind PgBouncer, every `work` is a transaction, and
    /// those inside it are savepoints).
    ///
    /// The whole operation is a spawned task: if the caller's future is dropped, the task
    /// still finishes (commits or rolls back) and returns the connection in a clean state.
    /// diesel-async does not promise that for a dropped transaction future.
    ///
    /// Traced as a `db` span (`db.system`, `db.operation`: the store's method, never its
    /// parameters) when it runs inside a request or a use case; see [`auth_store_core::db_span`].
    pub(crate) async fn run<R, F>(&self, op: &'static str, work: F) -> Result<R, DbError>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<R>>
            + Send
            + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        let wait = self.acquire_timeout;
        let begin = self.begin.clone();
        let task = self.runtime.spawn(
            async move {
                let mut conn = match tokio::time::timeout(wait, pool.get()).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => return Err(DbError::Port(PortError::unavailable(err))),
                    Err(_) => {
                        return Err(DbError::Port(PortError::unavailable(PoolExhausted(wait))));
                    }
                };
                match begin {
                    None => work(&mut conn).await,
                    Some(begin) => in_transaction(&mut conn, &begin, work).await,
                }
                .map_err(DbError::from)
            }
            .instrument(auth_store_core::db_span("postgresql", op)),
        );
        task.await.map_err(|err| DbError::Port(join_error(err)))?
    }
}

/// A write for an account in progress: see [`PgStore::writing`].
pub(crate) struct Writing<'a> {
    store: &'a PgStore,
    user: auth_domain::types::UserId,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.store.wrote(self.user);
    }
}

/// Runs `work` in a transaction opened by `begin` (which may also `SET LOCAL`), as
/// diesel-async's `transaction` does with a plain `BEGIN`: committed if `work` succeeds,
/// rolled back otherwise.
async fn in_transaction<R, F>(conn: &mut AsyncPgConnection, begin: &str, work: F) -> QueryResult<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<R>>,
{
    AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin).await?;
    match work(&mut *conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(&mut *conn).await?;
            Ok(value)
        }
        Err(err) => match AnsiTransactionManager::rollback_transaction(&mut *conn).await {
            // A broken connection is dropped by the pool: the first error says why.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback),
        },
    }
}

/// No connection of the pool became free, nor could one be opened, in time.
#[derive(Debug, thiserror::Error)]
#[error("no PostgreSQL connection available after {0:?}")]
struct PoolExhausted(Duration);

/// The first connection failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach PostgreSQL at {target}")]
struct Unreachable {
    target: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The connection string did not parse. Its text is not repeated: it may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("invalid PostgreSQL connection string")]
struct InvalidUrl(#[source] tokio_postgres::Error);

/// Where and how every connection of a store connects: the parsed settings, the TLS
/// connector unless `sslmode=disable`, and behind PgBouncer the statement that opens each
/// operation's transaction.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) tls: Option<RustlsConnector>,
    pub(crate) begin: Option<Arc<str>>,
}

/// Parses `url` (with libpq's `sslmode` and `sslrootcert`, see [`crate::tls`]) and adds the
/// settings every connection needs. A root certificate file that cannot be read fails here,
/// at start.
pub(crate) fn connection_config(
    url: &str,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
) -> Result<Target, PortError> {
    let (rest, settings) = split_url(url).map_err(PortError::unexpected)?;
    let mut config =
        Config::from_str(&rest).map_err(|err| PortError::unexpected(InvalidUrl(err)))?;
    config.ssl_mode(settings.tls.mode.for_driver());
    let connector = RustlsConnector::new(&settings.tls).map_err(PortError::unexpected)?;
    config.connect_timeout(connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("auth-service");
    }
    if settings.pgbouncer {
        // PgBouncer refuses the `options` startup parameter, and a session setting would
        // stay on whichever server connection it reached: the limit is set per transaction.
        let begin = match statement_timeout {
            Some(timeout) => format!(
                "BEGIN; SET LOCAL statement_timeout = {}",
                timeout.as_millis().max(1)
            ),
            None => "BEGIN".to_owned(),
        };
        return Ok(Target {
            config,
            tls: connector,
            begin: Some(begin.into()),
        });
    }
    if let Some(timeout) = statement_timeout {
        // Sent in the startup packet: no extra round trip per connection. Options given
        // in the URL come first, so ours wins over a conflicting one.
        let ours = format!("-c statement_timeout={}", timeout.as_millis().max(1));
        let options = match config.get_options() {
            Some(theirs) if !theirs.is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        config.options(options);
    }
    Ok(Target {
        config,
        tls: connector,
        begin: None,
    })
}

/// `user@host:port/dbname`, for messages: never the password.
pub(crate) fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("(default user)"),
        if hosts.is_empty() {
            "(default host)".to_owned()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("(default database)")
    )
}

/// Opens one connection (over TLS unless `sslmode=disable`) and hands it to diesel-async,
/// whose background task drives it on the current runtime.
pub(crate) async fn establish(target: &Target) -> ConnectionResult<AsyncPgConnection> {
    let pgbouncer = target.begin.is_some();
    match &target.tls {
        None => {
            let (client, connection) = target
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(failed)?;
            hand_over(client, connection, pgbouncer).await
        }
        Some(tls) => {
            let (client, connection) = target.config.connect(tls.clone()).await.map_err(failed)?;
            hand_over(client, connection, pgbouncer).await
        }
    }
}

/// A connection that could not be opened or set up. The cause chain names a refused
/// certificate ("invalid peer certificate: …").
fn failed(err: tokio_postgres::Error) -> ConnectionError {
    ConnectionError::BadConnection(auth_domain::error::error_chain(&err))
}

/// Gives an open connection to diesel-async, which sets the session up (time zone and
/// encoding, with prepared statements) and drives the connection from then on.
///
/// Behind PgBouncer that set-up runs inside a transaction, so that its statements reach
/// one server connection and are closed there; and no statement is cached, since the next
/// transaction may be given another server connection.
async fn hand_over<T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<tokio_postgres::Socket, T>,
    pgbouncer: bool,
) -> ConnectionResult<AsyncPgConnection>
where
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    if !pgbouncer {
        return AsyncPgConnection::try_from_client_and_connection(client, connection).await;
    }
    {
        // diesel-async drives the connection once it has it; until then, here.
        let begin = client.batch_execute("BEGIN");
        tokio::pin!(begin);
        tokio::select! {
            done = &mut begin => done.map_err(failed)?,
            ended = &mut connection => {
                return Err(match ended {
                    Err(err) => failed(err),
                    Ok(()) => ConnectionError::BadConnection("the server closed the connection".to_owned()),
                });
            }
        }
    }
    let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
    conn.batch_execute("COMMIT")
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
    Ok(conn)
}

pub(crate) fn join_error(err: tokio::task::JoinError) -> PortError {
    if err.is_cancelled() {
        // The runtime is shutting down.
        PortError::unavailable(err)
    } else {
        PortError::unexpected(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_the_statement_timeout_after_the_urls_own_options() -> Result<(), PortError> {
        let config = connection_config(
            "postgres://auth:pw@db:5433/auth?options=-c%20search_path%3Dauth",
            Duration::from_secs(2),
            Some(Duration::from_millis(1500)),
        )?
        .config;
        assert_eq!(
            config.get_options(),
            Some("-c search_path=auth -c statement_timeout=1500")
        );
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(config.get_application_name(), Some("auth-service"));
        let plain = connection_config("postgres://db/auth", Duration::from_secs(1), None)?;
        assert_eq!(plain.config.get_options(), None);
        assert!(plain.tls.is_some(), "sslmode=prefer by default, as libpq");
        let off = connection_config("postgres://db/auth?sslmode=disable", Duration::ZERO, None)?;
        assert!(off.tls.is_none());
        Ok(())
    }

    #[test]
    fn messages_name_the_server_but_never_the_password() -> Result<(), PortError> {
        let config = connection_config(
            "postgres://auth:s3cret@db.internal:5433/accounts",
            Duration::from_secs(1),
            None,
        )?;
        assert_eq!(describe(&config.config), "auth@db.internal:5433/accounts");
        let Err(err) =
            connection_config("postgres://auth:s3cret@db:notaport/x", Duration::ZERO, None)
        else {
            panic!("the port does not parse");
        };
        let err = format!("{err:?} / {}", auth_domain::error::error_chain(&err));
        assert!(
            err.contains("invalid PostgreSQL connection string"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        Ok(())
    }
}
