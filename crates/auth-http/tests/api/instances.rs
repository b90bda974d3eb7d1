//! Several instances as one: two servers on one database and one Redis (as behind a load
//! balancer) share revocations, refresh-token reuse detection, lockout and rate limits.

use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backing, PASSWORD, TestResult, on_redis, spawn_on};

#[actix_web::test]
async fn two_instances_on_one_database_and_one_redis_act_as_one() -> TestResult {
    if !on_redis() {
        eprintln!("SKIPPED: the two-instance test runs with AUTH_TEST_CACHE=redis (.ci/run does)");
        return Ok(());
    }
    let backing = Backing::fresh().await;
    let vars = [
        ("REFRESH_REUSE_INTERVAL", "0"),
        ("LOCKOUT_THRESHOLD", "4"),
        ("RATE_LIMIT_IDENTIFIER", "10000"),
    ];
    let a = spawn_on(&backing, &vars).await;
    let b = spawn_on(&backing, &vars).await;

    // Logout on A is refused on B at once.
    let (access, refresh) = a.signed_in("multi@example.com", "multi").await;
    assert_eq!(
        b.get_auth("/auth/verify-token", &access).await.status,
        StatusCode::OK
    );
    a.call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    let on_b = b.get_auth("/auth/verify-token", &access).await;
    assert_eq!(on_b.code(), "token_revoked", "{}", on_b.body);
    assert_eq!(
        b.post("/auth/refresh-token", &json!({"refresh_token": refresh}))
            .await
            .code(),
        "token_revoked"
    );

    // A refresh token rotated on A and replayed on B after the reuse interval revokes the family.
    let login = b.login("multi").await;
    let (access, refresh) = (login.str("access_token"), login.str("refresh_token"));
    let rotated = a
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let replay = b
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(replay.code(), "token_reused");
    assert_eq!(
        a.get_auth("/auth/verify-token", &rotated.str("access_token"))
            .await
            .code(),
        "token_revoked"
    );
    assert_eq!(
        a.get_auth("/auth/verify-token", &access).await.code(),
        "token_revoked"
    );
    assert_eq!(
        a.post(
            "/auth/refresh-token",
            &json!({"refresh_token": rotated.str("refresh_token")})
        )
        .await
        .code(),
        "token_revoked"
    );

    // Lockout counts failures on both together (threshold 4: two on each).
    let wrong = json!({"username": "multi", "password": "wrong password"});
    for app in [&a, &b, &a, &b] {
        assert_eq!(
            app.post("/auth/login", &wrong).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = a
        .post(
            "/auth/login",
            &json!({"username": "multi", "password": PASSWORD}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.body);
    assert_eq!(
        b.post(
            "/auth/login",
            &json!({"username": "multi", "password": PASSWORD})
        )
        .await
        .status,
        StatusCode::LOCKED
    );
    Ok(())
}

#[actix_web::test]
async fn per_ip_limits_count_requests_to_both_instances_together() -> TestResult {
    if !on_redis() {
        eprintln!("SKIPPED: the two-instance test runs with AUTH_TEST_CACHE=redis (.ci/run does)");
        return Ok(());
    }
    let backing = Backing::fresh().await;
    let a = spawn_on(&backing, &[("RATE_LIMIT_IP", "4")]).await;
    let b = spawn_on(&backing, &[("RATE_LIMIT_IP", "4")]).await;
    let body = json!({"email": "nobody@example.com"});
    for app in [&a, &b, &a, &b] {
        assert_eq!(
            app.post("/auth/forgot-password", &body).await.status,
            StatusCode::ACCEPTED
        );
    }
    let limited = b.post("/auth/forgot-password", &body).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(
        a.post("/auth/forgot-password", &body).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}
