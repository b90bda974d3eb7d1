//! What only the SQLite store promises: the file on disk (owner-only, WAL mode), data and
//! migrations across reopening, and operations that finish after their caller gave up.
//! The ports' contracts (users, sessions, rotation races, one-time tokens, cleanup…) are
//! tested once for every adapter by the contract test-kit:
//! `cargo test -p auth-testkit --test contract_sqlite`.

#[path = "store/common.rs"]
mod common;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::task::Poll;

use auth_domain::model::Rotation;
use auth_domain::ports::{SessionStore, UserStore};
use auth_store_sqlite::{SqliteStore, migrate};
use common::{TestResult, at, session, store, token, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_store_at_the_same_path() -> TestResult {
    let (store, _dir, path) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    drop(store);

    assert!(migrate(&path)?.is_empty(), "nothing left to migrate");
    let reopened = SqliteStore::open(&path, 2).await?;
    assert_eq!(reopened.user_by_username("alice").await?, Some(alice));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_its_write_ahead_log_are_readable_by_their_owner_only() -> TestResult {
    let (store, _dir, path) = store().await?;
    store
        .insert_user(&user("alice", "alice@example.com"))
        .await?;
    // The -wal file exists only in WAL mode, and holds recent writes until a checkpoint.
    for file in [path.clone(), path.with_extension("db-wal")] {
        let mode = std::fs::metadata(&file)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} has mode {mode:o}", file.display());
    }
    Ok(())
}

/// On a current-thread runtime, as under actix-web, with one connection: a caller that
/// gives up (a dropped request) leaves the operation to finish on its own and the
/// connection usable; the next caller then sees its effect.
#[tokio::test]
async fn an_operation_abandoned_by_its_caller_still_completes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("auth.db"), 1).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    store
        .create_session(&session(alice.id, 0), &token(1))
        .await?;

    let (presented, successor) = (token(1), token(2));
    let mut abandoned = Box::pin(store.rotate_refresh(&presented, &successor, at(1_000)));
    let first = std::future::poll_fn(|cx| Poll::Ready(abandoned.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "still running after its first poll");
    drop(abandoned);

    match store
        .rotate_refresh(&token(1), &token(2), at(2_000))
        .await?
    {
        Rotation::AlreadyRotated { rotated_at, .. } => assert_eq!(rotated_at, at(1_000)),
        other => return Err(format!("expected AlreadyRotated, got {other:?}").into()),
    }
    Ok(())
}
