//! The cache contract against Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`),
//! each case under its own key prefix, plus what is specific to Redis: TTLs on every key
//! (ephemeral entries included),
//! and a quick `Unavailable` for an unreachable server.
//!
//! Without a reachable server the cases are skipped (said loudly on stderr); under CI
//! (`CI` set) they fail instead.

mod support;

use std::time::{Duration, Instant};

use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::policy::{LockoutPolicy, RateLimit};
use auth_domain::ports::{
    AttemptCounter, Cache as _, EphemeralStore, PortError, RateLimiter, RevocationList,
};
use auth_domain::types::{SessionId, UserId};
use auth_testkit::contract::Fixture;
use chrono::{TimeDelta, Utc};
use deadpool_redis::redis::{self, Commands as _};
use uuid::Uuid;

use support::{DropKeys, cache, proxied, url, warm, with_cache};

auth_testkit::cache_contract_tests!(cache().await);

fn raw(fixture: &Fixture<RedisCache, DropKeys>) -> redis::Connection {
    match fixture.guard().connection() {
        Some(conn) => conn,
        None => panic!("a plain connection to Redis"),
    }
}

fn pttl(conn: &mut redis::Connection, key: &str) -> i64 {
    match conn.pttl(key) {
        Ok(ttl) => ttl,
        Err(err) => panic!("PTTL {key}: {err}"),
    }
}

#[test]
fn revocation_entries_expire_at_their_until() {
    with_cache(|fixture| async move {
        let cache = &*fixture;
        let prefix = cache.key_prefix().to_owned();
        let (jti, session, user) = (
            Uuid::new_v4(),
            SessionId(Uuid::new_v4()),
            UserId(Uuid::new_v4()),
        );
        let until = Utc::now() + TimeDelta::minutes(10);
        assert!(cache.revoke_token(jti, until).await.is_ok());
        assert!(cache.revoke_session(session, until).await.is_ok());
        assert!(
            cache
                .revoke_user_before(user, Utc::now(), until)
                .await
                .is_ok()
        );
        let mut conn = raw(&fixture);
        for key in [
            format!("{prefix}rv:jti:{jti}"),
            format!("{prefix}rv:sid:{}", session.0),
            format!("{prefix}rv:usr:{}", user.0),
        ] {
            let ttl = pttl(&mut conn, &key);
            assert!(
                ttl > 9 * 60 * 1000 && ttl <= 10 * 60 * 1000,
                "{key} expires at its until, PTTL {ttl}"
            );
        }

        let past = Uuid::new_v4();
        let gone = Utc::now() - TimeDelta::minutes(1);
        assert!(cache.revoke_token(past, gone).await.is_ok());
        assert_eq!(
            pttl(&mut conn, &format!("{prefix}rv:jti:{past}")),
            -2,
            "an until in the past stores nothing"
        );
    });
}

#[test]
fn rate_limit_and_attempt_keys_expire() {
    with_cache(|fixture| async move {
        let cache = &*fixture;
        let prefix = cache.key_prefix().to_owned();
        let policy = RateLimit {
            name: "test",
            limit: 2,
            window: TimeDelta::milliseconds(300),
        };
        let decision = cache.hit("k", policy, Utc::now()).await;
        assert!(decision.is_ok_and(|d| d.allowed));
        let mut conn = raw(&fixture);
        let key = format!("{prefix}rl:k");
        let ttl = pttl(&mut conn, &key);
        assert!(ttl > 0 && ttl <= 150, "TTL = new TAT - now, got {ttl}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            pttl(&mut conn, &key),
            -2,
            "the key is gone once its TAT passed"
        );

        let lockout = LockoutPolicy::default();
        let state = cache.record_failure("a", &lockout, Utc::now()).await;
        assert!(state.is_ok_and(|s| s.failures == 1));
        let ttl = pttl(&mut conn, &format!("{prefix}at:a"));
        let window = lockout.failure_window.num_milliseconds();
        assert!(
            ttl > window - 60_000 && ttl <= window,
            "kept for the retention, got {ttl}"
        );
        assert!(
            cache
                .record_success("a", &lockout, Utc::now(), None)
                .await
                .is_ok()
        );
        assert_eq!(
            pttl(&mut conn, &format!("{prefix}at:a")),
            -2,
            "a state back to the default is deleted"
        );
        assert!(
            cache
                .record_success("b", &lockout, Utc::now(), None)
                .await
                .is_ok()
        );
        assert_eq!(
            pttl(&mut conn, &format!("{prefix}at:b")),
            -2,
            "a success alone creates nothing"
        );
    });
}

