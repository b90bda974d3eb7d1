//! PostgreSQL over TLS, against a real server: a cluster made with `initdb` in a temporary
//! directory on a free loopback port, `ssl=on` with a certificate from a CA made here, and
//! `pg_hba.conf` refusing every connection that is not TLS. Skipped (loudly) where
//! PostgreSQL's server binaries or the `postgres` system user are missing, unless `CI` is
//! set, where that fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auth_store_postgres::{PgOptions, PgStore, migrate};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A certificate authority made for one test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Result<Self, rcgen::Error> {
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
    fn server(&self, names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)?.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A PostgreSQL cluster that accepts TLS only, stopped and deleted on drop.
struct TlsServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl TlsServer {
    /// `None` (after saying why) where the cluster cannot be made here.
    fn start(cert_pem: &str, key_pem: &str) -> Option<Self> {
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

    fn url(&self, host: &str, params: &str) -> String {
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

fn chown_postgres(path: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
}

fn server_binaries() -> Option<PathBuf> {
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

fn options() -> PgOptions {
    PgOptions {
        pool_size: 2,
        connect_timeout: Duration::from_secs(5),
        ..PgOptions::default()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<String, std::io::Error> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_connects_migrates_and_queries_over_tls_only() -> TestResult {
    let ca = Ca::new("auth test CA")?;
    let (cert, key) = ca.server(&["localhost", "127.0.0.1"])?;
    let Some(server) = TlsServer::start(&cert, &key) else {
        return Ok(());
    };
    let files = tempfile::tempdir()?;
    let root = write(files.path(), "ca.pem", &ca.pem)?;

    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let applied = migrate(&url).await?;
    assert!(!applied.is_empty(), "the migrations ran over TLS");
    let store = PgStore::connect(&url, options()).await?;
    auth_domain::ports::Store::ping(&store).await?;

    // The server refuses plain connections: sslmode=disable fails, with the reason.
    let plain = PgStore::connect(&server.url("localhost", "sslmode=disable"), options()).await;
    let err = plain
        .err()
        .map(|e| auth_domain::error::error_chain(&e))
        .unwrap_or_default();
    assert!(
        err.contains("no encryption") || err.contains("pg_hba.conf"),
        "{err}"
    );

    // require (no root file) encrypts without checking, as libpq.
    let required = PgStore::connect(&server.url("127.0.0.1", "sslmode=require"), options()).await;
    assert!(required.is_ok(), "{:?}", required.err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_another_ca_and_another_host_with_a_clear_error() -> TestResult {
    let ca = Ca::new("auth test CA")?;
    let (cert, key) = ca.server(&["db.internal"])?;
    let Some(server) = TlsServer::start(&cert, &key) else {
        return Ok(());
    };
    let files = tempfile::tempdir()?;
    let root = write(files.path(), "ca.pem", &ca.pem)?;
    let other = write(files.path(), "other.pem", &Ca::new("someone else")?.pem)?;

    let wrong_ca = server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let err = PgStore::connect(&wrong_ca, options()).await.err();
    let err = err
        .map(|e| auth_domain::error::error_chain(&e))
        .unwrap_or_default();
    assert!(
        err.contains("certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );

    // The certificate names db.internal, not 127.0.0.1.
    let wrong_host = server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let err = PgStore::connect(&wrong_host, options()).await.err();
    let err = err
        .map(|e| auth_domain::error::error_chain(&e))
        .unwrap_or_default();
    assert!(err.contains("certificate not valid for name"), "{err}");

    // verify-ca checks the chain only: the same host is accepted.
    let chain_only = server.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={root}"),
    );
    let store = PgStore::connect(&chain_only, options()).await;
    assert!(store.is_ok(), "{:?}", store.err());
    Ok(())
}
