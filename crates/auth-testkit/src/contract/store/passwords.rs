//! Password versions and pending registrations (issue 14): the compare-and-set that keeps a
//! login, a rehash or a change from outliving a password set meanwhile; the links a new
//! password or a new email kills; and the registrations kept for taken emails.

use auth_domain::model::{OneTimeKind, ProfileChanges};
use auth_domain::ports::{Store, StoreError};
use auth_domain::types::{PasswordHash, Timestamp, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::{insert, new_user};
use crate::contract::fixtures::{self, unique};
use crate::contract::{Must, race};

/// Asserts that `result` is `Err(StoreError::Stale)`.
#[track_caller]
fn assert_stale<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Stale) => {}
        other => panic!("{what}: expected Err(Stale), got {other:?}"),
    }
}

/// Stores one unused token of each kind for `user` and returns them by kind.
async fn tokens_of_every_kind<S: Store>(
    store: &S,
    user: UserId,
    now: Timestamp,
) -> Vec<auth_domain::model::OneTimeTokenRecord> {
    let mut tokens = Vec::new();
    for kind in OneTimeKind::ALL {
        let token = fixtures::one_time(user, kind, now + TimeDelta::hours(1));
        store.insert_one_time(&token).await.must("insert_one_time");
        tokens.push(token);
    }
    tokens
}

/// Whether the token is still unused.
async fn unused<S: Store>(store: &S, token: &auth_domain::model::OneTimeTokenRecord) -> bool {
    store
        .find_one_time(&token.hash, token.kind)
        .await
        .must("find_one_time")
        .is_some_and(|t| t.used_at.is_none())
}

/// A pending registration for a taken email holds its own username and email index; it is
/// found by the taken email's index with its password tag (the newest of several), never
/// by another tag, and never instead of the owner by `user_by_email`.
pub async fn a_pending_registration_is_found_by_its_taken_email_and_password_tag<S: Store>(
    store: &S,
) {
    let now = fixtures::now();
    let owner = insert(store, fixtures::user().build()).await;
    let older = insert(
        store,
        fixtures::user()
            .pending_for(owner.email_index.clone(), 7)
            .created_at(now - TimeDelta::minutes(2))
            .build(),
    )
    .await;
    let newer = insert(
        store,
        fixtures::user()
            .pending_for(owner.email_index.clone(), 7)
            .created_at(now - TimeDelta::minutes(1))
            .build(),
    )
    .await;
    let found = store
        .pending_registration(&owner.email_index, 7)
        .await
        .must("pending_registration");
    assert_eq!(found.as_ref(), Some(&newer), "the newest, as written");
    let other_tag = store
        .pending_registration(&owner.email_index, 8)
        .await
        .must("pending_registration");
    assert_eq!(other_tag, None, "another tag finds none");
    let by_email = store
        .user_by_email(&owner.email_index)
        .await
        .must("user_by_email");
    assert_eq!(by_email, Some(owner), "the email belongs to its owner");
    let by_name = store
        .user_by_username(&older.username_normalized)
        .await
        .must("user_by_username");
    assert_eq!(by_name, Some(older.clone()), "its username is its own");
    assert!(older.is_pending_registration());
}

/// A pending registration is never verified, whatever asks.
pub async fn a_pending_registration_is_never_marked_verified<S: Store>(store: &S) {
    let owner = new_user(store).await;
    let pending = insert(
        store,
        fixtures::user().pending_for(owner.email_index, 1).build(),
    )
    .await;
    store
        .mark_email_verified(pending.id, fixtures::now())
        .await
        .must("mark_email_verified");
    let stored = store.user_by_id(pending.id).await.must("user_by_id");
    assert_eq!(stored.and_then(|u| u.email_verified_at), None);
}

