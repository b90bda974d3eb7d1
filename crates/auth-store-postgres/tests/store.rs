//! The store against a real PostgreSQL: the parts that depend on PostgreSQL itself
//! (constraint names, row locks under races, cascades, migrations under an advisory lock,
//! outbox claims that skip locked rows, failure and recovery of connections). The port
//! contracts at large are checked by auth-testkit against every store.
//!
//! Each test gets a database of its own (`test_support::fresh_database`) and is skipped,
//! with a line on stderr, when PostgreSQL is unreachable (outside CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "store/common.rs"]
mod common;
#[path = "store/failures.rs"]
mod failures;
#[path = "store/mfa.rs"]
mod mfa;
#[path = "store/outbox.rs"]
mod outbox;
#[path = "store/pgbouncer.rs"]
mod pgbouncer;
#[path = "store/replicas.rs"]
mod replicas;

use auth_domain::model::{OneTimeKind, ProfileChanges, Rotation};
use auth_domain::ports::{
    CleanupReport, OneTimeTokenStore, SessionStore, Store, StoreError, Taken, UserStore,
};
use auth_domain::types::{Sealed, UserId};
use auth_store_postgres::test_support::{empty_database, fresh_database};
use auth_store_postgres::{MIGRATIONS, migrate};
use common::{TestResult, at, index, one_time, session, token, user};
use diesel::migration::MigrationSource;
use uuid::Uuid;

#[tokio::test]
async fn a_user_round_trips_and_is_found_by_id_email_index_and_normalized_username() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let mut alice = user("Alice", "alice@example.com");
    // Sub-millisecond times survive (PostgreSQL keeps microseconds).
    alice.created_at = at(0) + chrono::Duration::microseconds(123);
    store.insert_user(&alice, None).await?;

    assert_eq!(store.user_by_id(alice.id).await?, Some(alice.clone()));
    assert_eq!(
        store.user_by_email(&index("alice@example.com")).await?,
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("alice").await?, Some(alice.clone()));
    assert_eq!(store.user_by_username("Alice").await?, None);
    assert_eq!(store.user_by_id(UserId(Uuid::now_v7())).await?, None);
    store.ping().await?;
    Ok(())
}

