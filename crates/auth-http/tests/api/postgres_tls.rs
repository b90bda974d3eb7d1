//! The service on a PostgreSQL that accepts TLS only (issue 17): the HTTP flow and a
//! concurrent refresh race, with `sslmode=verify-full`, whatever storage the rest of the
//! suite runs on.

use auth_store_postgres::test_tls::{Ca, TlsServer};
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{TestResult, spawn_with};

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
    let body = json!({"refresh_token": refresh});
    let (one, two) = tokio::join!(
        app.post("/auth/refresh-token", &body),
        app.post("/auth/refresh-token", &body)
    );
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(two.status, StatusCode::OK, "{}", two.body);
    assert_eq!(one.str("refresh_token"), two.str("refresh_token"));
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