/// Setting a password replaces the hash, adds one to the version, kills the outstanding
/// reset and change-email links and the pending email, and keeps a verification link. With
/// an expected version that is no longer the version it is `Stale` and changes nothing.
pub async fn setting_a_password_adds_a_version_and_kills_reset_and_change_email_links<S: Store>(
    store: &S,
) {
    let now = fixtures::now();
    let user = insert(store, fixtures::user().pending_email().build()).await;
    let tokens = tokens_of_every_kind(store, user.id, now).await;
    let hash = PasswordHash(unique("$2b$04$new"));
    store
        .set_password(user.id, &hash, now, None, Some(0))
        .await
        .must("set_password");
    let stored = store
        .user_by_id(user.id)
        .await
        .must("user_by_id")
        .unwrap_or_else(|| panic!("the account is gone"));
    assert_eq!(stored.password_hash, hash);
    assert_eq!(stored.password_version, 1, "one more");
    assert_eq!(
        stored.pending_email_sealed, None,
        "the pending email is cancelled"
    );
    for token in &tokens {
        let expected_alive = token.kind == OneTimeKind::VerifyEmail;
        assert_eq!(
            unused(store, token).await,
            expected_alive,
            "{:?} after a new password",
            token.kind
        );
    }

    let late = PasswordHash(unique("$2b$04$late"));
    assert_stale(
        store.set_password(user.id, &late, now, None, Some(0)).await,
        "expecting version 0 after it moved to 1",
    );
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(stored.map(|u| u.password_hash), Some(hash), "unchanged");
    store
        .set_password(user.id, &late, now, None, None)
        .await
        .must("set_password without an expected version");
}

/// A rehash replaces the hash without a new version, and only over the version it read:
/// after a password was set it is `Stale` and the new password stays.
pub async fn a_rehash_keeps_the_version_and_never_overwrites_a_new_password<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let rehashed = PasswordHash(unique("$2b$12$same"));
    store
        .rehash_password(user.id, &rehashed, 0)
        .await
        .must("rehash_password");
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.map(|u| (u.password_hash, u.password_version)),
        Some((rehashed, 0)),
        "same version"
    );
    let reset = PasswordHash(unique("$2b$12$reset"));
    store
        .set_password(user.id, &reset, now, None, None)
        .await
        .must("set_password");
    let stale = PasswordHash(unique("$2b$12$stale"));
    assert_stale(
        store.rehash_password(user.id, &stale, 0).await,
        "a rehash of the old password",
    );
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.map(|u| u.password_hash),
        Some(reset),
        "the reset stays"
    );
    match store
        .rehash_password(UserId(Uuid::now_v7()), &stale, 0)
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("a missing account: expected NotFound, got {other:?}"),
    }
}

/// An applied email change kills every other outstanding link of the account: they were
/// mailed to the old address.
pub async fn an_email_change_kills_every_link_mailed_before<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = insert(store, fixtures::user().pending_email().build()).await;
    let tokens = tokens_of_every_kind(store, user.id, now).await;
    store
        .apply_email_change(
            user.id,
            &fixtures::blind_index(),
            &fixtures::sealed("new-email"),
            now,
            None,
            user.pending_email_sealed.as_ref(),
        )
        .await
        .must("apply_email_change at the pending email it checked");
    for token in &tokens {
        assert!(!unused(store, token).await, "{:?} dies", token.kind);
    }
}

/// A profile change that expects a password version no longer current is `Stale` and
/// changes nothing; one that expects the current version applies.
pub async fn a_profile_change_expecting_an_old_password_version_is_stale<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    store
        .set_password(user.id, &PasswordHash(unique("$2b$04$x")), now, None, None)
        .await
        .must("set_password");
    let changes = |version: i64| ProfileChanges {
        pending_email_sealed: Some(fixtures::sealed("pending")),
        expected_password_version: Some(version),
        ..ProfileChanges::default()
    };
    assert_stale(
        store.update_profile(user.id, &changes(0), now, None).await,
        "expecting version 0",
    );
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.and_then(|u| u.pending_email_sealed),
        None,
        "unchanged"
    );
    let updated = store
        .update_profile(user.id, &changes(1), now, None)
        .await
        .must("update_profile at the current version");
    assert!(updated.pending_email_sealed.is_some());
}

