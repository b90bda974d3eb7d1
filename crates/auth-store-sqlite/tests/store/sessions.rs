//! Sessions, refresh-token rotation and one-time tokens.

use std::future::Future;
use std::task::Poll;

use auth_domain::model::{OneTimeKind, Rotation};
use auth_domain::ports::{OneTimeTokenStore, SessionStore, UserStore};
use auth_domain::types::UserId;
use uuid::Uuid;

use crate::common::{TestResult, at, one_time, session, store, token, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_sixteen_concurrent_rotations_of_one_token_exactly_one_wins() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    let sess = session(alice.id, 0);
    store.create_session(&sess, &token(1)).await?;

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.rotate_refresh(&token(1), &token(2), at(1_000)).await })
        })
        .collect();
    let (mut rotated, mut already) = (0, 0);
    for task in tasks {
        match task.await?? {
            Rotation::Rotated(found) => {
                rotated += 1;
                assert_eq!(found.id, sess.id);
                assert_eq!(found.last_used_at, at(1_000), "the session was used now");
            }
            Rotation::AlreadyRotated { rotated_at, .. } => {
                already += 1;
                assert_eq!(rotated_at, at(1_000));
            }
            Rotation::Unknown => return Err("the presented token is known".into()),
        }
    }
    assert_eq!((rotated, already), (1, 15));

    let next = store
        .rotate_refresh(&token(2), &token(3), at(2_000))
        .await?;
    assert!(
        matches!(next, Rotation::Rotated(_)),
        "the successor is live: {next:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_presented_again_later_reports_its_first_rotation_time() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    let sess = session(alice.id, 0);
    store.create_session(&sess, &token(1)).await?;

    let first = store
        .rotate_refresh(&token(1), &token(2), at(1_000))
        .await?;
    assert!(matches!(first, Rotation::Rotated(_)), "{first:?}");
    match store
        .rotate_refresh(&token(1), &token(2), at(60_000))
        .await?
    {
        Rotation::AlreadyRotated {
            session,
            rotated_at,
        } => {
            assert_eq!(rotated_at, at(1_000));
            assert_eq!(session.id, sess.id);
            assert_eq!(
                session.last_used_at,
                at(1_000),
                "a refused rotation does not use it"
            );
        }
        other => return Err(format!("expected AlreadyRotated, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_refresh_token_is_reported_unknown() -> TestResult {
    let (store, _dir, _) = store().await?;
    assert_eq!(
        store.rotate_refresh(&token(9), &token(10), at(0)).await?,
        Rotation::Unknown
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_token_is_consumed_once_and_never_after_expiry() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    let live = one_time(token(1), OneTimeKind::VerifyEmail, alice.id, 10_000);
    let expired = one_time(token(2), OneTimeKind::ResetPassword, alice.id, 500);
    store.insert_one_time(&live).await?;
    store.insert_one_time(&expired).await?;

    let kind = OneTimeKind::VerifyEmail;
    assert_eq!(
        store
            .consume_one_time(&token(1), OneTimeKind::ResetPassword, at(1_000))
            .await?,
        None,
        "wrong kind"
    );
    let used = store.consume_one_time(&token(1), kind, at(1_000)).await?;
    assert_eq!(used.map(|t| t.used_at), Some(Some(at(1_000))));
    assert_eq!(
        store.consume_one_time(&token(1), kind, at(1_001)).await?,
        None
    );
    assert_eq!(
        store
            .consume_one_time(&token(2), OneTimeKind::ResetPassword, at(1_000))
            .await?,
        None
    );

    let found = store.find_one_time(&token(1), kind).await?;
    assert_eq!(
        found.and_then(|t| t.used_at),
        Some(at(1_000)),
        "found used as well"
    );
    assert_eq!(
        store
            .find_one_time(&token(2), OneTimeKind::ResetPassword)
            .await?,
        Some(expired)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_users_sessions_spares_the_excepted_one_and_reports_the_rest() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    let sessions: Vec<_> = (0..4).map(|n| session(alice.id, n * 10)).collect();
    for (n, sess) in (1..).zip(&sessions) {
        store.create_session(sess, &token(n)).await?;
    }
    assert!(store.revoke_session(sessions[0].id, at(100)).await?);
    assert!(
        !store.revoke_session(sessions[0].id, at(150)).await?,
        "idempotent"
    );

    let mut revoked = store
        .revoke_user_sessions(alice.id, Some(sessions[3].id), at(200))
        .await?;
    revoked.sort();
    assert_eq!(
        revoked,
        vec![sessions[1].id, sessions[2].id],
        "live ones but the excepted"
    );

    let active = store.active_sessions(alice.id, at(300)).await?;
    assert_eq!(
        active.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![sessions[3].id]
    );
    assert_eq!(
        store
            .session(sessions[0].id)
            .await?
            .and_then(|s| s.revoked_at),
        Some(at(100))
    );

    let mut since = store.revoked_since(at(150)).await?;
    since.sort();
    assert_eq!(
        since,
        vec![(sessions[1].id, at(200)), (sessions[2].id, at(200))]
    );
    assert_eq!(
        store.revoke_user_sessions(alice.id, None, at(400)).await?,
        vec![sessions[3].id]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_sessions_are_live_unexpired_and_newest_first() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;
    let (old, new) = (session(alice.id, 0), session(alice.id, 5_000));
    store.create_session(&old, &token(1)).await?;
    store.create_session(&new, &token(2)).await?;

    let active = store.active_sessions(alice.id, at(10_000)).await?;
    assert_eq!(active, vec![new.clone(), old]);
    let later = store.active_sessions(alice.id, at(3_602_000)).await?;
    assert_eq!(later, vec![new], "the older one expired");
    assert_eq!(
        store.active_sessions(UserId(Uuid::now_v7()), at(0)).await?,
        vec![]
    );
    Ok(())
}

/// On a current-thread runtime, as under actix-web, with one connection: a caller that
/// gives up (a dropped request) leaves the operation to finish on its own and the
/// connection usable; the next caller then sees its effect.
#[tokio::test]
async fn an_operation_abandoned_by_its_caller_still_completes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = auth_store_sqlite::SqliteStore::open(&dir.path().join("auth.db"), 1).await?;
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
