//! The cache contract against a real Redis Cluster of three masters (started here, see
//! `auth_cache_redis::test_cluster`), each case under its own key prefix, plus what is
//! specific to a cluster: the keys of each script in one slot, the rest spread over the
//! masters and reached from a single seed node, a slot moved away (`MOVED`), the master of
//! the revocation list down (fail closed) or failed over (the list cold until warmed), and
//! configuration errors.
//!
//! Where `redis-server` is missing the cases are skipped (said loudly on stderr); under CI
//! (`CI` set) they fail instead.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_cache_redis::test_cluster::{self, RedisCluster};
use auth_cache_redis::test_tls::certificates;
use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::model::ColdReason;
use auth_domain::policy::{LockoutPolicy, RateLimit};
use auth_domain::ports::{AttemptCounter, Cache as _, PortError, RateLimiter, RevocationList};
use auth_domain::types::{SessionId, UserId};
use auth_testkit::contract::Fixture;
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use support::{prefix, warm};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A warmed cache on the shared cluster under a fresh prefix, or `None` (said on stderr)
/// where `redis-server` is missing outside CI.
async fn cache() -> Option<Fixture<RedisCache, Arc<RedisCluster>>> {
    let cluster = match test_cluster::shared() {
        Ok(cluster) => cluster?,
        Err(err) => panic!("Redis Cluster: {err}"),
    };
    let cache = match connect(&cluster.urls(), &prefix(), RedisOptions::default()).await {
        Ok(cache) => cache,
        Err(err) => panic!("connect_cluster: {err:?}"),
    };
    warm(&cache).await;
    Some(Fixture::with_guard(cache, cluster))
}

auth_testkit::cache_contract_tests!(cache().await);

async fn connect(
    urls: &[String],
    prefix: &str,
    options: RedisOptions,
) -> Result<RedisCache, PortError> {
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisCache::connect_cluster(&nodes, prefix, options).await
}

/// Options with a short timeout, for cases that take a node away.
fn quick() -> RedisOptions {
    RedisOptions {
        timeout: Duration::from_millis(800),
        ..RedisOptions::default()
    }
}

fn per_minute(limit: u32) -> RateLimit {
    RateLimit {
        name: "test",
        limit,
        window: TimeDelta::minutes(1),
    }
}

/// Runs `case` on a runtime of its own.
fn run<F: Future<Output = TestResult>>(case: F) -> TestResult {
    let mut outcome = Ok(());
    auth_testkit::contract::run(async { outcome = case.await });
    outcome
}

/// A revoked token, session and user (until in ten minutes), for checks afterwards.
async fn revoke_some(cache: &RedisCache) -> Result<(Uuid, SessionId, UserId), PortError> {
    let (jti, session, user) = (
        Uuid::new_v4(),
        SessionId(Uuid::new_v4()),
        UserId(Uuid::new_v4()),
    );
    let until = Utc::now() + TimeDelta::minutes(10);
    cache.revoke_token(jti, until).await?;
    cache.revoke_session(session, until).await?;
    cache.revoke_user_before(user, Utc::now(), until).await?;
    Ok((jti, session, user))
}