#[test]
fn ephemeral_keys_are_prefixed_and_expire_by_their_ttl() {
    with_cache(|fixture| async move {
        let cache = &*fixture;
        let prefix = cache.key_prefix().to_owned();
        let mut conn = raw(&fixture);
        let now = Utc::now();
        let in_a_minute = now + TimeDelta::minutes(1);
        assert!(
            cache
                .put_ephemeral("v", b"value", in_a_minute, now)
                .await
                .is_ok()
        );
        assert!(
            cache
                .claim_once("c", in_a_minute, now)
                .await
                .is_ok_and(|c| c)
        );
        assert!(
            cache
                .increment("n", in_a_minute, now)
                .await
                .is_ok_and(|n| n == 1)
        );
        for key in ["v", "c", "n"] {
            let ttl = pttl(&mut conn, &format!("{prefix}ep:{key}"));
            assert!(
                ttl > 55_000 && ttl <= 60_000,
                "{key} expires at its expires_at, PTTL {ttl}"
            );
        }
        let stored: Vec<u8> = match conn.get(format!("{prefix}ep:v")) {
            Ok(stored) => stored,
            Err(err) => panic!("GET: {err}"),
        };
        let expected = format!("{}:value", in_a_minute.timestamp_millis());
        assert_eq!(stored, expected.into_bytes(), "the expiry, then the value");

        let later = now + TimeDelta::seconds(30);
        let counted = cache
            .increment("n", later + TimeDelta::hours(1), later)
            .await;
        assert!(counted.is_ok_and(|n| n == 2));
        let ttl = pttl(&mut conn, &format!("{prefix}ep:n"));
        assert!(
            ttl > 55_000 && ttl <= 60_000,
            "the first TTL is kept, PTTL {ttl}"
        );

        assert!(cache.put_ephemeral("v", b"stale", now, now).await.is_ok());
        assert_eq!(
            pttl(&mut conn, &format!("{prefix}ep:v")),
            -2,
            "a value put at its expiry deletes the key"
        );

        let short = Utc::now();
        let soon = short + TimeDelta::milliseconds(150);
        assert!(cache.put_ephemeral("s", b"x", soon, short).await.is_ok());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            pttl(&mut conn, &format!("{prefix}ep:s")),
            -2,
            "Redis drops the key at its TTL"
        );
    });
}

