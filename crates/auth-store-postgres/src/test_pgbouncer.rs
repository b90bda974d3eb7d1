//! A real PgBouncer in transaction mode, in front of the PostgreSQL the tests use, for
//! tests here and in other crates: its own configuration in a temporary directory, a free
//! loopback port, a small server pool (so that transactions of different clients share
//! server connections, as in production). [`PgBouncer::start`] returns `None` (after a
//! `SKIPPED:` line) where `pgbouncer` is not installed (Debian's package; `.ci/run` installs
//! it), and panics instead when `CI` is set.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio_postgres::config::{Config, Host};

/// A PgBouncer process, stopped on drop.
pub struct PgBouncer {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode with `server_pool` server connections per
    /// database and user, in front of the server `upstream` (a `postgres://` URL; its
    /// user, and password if any, are the ones PgBouncer lets in and logs in with).
    pub fn start(upstream: &str, server_pool: usize) -> Option<Self> {
        let Some(binary) = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
        else {
            return skip("pgbouncer is not installed (Debian package pgbouncer)");
        };
        let config = match Config::from_str(upstream) {
            Ok(config) => config,
            Err(err) => panic!("TEST_DATABASE_URL does not parse: {err}"),
        };
        let (host, port) = match (config.get_hosts().first(), config.get_ports().first()) {
            (Some(Host::Tcp(host)), port) => (host.clone(), port.copied().unwrap_or(5432)),
            _ => return skip("the test PostgreSQL is not reached over TCP"),
        };
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();

        let dir = tempfile::tempdir().ok()?;
        let listen = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        std::fs::write(
            dir.path().join("users.txt"),
            format!("\"{user}\" \"{password}\"\n"),
        )
        .ok()?;
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             default_pool_size = {server_pool}\n\
             min_pool_size = 0\n\
             reserve_pool_size = 0\n\
             max_client_conn = 500\n\
             server_reset_query =\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            dir = dir.path().display(),
        );
        let ini_path = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).ok()?;
        // PgBouncer refuses to run as root.
        let mut command = if is_root() {
            chown_postgres(dir.path());
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        let child = command
            .arg(&ini_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let bouncer = Self {
            dir,
            child,
            port: listen,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", listen)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(bouncer.dir.path().join("pgbouncer.log"))
                    .unwrap_or_default();
                panic!("PgBouncer did not start listening: {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bouncer)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `database_url` (a `postgres://` URL of the upstream server) through this PgBouncer:
    /// the same user and database, `pgbouncer=true`, and no TLS (PgBouncer here has none).
    pub fn url(&self, database_url: &str) -> String {
        let config = Config::from_str(database_url).ok();
        let user = config
            .as_ref()
            .and_then(|c| c.get_user())
            .unwrap_or("postgres");
        let dbname = config
            .as_ref()
            .and_then(|c| c.get_dbname())
            .unwrap_or("postgres");
        format!(
            "postgres://{user}@127.0.0.1:{}/{dbname}?pgbouncer=true&sslmode=disable",
            self.port
        )
    }

    /// PgBouncer's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser passes the signal on; the pid file names PgBouncer itself in case not.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn chown_postgres(path: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set, and PgBouncer cannot be started: {why}");
    }
    eprintln!("SKIPPED: PgBouncer tests: {why}");
    None
}
