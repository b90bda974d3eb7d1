//! A real primary and streaming replica, for tests here and in other crates: `initdb` into
//! a temporary directory on a free loopback port, then `pg_basebackup -R` from it into
//! another, started as a hot standby with `recovery_min_apply_delay`, so that the replica
//! really is behind. [`Replicated::start`] returns `None` (after a `SKIPPED:` line) where
//! PostgreSQL's server binaries or the `postgres` system user are missing, and panics
//! instead when `CI` is set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::test_tls::{chown_postgres, server_binaries};

/// A primary and one replica of it, stopped and deleted on drop.
pub struct Replicated {
    dir: tempfile::TempDir,
    bin: PathBuf,
    primary_port: u16,
    replica_port: u16,
}

impl Replicated {
    /// A primary, and a replica that applies each commit `apply_delay` after it was made
    /// (zero: at once).
    pub fn start(apply_delay: Duration) -> Option<Self> {
        let Some(bin) = server_binaries() else {
            return skip(
                "PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are not installed",
            );
        };
        let dir = tempfile::tempdir().ok()?;
        let primary_port = free_port()?;
        let replica_port = free_port()?;
        let cluster = Self {
            dir,
            bin,
            primary_port,
            replica_port,
        };
        chown_postgres(cluster.dir.path());
        let primary = cluster.data("primary");
        let made = cluster.as_postgres(&[
            cluster.bin.join("initdb").to_str()?,
            "-D",
            primary.to_str()?,
            "--auth=trust",
            "-U",
            "postgres",
        ]);
        if !made.status.success() {
            return skip(&format!(
                "initdb as the postgres user failed: {}",
                String::from_utf8_lossy(&made.stderr)
            ));
        }
        std::fs::write(
            primary.join("pg_hba.conf"),
            "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        )
        .ok()?;
        cluster.append_conf(
            &primary,
            &format!(
                "port = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nwal_level = replica\nmax_wal_senders = 4\n",
                cluster.dir.path().display()
            ),
        )?;
        cluster.pg_ctl("primary", "start");

        let replica = cluster.data("replica");
        let copied = cluster.as_postgres(&[
            cluster.bin.join("pg_basebackup").to_str()?,
            "-D",
            replica.to_str()?,
            "-R",
            "-X",
            "stream",
            "-h",
            "127.0.0.1",
            "-p",
            &primary_port.to_string(),
            "-U",
            "postgres",
        ]);
        if !copied.status.success() {
            panic!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&copied.stderr)
            );
        }
        cluster.append_conf(
            &replica,
            &format!(
                "port = {replica_port}\nhot_standby = on\nrecovery_min_apply_delay = '{}ms'\n",
                apply_delay.as_millis()
            ),
        )?;
        cluster.pg_ctl("replica", "start");
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable` of the primary.
    pub fn primary_url(&self) -> String {
        url(self.primary_port)
    }

    /// The same for the replica.
    pub fn replica_url(&self) -> String {
        url(self.replica_port)
    }

    /// The replica's loopback port.
    pub fn replica_port(&self) -> u16 {
        self.replica_port
    }

    /// Stops the replica (fast shutdown), as an outage.
    pub fn stop_replica(&self) {
        self.pg_ctl("replica", "stop");
    }

    /// Starts the stopped replica again.
    pub fn start_replica(&self) {
        self.pg_ctl("replica", "start");
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn as_postgres(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).args(args);
        match command.output() {
            Ok(output) => output,
            Err(err) => panic!("cannot run {args:?} as postgres: {err}"),
        }
    }

    fn append_conf(&self, data: &Path, text: &str) -> Option<()> {
        let path = data.join("postgresql.conf");
        let mut conf = std::fs::read_to_string(&path).ok()?;
        conf.push_str(text);
        std::fs::write(&path, conf).ok()?;
        chown_postgres(self.dir.path());
        Some(())
    }

    fn pg_ctl(&self, name: &str, action: &str) {
        let data = self.data(name);
        let log = self.dir.path().join(format!("{name}.log"));
        let (Some(pg_ctl), Some(data_dir), Some(log_file)) = (
            self.bin.join("pg_ctl").to_str().map(str::to_owned),
            data.to_str(),
            log.to_str(),
        ) else {
            panic!("non-UTF-8 temporary path");
        };
        let mut args = vec![pg_ctl.as_str(), "-D", data_dir, "-l", log_file, "-w"];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        let done = self.as_postgres(&args);
        if !done.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl {action} of the {name} failed: {log}");
        }
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        for name in ["replica", "primary"] {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data(name))
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable")
}

fn free_port() -> Option<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .map(|a| a.port())
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set, and the replicated PostgreSQL cannot be made: {why}");
    }
    eprintln!("SKIPPED: read replica tests: {why}");
    None
}
