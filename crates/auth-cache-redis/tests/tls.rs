//! Redis over TLS (`rediss://`), against a real `redis-server` that speaks TLS only
//! ([`auth_cache_redis::test_tls`]).

use std::time::Duration;

use auth_cache_redis::test_tls::{certificates, start};
use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::ports::RevocationList;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
