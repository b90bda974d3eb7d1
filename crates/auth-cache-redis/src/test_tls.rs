//! A real Redis that speaks TLS only, with a certificate from a CA made here, for tests in
//! this crate and others (feature `test-support`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a server certificate (with key) it signed for `names`, as PEM.
pub fn certificates(names: &[&str]) -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "auth redis test CA");
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)?.signed_by(&key, &issuer)?;
    Ok((ca_pem, cert.pem(), key.serialize_pem()))
}

/// A redis-server that speaks TLS only (`--port 0 --tls-port …`), killed on drop.
pub struct TlsRedis {
    child: Child,
    /// The TLS port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one with `cert`/`key` (PEM), trusting `ca` for client certificates it does not
/// ask for; `Ok(None)` (after a `SKIPPED:` line) where `redis-server` is missing, a panic
/// instead when `CI` is set.
pub fn start(
    cert: &str,
    key: &str,
    ca: &str,
) -> Result<Option<TlsRedis>, Box<dyn std::error::Error>> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set, and redis-server is not installed");
        }
        eprintln!("SKIPPED: Redis TLS tests: redis-server is not installed");
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> std::io::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    let (cert, key, ca) = (
        write("server.crt", cert)?,
        write("server.key", key)?,
        write("ca.crt", ca)?,
    );
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
        ])
        .args(["--tls-auth-clients", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = TlsRedis {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not listen on its TLS port".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(server))
}
