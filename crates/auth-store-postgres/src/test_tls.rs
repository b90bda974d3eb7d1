//! A real PostgreSQL that accepts TLS only, for tests here and in other crates: `initdb` into
//! a temporary directory on a free loopback port, `ssl=on` with a certificate from a CA made
//! by the test, `pg_hba.conf` refusing every connection without TLS. [`TlsServer::start`]
//! returns `None` (after a `SKIPPED:` line) where PostgreSQL's server binaries or the
//! `postgres` system user are missing, and panics instead when `CI` is set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A certificate authority made for one test.
pub struct Ca {
    /// The CA certificate (PEM), for `sslrootcert`.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key)?.pem();
        Ok(Self {
            pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for `names`, and its key (PEM).
    pub fn server(&self, names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)?.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A PostgreSQL cluster that accepts TLS only (`initdb` run as the `postgres` user in a
/// temporary directory, on a free loopback port), stopped and deleted on drop.
pub struct TlsServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl TlsServer {
    /// `None` (after saying why) where the cluster cannot be made here.
    pub fn start(cert_pem: &str, key_pem: &str) -> Option<Self> {
        let bin = match server_binaries() {
            Some(bin) => bin,
            None => return skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed"),
        };
        let dir = tempfile::tempdir().ok()?;
        let data = dir.path().join("data");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let as_postgres = |args: &[&str]| {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).args(args);
            cmd
        };
        chown_postgres(dir.path());
        let initdb = bin.join("initdb");
        let made = as_postgres(&[
            initdb.to_str()?,
            "-D",
            data.to_str()?,
            "--auth=trust",
            "-U",
            "postgres",
        ])
        .output()
        .ok()?;
        if !made.status.success() {
            return skip(&format!(
                "initdb as the postgres user failed: {}",
                String::from_utf8_lossy(&made.stderr)
            ));
        }
        std::fs::write(data.join("server.crt"), cert_pem).ok()?;
        std::fs::write(data.join("server.key"), key_pem).ok()?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .ok()?;
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n",
            dir.path().display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).ok()?;
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).ok()?;
        chown_postgres(dir.path());
        let _ = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status();
        let log = dir.path().join("server.log");
        let pg_ctl = bin.join("pg_ctl");
        let started = as_postgres(&[
            pg_ctl.to_str()?,
            "-D",
            data.to_str()?,
            "-l",
            log.to_str()?,
            "-w",
            "start",
        ])
        .output()
        .ok()?;
        if !started.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the TLS PostgreSQL did not start: {log}");
        }
        Some(Self { dir, bin, port })
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@{host}:{port}/postgres?{params}`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

pub(crate) fn chown_postgres(path: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
}

pub(crate) fn server_binaries() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set, and the TLS PostgreSQL cannot be made: {why}");
    }
    eprintln!("SKIPPED: TLS PostgreSQL tests: {why}");
    None
}
