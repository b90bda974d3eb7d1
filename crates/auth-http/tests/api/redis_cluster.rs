//! The service on a Redis Cluster of three masters (issue 17, `REDIS_CLUSTER_NODES`): two
//! instances share revocations, refresh rotation and limits, a concurrent refresh has one
//! successor, and an outage of every master fails verification closed while limits fall
//! back per instance, then recovers without a restart, the list warmed again from storage.

use std::time::Duration;

use auth_cache_redis::test_cluster;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backing, PASSWORD, TestApp, TestResult, spawn_on};

/// `REDIS_CLUSTER_NODES` (in place of any `REDIS_URL` the suite sets) and the backing's
/// key prefix.
fn cluster_vars<'a>(nodes: &'a str, backing: &'a Backing) -> Vec<(&'a str, &'a str)> {
    vec![
        ("REDIS_URL", ""),
        ("REDIS_CLUSTER_NODES", nodes),
        ("REDIS_KEY_PREFIX", backing.redis_prefix.as_str()),
    ]
}

/// Polls verify-token until it answers 200, for up to `secs` seconds.
async fn recovers(app: &TestApp, access: &str, secs: u64) -> bool {
    for _ in 0..secs * 4 {
        if app.get_auth("/auth/verify-token", access).await.status == StatusCode::OK {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[actix_web::test]
async fn two_instances_on_a_redis_cluster_share_revocations_and_limits_and_a_refresh_race_has_one_successor()
-> TestResult {
    let Some(cluster) = test_cluster::start()? else {
        return Ok(());
    };
    // One seed: the instances learn the other masters from it.
    let seed = cluster.urls().first().cloned().ok_or("no node")?;
    let backing = Backing::fresh().await;
    let mut vars = cluster_vars(&seed, &backing);
    vars.extend([
        ("LOCKOUT_THRESHOLD", "4"),
        ("RATE_LIMIT_IDENTIFIER", "10000"),
    ]);
    let one = spawn_on(&backing, &vars).await;
    let two = spawn_on(&backing, &vars).await;
    let pool = one
        .state
        .service
        .ports()
        .cache
        .pool_status()
        .ok_or("the Redis cache is not in use")?;
    assert_eq!(pool.max_size, 1, "one multiplexed cluster connection");

    // A logout on one instance is refused on the other at once.
    let (access, refresh) = one.signed_in("cluster@example.com", "clusteruser").await;
    assert_eq!(
        two.get_auth("/auth/verify-token", &access).await.status,
        StatusCode::OK
    );
    let out = one
        .call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let refused = two.get_auth("/auth/verify-token", &access).await;
    assert_eq!(refused.code(), "token_revoked", "{}", refused.body);
    assert_eq!(
        two.post("/auth/refresh-token", &json!({"refresh_token": refresh}))
            .await
            .code(),
        "token_revoked"
    );

    // Two tabs refresh at once, one on each instance: one successor, both answers carry it.
    let login = two.login("clusteruser").await;
    let body = json!({"refresh_token": login.str("refresh_token")});
    let (a, b) = tokio::join!(
        one.post("/auth/refresh-token", &body),
        two.post("/auth/refresh-token", &body)
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(a.str("refresh_token"), b.str("refresh_token"));
    assert_eq!(
        one.get_auth("/auth/verify-token", &b.str("access_token"))
            .await
            .status,
        StatusCode::OK
    );

    // Lockout counts failures on both together (threshold 4: two on each).
    let wrong = json!({"username": "clusteruser", "password": "wrong password"});
    for app in [&one, &two, &one, &two] {
        assert_eq!(
            app.post("/auth/login", &wrong).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let right = json!({"username": "clusteruser", "password": PASSWORD});
    for app in [&one, &two] {
        let locked = app.post("/auth/login", &right).await;
        assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.body);
    }
    one.stop().await;
    two.stop().await;

    // Per-IP limits count requests to both instances together.
    let backing = Backing::fresh().await;
    let mut vars = cluster_vars(&seed, &backing);
    vars.push(("RATE_LIMIT_IP", "4"));
    let one = spawn_on(&backing, &vars).await;
    let two = spawn_on(&backing, &vars).await;
    let forgot = json!({"email": "nobody@example.com"});
    for app in [&one, &two, &one, &two] {
        assert_eq!(
            app.post("/auth/forgot-password", &forgot).await.status,
            StatusCode::ACCEPTED
        );
    }
    for app in [&one, &two] {
        let limited = app.post("/auth/forgot-password", &forgot).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.body
        );
    }
    one.stop().await;
    two.stop().await;
    drop(cluster);
    Ok(())
}

#[actix_web::test]
async fn with_every_cluster_master_down_verification_fails_closed_limits_fall_back_and_it_recovers()
-> TestResult {
    let Some(mut cluster) = test_cluster::start()? else {
        return Ok(());
    };
    let nodes = cluster.urls().join(",");
    let backing = Backing::fresh().await;
    let mut vars = cluster_vars(&nodes, &backing);
    vars.push(("RATE_LIMIT_IP", "1000"));
    let one = spawn_on(&backing, &vars).await;
    let two = spawn_on(&backing, &vars).await;
    let (revoked, _) = one.signed_in("clusterout@example.com", "clusterout").await;
    let out = one
        .call("POST", "/auth/logout", Some(&revoked), None, &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let fresh = two.login("clusterout").await.str("access_token");
    assert_eq!(
        one.get_auth("/auth/verify-token", &fresh).await.status,
        StatusCode::OK
    );

    // Every master killed: the cluster, and what it held, is gone.
    let masters = cluster.masters()?;
    for port in &masters {
        cluster.kill(*port)?;
    }
    for app in [&one, &two] {
        let verify = app.get_auth("/auth/verify-token", &fresh).await;
        assert_eq!(
            verify.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "fails closed: {}",
            verify.body
        );
        assert_eq!(verify.code(), "service_unavailable");
        assert_eq!(verify.body["valid"], false);
    }
    let ready = one.call("GET", "/health/ready", None, None, &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.body["checks"]["cache"]["status"], "unavailable",
        "{}",
        ready.body
    );
    let login = two
        .post(
            "/auth/login",
            &json!({"username": "clusterout", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::OK,
        "rate limits and lockout fall back to this instance: {}",
        login.body
    );
    assert!(
        login.header("ratelimit").is_some(),
        "still limited, per instance"
    );

    // The masters come back empty; the instances reconnect by themselves and warm the
    // list again from storage, so the token revoked before the outage stays refused.
    for port in &masters {
        cluster.restart(*port)?;
    }
    cluster.wait_ok(Duration::from_secs(30))?;
    for app in [&one, &two] {
        assert!(
            recovers(app, &fresh, 20).await,
            "verification did not recover within 20 s of the cluster's return"
        );
        let refused = app.get_auth("/auth/verify-token", &revoked).await;
        assert_eq!(refused.code(), "token_revoked", "{}", refused.body);
    }
    one.stop().await;
    two.stop().await;
    drop(cluster);
    Ok(())
}

#[actix_web::test]
async fn an_unreachable_redis_cluster_at_start_is_a_clear_error_without_the_password() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let vars = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("BCRYPT_COST", "4"),
        ("AUTH_DATA_DIR", dir.path().to_str().unwrap_or_default()),
        (
            "REDIS_CLUSTER_NODES",
            "redis://:hunter2@127.0.0.1:1,redis://:hunter2@127.0.0.1:2",
        ),
    ];
    let config = auth_http::config::Config::from_vars(
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )?;
    let built = auth_http::startup::Application::build(config).await;
    let err = built.err().ok_or("built without its Redis Cluster")?;
    let shown = auth_http::startup::error_chain(&err);
    assert!(
        shown.contains("the Redis Cluster at redis://:***@127.0.0.1:1,redis://:***@127.0.0.1:2"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2"),
        "the password never shows: {shown}"
    );
    Ok(())
}
