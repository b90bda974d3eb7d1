use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestResult, spawn_app, spawn_with};

#[actix_web::test]
async fn a_verified_user_logs_in_by_username_or_email() -> TestResult {
    let app = spawn_app().await;
    app.verified_user("ada@example.com", "ada").await;
    let by_name = app.login("ada").await;
    for field in ["message", "access_token", "refresh_token", "device_token"] {
        assert!(by_name.body[field].is_string(), "{field}");
    }
    assert_eq!(by_name.body["token_type"], "Bearer");
    assert_eq!(by_name.body["expires_in"], 900);
    assert_eq!(by_name.body["user"]["email"], "ada@example.com");
    assert_eq!(by_name.header("cache-control").as_deref(), Some("no-store"));
    let by_email = app
        .post(
            "/auth/login",
            &json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_email.status, StatusCode::OK);
    Ok(())
}

#[actix_web::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() -> TestResult {
    let app = spawn_app().await;
    app.verified_user("bob@example.com", "bob").await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"username": "bob", "password": "not the password"}),
        )
        .await;
    let unknown = app
        .post(
            "/auth/login",
            &json!({"username": "nobody", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert!(
        wrong.header("www-authenticate").is_none(),
        "login is not a Bearer endpoint"
    );
    Ok(())
}

#[actix_web::test]
async fn an_unverified_email_is_reported_only_after_the_right_password() -> TestResult {
    let app = spawn_app().await;
    app.register("new@example.com", "newbie").await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"username": "newbie", "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = app
        .post(
            "/auth/login",
            &json!({"username": "newbie", "password": PASSWORD}),
        )
        .await;
    assert_eq!(right.status, StatusCode::FORBIDDEN);
    assert_eq!(right.code(), "email_not_verified");
    Ok(())
}

#[actix_web::test]
async fn failures_lock_the_identifier_but_not_a_known_device() -> TestResult {
    let app = spawn_with(&[("LOCKOUT_THRESHOLD", "3")]).await;
    app.verified_user("carol@example.com", "carol").await;
    let device_token = app.login("carol").await.str("device_token");
    for _ in 0..3 {
        let res = app
            .post(
                "/auth/login",
                &json!({"username": "carol", "password": "guess guess"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app
        .post(
            "/auth/login",
            &json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.body);
    assert_eq!(locked.code(), "account_locked");
    let retry: u64 = locked
        .header("retry-after")
        .ok_or("no Retry-After")?
        .parse()?;
    assert!(retry > 0 && retry <= 900);
    assert!(
        app.mailbox()
            .await
            .last(
                "carol@example.com",
                auth_domain::model::MailKind::AccountLocked
            )
            .is_some()
    );

    let unknown_locked = {
        for _ in 0..3 {
            app.post(
                "/auth/login",
                &json!({"username": "ghost", "password": "guess guess"}),
            )
            .await;
        }
        app.post(
            "/auth/login",
            &json!({"username": "ghost", "password": "guess guess"}),
        )
        .await
    };
    assert_eq!(
        unknown_locked.status,
        StatusCode::LOCKED,
        "unknown identifiers lock the same way"
    );

    let with_device = app
        .post(
            "/auth/login",
            &json!({"username": "carol", "password": PASSWORD, "device_token": device_token}),
        )
        .await;
    assert_eq!(
        with_device.status,
        StatusCode::OK,
        "the owner's device is not locked out: {}",
        with_device.body
    );
    Ok(())
}

#[actix_web::test]
async fn too_many_requests_from_one_ip_are_limited_with_headers() -> TestResult {
    let app = spawn_with(&[("RATE_LIMIT_IP", "2")]).await;
    let body = json!({"username": "someone", "password": "whatever1"});
    let first = app.post("/auth/login", &body).await;
    assert!(
        first.header("ratelimit-policy").is_some(),
        "policy header on every limited endpoint"
    );
    assert!(first.header("ratelimit").is_some());
    app.post("/auth/login", &body).await;
    let limited = app.post("/auth/login", &body).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    assert!(
        limited
            .header("retry-after")
            .ok_or("no Retry-After")?
            .parse::<u64>()?
            >= 1
    );
    assert_eq!(
        limited.header("ratelimit-policy").as_deref(),
        Some("\"ip\";q=2;w=60")
    );
    assert!(
        limited
            .header("ratelimit")
            .unwrap_or_default()
            .contains("r=0")
    );
    let other_endpoint = app
        .post("/auth/forgot-password", &json!({"email": "x@example.com"}))
        .await;
    assert_eq!(
        other_endpoint.status,
        StatusCode::ACCEPTED,
        "limits are per endpoint"
    );
    Ok(())
}

#[actix_web::test]
async fn behind_a_trusted_proxy_one_ipv6_64_shares_a_per_ip_limit_whatever_ports_it_writes()
-> TestResult {
    let app = spawn_with(&[("TRUSTED_PROXIES", "127.0.0.0/8"), ("RATE_LIMIT_IP", "2")]).await;
    let refresh = |forwarded: &'static str| {
        let app = &app;
        async move {
            app.call(
                "POST",
                "/auth/refresh-token",
                None,
                Some(&json!({"refresh_token": "not-a-token"})),
                &[("X-Forwarded-For", forwarded)],
            )
            .await
            .status
        }
    };
    assert_eq!(
        refresh("[2001:db8:1:2::1]:51234").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(refresh("2001:db8:1:2::2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh("198.51.100.1, [2001:db8:1:2::3]:443").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a third address of the same /64 (with a port, a forged entry to its left)"
    );
    assert_eq!(
        refresh("[2001:db8:1:3::1]:443").await,
        StatusCode::UNAUTHORIZED,
        "the next /64 has its own limit"
    );
    assert_eq!(
        refresh("198.51.100.1, unknown").await,
        StatusCode::UNAUTHORIZED,
        "an unreadable entry: the proxy is the client, and the forged address is not"
    );
    assert_eq!(
        refresh("198.51.100.1, garbage").await,
        StatusCode::UNAUTHORIZED,
        "the proxy's second request"
    );
    assert_eq!(
        refresh("198.51.100.1").await,
        StatusCode::UNAUTHORIZED,
        "198.51.100.1 was never charged"
    );
    Ok(())
}

#[actix_web::test]
async fn the_forwarded_client_ip_counts_only_behind_a_trusted_proxy() -> TestResult {
    let trusted = spawn_with(&[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    trusted.verified_user("dan@example.com", "dan").await;
    let login = trusted
        .call(
            "POST",
            "/auth/login",
            None,
            Some(&json!({"username": "dan", "password": PASSWORD})),
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    let sessions = trusted
        .get_auth("/users/sessions", &login.str("access_token"))
        .await;
    assert_eq!(sessions.body["active_sessions"][0]["ip"], "203.0.113.7");

    let untrusted = spawn_app().await;
    untrusted.verified_user("eve@example.com", "eve").await;
    let login = untrusted
        .call(
            "POST",
            "/auth/login",
            None,
            Some(&json!({"username": "eve", "password": PASSWORD})),
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    let sessions = untrusted
        .get_auth("/users/sessions", &login.str("access_token"))
        .await;
    assert_eq!(
        sessions.body["active_sessions"][0]["ip"], "127.0.0.1",
        "a spoofed header is ignored"
    );
    Ok(())
}