/// Asks for warming until a ticket comes (the list cold), then warms; the ticket's reason.
async fn warm_again(cache: &RedisCache, within: Duration) -> Result<ColdReason, PortError> {
    let deadline = Instant::now() + within;
    loop {
        match cache.needs_warming().await {
            Ok(Some(ticket)) => {
                let reason = ticket.reason;
                if cache.warmed(ticket).await? {
                    return Ok(reason);
                }
            }
            Ok(None) => return Ok(ColdReason::Unwarmed),
            Err(err) if Instant::now() > deadline => return Err(err),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn each_scripts_keys_share_a_slot_and_the_rest_spread_over_masters_reached_from_one_seed()
-> TestResult {
    let Some(cluster) = test_cluster::start()? else {
        return Ok(());
    };
    run(async {
        // One seed only: the client learns the other masters from it.
        let seed = cluster.urls().into_iter().take(1).collect::<Vec<_>>();
        let prefix = prefix();
        let cache = connect(&seed, &prefix, RedisOptions::default()).await?;
        warm(&cache).await;
        let (jti, session, user) = revoke_some(&cache).await?;
        let state = cache.revocation_state(jti, session, user).await?;
        assert!(state.token_revoked && state.session_revoked && state.user_not_before.is_some());

        let revocation_keys = [
            format!("{prefix}{{rv}}:jti:{jti}"),
            format!("{prefix}{{rv}}:sid:{}", session.0),
            format!("{prefix}{{rv}}:usr:{}", user.0),
            format!("{prefix}{{rv}}:warm"),
            format!("{prefix}{{rv}}:epoch"),
        ];
        let slots = revocation_keys
            .iter()
            .map(|key| cluster.slot(key))
            .collect::<Result<Vec<_>, _>>()?;
        assert!(
            slots.iter().all(|slot| *slot == slots[0]),
            "the revocation list is in one slot: {slots:?}"
        );

        // Rate limits and attempt counters, one key per script, land on every master.
        let policy = LockoutPolicy::default();
        let limit = per_minute(100);
        let mut masters = std::collections::BTreeSet::new();
        for n in 0..24 {
            let key = format!("client-{n}");
            assert!(cache.hit(&key, limit, Utc::now()).await?.allowed);
            let state = cache.record_failure(&key, &policy, Utc::now()).await?;
            assert_eq!(state.failures, 1, "{key}");
            assert_eq!(cache.attempts(&key).await?.failures, 1, "{key}");
            for stored in [format!("{prefix}rl:{key}"), format!("{prefix}at:{key}")] {
                masters.insert(cluster.master_of(cluster.slot(&stored)?)?);
            }
        }
        assert_eq!(masters.len(), 3, "keys on every master: {masters:?}");
        Ok(())
    })
}

#[test]
fn a_slot_moved_to_another_master_is_followed_and_the_list_is_warmed_again_there() -> TestResult {
    let Some(cluster) = test_cluster::start()? else {
        return Ok(());
    };
    run(async {
        let prefix = prefix();
        let cache = connect(&cluster.urls(), &prefix, RedisOptions::default()).await?;
        warm(&cache).await;
        let (jti, session, user) = revoke_some(&cache).await?;
        let limit = per_minute(100);
        assert!(cache.hit("moved", limit, Utc::now()).await?.allowed);

        // The client knows the old owners; the next commands get MOVED.
        let rv_slot = cluster.slot(&format!("{prefix}{{rv}}:warm"))?;
        let rl_slot = cluster.slot(&format!("{prefix}rl:moved"))?;
        for slot in [rv_slot, rl_slot] {
            let owner = cluster.master_of(slot)?;
            let other = cluster
                .masters()?
                .into_iter()
                .find(|port| *port != owner)
                .ok_or("no other master")?;
            cluster.move_slot(slot, other)?;
        }
        let second = cache.hit("moved", limit, Utc::now()).await?;
        assert_eq!(
            second.remaining,
            limit.limit - 2,
            "the TAT moved with its slot"
        );
        let state = cache.revocation_state(jti, session, user).await?;
        assert!(state.token_revoked && state.session_revoked);

        // Another server holds the list now: this instance warms it again before it
        // trusts it (nothing was lost, but it cannot know).
        let ticket = cache.needs_warming().await?.ok_or("no warming asked for")?;
        assert_eq!(ticket.reason, ColdReason::Replaced);
        assert!(matches!(
            cache.revocation_state(jti, session, user).await,
            Err(PortError::Unavailable(_))
        ));
        assert!(cache.warmed(ticket).await?);
        assert!(
            cache
                .revocation_state(jti, session, user)
                .await?
                .token_revoked
        );
        Ok(())
    })
}

#[test]
fn with_the_revocation_master_down_checks_fail_closed_other_masters_still_limit_and_it_recovers()
-> TestResult {
    let Some(mut cluster) = test_cluster::start()? else {
        return Ok(());
    };
    let prefix = prefix();
    let rv_master = cluster.master_of(cluster.slot(&format!("{prefix}{{rv}}:warm"))?)?;
    // A rate-limit key on another master.
    let mut elsewhere = None;
    for n in 0..64 {
        let key = format!("elsewhere-{n}");
        if cluster.master_of(cluster.slot(&format!("{prefix}rl:{key}"))?)? != rv_master {
            elsewhere = Some(key);
            break;
        }
    }
    let elsewhere = elsewhere.ok_or("no key on another master")?;
    let urls = cluster.urls();
    let (jti, session, user) = (
        Uuid::new_v4(),
        SessionId(Uuid::new_v4()),
        UserId(Uuid::new_v4()),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cache = runtime.block_on(async {
        let cache = connect(&urls, &prefix, quick()).await?;
        warm(&cache).await;
        assert!(cache.revocation_state(jti, session, user).await.is_ok());
        Ok::<_, Box<dyn std::error::Error>>(cache)
    })?;

    cluster.kill(rv_master)?;
    runtime.block_on(async {
        let limit = per_minute(100);
        assert!(
            cache.hit(&elsewhere, limit, Utc::now()).await?.allowed,
            "a master that is up still limits (until the cluster marks the other failed)"
        );
        let started = Instant::now();
        let checked = cache.revocation_state(jti, session, user).await;
        assert!(
            matches!(checked, Err(PortError::Unavailable(_))),
            "fails closed: {checked:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "bounded");
        assert!(matches!(cache.ping().await, Err(PortError::Unavailable(_))));
        TestResult::Ok(())
    })?;

    cluster.restart(rv_master)?;
    cluster.wait_ok(Duration::from_secs(30))?;
    runtime.block_on(async {
        // Refused until warmed, then trusted again, with no new cache.
        assert!(matches!(
            cache.revocation_state(jti, session, user).await,
            Err(PortError::Unavailable(_))
        ));
        let reason = warm_again(&cache, Duration::from_secs(20)).await?;
        assert_ne!(reason, ColdReason::Unwarmed, "the list was cold");
        assert!(cache.revocation_state(jti, session, user).await.is_ok());
        assert!(cache.ping().await.is_ok());
        TestResult::Ok(())
    })
}

#[test]
fn a_failover_of_the_revocation_master_makes_the_list_cold_until_warmed() -> TestResult {
    let Some(cluster) = test_cluster::start_with_replicas()? else {
        return Ok(());
    };
    run(async {
        let prefix = prefix();
        let cache = connect(&cluster.urls(), &prefix, RedisOptions::default()).await?;
        warm(&cache).await;
        let (jti, session, user) = revoke_some(&cache).await?;
        let rv_master = cluster.master_of(cluster.slot(&format!("{prefix}{{rv}}:warm"))?)?;

        // A failover the client rides through without an error: a replica that lagged
        // could have lost revocations while keeping the marker.
        let promoted = cluster.fail_over(rv_master)?;
        assert_ne!(promoted, rv_master);
        let ticket = cache.needs_warming().await?.ok_or("no warming asked for")?;
        assert_eq!(ticket.reason, ColdReason::Replaced);
        assert!(matches!(
            cache.revocation_state(jti, session, user).await,
            Err(PortError::Unavailable(_))
        ));
        assert!(cache.warmed(ticket).await?);
        let state = cache.revocation_state(jti, session, user).await?;
        assert!(state.token_revoked, "replicated before the manual failover");
        Ok(())
    })
}

#[test]
fn a_tls_cluster_is_reached_over_rediss_with_its_ca_and_refused_with_another() -> TestResult {
    let (ca, cert, key) = certificates(&["127.0.0.1"])?;
    let Some(cluster) = test_cluster::start_tls(&cert, &key, &ca)? else {
        return Ok(());
    };
    run(async {
        let with_ca = |pem: &str| RedisOptions {
            ca_cert_pem: Some(pem.as_bytes().to_vec()),
            ..quick()
        };
        let cache = connect(&cluster.urls(), &prefix(), with_ca(&ca)).await?;
        warm(&cache).await;
        let (jti, session, user) = revoke_some(&cache).await?;
        assert!(
            cache
                .revocation_state(jti, session, user)
                .await?
                .token_revoked
        );
        for n in 0..12 {
            let key = format!("tls-{n}");
            assert!(cache.hit(&key, per_minute(10), Utc::now()).await?.allowed);
        }

        let (other_ca, _, _) = certificates(&["127.0.0.1"])?;
        let refused = connect(&cluster.urls(), &prefix(), with_ca(&other_ca)).await;
        assert!(refused.is_err(), "another CA: {refused:?}");
        let plain: Vec<String> = cluster
            .urls()
            .iter()
            .map(|url| url.replacen("rediss://", "redis://", 1))
            .collect();
        let refused = connect(&plain, &prefix(), quick()).await;
        assert!(refused.is_err(), "plain redis:// to TLS nodes: {refused:?}");
        Ok(())
    })
}

#[test]
fn an_unreachable_cluster_is_unavailable_quickly_and_bad_seeds_are_configuration_errors()
-> TestResult {
    run(async {
        let nobody = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let started = Instant::now();
        let refused = connect(&[format!("redis://127.0.0.1:{nobody}")], "x:", quick()).await;
        assert!(
            matches!(refused, Err(PortError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));

        // A seed that takes the connection and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let silent_url = format!("redis://127.0.0.1:{}", silent.local_addr()?.port());
        let started = Instant::now();
        let timed_out = connect(&[silent_url], "x:", quick()).await;
        assert!(
            matches!(timed_out, Err(PortError::Unavailable(_))),
            "{timed_out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "bounded");
        drop(silent);

        for (nodes, expected) in [
            (vec![], "no seed node"),
            (
                vec![
                    "redis://:s3cret@127.0.0.1:1".to_owned(),
                    "rediss://:s3cret@127.0.0.1:2".to_owned(),
                ],
                "every node must be redis://",
            ),
            (vec!["memcached://:s3cret@cache:1".to_owned()], "every node"),
            (
                vec!["redis://:s3cret@127.0.0.1:notaport".to_owned()],
                "invalid redis configuration",
            ),
        ] {
            let err = match connect(&nodes, "x:", quick()).await {
                Err(err @ PortError::Unexpected(_)) => err,
                other => panic!("{nodes:?}: {other:?}"),
            };
            let chain = error_chain(&err);
            assert!(chain.contains(expected), "{chain}");
            assert!(!chain.contains("s3cret"), "{chain}");
        }
        Ok(())
    })
}

#[test]
fn the_cluster_connection_reports_its_use_and_closing_makes_it_unavailable() -> TestResult {
    let Some(cluster) = test_cluster::shared()? else {
        return Ok(());
    };
    run(async {
        let cache = connect(&cluster.urls(), &prefix(), RedisOptions::default()).await?;
        let status = cache.pool_status();
        assert_eq!(
            (status.max_size, status.in_use, status.idle, status.waiting),
            (1, 0, 1, 0)
        );
        assert!(format!("{cache:?}").contains("cluster: true"));
        cache.close();
        assert!(matches!(cache.ping().await, Err(PortError::Unavailable(_))));
        Ok(())
    })
}

/// The error and its sources, one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
