//! The service behind a real PgBouncer in transaction mode (issue 17): `DATABASE_URL` with
//! `pgbouncer=true` through a PgBouncer that lends two server connections to everyone,
//! `DATABASE_DIRECT_URL` for migrations. Twenty flows at once (before, most failed with
//! `prepared statement "sN" does not exist`), a concurrent refresh race, and an outage cut
//! through a TCP proxy, whatever storage the rest of the suite runs on.

use auth_store_postgres::test_pgbouncer::PgBouncer;
use auth_store_postgres::test_support::fresh_database;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{TestResult, spawn_with};
use crate::proxy::Proxy;

#[actix_web::test]
async fn twenty_concurrent_flows_and_a_refresh_race_succeed_behind_pgbouncer() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let Some(bouncer) = PgBouncer::start(db.url(), 2) else {
        return Ok(());
    };
    let url = bouncer.url(db.url());
    let app = spawn_with(&[
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_DIRECT_URL", db.url()),
        ("DATABASE_POOL_SIZE", "8"),
    ])
    .await;
    assert_eq!(app.state.service.ports().store.backend(), "postgresql");

    let flows = (0..20).map(|n| {
        let app = &app;
        async move {
            let (access, refresh) = app
                .signed_in(&format!("bouncer{n}@example.com"), &format!("bouncer{n}"))
                .await;
            let profile = app.get_auth("/users/profile", &access).await;
            assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
            let renewed = app
                .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
                .await;
            assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
            renewed.str("refresh_token")
        }
    });
    let refreshes = futures_util::future::join_all(flows).await;
    assert_eq!(refreshes.len(), 20);

    // Two tabs refresh at once: one successor, both answers carry it.
    let one = app.refresh_race_has_one_successor(&refreshes[0]).await;
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
    let log = bouncer.log();
    assert!(!log.contains("ERROR"), "PgBouncer logged errors: {log}");
    app.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_pgbouncer_outage_is_a_503_and_the_service_recovers_without_a_restart() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let Some(bouncer) = PgBouncer::start(db.url(), 2) else {
        return Ok(());
    };
    let proxy = Proxy::start(format!("127.0.0.1:{}", bouncer.port())).await?;
    let proxied = bouncer.url(db.url()).replace(
        &format!(":{}/", bouncer.port()),
        &format!(":{}/", proxy.addr.port()),
    );
    let app = spawn_with(&[
        ("DATABASE_URL", proxied.as_str()),
        ("DATABASE_DIRECT_URL", db.url()),
        ("DATABASE_CONNECT_TIMEOUT", "2"),
    ])
    .await;
    let (access, _) = app.signed_in("bounced@example.com", "bounced").await;

    app.database_outage_is_a_503_and_recovers(&access, || proxy.cut(), || proxy.restore())
        .await;
    app.stop().await;
    Ok(())
}