#[test]
fn an_unreachable_server_is_unavailable_quickly() {
    auth_testkit::contract::run(async {
        let options = RedisOptions {
            timeout: Duration::from_millis(500),
            ..RedisOptions::default()
        };
        let started = Instant::now();
        let result = RedisCache::connect("redis://:s3cret@127.0.0.1:1", "authtest:", options).await;
        let elapsed = started.elapsed();
        match result {
            Err(err @ PortError::Unavailable(_)) => {
                let shown = format!("{err:?} {err}");
                assert!(!shown.contains("s3cret"), "no password in {shown}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    });
}

/// A small deterministic generator for the differential tests (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[test]
fn the_scripts_decide_exactly_as_the_domain_functions() {
    with_cache(|fixture| async move {
        let cache = &*fixture;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let start = auth_testkit::contract::fixtures::now();

        // GCRA: simulated time only ever runs ahead of real time (steps of at least 200 ms),
        // so Redis never drops a TAT the model still holds.
        for round in 0..12 {
            let policy = RateLimit {
                name: "diff",
                limit: u32::try_from(1 + rng.below(12)).unwrap_or(1),
                window: TimeDelta::milliseconds(
                    i64::try_from(1000 + rng.below(59_000)).unwrap_or(1000),
                ),
            };
            let key = format!("diff{round}");
            let mut now = start;
            let mut tat = None;
            for step in 0..60 {
                if rng.below(3) == 0 {
                    let gap = 200
                        + rng
                            .below(u64::try_from(policy.window.num_milliseconds()).unwrap_or(1000));
                    now += TimeDelta::milliseconds(i64::try_from(gap).unwrap_or(200));
                }
                let (next, expected) = auth_domain::policy::gcra(policy, tat, now);
                let got = cache.hit(&key, policy, now).await;
                match got {
                    Ok(got) => assert_eq!(got, expected, "round {round} step {step} {policy:?}"),
                    Err(err) => panic!("hit: {err:?}"),
                }
                tat = Some(next);
            }
        }

        // Lockout: failures and successes at random times, states compared whole.
        for round in 0..8 {
            let policy = LockoutPolicy {
                threshold: u32::try_from(1 + rng.below(5)).unwrap_or(1),
                base_lock: TimeDelta::milliseconds(
                    i64::try_from(1000 + rng.below(60_000)).unwrap_or(1000),
                ),
                max_lock: TimeDelta::milliseconds(
                    i64::try_from(60_000 + rng.below(600_000)).unwrap_or(60_000),
                ),
                failure_window: TimeDelta::milliseconds(
                    i64::try_from(1000 + rng.below(120_000)).unwrap_or(1000),
                ),
                memory: TimeDelta::milliseconds(
                    i64::try_from(1000 + rng.below(600_000)).unwrap_or(1000),
                ),
            };
            let key = format!("diff{round}");
            let mut now = start;
            let mut model = auth_domain::policy::AttemptState::default();
            for step in 0..80 {
                now += TimeDelta::milliseconds(i64::try_from(rng.below(150_000)).unwrap_or(0));
                if rng.below(6) == 0 {
                    assert!(cache.record_success(&key, &policy, now, None).await.is_ok());
                    model = policy.after_success(model);
                } else {
                    model = policy.after_failure(model, now);
                    match cache.record_failure(&key, &policy, now).await {
                        Ok(got) => assert_eq!(got, model, "round {round} step {step} {policy:?}"),
                        Err(err) => panic!("record_failure: {err:?}"),
                    }
                }
                match cache.attempts(&key).await {
                    Ok(stored) => assert_eq!(stored, model, "stored, round {round} step {step}"),
                    Err(err) => panic!("attempts: {err:?}"),
                }
            }
        }
    });
}

#[test]
fn the_pool_reports_its_connections_and_waiters() {
    with_cache(|fixture| async move {
        let cache = &*fixture;
        assert!(cache.ping().await.is_ok());
        let status = cache.pool_status();
        assert_eq!(status.max_size, RedisOptions::default().pool_size);
        assert_eq!(
            (status.in_use, status.waiting),
            (0, 0),
            "at rest: {status:?}"
        );
        assert!(status.idle >= 1, "the ping's connection rests: {status:?}");
    });
}

#[test]
fn operations_share_a_connection_never_pinged_in_steady_use_and_a_restart_fails_no_revocation_check()
 {
    auth_testkit::contract::run(async {
        let url = url();
        let Some((proxy, proxied)) = proxied() else {
            return;
        };
        let prefix = format!("authtest:{}:", Uuid::new_v4());
        let options = RedisOptions {
            pool_size: 4,
            timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        };
        let cache = match RedisCache::connect(&proxied, &prefix, options).await {
            Ok(cache) => cache,
            Err(err) => panic!("connect through the proxy: {err}"),
        };
        let _keys = DropKeys {
            url: url.clone(),
            prefix,
        };
        warm(&cache).await;
        let check = || {
            cache.revocation_state(
                Uuid::new_v4(),
                SessionId(Uuid::new_v4()),
                UserId(Uuid::new_v4()),
            )
        };
        // Four operations at once share one multiplexed connection.
        let (a, b, c, d) = tokio::join!(check(), check(), check(), check());
        assert!(a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok(), "warm-up");
        let status = cache.pool_status();
        assert_eq!((status.idle, status.in_use), (1, 0), "{status:?}");

        let before = proxy.pings();
        for _ in 0..50 {
            assert!(check().await.is_ok());
        }
        assert_eq!(
            proxy.pings(),
            before,
            "no PING before each use of a connection in steady use"
        );

        proxy.cut();
        let mut failed = 0;
        for _ in 0..10 {
            match check().await {
                Ok(_) => {}
                Err(PortError::Unavailable(_)) => failed += 1,
                Err(other) => panic!("a broken connection is unavailable, not {other}"),
            }
        }
        assert_eq!(
            failed, 0,
            "revocation checks failed after the server dropped every connection"
        );
        assert!(check().await.is_ok(), "recovered");
    });
}
