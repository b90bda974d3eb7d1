//! The revocation list in Redis converges to storage: when it may lack revocations (it was
//! never warmed, it lost its keys, a revocation write to it failed, this instance could not
//! reach it) it refuses revocation checks, on every instance concerned, until it is warmed
//! again. Each case plays the service's part by hand: "warming" is writing again what
//! storage remembers, then handing the ticket back.
//!
//! Against Redis at `TEST_REDIS_URL`, each case under its own key prefix; skipped (loudly)
//! when it is unreachable, except under CI.

mod support;

use std::time::Duration;

use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::model::{ColdReason, RevocationState, WarmTicket};
use auth_domain::ports::{PortError, RevocationList};
use auth_domain::types::{SessionId, Timestamp, UserId};
use chrono::{TimeDelta, Utc};
use deadpool_redis::redis::{self, Commands as _};
use uuid::Uuid;

use support::{DropKeys, connect, prefix, proxied, url, warm};

fn until() -> Timestamp {
    Utc::now() + TimeDelta::minutes(15)
}

/// Options that give up quickly on a cut connection.
fn quick() -> RedisOptions {
    RedisOptions {
        pool_size: 4,
        timeout: Duration::from_millis(500),
        ..RedisOptions::default()
    }
}

/// The revocation state of a token of `session`, or the error.
async fn check(cache: &RedisCache, session: SessionId) -> Result<RevocationState, PortError> {
    cache
        .revocation_state(Uuid::new_v4(), session, UserId(Uuid::new_v4()))
        .await
}

#[track_caller]
fn assert_refused(result: Result<RevocationState, PortError>, what: &str) {
    assert!(
        matches!(result, Err(PortError::Unavailable(_))),
        "{what}: expected a refusal (Unavailable), got {result:?}"
    );
}

#[track_caller]
fn assert_revoked(result: Result<RevocationState, PortError>, what: &str) {
    match result {
        Ok(state) => assert!(state.session_revoked, "{what}: {state:?}"),
        Err(err) => panic!("{what}: expected an answer, got {err:?}"),
    }
}

async fn ticket_of(cache: &RedisCache, what: &str) -> WarmTicket {
    match cache.needs_warming().await {
        Ok(Some(ticket)) => ticket,
        other => panic!("{what}: expected a ticket, got {other:?}"),
    }
}

async fn revoke(cache: &RedisCache, session: SessionId) {
    if let Err(err) = cache.revoke_session(session, until()).await {
        panic!("revoke_session: {err:?}");
    }
}

/// Deletes every key of the prefix, as `FLUSHALL` (or a restart that kept nothing) would.
fn flush(keys: &DropKeys) {
    let Some(mut conn) = keys.connection() else {
        panic!("a plain connection to Redis");
    };
    let found = keys.keys();
    assert!(!found.is_empty(), "the prefix has keys to lose");
    let deleted: redis::RedisResult<i64> = conn.del(found);
    assert!(deleted.is_ok(), "{deleted:?}");
}

#[test]
fn a_fresh_instance_refuses_revocation_checks_until_it_has_warmed_the_list() {
    auth_testkit::contract::run(async {
        let (url, prefix) = (url(), prefix());
        let Some(cache) = connect(&url, &prefix, RedisOptions::default()).await else {
            return;
        };
        let _keys = DropKeys { url, prefix };
        let session = SessionId(Uuid::new_v4());

        assert_refused(check(&cache, session).await, "before any warming");
        let ticket = ticket_of(&cache, "a fresh instance").await;
        assert_eq!(ticket.reason, ColdReason::Unwarmed);
        revoke(&cache, session).await;
        assert!(matches!(cache.warmed(ticket).await, Ok(true)));

        assert_revoked(check(&cache, session).await, "once warmed");
        assert!(matches!(cache.needs_warming().await, Ok(None)));
    });
}

#[test]
fn a_list_that_lost_its_keys_refuses_checks_on_every_instance_until_warmed_again() {
    auth_testkit::contract::run(async {
        let (url, prefix) = (url(), prefix());
        let Some(one) = connect(&url, &prefix, RedisOptions::default()).await else {
            return;
        };
        let Some(two) = connect(&url, &prefix, RedisOptions::default()).await else {
            return;
        };
        let keys = DropKeys { url, prefix };
        warm(&one).await;
        warm(&two).await;
        let session = SessionId(Uuid::new_v4());
        revoke(&one, session).await;
        assert_revoked(check(&two, session).await, "before the loss");

        // Act: Redis loses everything (FLUSHALL, a restart that kept nothing on disk).
        flush(&keys);

        // Assert: the revoked token is refused, never accepted: no answer until warmed.
        assert_refused(check(&one, session).await, "one, after the loss");
        assert_refused(check(&two, session).await, "two, after the loss");
        let ticket = ticket_of(&one, "after the loss").await;
        assert_eq!(ticket.reason, ColdReason::Emptied);
        revoke(&one, session).await; // what storage remembers, copied again
        assert!(matches!(one.warmed(ticket).await, Ok(true)));
        assert_revoked(check(&one, session).await, "one, warmed again");
        // `two` saw the loss itself, so it warms too before it answers.
        assert_refused(check(&two, session).await, "two, until it has warmed");
        let ticket = ticket_of(&two, "two").await;
        revoke(&two, session).await;
        assert!(matches!(two.warmed(ticket).await, Ok(true)));
        assert_revoked(check(&two, session).await, "two, warmed again");
    });
}

