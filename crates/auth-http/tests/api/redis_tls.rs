//! The service on a Redis that speaks TLS only (issue 17): two instances share revocations
//! and limits over `rediss://` with `REDIS_CA_CERT`, and an outage cut through a TCP proxy
//! fails verification closed, then recovers over new TLS connections without a restart.

use std::time::Duration;

use auth_cache_redis::test_tls::{certificates, start};
use awc::http::StatusCode;
use uuid::Uuid;

use crate::helpers::{Backing, TestResult, spawn_on};
use crate::proxy::Proxy;

#[actix_web::test]
async fn two_instances_share_revocations_over_rediss_and_an_outage_fails_closed() -> TestResult {
    let (ca, cert, key) = certificates(&["localhost"])?;
    let Some(redis) = start(&cert, &key, &ca)? else {
        return Ok(());
    };
    let files = tempfile::tempdir()?;
    let ca_file = files.path().join("redis-ca.pem");
    std::fs::write(&ca_file, &ca)?;
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port)).await?;
    // The certificate names localhost; the proxy listens there too.
    let url = format!("rediss://localhost:{}", proxy.addr.port());
    let prefix = format!("authtest:{}:", Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_CA_CERT", ca_file.to_str().unwrap_or_default()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    let backing = Backing::fresh().await;
    let one = spawn_on(&backing, &vars).await;
    let two = spawn_on(&backing, &vars).await;
    assert!(
        one.state.service.ports().cache.pool_status().is_some(),
        "the Redis cache is in use"
    );

    // A logout on one instance is refused on the other at once.
    let (access, _) = one.signed_in("rtls@example.com", "redistls").await;
    assert_eq!(
        two.get_auth("/auth/verify-token", &access).await.status,
        StatusCode::OK
    );
    let out = one
        .call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let refused = two.get_auth("/auth/verify-token", &access).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(refused.code(), "token_revoked");

    // Redis away: verification fails closed on both, then recovers by itself.
    let login = one.login("redistls").await;
    let fresh = login.str("access_token");
    proxy.cut();
    let verify = two.get_auth("/auth/verify-token", &fresh).await;
    assert_eq!(
        verify.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        verify.body
    );
    assert_eq!(verify.body["valid"], false);
    proxy.restore();
    let mut recovered = false;
    for _ in 0..40 {
        if two.get_auth("/auth/verify-token", &fresh).await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "no new TLS connection to Redis within 10 s of its return"
    );
    one.stop().await;
    two.stop().await;
    drop(redis);
    Ok(())
}