/// A login's session is stored, with the login recorded, only while the password version
/// is the one the login read: after a new password it is `Stale` and nothing is stored; for
/// a missing account it is `NotFound`.
pub async fn a_login_session_is_stored_only_while_the_password_version_holds<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let first = fixtures::session(user.id, now);
    store
        .create_login_session(&first, &fixtures::token_hash(), 0)
        .await
        .must("create_login_session");
    assert_eq!(
        store.session(first.id).await.must("session"),
        Some(first.clone())
    );
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.and_then(|u| u.last_login_at),
        Some(now),
        "login recorded"
    );

    store
        .set_password(user.id, &PasswordHash(unique("$2b$04$y")), now, None, None)
        .await
        .must("set_password");
    let late = fixtures::session(user.id, now + TimeDelta::seconds(1));
    assert_stale(
        store
            .create_login_session(&late, &fixtures::token_hash(), 0)
            .await,
        "a login that checked the old password",
    );
    assert_eq!(store.session(late.id).await.must("session"), None);
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.and_then(|u| u.last_login_at),
        Some(now),
        "not recorded"
    );

    let orphan = fixtures::session(UserId(Uuid::now_v7()), now);
    match store
        .create_login_session(&orphan, &fixtures::token_hash(), 0)
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("a missing account: expected NotFound, got {other:?}"),
    }
}

/// Of sixteen logins racing one password change, each either stored its session before
/// the change (and is listed) or is `Stale` after it: the version decides, never a read
/// before the write.
pub async fn of_logins_racing_a_password_change_each_is_before_it_or_refused<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let sessions: Vec<_> = (0..16)
        .map(|n| fixtures::session(user.id, now + TimeDelta::milliseconds(n)))
        .collect();
    let hash = PasswordHash(unique("$2b$04$raced"));
    let results = race(17, |n| {
        let (store, hash, sessions) = (store, &hash, &sessions);
        async move {
            match sessions.get(n) {
                Some(session) => store
                    .create_login_session(session, &fixtures::token_hash(), 0)
                    .await
                    .map(|()| true),
                None => store
                    .set_password(user.id, hash, now, None, Some(0))
                    .await
                    .map(|()| false),
            }
        }
    });
    let mut stored = 0;
    for (n, result) in results.into_iter().enumerate() {
        match result {
            Ok(true) => stored += 1,
            Ok(false) => {}
            Err(StoreError::Stale) if n < 16 => {}
            other => panic!("racer {n}: {other:?}"),
        }
    }
    let listed = store
        .active_sessions(user.id, now)
        .await
        .must("active_sessions")
        .len();
    assert_eq!(listed, stored, "exactly the sessions that won are stored");
    let version = store
        .user_by_id(user.id)
        .await
        .must("user_by_id")
        .map(|u| u.password_version);
    assert_eq!(version, Some(1), "the change applied once");
}

/// A deletion that expects a password version no longer current is `Stale` and deletes
/// nothing; at the current version it deletes; for a missing account it is `false`.
pub async fn a_deletion_expecting_an_old_password_version_is_stale<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    store
        .set_password(user.id, &PasswordHash(unique("$2b$04$z")), now, None, None)
        .await
        .must("set_password");
    assert_stale(
        store.delete_user(user.id, None, Some(0)).await,
        "a deletion authorised by the old password",
    );
    assert!(
        store.user_by_id(user.id).await.must("user_by_id").is_some(),
        "still there"
    );
    assert!(
        store
            .delete_user(user.id, None, Some(1))
            .await
            .must("delete_user at the current version")
    );
    assert!(
        !store
            .delete_user(UserId(Uuid::now_v7()), None, Some(0))
            .await
            .must("delete_user of a missing account"),
        "a missing account was not there"
    );
}

/// An email change that expects a pending email no longer pending (a reset cancelled it
/// after the link was checked) is `Stale` and changes nothing.
pub async fn an_email_change_whose_pending_email_was_cancelled_is_stale<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = insert(store, fixtures::user().pending_email().build()).await;
    let checked = user
        .pending_email_sealed
        .clone()
        .unwrap_or_else(|| panic!("the fixture has a pending email"));
    store
        .set_password(user.id, &PasswordHash(unique("$2b$04$r")), now, None, None)
        .await
        .must("set_password");
    assert_stale(
        store
            .apply_email_change(
                user.id,
                &fixtures::blind_index(),
                &fixtures::sealed("thief-email"),
                now,
                None,
                Some(&checked),
            )
            .await,
        "a confirmation racing the reset that cancelled it",
    );
    let stored = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        stored.map(|u| (u.email_index, u.email_sealed)),
        Some((user.email_index, user.email_sealed)),
        "the email did not change"
    );
}