#[test]
fn after_a_failed_revocation_write_every_instance_refuses_until_the_list_is_warmed_again() {
    auth_testkit::contract::run(async {
        // Arrange: instance `cut` reaches Redis through a proxy, instance `other` directly.
        let Some((proxy, proxied)) = proxied() else {
            return;
        };
        let (url, prefix) = (url(), prefix());
        let Some(cut) = connect(&proxied, &prefix, quick()).await else {
            return;
        };
        let Some(other) = connect(&url, &prefix, RedisOptions::default()).await else {
            return;
        };
        let _keys = DropKeys { url, prefix };
        warm(&cut).await;
        warm(&other).await;
        let session = SessionId(Uuid::new_v4());

        // Act: storage recorded the revocation, the write to Redis fails.
        proxy.cut();
        assert!(
            cut.revoke_session(session, until()).await.is_err(),
            "the write is lost with the connection"
        );

        // Assert: `cut` refuses at once; once it reaches Redis again, so does every other
        // instance, until the list is warmed again with what storage remembers.
        assert_refused(
            check(&cut, session).await,
            "the instance that lost the write",
        );
        let ticket = ticket_of(&cut, "after the lost write").await;
        assert_eq!(ticket.reason, ColdReason::WriteFailed);
        assert_refused(check(&other, session).await, "another instance, meanwhile");
        revoke(&cut, session).await;
        assert!(matches!(cut.warmed(ticket).await, Ok(true)));
        assert_revoked(check(&cut, session).await, "warmed again");
        let ticket = ticket_of(&other, "the other instance").await;
        assert!(matches!(other.warmed(ticket).await, Ok(true)));
        assert_revoked(check(&other, session).await, "the other instance");
    });
}

#[test]
fn a_warming_that_began_before_a_lost_write_or_a_flush_leaves_the_list_refusing() {
    auth_testkit::contract::run(async {
        let Some((proxy, proxied)) = proxied() else {
            return;
        };
        let (url, prefix) = (url(), prefix());
        let Some(warming) = connect(&url, &prefix, RedisOptions::default()).await else {
            return;
        };
        let Some(losing) = connect(&proxied, &prefix, quick()).await else {
            return;
        };
        let keys = DropKeys { url, prefix };
        warm(&losing).await;

        // A write is lost while `warming` copies storage (which may not have it yet).
        let early = ticket_of(&warming, "a fresh instance").await;
        proxy.cut();
        let lost = losing
            .revoke_session(SessionId(Uuid::new_v4()), until())
            .await;
        assert!(lost.is_err());
        let _ = ticket_of(&losing, "after its lost write").await;
        assert!(
            matches!(warming.warmed(early).await, Ok(false)),
            "a warming older than the lost write does not make the list trusted"
        );
        assert_refused(check(&warming, SessionId(Uuid::new_v4())).await, "still");

        // The same when the data is flushed while a warming runs.
        let early = ticket_of(&warming, "again").await;
        flush(&keys);
        assert!(
            matches!(warming.warmed(early).await, Ok(false)),
            "a warming older than the flush does not make the list trusted"
        );
        let fresh = ticket_of(&warming, "after the flush").await;
        assert!(matches!(warming.warmed(fresh).await, Ok(true)));
        assert!(check(&warming, SessionId(Uuid::new_v4())).await.is_ok());
    });
}

#[test]
fn an_instance_that_could_not_reach_redis_warms_the_list_before_it_trusts_it_again() {
    auth_testkit::contract::run(async {
        let Some((proxy, proxied)) = proxied() else {
            return;
        };
        let (url, prefix) = (url(), prefix());
        let Some(cache) = connect(&proxied, &prefix, quick()).await else {
            return;
        };
        let _keys = DropKeys { url, prefix };
        warm(&cache).await;
        let session = SessionId(Uuid::new_v4());
        assert!(check(&cache, session).await.is_ok());

        proxy.down();
        assert_refused(check(&cache, session).await, "while unreachable");
        proxy.up();

        // Another instance's revocation may have been lost meanwhile: no answer from
        // Redis counts until the list is warmed again.
        assert_refused(check(&cache, session).await, "reachable, not warmed yet");
        let ticket = ticket_of(&cache, "after the outage").await;
        assert_eq!(ticket.reason, ColdReason::Unreachable);
        assert!(matches!(cache.warmed(ticket).await, Ok(true)));
        assert!(check(&cache, session).await.is_ok(), "warmed again");
    });
}
