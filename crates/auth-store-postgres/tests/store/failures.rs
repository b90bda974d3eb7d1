//! Failures: an unreachable server, timeouts, connections killed by the server, callers
//! that stop waiting. What a retry may cure is `Unavailable`, and the store recovers.

use std::time::{Duration, Instant};

use auth_domain::model::Rotation;
use auth_domain::ports::{PortError, SessionStore, Store, UserStore};
use auth_domain::types::PasswordHash;
use auth_store_postgres::test_support::fresh_database;
use auth_store_postgres::{PgOptions, PgStore};

use crate::common::{TestResult, at, session, side_connection, token, user};

/// The error and its sources, on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(&format!(" / {err}"));
        source = err.source();
    }
    text
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly_and_the_password_is_not_told() {
    let started = Instant::now();
    let result = PgStore::connect(
        "postgres://auth:s3cr3t-pw@127.0.0.1:1/auth",
        PgOptions::default(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let Err(err) = result else {
        panic!("port 1 accepted a connection");
    };
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    let text = chain(&err);
    assert!(text.contains("127.0.0.1:1"), "names the server: {text}");
    assert!(!text.contains("s3cr3t-pw"), "never the password: {text}");

    let err = auth_store_postgres::migrate("postgres://auth:s3cr3t-pw@127.0.0.1:1/auth")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    assert!(!chain(&err).contains("s3cr3t-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_when_the_server_kills_its_connections() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    // Open several pooled connections.
    let pings: Vec<_> = (0..5).map(|_| store.ping()).collect();
    for ping in pings {
        ping.await?;
    }

    let admin = side_connection(db.url()).await?;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await?;
    assert!(!killed.is_empty(), "the pool had connections to kill");

    let mut recovered = false;
    for _ in 0..5 {
        match store.user_by_id(alice.id).await {
            Ok(found) => {
                assert_eq!(found, Some(alice.clone()));
                recovered = true;
                break;
            }
            Err(err) => assert!(matches!(err, PortError::Unavailable(_)), "{err:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store works again");
    store.ping().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_unavailable() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let options = PgOptions {
        pool_size: 1,
        statement_timeout: Some(Duration::from_millis(500)),
        acquire_timeout: Duration::from_millis(200),
        ..PgOptions::default()
    };
    let store = PgStore::connect(db.url(), options).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;

    // Another session holds the row: the store's update waits on it, holding the only
    // connection of the pool.
    let mut admin = side_connection(db.url()).await?;
    let holder = admin.transaction().await?;
    holder
        .batch_execute(&format!(
            "SELECT 1 FROM users WHERE id = '{}' FOR UPDATE",
            alice.id
        ))
        .await?;
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .set_password(alice.id, &PasswordHash("new".to_owned()), at(1), None, None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waited = store.ping().await;
    assert!(
        matches!(waited, Err(PortError::Unavailable(_))),
        "pool exhausted: {waited:?}"
    );
    let timed_out = blocked.await?;
    assert!(
        matches!(
            timed_out,
            Err(auth_domain::ports::StoreError::Port(
                PortError::Unavailable(_)
            ))
        ),
        "statement timeout: {timed_out:?}"
    );
    holder.rollback().await?;
    store.ping().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_leaves_no_half_done_transaction() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let options = PgOptions {
        pool_size: 1,
        ..PgOptions::default()
    };
    let store = PgStore::connect(db.url(), options).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    let live = session(alice.id, 0);
    store.create_session(&live, &token(1)).await?;

    // The session row is held elsewhere: the rotation's transaction stops half-way, after
    // marking the token rotated, waiting to update the session.
    let mut admin = side_connection(db.url()).await?;
    let holder = admin.transaction().await?;
    holder
        .batch_execute(&format!(
            "SELECT 1 FROM sessions WHERE id = '{}' FOR UPDATE",
            live.id
        ))
        .await?;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        store.rotate_refresh(&token(1), &token(2), at(5)),
    )
    .await;
    assert!(gave_up.is_err(), "the rotation was blocked: {gave_up:?}");
    holder.rollback().await?;

    // The operation finished on its own and committed; the connection is clean.
    let mut outcome = store.rotate_refresh(&token(1), &token(3), at(6)).await?;
    for _ in 0..20 {
        if !matches!(outcome, Rotation::Unknown) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        outcome = store.rotate_refresh(&token(1), &token(3), at(6)).await?;
    }
    assert!(
        matches!(outcome, Rotation::AlreadyRotated { rotated_at, .. } if rotated_at == at(5)),
        "{outcome:?}"
    );
    assert!(matches!(
        store.rotate_refresh(&token(2), &token(4), at(7)).await?,
        Rotation::Rotated(_)
    ));
    Ok(())
}

#[tokio::test]
async fn a_server_gone_after_start_is_unavailable_not_unexpected() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    store.ping().await?;
    // From the maintenance database: kills the pool's connections and removes the
    // database, so new connections are refused too.
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| auth_store_postgres::test_support::DEFAULT_URL.to_owned());
    let admin = side_connection(&admin_url).await?;
    admin
        .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name()))
        .await?;

    let err = store.ping().await.expect_err("the database is gone");
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    let err = store
        .user_by_id(auth_domain::types::UserId(uuid::Uuid::now_v7()))
        .await
        .expect_err("the database is gone");
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    Ok(())
}
