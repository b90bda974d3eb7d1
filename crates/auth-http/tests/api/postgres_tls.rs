//! The service on a PostgreSQL that accepts TLS only (issue 17): the HTTP flow, a
//! concurrent refresh race, and an outage cut through a TCP proxy, with
//! `sslmode=verify-full`, whatever storage the rest of the suite runs on.

use auth_store_postgres::test_tls::{Ca, TlsServer};
use awc::http::StatusCode;

use crate::helpers::{TestResult, spawn_with};
use crate::proxy::Proxy;

#[actix_web::test]
async fn the_whole_flow_runs_on_a_postgresql_that_accepts_tls_only() -> TestResult {
    let ca = Ca::new("auth test CA")?;
    let (cert, key) = ca.server(&["localhost"])?;
    let Some(server) = TlsServer::start(&cert, &key) else {
        return Ok(());
    };
    let files = tempfile::tempdir()?;
    let root = files.path().join("ca.pem");
    std::fs::write(&root, &ca.pem)?;
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", root.display()),
    );
    let app = spawn_with(&[("DATABASE_URL", url.as_str())]).await;
    assert_eq!(app.state.service.ports().store.backend(), "postgresql");

    let (access, refresh) = app.signed_in("tls@example.com", "tlsuser").await;
    let profile = app
        .call("GET", "/users/profile", Some(&access), None, &[])
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);

    // Two tabs refresh at once: one successor, both answers carry it.
    let one = app.refresh_race_has_one_successor(&refresh).await;
    let out = app
        .call(
            "POST",
            "/auth/logout",
            Some(&one.str("access_token")),
            None,
            &[],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_tls_database_outage_is_a_503_and_the_service_reconnects_over_tls() -> TestResult {
    let ca = Ca::new("auth test CA")?;
    let (cert, key) = ca.server(&["localhost"])?;
    let Some(server) = TlsServer::start(&cert, &key) else {
        return Ok(());
    };
    let files = tempfile::tempdir()?;
    let root = files.path().join("ca.pem");
    std::fs::write(&root, &ca.pem)?;
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port())).await?;
    // The proxy is on 127.0.0.1 too: the certificate still names the host asked for.
    let proxied = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        proxy.addr.port(),
        root.display()
    );
    let app = spawn_with(&[
        ("DATABASE_URL", proxied.as_str()),
        ("DATABASE_CONNECT_TIMEOUT", "2"),
    ])
    .await;
    let (access, _) = app.signed_in("tlsout@example.com", "tlsoutage").await;

    app.database_outage_is_a_503_and_recovers(&access, || proxy.cut(), || proxy.restore())
        .await;
    app.stop().await;
    Ok(())
}
