//! The store behind a real PgBouncer in transaction mode (`pgbouncer=true`): what differs
//! from a direct connection. The port contract as a whole runs through PgBouncer in
//! auth-testkit (`contract_pgbouncer`).

use std::time::{Duration, Instant};

use crate::common::{TestResult, at, side_connection, user};
use auth_domain::ports::{PortError, StoreError, UserStore};
use auth_domain::types::PasswordHash;
use auth_store_postgres::test_pgbouncer::PgBouncer;
use auth_store_postgres::test_support::fresh_database;
use auth_store_postgres::{PgOptions, PgStore, migrate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_applies_behind_pgbouncer() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let Some(bouncer) = PgBouncer::start(db.url(), 2) else {
        return Ok(());
    };
    let options = PgOptions {
        pool_size: 2,
        statement_timeout: Some(Duration::from_millis(500)),
        ..PgOptions::default()
    };
    let store = PgStore::connect(&bouncer.url(db.url()), options).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;

    // A direct session holds the row: the store's update waits on it until the limit the
    // store set (PgBouncer refuses it as a startup option, so it is SET LOCAL).
    let mut admin = side_connection(db.url()).await?;
    let holder = admin.transaction().await?;
    holder
        .batch_execute(&format!(
            "SELECT 1 FROM users WHERE id = '{}' FOR UPDATE",
            alice.id
        ))
        .await?;
    let started = Instant::now();
    let blocked = tokio::time::timeout(
        Duration::from_secs(5),
        store.set_password(alice.id, &PasswordHash("new".to_owned()), at(1), None, None),
    )
    .await?;
    let waited = started.elapsed();
    match blocked {
        Err(StoreError::Port(PortError::Unavailable(err))) => {
            let text = auth_domain::error::error_chain(err.as_ref());
            assert!(text.contains("statement timeout"), "{text}");
        }
        other => panic!("expected the statement timeout, got {other:?}"),
    }
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    holder.rollback().await?;

    // The limit was the transaction's: the server connection it ran on is fine, and the
    // update goes through now.
    store
        .set_password(alice.id, &PasswordHash("new".to_owned()), at(2), None, None)
        .await?;
    Ok(())
}

#[tokio::test]
async fn migrations_refuse_a_url_through_pgbouncer_and_name_the_reason() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let Some(bouncer) = PgBouncer::start(db.url(), 1) else {
        return Ok(());
    };
    let Err(err) = migrate(&bouncer.url(db.url())).await else {
        panic!("migrating through PgBouncer must be refused");
    };
    let text = auth_domain::error::error_chain(&err);
    assert!(
        text.contains("direct connection") && text.contains("pgbouncer=true"),
        "{text}"
    );
    // The direct URL migrates (nothing left to apply on a fresh database).
    assert_eq!(migrate(db.url()).await?, Vec::<String>::new());
    Ok(())
}
