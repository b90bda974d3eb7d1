//! Throw-away PostgreSQL databases for tests (feature `test-support`).
//!
//! [`fresh_database`] gives each test a database of its own, cloned from a template that
//! is migrated once per process, so tests run in parallel and isolated, and a clone costs
//! a file copy rather than a migration. The server is taken from `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), a `postgres://` URL whose user
//! may create databases. When it is unreachable the tests are skipped with a loud line on
//! stderr, except under CI (`CI` set and non-empty), where they fail.
//!
//! Each [`TestDatabase`] drops its database when dropped, and the last one alive drops the
//! template too (a later test makes a new one), so a run leaves nothing behind. Databases
//! left by a run that died (killed mid-test) are dropped when a run starts an hour later:
//! their names carry their creation time (a UUID v7).
//!
//! Test code: failures to set up panic, with a message saying what went wrong.

use std::io::Write as _;
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_domain::error::error_chain;
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

use crate::{PgOptions, PgStore, migrate};

/// Used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Databases of this crate's tests older than this are left over from a dead run.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// How long [`fresh_database`] retries a clone refused because the template is still in
/// use (the backend of the connection that migrated it exits asynchronously).
const CLONE_RETRIES: u32 = 100;
const CLONE_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The migrated template of this process while test databases cloned from it are alive.
struct Template {
    /// Its name, once made.
    name: Option<String>,
    /// Test databases alive that were cloned from it.
    live: usize,
    /// Why none can be made (the server is unreachable): remembered, so that a run without
    /// PostgreSQL skips at once instead of timing out once per test.
    setup_failed: Option<Setup>,
}

static TEMPLATE: std::sync::Mutex<Template> = std::sync::Mutex::new(Template {
    name: None,
    live: 0,
    setup_failed: None,
});

/// Serializes making the template.
static MAKING: Mutex<()> = Mutex::const_new(());

fn template_state() -> std::sync::MutexGuard<'static, Template> {
    TEMPLATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Says once per process that tests are skipped.
static SKIP_NOTICE: Once = Once::new();

/// Clones are made one at a time in a process: concurrent `CREATE DATABASE … TEMPLATE`
/// can fail with "source database is being accessed by other users".
static CLONING: Mutex<()> = Mutex::const_new(());

/// Why no template could be made.
#[derive(Debug, Clone)]
enum Setup {
    /// The server could not be reached: the tests are skipped (outside CI).
    Unreachable(String),
    /// The server answered but the template could not be prepared: a bug.
    Failed(String),
}

/// A database of its own for one test, dropped (`WITH (FORCE)`) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    /// Cloned from the process's template (which it keeps alive).
    from_template: bool,
}

impl TestDatabase {
    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A store on this database (a pool of at most 5 connections, default timeouts).
    /// Panics if it cannot connect.
    pub async fn store(&self) -> PgStore {
        let options = PgOptions {
            pool_size: 5,
            ..PgOptions::default()
        };
        match PgStore::connect(&self.url, options).await {
            Ok(store) => store,
            Err(err) => panic!(
                "cannot connect to the test database {}: {}",
                self.name,
                error_chain(&err)
            ),
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the database from a thread with its own runtime, so that this works inside
    /// any runtime (or none), and waits for it: a test binary that exits right after its
    /// last test leaves nothing behind.
    fn drop(&mut self) {
        let mut names = vec![self.name.clone()];
        // The last clone alive takes the template with it.
        names.extend(self.from_template.then(release_template).flatten());
        if let Err(err) = drop_blocking(self.admin_url.clone(), names) {
            eprintln!("warning: cannot drop test database {}: {err}", self.name);
        }
    }
}

/// A fresh, migrated database, or `None` (after a loud line on stderr) when PostgreSQL is
/// unreachable outside CI. Panics under CI when it is unreachable, and whenever the server
/// answers but the database cannot be made.
pub async fn fresh_database() -> Option<TestDatabase> {
    let (admin_url, template) = template().await?;
    Some(create(admin_url, &template, true).await)
}

/// Like [`fresh_database`], but the database is empty: not migrated (for tests of
/// [`migrate`] itself).
pub async fn empty_database() -> Option<TestDatabase> {
    let (admin_url, template) = template().await?;
    let db = create(admin_url.clone(), "template0", false).await;
    // Only the check that the server answers was wanted: give the claim back.
    if let Some(unused) = release_template()
        && let Err(err) = drop_blocking(admin_url, vec![unused])
    {
        eprintln!("warning: cannot drop the template {template}: {err}");
    }
    Some(db)
}

/// Drops databases from a thread with its own runtime, so that this works inside any
/// runtime (or none), and waits for it.
fn drop_blocking(admin_url: String, names: Vec<String>) -> Result<(), String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        runtime.block_on(async {
            let client = admin(&admin_url).await?;
            for name in &names {
                drop_database(&client, name).await?;
            }
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the thread dropping it panicked".to_owned())?
}

/// One clone fewer alive; the template's name when it was the last (to drop).
fn release_template() -> Option<String> {
    let mut state = template_state();
    state.live = state.live.saturating_sub(1);
    if state.live == 0 {
        state.name.take()
    } else {
        None
    }
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// The server's URL and this process's template; `None` when the server is unreachable
/// outside CI.
async fn template() -> Option<(String, String)> {
    let admin_url = admin_url();
    match claim_template(&admin_url).await {
        Ok(template) => Some((admin_url, template)),
        Err(Setup::Unreachable(why)) => {
            let target = auth_domain::monitoring::redact_url(&admin_url);
            if std::env::var("CI").is_ok_and(|ci| !ci.is_empty()) {
                panic!("PostgreSQL unreachable at {target} under CI: {why}");
            }
            // Once per process, and straight to the stderr stream: the test harness
            // captures `eprintln!` of passing tests, and a skip must not go unseen.
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL unreachable at {target} (set TEST_DATABASE_URL; CI fails here): {why}"
                );
            });
            None
        }
        Err(Setup::Failed(why)) => panic!("cannot prepare the template database: {why}"),
    }
}

/// The name of the template, made if needed, counted as used by one more clone.
async fn claim_template(admin_url: &str) -> Result<String, Setup> {
    let _making = MAKING.lock().await;
    {
        let mut state = template_state();
        if let Some(failed) = &state.setup_failed {
            return Err(failed.clone());
        }
        if let Some(name) = state.name.clone() {
            state.live += 1;
            return Ok(name);
        }
    }
    match prepare_template(admin_url).await {
        Ok(name) => {
            let mut state = template_state();
            state.name = Some(name.clone());
            state.live += 1;
            Ok(name)
        }
        Err(err) => {
            template_state().setup_failed = Some(err.clone());
            Err(err)
        }
    }
}

/// Creates a database named after the time, as a copy of `template`.
async fn create(admin_url: String, template: &str, from_template: bool) -> TestDatabase {
    let name = format!("auth_test_{}", Uuid::now_v7().simple());
    let _one_at_a_time = CLONING.lock().await;
    let client = match admin(&admin_url).await {
        Ok(client) => client,
        Err(err) => panic!("PostgreSQL answered before but not now: {err}"),
    };
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        ident(&name),
        ident(template)
    );
    let mut tries = 0;
    loop {
        match client.batch_execute(&sql).await {
            Ok(()) => break,
            Err(err) if err.code() == Some(&SqlState::OBJECT_IN_USE) && tries < CLONE_RETRIES => {
                tries += 1;
                tokio::time::sleep(CLONE_RETRY_PAUSE).await;
            }
            Err(err) => panic!("cannot create {name} from {template}: {}", db_error(&err)),
        }
    }
    TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
        from_template,
    }
}

