//! The store against a real SQLite file: the contracts of the ports, races included.

#[path = "store/common.rs"]
mod common;
#[path = "store/sessions.rs"]
mod sessions;

use std::os::unix::fs::PermissionsExt;

use auth_domain::model::{OneTimeKind, ProfileChanges, Rotation};
use auth_domain::ports::{OneTimeTokenStore, SessionStore, Store, StoreError, Taken, UserStore};
use auth_domain::types::{Sealed, UserId};
use auth_store_sqlite::{SqliteStore, migrate};
use common::{TestResult, at, index, one_time, session, store, token, user};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_found_by_id_email_index_and_normalized_username() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("Alice", "alice@example.com");
    store.insert_user(&alice).await?;

    assert_eq!(store.user_by_id(alice.id).await?, Some(alice.clone()));
    assert_eq!(
        store.user_by_email(&index("alice@example.com")).await?,
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("alice").await?, Some(alice));
    assert_eq!(
        store.user_by_username("Alice").await?,
        None,
        "look-ups use the normalized form"
    );
    assert_eq!(store.user_by_email(&index("bob@example.com")).await?, None);
    store.ping().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_taken_in_another_case_is_refused() -> TestResult {
    let (store, _dir, _) = store().await?;
    store
        .insert_user(&user("alice", "alice@example.com"))
        .await?;
    let result = store.insert_user(&user("ALICE", "other@example.com")).await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Username))),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_taken_by_another_account_is_refused() -> TestResult {
    let (store, _dir, _) = store().await?;
    store
        .insert_user(&user("alice", "alice@example.com"))
        .await?;
    let result = store.insert_user(&user("bob", "alice@example.com")).await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Email))),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_registrations_with_one_email_exactly_one_wins() -> TestResult {
    let (store, _dir, _) = store().await?;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_user(&user(&format!("user{n}"), "same@example.com"))
                    .await
            })
        })
        .collect();
    let (mut won, mut taken) = (0, 0);
    for task in tasks {
        match task.await? {
            Ok(()) => won += 1,
            Err(StoreError::Taken(Taken::Email)) => taken += 1,
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!((won, taken), (1, 19));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_deletes_its_sessions_and_tokens() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    let bob = user("bob", "bob@example.com");
    store.insert_user(&alice).await?;
    store.insert_user(&bob).await?;
    let (sess, other) = (session(alice.id, 0), session(bob.id, 0));
    store.create_session(&sess, &token(1)).await?;
    store.create_session(&other, &token(2)).await?;
    store
        .insert_one_time(&one_time(
            token(3),
            OneTimeKind::ResetPassword,
            alice.id,
            10_000,
        ))
        .await?;

    assert!(store.delete_user(alice.id).await?);
    assert!(!store.delete_user(alice.id).await?, "gone already");
    assert_eq!(store.user_by_id(alice.id).await?, None);
    assert_eq!(store.session(sess.id).await?, None);
    assert_eq!(
        store.rotate_refresh(&token(1), &token(4), at(1)).await?,
        Rotation::Unknown
    );
    assert_eq!(
        store
            .find_one_time(&token(3), OneTimeKind::ResetPassword)
            .await?,
        None
    );
    assert_eq!(
        store.session(other.id).await?,
        Some(other),
        "other accounts are untouched"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_update_changes_only_the_given_fields() -> TestResult {
    let (store, _dir, _) = store().await?;
    let mut alice = user("alice", "alice@example.com");
    alice.phone_index = Some(index("+15550100"));
    alice.phone_sealed = Some(Sealed(b"sealed:phone".to_vec()));
    store.insert_user(&alice).await?;
    store.insert_user(&user("bob", "bob@example.com")).await?;

    let changes = ProfileChanges {
        name_sealed: Some(Sealed(b"sealed:new-name".to_vec())),
        phone: Some(None),
        pending_email_sealed: Some(Sealed(b"sealed:new@example.com".to_vec())),
        ..ProfileChanges::default()
    };
    let updated = store.update_profile(alice.id, &changes, at(5_000)).await?;
    let mut expected = alice.clone();
    expected.name_sealed = Sealed(b"sealed:new-name".to_vec());
    expected.phone_index = None;
    expected.phone_sealed = None;
    expected.pending_email_sealed = Some(Sealed(b"sealed:new@example.com".to_vec()));
    expected.updated_at = at(5_000);
    assert_eq!(updated, expected);
    assert_eq!(store.user_by_id(alice.id).await?, Some(expected));

    let rename = ProfileChanges {
        username: Some(("Bob".into(), "bob".into())),
        ..Default::default()
    };
    let result = store.update_profile(alice.id, &rename, at(6_000)).await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Username))),
        "{result:?}"
    );
    let result = store
        .update_profile(UserId(Uuid::now_v7()), &changes, at(6_000))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_takes_effect_verified_unless_the_email_is_taken() -> TestResult {
    let (store, _dir, _) = store().await?;
    let mut alice = user("alice", "alice@example.com");
    alice.pending_email_sealed = Some(Sealed(b"sealed:new".to_vec()));
    store.insert_user(&alice).await?;
    store.insert_user(&user("bob", "bob@example.com")).await?;

    let sealed = Sealed(b"sealed:bob".to_vec());
    let result = store
        .apply_email_change(alice.id, &index("bob@example.com"), &sealed, at(1))
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Email))),
        "{result:?}"
    );

    let sealed = Sealed(b"sealed:new".to_vec());
    store
        .apply_email_change(alice.id, &index("new@example.com"), &sealed, at(2))
        .await?;
    let found = store
        .user_by_email(&index("new@example.com"))
        .await?
        .ok_or("moved")?;
    assert_eq!(
        (found.id, found.email_sealed, found.pending_email_sealed),
        (alice.id, sealed, None)
    );
    assert_eq!(found.email_verified_at, Some(at(2)));
    assert_eq!(
        store.user_by_email(&index("alice@example.com")).await?,
        None
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_verification_and_login_updates_apply_to_existing_accounts_only() -> TestResult {
    let (store, _dir, _) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice).await?;

    store.mark_email_verified(alice.id, at(1)).await?;
    store.mark_email_verified(alice.id, at(2)).await?;
    store
        .set_password(
            alice.id,
            &auth_domain::types::PasswordHash("new".into()),
            at(3),
        )
        .await?;
    store.record_login(alice.id, at(4)).await?;
    let found = store.user_by_id(alice.id).await?.ok_or("stored")?;
    assert_eq!(
        found.email_verified_at,
        Some(at(1)),
        "the first verification stays"
    );
    assert_eq!(
        (found.password_hash.0.as_str(), found.last_login_at),
        ("new", Some(at(4)))
    );

    let nobody = UserId(Uuid::now_v7());
    let hash = auth_domain::types::PasswordHash("x".into());
    assert!(matches!(
        store.set_password(nobody, &hash, at(5)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.mark_email_verified(nobody, at(5)).await,
        Err(StoreError::NotFound)
    ));
    Ok(())
}

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