#[tokio::test]
async fn collisions_are_told_apart_by_the_violated_index() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    let bob = user("bob", "bob@example.com");
    store.insert_user(&alice, None).await?;
    store.insert_user(&bob, None).await?;

    let result = store
        .insert_user(&user("ALICE", "other@example.com"), None)
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Username))),
        "{result:?}"
    );
    let result = store
        .insert_user(&user("carol", "alice@example.com"), None)
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Email))),
        "{result:?}"
    );

    let rename = ProfileChanges {
        username: Some(("Alice".to_owned(), "alice".to_owned())),
        ..ProfileChanges::default()
    };
    let result = store.update_profile(bob.id, &rename, at(1), None).await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Username))),
        "{result:?}"
    );
    let result = store
        .apply_email_change(
            bob.id,
            &index("alice@example.com"),
            &Sealed(vec![1]),
            at(1),
            None,
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Email))),
        "{result:?}"
    );

    let result = store
        .update_profile(UserId(Uuid::now_v7()), &rename, at(1), None)
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_registrations_with_one_email_exactly_one_wins() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_user(&user(&format!("user{n}"), "same@example.com"), None)
                    .await
            })
        })
        .collect();
    let (mut won, mut taken) = (0, 0);
    for task in tasks {
        match task.await? {
            Ok(()) => won += 1,
            Err(StoreError::Taken(Taken::Email)) => taken += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, taken), (1, 19));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_sixteen_concurrent_rotations_of_one_token_exactly_one_wins() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    let live = session(alice.id, 0);
    store.create_session(&live, &token(1)).await?;

    let tasks: Vec<_> = (0..16u8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh(&token(1), &token(100 + n), at(5))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await?? {
            Rotation::Rotated(session) => {
                assert_eq!(session.last_used_at, at(5));
                winners.push(n);
            }
            Rotation::AlreadyRotated {
                session,
                rotated_at,
            } => {
                assert_eq!((session.id, rotated_at), (live.id, at(5)));
            }
            Rotation::Unknown => panic!("the token exists"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");

    // Only the winner's successor was stored, and it rotates in turn.
    let successor = token(100 + u8::try_from(winners[0])?);
    let next = store.rotate_refresh(&successor, &token(200), at(6)).await?;
    assert!(matches!(next, Rotation::Rotated(_)), "{next:?}");
    let loser = token(if winners[0] == 0 { 101 } else { 100 });
    assert_eq!(
        store.rotate_refresh(&loser, &token(201), at(6)).await?,
        Rotation::Unknown
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_user_cascades_to_sessions_refresh_and_one_time_tokens() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    let bob = user("bob", "bob@example.com");
    store.insert_user(&alice, None).await?;
    store.insert_user(&bob, None).await?;
    let alices = session(alice.id, 0);
    let bobs = session(bob.id, 0);
    store.create_session(&alices, &token(1)).await?;
    store.create_session(&bobs, &token(2)).await?;
    store
        .insert_one_time(&one_time(
            token(3),
            OneTimeKind::ResetPassword,
            alice.id,
            1_000,
        ))
        .await?;
    store
        .revoke_user_tokens(alice.id, at(10), at(1_000))
        .await?;

    assert!(store.delete_user(alice.id, None, None).await?);
    assert!(
        !store.delete_user(alice.id, None, None).await?,
        "already gone"
    );
    assert_eq!(store.session(alices.id).await?, None);
    assert_eq!(
        store.rotate_refresh(&token(1), &token(9), at(1)).await?,
        Rotation::Unknown
    );
    assert_eq!(
        store
            .find_one_time(&token(3), OneTimeKind::ResetPassword)
            .await?,
        None
    );
    assert_eq!(
        store.user_revocations(at(0)).await?,
        vec![(alice.id, at(10), at(1_000))],
        "the mark outlives the account"
    );
    assert_eq!(
        store.session(bobs.id).await?,
        Some(bobs),
        "others untouched"
    );
    Ok(())
}

#[tokio::test]
async fn one_time_tokens_are_consumed_once_and_marks_never_move_back() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    let record = one_time(token(1), OneTimeKind::ChangeEmail, alice.id, 1_000);
    store.insert_one_time(&record).await?;

    assert_eq!(
        store
            .consume_one_time(&token(1), OneTimeKind::VerifyEmail, at(1))
            .await?,
        None
    );
    let used = store
        .consume_one_time(&token(1), OneTimeKind::ChangeEmail, at(1))
        .await?;
    assert_eq!(
        used.map(|r| (r.used_at, r.email_index)),
        Some((Some(at(1)), record.email_index))
    );
    assert_eq!(
        store
            .consume_one_time(&token(1), OneTimeKind::ChangeEmail, at(2))
            .await?,
        None
    );

    store.revoke_user_tokens(alice.id, at(50), at(500)).await?;
    store.revoke_user_tokens(alice.id, at(20), at(900)).await?;
    assert_eq!(
        store.user_revocations(at(0)).await?,
        vec![(alice.id, at(50), at(900))]
    );
    Ok(())
}

#[tokio::test]
async fn cleanup_deletes_only_what_can_no_longer_serve() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    let now = at(10_000_000);

    let expired = session(alice.id, 0); // expires at 3_600_000
    let live = session(alice.id, 9_000_000);
    let revoked_long_ago = session(alice.id, 8_000_000);
    let revoked_lately = session(alice.id, 8_500_000);
    for (n, s) in [&expired, &live, &revoked_long_ago, &revoked_lately]
        .into_iter()
        .enumerate()
    {
        store
            .create_session(s, &token(u8::try_from(n)? + 1))
            .await?;
    }
    store
        .revoke_session(revoked_long_ago.id, at(8_100_000))
        .await?;
    store
        .revoke_session(revoked_lately.id, at(9_900_000))
        .await?;

    for (byte, expires, used) in [
        (10, 9_000_000, false),
        (11, 11_000_000, true),
        (12, 11_000_000, false),
    ] {
        store
            .insert_one_time(&one_time(
                token(byte),
                OneTimeKind::VerifyEmail,
                alice.id,
                expires,
            ))
            .await?;
        if used {
            store
                .consume_one_time(&token(byte), OneTimeKind::VerifyEmail, at(1))
                .await?;
        }
    }
    let bob = UserId(Uuid::now_v7());
    store
        .revoke_user_tokens(alice.id, at(1), at(9_999_999))
        .await?;
    store.revoke_user_tokens(bob, at(1), at(10_000_001)).await?;

    let report = store
        .cleanup(now, at(9_000_000), chrono::DateTime::UNIX_EPOCH)
        .await?;
    assert_eq!(
        report,
        CleanupReport {
            sessions: 2,
            one_time_tokens: 2,
            user_revocations: 1,
            dead_mails: 0,
            unverified_users: 0,
        }
    );
    assert_eq!(store.session(expired.id).await?, None);
    assert_eq!(store.session(revoked_long_ago.id).await?, None);
    assert!(store.session(live.id).await?.is_some());
    assert!(
        store.session(revoked_lately.id).await?.is_some(),
        "revoked_since may ask"
    );
    assert_eq!(
        store.rotate_refresh(&token(1), &token(50), now).await?,
        Rotation::Unknown
    );
    assert!(matches!(
        store.rotate_refresh(&token(2), &token(51), now).await?,
        Rotation::Rotated(_)
    ));
    assert!(
        store
            .find_one_time(&token(12), OneTimeKind::VerifyEmail)
            .await?
            .is_some()
    );
    assert_eq!(
        store.user_revocations(now).await?,
        vec![(bob, at(1), at(10_000_001))]
    );
    assert_eq!(
        store
            .cleanup(now, at(9_000_000), chrono::DateTime::UNIX_EPOCH)
            .await?,
        CleanupReport::default()
    );
    Ok(())
}

#[tokio::test]
async fn migrating_twice_is_a_no_op_and_concurrent_migrations_both_succeed() -> TestResult {
    let Some(db) = empty_database().await else {
        return Ok(());
    };
    let all: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    assert!(!all.is_empty());

    // On a current-thread runtime, as under #[actix_web::main].
    let (first, second) = tokio::join!(migrate(db.url()), migrate(db.url()));
    let (mut first, mut second) = (first?, second?);
    first.append(&mut second);
    assert_eq!(first, all, "each migration applied once, by one of the two");
    assert_eq!(migrate(db.url()).await?, Vec::<String>::new());

    let store = db.store().await;
    store
        .insert_user(&user("alice", "alice@example.com"), None)
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_pool_reports_connections_in_use_idle_and_waiting() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    store.ping().await?;
    let status = store.pool_status();
    assert!(status.max_size >= 1, "{status:?}");
    assert_eq!((status.in_use, status.waiting), (0, 0), "{status:?}");
    assert!(
        (1..=status.max_size).contains(&status.idle),
        "the ping's connection rests: {status:?}"
    );
    Ok(())
}

/// The password-version migration reverts (removing pending registrations, which would
/// otherwise become ordinary accounts) and applies again, and a store works over it.
#[tokio::test]
async fn the_password_version_migration_reverts_and_applies_again() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let owner = user("owner", "owner@example.com");
    store.insert_user(&owner, None).await?;
    let mut pending = user("pending", "pending-own@example.com");
    pending.pending_for = Some(auth_domain::model::PendingFor {
        email_index: owner.email_index.clone(),
        password_tag: 9,
    });
    store.insert_user(&pending, None).await?;

    let admin = common::side_connection(db.url()).await?;
    let columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' \
                   AND column_name IN ('password_version', 'pending_for_email_index', 'pending_password_tag')";
    admin
        .batch_execute(include_str!(
            "../../../migrations/postgres/2026-12-04-000001_password_version_and_pending_registrations/down.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(columns, &[]).await?.get::<_, i64>(0), 0);
    let users = "SELECT count(*) FROM users";
    assert_eq!(
        admin.query_one(users, &[]).await?.get::<_, i64>(0),
        1,
        "the pending registration went with its columns; the owner stayed"
    );
    admin
        .batch_execute(include_str!(
            "../../../migrations/postgres/2026-12-04-000001_password_version_and_pending_registrations/up.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(columns, &[]).await?.get::<_, i64>(0), 3);
    let found = store.user_by_email(&owner.email_index).await?;
    assert_eq!(found.map(|u| u.password_version), Some(0));
    Ok(())
}
