//! The service with a read replica (issue 17): a real primary and a streaming replica
//! (`pg_basebackup -R`) that applies each commit 3 s late. The flow reads its own writes at
//! once, a refresh race has one successor, the replica serves the profile once it has the
//! account's last write, and a replica outage is never an error.

use std::time::{Duration, Instant};

use auth_store_postgres::test_replica::Replicated;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestResult, spawn_with};
use crate::observability::sample;

async fn replica_metric(app: &TestApp, name: &str) -> Option<f64> {
    let metrics = app.get("/metrics").await;
    sample(
        metrics.body.as_str().unwrap_or_default(),
        name,
        &[("replica", "1")],
    )
}

/// Polls `/metrics` until the replica serves reads (`auth_db_replica_usable` 1).
async fn usable(app: &TestApp, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if replica_metric(app, "auth_db_replica_usable").await == Some(1.0) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[actix_web::test]
async fn a_client_reads_its_own_writes_while_the_replica_is_three_seconds_behind() -> TestResult {
    let Some(cluster) = Replicated::start(Duration::from_secs(3)) else {
        return Ok(());
    };
    let (primary, replica) = (cluster.primary_url(), cluster.replica_url());
    let app = spawn_with(&[
        ("DATABASE_URL", primary.as_str()),
        ("DATABASE_REPLICA_URL", replica.as_str()),
        ("DATABASE_REPLICA_MAX_LAG_MS", "20000"),
    ])
    .await;
    assert!(
        usable(&app, Duration::from_secs(20)).await,
        "the replica never served"
    );

    let (access, refresh) = app.signed_in("replica@example.com", "replicated").await;
    for name in ["Ada", "Grace", "Hedy"] {
        let changed = app
            .call(
                "PUT",
                "/users/profile",
                Some(&access),
                Some(&json!({"name": name})),
                &[],
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        let shown = app.get_auth("/users/profile", &access).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert_eq!(shown.body["user"]["name"], name, "{}", shown.body);
    }

    // A second session, then a logout: the list shows each change at once.
    let second = app.login("replicated").await;
    let listed = app.get_auth("/users/sessions", &access).await;
    assert_eq!(listed.body["total_count"], 2, "{}", listed.body);
    let out = app
        .call(
            "POST",
            "/auth/logout",
            Some(&second.str("access_token")),
            None,
            &[],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let listed = app.get_auth("/users/sessions", &access).await;
    assert_eq!(listed.body["total_count"], 1, "{}", listed.body);

    // Two tabs refresh at once: one successor (writes and the race stay on the primary).
    let one = app.refresh_race_has_one_successor(&refresh).await;

    // Once the replica has applied the account's last write, it serves the profile.
    let before = replica_metric(&app, "auth_db_replica_reads_total")
        .await
        .unwrap_or(0.0);
    let access = one.str("access_token");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = false;
    while !served && Instant::now() < deadline {
        let shown = app.get_auth("/users/profile", &access).await;
        assert_eq!(shown.body["user"]["name"], "Hedy", "{}", shown.body);
        served = replica_metric(&app, "auth_db_replica_reads_total")
            .await
            .is_some_and(|n| n > before);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served, "the replica never served the profile");
    app.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_replica_outage_is_never_an_error_and_the_replica_serves_again_when_back() -> TestResult {
    let Some(cluster) = Replicated::start(Duration::ZERO) else {
        return Ok(());
    };
    let (primary, replica) = (cluster.primary_url(), cluster.replica_url());
    let app = spawn_with(&[
        ("DATABASE_URL", primary.as_str()),
        ("DATABASE_REPLICA_URL", replica.as_str()),
        ("DATABASE_CONNECT_TIMEOUT", "1"),
    ])
    .await;
    let (access, _) = app.signed_in("outage@example.com", "replicaoutage").await;
    assert!(
        usable(&app, Duration::from_secs(20)).await,
        "the replica never served"
    );

    cluster.stop_replica();
    for _ in 0..20 {
        for path in ["/users/profile", "/users/sessions"] {
            let res = app.get_auth(path, &access).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        replica_metric(&app, "auth_db_replica_usable").await,
        Some(0.0)
    );

    cluster.start_replica();
    assert!(
        usable(&app, Duration::from_secs(20)).await,
        "the replica did not serve again after it came back"
    );
    let profile = app.get_auth("/users/profile", &access).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    app.stop().await;
    Ok(())
}
