//! Redis over TLS (`rediss://`), against a real `redis-server` started here with
//! `--tls-port` on a free loopback port (plain port off) and a certificate from a CA made by
//! the test. Skipped (loudly) where `redis-server` is missing, unless `CI` is set.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::ports::RevocationList;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A CA and a server certificate (with key) it signed for `names`, as PEM.
fn certificates(names: &[&str]) -> Result<(String, String, String), rcgen::Error> {
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

/// A TLS-only redis-server, killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cert: &str, key: &str, ca: &str) -> Result<Option<TlsRedis>, Box<dyn std::error::Error>> {
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

fn options(ca_pem: Option<&str>) -> RedisOptions {
    RedisOptions {
        pool_size: 2,
        timeout: Duration::from_secs(2),
        ca_cert_pem: ca_pem.map(|pem| pem.as_bytes().to_vec()),
    }
}

fn prefix() -> String {
    format!("authtest:{}:", Uuid::new_v4())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_private_ca_works_and_anything_else_is_refused() -> TestResult {
    let (ca, cert, key) = certificates(&["localhost"])?;
    let Some(server) = start(&cert, &key, &ca)? else {
        return Ok(());
    };
    let url = format!("rediss://localhost:{}", server.port);

    // Trusted through REDIS_CA_CERT: the revocation list works over TLS.
    let cache = RedisCache::connect(&url, &prefix(), options(Some(&ca))).await?;
    if let Some(ticket) = cache.needs_warming().await? {
        cache.warmed(ticket).await?;
    }
    let jti = Uuid::new_v4();
    let session = auth_domain::types::SessionId(Uuid::new_v4());
    let user = auth_domain::types::UserId(Uuid::new_v4());
    let until = chrono::Utc::now() + chrono::TimeDelta::minutes(5);
    cache.revoke_token(jti, until).await?;
    assert!(
        cache
            .revocation_state(jti, session, user)
            .await?
            .token_revoked
    );

    // The system's roots do not know this CA.
    let unknown = RedisCache::connect(&url, &prefix(), options(None)).await;
    assert!(
        unknown.is_err(),
        "a private CA without REDIS_CA_CERT is refused"
    );

    // Another CA is refused.
    let (other_ca, _, _) = certificates(&["localhost"])?;
    let other = RedisCache::connect(&url, &prefix(), options(Some(&other_ca))).await;
    assert!(other.is_err(), "a certificate from another CA is refused");

    // The certificate names localhost, not this address.
    let by_ip = format!("rediss://127.0.0.1:{}", server.port);
    let wrong_host = RedisCache::connect(&by_ip, &prefix(), options(Some(&ca))).await;
    assert!(
        wrong_host.is_err(),
        "a certificate for another host is refused"
    );

    // The server speaks TLS only.
    let plain = format!("redis://localhost:{}", server.port);
    assert!(
        RedisCache::connect(&plain, &prefix(), options(None))
            .await
            .is_err()
    );
    Ok(())
}
