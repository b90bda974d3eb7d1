//! PostgreSQL over TLS, against a real server that refuses plain connections
//! ([`auth_store_postgres::test_tls`]).

use std::path::Path;
use std::time::Duration;

use auth_store_postgres::test_tls::{Ca, TlsServer};
use auth_store_postgres::{PgOptions, PgStore, migrate};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