/// Drops stale databases, then creates and migrates this process's template.
async fn prepare_template(admin_url: &str) -> Result<String, Setup> {
    // Checked first: a bad URL is a mistake to report, not a server to skip.
    if !admin_url.starts_with("postgres://") && !admin_url.starts_with("postgresql://") {
        return Err(Setup::Failed(
            "TEST_DATABASE_URL must be a postgres:// URL".to_owned(),
        ));
    }
    let client = admin(admin_url).await.map_err(Setup::Unreachable)?;
    drop_stale(&client).await;

    let name = format!(
        "auth_tpl_{}_{}",
        std::process::id(),
        Uuid::now_v7().simple()
    );
    client
        .batch_execute(&format!("CREATE DATABASE {}", ident(&name)))
        .await
        .map_err(|err| Setup::Failed(format!("cannot create {name}: {}", db_error(&err))))?;
    if let Err(err) = migrate(&with_database(admin_url, &name)).await {
        let _ = drop_database(&client, &name).await;
        return Err(Setup::Failed(format!(
            "cannot migrate {name}: {}",
            error_chain(&err)
        )));
    }
    // Nobody connects to the template from now on: a connection would make every clone
    // fail while it lasts.
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            ident(&name)
        ))
        .await
        .map_err(|err| Setup::Failed(format!("cannot lock {name}: {}", db_error(&err))))?;
    Ok(name)
}

/// Drops the templates and test databases of runs that started over an hour ago.
async fn drop_stale(client: &Client) {
    let rows = match client
        .query(
            "SELECT datname FROM pg_database \
             WHERE datname LIKE 'auth\\_tpl\\_%' OR datname LIKE 'auth\\_test\\_%'",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!(
                "warning: cannot list stale test databases: {}",
                db_error(&err)
            );
            return;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for row in rows {
        let Ok(name) = row.try_get::<_, String>(0) else {
            continue;
        };
        let created = name
            .rsplit('_')
            .next()
            .and_then(|id| Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|at| at.to_unix().0);
        if created.is_some_and(|at| now.saturating_sub(at) > STALE_AFTER.as_secs()) {
            // Another run may be dropping it too: failures do not matter.
            let _ = drop_database(client, &name).await;
        }
    }
}

async fn drop_database(client: &Client, name: &str) -> Result<(), String> {
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await
        .map_err(|err| db_error(&err))
}

/// A connection to the maintenance database, driven on the current runtime.
async fn admin(url: &str) -> Result<Client, String> {
    let mut config: Config = url
        .parse()
        .map_err(|_| "TEST_DATABASE_URL does not parse".to_owned())?;
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config.connect(NoTls).await.map_err(|err| db_error(&err))?;
    tokio::spawn(async move {
        // Ends when the client is dropped, or with the connection's error.
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}{authority}/{name}{query}")
}

/// A generated name, quoted (ours are `[a-z0-9_]`, but quoting costs nothing).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The server's message when there is one, else the client's.
fn db_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_another_database_and_lose_their_password() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }
}
