//! Read replicas on a real primary and streaming replica (`pg_basebackup -R`) whose apply
//! delay makes it really behind: which reads it serves, a caller's own writes, a replica
//! lagging beyond the bound, and one that goes down and comes back.

use std::time::{Duration, Instant};

use auth_domain::ports::{SessionStore, UserStore};
use auth_store_postgres::test_replica::Replicated;
use auth_store_postgres::{PgOptions, PgStore, migrate};

use crate::common::{TestResult, at, session, token, user};

fn options() -> PgOptions {
    PgOptions {
        pool_size: 4,
        connect_timeout: Duration::from_secs(1),
        acquire_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    }
}

/// Polls `check` every 50 ms for up to `limit`.
async fn eventually<F: FnMut() -> bool>(limit: Duration, mut check: F) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// The primary migrated, this instance with the replica, and another instance without.
async fn instances(
    cluster: &Replicated,
    max_lag: Duration,
) -> Result<(PgStore, PgStore), Box<dyn std::error::Error + Send + Sync>> {
    migrate(&cluster.primary_url()).await?;
    let with = PgStore::connect(&cluster.primary_url(), options())
        .await?
        .with_replicas(&[cluster.replica_url()], options(), max_lag)?;
    let other = PgStore::connect(&cluster.primary_url(), options()).await?;
    Ok((with, other))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_serves_display_reads_but_never_hides_an_instances_own_writes()
-> TestResult {
    let Some(cluster) = Replicated::start(Duration::from_secs(3)) else {
        return Ok(());
    };
    let (store, other) = instances(&cluster, Duration::from_secs(10)).await?;
    assert!(
        eventually(Duration::from_secs(15), || store.replica_status()[0].usable).await,
        "the replica never became usable: {:?}",
        store.replica_status()
    );

    // Written through another instance: the replica, 3 s behind, has not applied it, and
    // answers (a display read may lag up to the bound).
    let elsewhere = user("elsewhere", "elsewhere@example.com");
    other.insert_user(&elsewhere, None).await?;
    let served = store.replica_status()[0].reads;
    assert_eq!(store.user_for_display(elsewhere.id).await?, None);
    assert_eq!(
        store.replica_status()[0].reads,
        served + 1,
        "the replica answered"
    );
    // Decisions read the primary.
    assert!(store.user_by_id(elsewhere.id).await?.is_some());

    // Written through this instance: read at once, from the primary.
    let mine = user("mine", "mine@example.com");
    store.insert_user(&mine, None).await?;
    let shown = store.user_for_display(mine.id).await?;
    assert_eq!(shown.map(|u| u.username), Some("mine".to_owned()));
    let live = session(mine.id, 0);
    store.create_session(&live, &token(1)).await?;
    let listed = store.active_sessions(mine.id, at(1)).await?;
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [live.id]);
    assert!(store.primary_reads().is_some_and(|p| p.own_writes >= 2));

    // Once the replica has applied the other instance's write, it shows it.
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen && Instant::now() < deadline {
        seen = store.user_for_display(elsewhere.id).await?.is_some();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the replica never applied the write");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lagging_beyond_the_bound_is_skipped_and_the_primary_answers() -> TestResult {
    let Some(cluster) = Replicated::start(Duration::from_secs(2)) else {
        return Ok(());
    };
    let (store, other) = instances(&cluster, Duration::from_millis(400)).await?;
    // Writes every 100 ms: the replica stays about 2 s behind.
    let writer = {
        let other = other.clone();
        tokio::spawn(async move {
            for n in 0..60 {
                let _ = other
                    .insert_user(
                        &user(&format!("load{n}"), &format!("load{n}@example.com")),
                        None,
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in 0..10 {
        let fresh = user(&format!("fresh{n}"), &format!("fresh{n}@example.com"));
        other.insert_user(&fresh, None).await?;
        assert!(
            store.user_for_display(fresh.id).await?.is_some(),
            "a lagging replica answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = &store.replica_status()[0];
    assert!(!status.usable, "{status:?}");
    assert!(
        status
            .lag
            .is_none_or(|lag| lag > Duration::from_millis(400)),
        "{status:?}"
    );
    assert!(store.primary_reads().is_some_and(|p| p.lagging >= 10));
    writer.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_goes_down_is_skipped_without_an_error_and_used_again_when_back()
-> TestResult {
    let Some(cluster) = Replicated::start(Duration::ZERO) else {
        return Ok(());
    };
    let (store, _) = instances(&cluster, Duration::from_secs(1)).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    assert!(
        eventually(Duration::from_secs(15), || store.replica_status()[0].usable).await,
        "{:?}",
        store.replica_status()
    );
    let before = store.replica_status()[0].reads;
    // Past this instance's own write, the replica answers.
    let mut served = false;
    for _ in 0..40 {
        assert!(store.user_for_display(alice.id).await?.is_some());
        if store.replica_status()[0].reads > before {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "{:?}", store.replica_status());

    cluster.stop_replica();
    for _ in 0..20 {
        // Never an error: a failed replica read is run again on the primary.
        assert!(store.user_for_display(alice.id).await?.is_some());
        assert!(store.active_sessions(alice.id, at(0)).await?.is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = &store.replica_status()[0];
    assert!(!status.usable && status.failures > 0, "{status:?}");

    cluster.start_replica();
    assert!(
        eventually(Duration::from_secs(15), || store.replica_status()[0].usable).await,
        "not used again after it came back: {:?}",
        store.replica_status()
    );
    let before = store.replica_status()[0].reads;
    assert!(store.user_for_display(alice.id).await?.is_some());
    assert_eq!(store.replica_status()[0].reads, before + 1);
    Ok(())
}
