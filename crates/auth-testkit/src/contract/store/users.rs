//! [`UserStore`](auth_domain::ports::UserStore): accounts, their unique usernames and
//! email indexes, changes, and deletion with everything that hangs off an account.

use auth_domain::model::{OneTimeKind, ProfileChanges, Rotation, UserRecord};
use auth_domain::ports::{Store, StoreError, Taken};
use auth_domain::types::{PasswordHash, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::{insert, new_session, new_user};
use crate::contract::fixtures::{self, unique};
use crate::contract::{Must, race};

/// Asserts that `result` is `Err(StoreError::Taken(which))`.
#[track_caller]
fn assert_taken<T: std::fmt::Debug>(result: Result<T, StoreError>, which: Taken, what: &str) {
    match result {
        Err(StoreError::Taken(found)) if found == which => {}
        other => panic!("{what}: expected Err(Taken({which:?})), got {other:?}"),
    }
}

/// Asserts that `result` is `Err(StoreError::NotFound)`.
#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected Err(NotFound), got {other:?}"),
    }
}

/// An account, with every optional field set or with none, is found as written by its id,
/// its email index and its normalized username; unknown values find nothing.
pub async fn a_user_is_found_by_id_email_index_and_normalized_username<S: Store>(store: &S) {
    let now = fixtures::now();
    let full = fixtures::user()
        .phone()
        .pending_email()
        .verified_at(now - TimeDelta::minutes(5))
        .logged_in_at(now - TimeDelta::minutes(1))
        .build();
    let bare = fixtures::user().build();
    for user in [full, bare] {
        let user = insert(store, user).await;
        let by_id = store.user_by_id(user.id).await.must("user_by_id");
        assert_eq!(by_id.as_ref(), Some(&user), "by id, as written");
        let by_email = store.user_by_email(&user.email_index).await;
        assert_eq!(
            by_email.must("user_by_email").as_ref(),
            Some(&user),
            "by email index"
        );
        let by_name = store.user_by_username(&user.username_normalized).await;
        assert_eq!(
            by_name.must("user_by_username"),
            Some(user),
            "by normalized username"
        );
    }

    let nobody = UserId(Uuid::now_v7());
    assert_eq!(store.user_by_id(nobody).await.must("user_by_id"), None);
    let unknown = fixtures::blind_index();
    assert_eq!(
        store.user_by_email(&unknown).await.must("user_by_email"),
        None
    );
    let unknown = unique("nobody");
    assert_eq!(
        store
            .user_by_username(&unknown)
            .await
            .must("user_by_username"),
        None
    );
}

/// A second account with a normalized username already used, typed in the same or another
/// case, is refused with `Taken(Username)` and not stored.
pub async fn a_username_taken_in_any_case_is_refused<S: Store>(store: &S) {
    let as_typed = unique("Ada");
    let first = insert(store, fixtures::user().username(&as_typed).build()).await;

    for other_case in [as_typed.clone(), as_typed.to_ascii_uppercase()] {
        let second = fixtures::user().username(&other_case).build();
        assert_eq!(second.username_normalized, first.username_normalized);
        assert_taken(
            store.insert_user(&second, None).await,
            Taken::Username,
            &format!("insert {other_case:?} after {as_typed:?}"),
        );
        assert_eq!(
            store.user_by_id(second.id).await.must("user_by_id"),
            None,
            "the refused account is not stored"
        );
        assert_eq!(
            store
                .user_by_email(&second.email_index)
                .await
                .must("user_by_email"),
            None,
            "the refused account's email stays free"
        );
    }
    let found = store.user_by_username(&first.username_normalized).await;
    assert_eq!(found.must("user_by_username"), Some(first));
}

/// A second account with an email index already used is refused with `Taken(Email)` and
/// not stored.
pub async fn an_email_taken_by_another_account_is_refused<S: Store>(store: &S) {
    let first = new_user(store).await;
    let second = fixtures::user()
        .email_index(first.email_index.clone())
        .build();
    assert_taken(
        store.insert_user(&second, None).await,
        Taken::Email,
        "insert with a used email index",
    );
    assert_eq!(store.user_by_id(second.id).await.must("user_by_id"), None);
    let found = store.user_by_username(&second.username_normalized).await;
    assert_eq!(
        found.must("user_by_username"),
        None,
        "the refused account's username stays free"
    );
    let found = store.user_by_email(&first.email_index).await;
    assert_eq!(found.must("user_by_email"), Some(first));
}

/// `update_profile` changes exactly the fields given as `Some` (and `updated_at`), returns
/// the account as stored, and `phone: Some(None)` removes the phone.
pub async fn a_profile_update_changes_only_the_given_fields<S: Store>(store: &S) {
    let user = insert(store, fixtures::user().phone().build()).await;
    let other = new_user(store).await;
    let now = fixtures::now();

    let first = ProfileChanges {
        name_sealed: Some(fixtures::sealed("new-name")),
        phone: Some(None),
        pending_email_sealed: Some(fixtures::sealed("new-email")),
        ..ProfileChanges::default()
    };
    let at = now + TimeDelta::seconds(1);
    let updated = store.update_profile(user.id, &first, at, None).await;
    let expected = UserRecord {
        name_sealed: first.name_sealed.clone().must("set above"),
        phone_index: None,
        phone_sealed: None,
        pending_email_sealed: first.pending_email_sealed.clone(),
        updated_at: at,
        ..user.clone()
    };
    assert_eq!(
        updated.must("update_profile"),
        expected,
        "returned as stored"
    );
    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(found.as_ref(), Some(&expected), "stored");

    let renamed = unique("Renamed");
    let (phone_index, phone_sealed) = (fixtures::blind_index(), fixtures::sealed("phone"));
    let second = ProfileChanges {
        username: Some((renamed.clone(), renamed.to_ascii_lowercase())),
        surname_sealed: Some(fixtures::sealed("new-surname")),
        phone: Some(Some((phone_index.clone(), phone_sealed.clone()))),
        ..ProfileChanges::default()
    };
    let at = now + TimeDelta::seconds(2);
    let updated = store.update_profile(user.id, &second, at, None).await;
    let expected = UserRecord {
        username: renamed.clone(),
        username_normalized: renamed.to_ascii_lowercase(),
        surname_sealed: second.surname_sealed.clone().must("set above"),
        phone_index: Some(phone_index),
        phone_sealed: Some(phone_sealed),
        updated_at: at,
        ..expected
    };
    assert_eq!(updated.must("update_profile"), expected);
    let found = store.user_by_username(&renamed.to_ascii_lowercase()).await;
    assert_eq!(
        found.must("user_by_username").as_ref(),
        Some(&expected),
        "found by the new username"
    );
    let found = store.user_by_username(&user.username_normalized).await;
    assert_eq!(
        found.must("user_by_username"),
        None,
        "the old username is free"
    );
    let found = store.user_by_id(other.id).await.must("user_by_id");
    assert_eq!(found, Some(other), "other accounts are untouched");
}

/// Renaming onto another account's username, in any case, is refused with
/// `Taken(Username)` and changes nothing; changing the case of one's own username is fine.
pub async fn a_rename_onto_a_taken_username_is_refused<S: Store>(store: &S) {
    let user = new_user(store).await;
    let other = new_user(store).await;
    let at = fixtures::now() + TimeDelta::seconds(1);

    for taken in [other.username.clone(), other.username.to_ascii_uppercase()] {
        let rename = ProfileChanges {
            username: Some((taken.clone(), taken.to_ascii_lowercase())),
            name_sealed: Some(fixtures::sealed("name")),
            ..ProfileChanges::default()
        };
        assert_taken(
            store.update_profile(user.id, &rename, at, None).await,
            Taken::Username,
            &format!("rename to {taken:?}"),
        );
    }
    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        found.as_ref(),
        Some(&user),
        "a refused change changes nothing"
    );

    let shouted = user.username.to_ascii_uppercase();
    let rename = ProfileChanges {
        username: Some((shouted.clone(), user.username_normalized.clone())),
        ..ProfileChanges::default()
    };
    let updated = store.update_profile(user.id, &rename, at, None).await;
    let updated = updated.must("changing the case of one's own username");
    assert_eq!(
        (
            updated.username.as_str(),
            updated.username_normalized.as_str()
        ),
        (shouted.as_str(), user.username_normalized.as_str())
    );
}

/// Changes to an account that does not exist are `NotFound`, and deleting it says it did
/// not exist.
pub async fn changes_to_a_missing_account_are_not_found<S: Store>(store: &S) {
    let nobody = UserId(Uuid::now_v7());
    let now = fixtures::now();
    let changes = ProfileChanges {
        name_sealed: Some(fixtures::sealed("name")),
        ..ProfileChanges::default()
    };
    assert_not_found(
        store.update_profile(nobody, &changes, now, None).await,
        "update_profile",
    );
    let hash = PasswordHash(unique("$2b$04$new"));
    assert_not_found(
        store.set_password(nobody, &hash, now, None, None).await,
        "set_password",
    );
    assert_not_found(
        store.mark_email_verified(nobody, now).await,
        "mark_email_verified",
    );
    assert!(
        !store
            .delete_user(nobody, None, None)
            .await
            .must("delete_user"),
        "delete_user of a missing account returns false"
    );
    assert_eq!(store.user_by_id(nobody).await.must("user_by_id"), None);
}

/// `apply_email_change` refuses another account's email index with `Taken(Email)` and
/// changes nothing; otherwise the new email becomes the email, verified now, and the
/// pending one is cleared.
pub async fn an_email_change_takes_effect_verified_unless_the_email_is_taken<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = fixtures::user()
        .pending_email()
        .verified_at(now - TimeDelta::days(1))
        .build();
    let user = insert(store, user).await;
    let other = new_user(store).await;

    let sealed = fixtures::sealed("email");
    assert_taken(
        store
            .apply_email_change(user.id, &other.email_index, &sealed, now, None, None)
            .await,
        Taken::Email,
        "apply another account's email",
    );
    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        found.as_ref(),
        Some(&user),
        "a refused change changes nothing"
    );

    let (index, sealed) = (fixtures::blind_index(), fixtures::sealed("new-email"));
    let at = now + TimeDelta::seconds(1);
    store
        .apply_email_change(user.id, &index, &sealed, at, None, None)
        .await
        .must("apply_email_change");
    let found = store.user_by_email(&index).await.must("user_by_email");
    let found = found.must("found by the new email index");
    assert_eq!(found.id, user.id);
    assert_eq!(found.email_index, index);
    assert_eq!(found.email_sealed, sealed);
    assert_eq!(found.email_verified_at, Some(at), "verified now");
    assert_eq!(found.pending_email_sealed, None, "no longer pending");
    assert_eq!(
        store
            .user_by_email(&user.email_index)
            .await
            .must("user_by_email"),
        None,
        "the old email index finds nothing"
    );
    let found = store.user_by_id(other.id).await.must("user_by_id");
    assert_eq!(found, Some(other), "other accounts are untouched");
}

/// `mark_email_verified` is idempotent: the first verification time stays.
pub async fn marking_the_email_verified_is_idempotent<S: Store>(store: &S) {
    let user = new_user(store).await;
    let first = fixtures::now() + TimeDelta::seconds(1);
    let second = first + TimeDelta::seconds(1);
    store
        .mark_email_verified(user.id, first)
        .await
        .must("mark_email_verified");
    store
        .mark_email_verified(user.id, second)
        .await
        .must("mark_email_verified again");
    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(
        found.must("stored").email_verified_at,
        Some(first),
        "the first verification time stays"
    );
}

/// `set_password` replaces the hash; `record_login` sets the last login time.
pub async fn a_new_password_and_a_login_are_recorded<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let hash = PasswordHash(unique("$2b$04$new"));
    store
        .set_password(user.id, &hash, now + TimeDelta::seconds(1), None, None)
        .await
        .must("set_password");
    for at in [now + TimeDelta::seconds(2), now + TimeDelta::seconds(3)] {
        store.record_login(user.id, at).await.must("record_login");
        let found = store.user_by_id(user.id).await.must("user_by_id");
        let found = found.must("stored");
        assert_eq!(found.password_hash, hash, "the new hash is stored");
        assert_eq!(found.last_login_at, Some(at), "the last login is recorded");
        assert_eq!(
            (found.username, found.email_index, found.created_at),
            (
                user.username.clone(),
                user.email_index.clone(),
                user.created_at
            ),
            "the rest stays"
        );
    }
}

/// Deleting an account deletes its sessions, their refresh tokens and its single-use
/// tokens, frees its username and email, leaves other accounts alone, and returns `true`
/// once, then `false`.
pub async fn deleting_a_user_deletes_its_sessions_and_tokens<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let other = new_user(store).await;
    let (first, first_refresh) = new_session(store, user.id, now).await;
    let (second, second_refresh) = new_session(store, user.id, now).await;
    let successor = fixtures::token_hash();
    let rotated = store
        .rotate_refresh(&second_refresh, &successor, now + TimeDelta::seconds(1))
        .await;
    assert!(
        matches!(rotated.must("rotate_refresh"), Rotation::Rotated(_)),
        "setup: a rotated token and its successor"
    );
    let expires = now + TimeDelta::hours(1);
    let reset = fixtures::one_time(user.id, OneTimeKind::ResetPassword, expires);
    let verify = fixtures::one_time(user.id, OneTimeKind::VerifyEmail, expires);
    let (other_session, other_refresh) = new_session(store, other.id, now).await;
    let other_token = fixtures::one_time(other.id, OneTimeKind::ResetPassword, expires);
    for token in [&reset, &verify, &other_token] {
        store.insert_one_time(token).await.must("insert_one_time");
    }

    assert!(
        store
            .delete_user(user.id, None, None)
            .await
            .must("delete_user")
    );
    assert!(
        !store
            .delete_user(user.id, None, None)
            .await
            .must("delete_user again"),
        "gone already"
    );
    assert_eq!(store.user_by_id(user.id).await.must("user_by_id"), None);
    for id in [first.id, second.id] {
        assert_eq!(store.session(id).await.must("session"), None, "session");
    }
    let active = store.active_sessions(user.id, now).await;
    assert_eq!(active.must("active_sessions"), vec![]);
    for token in [first_refresh, second_refresh, successor] {
        let rotation = store
            .rotate_refresh(&token, &fixtures::token_hash(), now + TimeDelta::seconds(2))
            .await;
        assert_eq!(
            rotation.must("rotate_refresh"),
            Rotation::Unknown,
            "refresh tokens go with their session"
        );
    }
    for token in [&reset, &verify] {
        let found = store.find_one_time(&token.hash, token.kind).await;
        assert_eq!(
            found.must("find_one_time"),
            None,
            "single-use tokens go too"
        );
    }

    let found = store.session(other_session.id).await.must("session");
    assert_eq!(found, Some(other_session), "other accounts are untouched");
    let found = store
        .find_one_time(&other_token.hash, other_token.kind)
        .await;
    assert_eq!(found.must("find_one_time"), Some(other_token));
    let rotation = store
        .rotate_refresh(
            &other_refresh,
            &fixtures::token_hash(),
            now + TimeDelta::seconds(2),
        )
        .await;
    assert!(matches!(
        rotation.must("rotate_refresh"),
        Rotation::Rotated(_)
    ));

    let again = fixtures::user()
        .username(&user.username)
        .email_index(user.email_index.clone())
        .build();
    store
        .insert_user(&again, None)
        .await
        .must("the username and email of a deleted account are free again");
}

/// Of twenty concurrent registrations with one email index (and distinct usernames),
/// exactly one succeeds and nineteen get `Taken(Email)`: never another error.
pub async fn of_twenty_concurrent_registrations_with_one_email_one_wins<S: Store>(store: &S) {
    let email = fixtures::blind_index();
    let users: Vec<UserRecord> = (0..20)
        .map(|_| fixtures::user().email_index(email.clone()).build())
        .collect();
    let results = race(users.len(), |i| store.insert_user(&users[i], None));
    let winner = one_winner(&users, results, Taken::Email);
    let found = store.user_by_email(&email).await.must("user_by_email");
    assert_eq!(found.map(|u| u.id), Some(winner), "the winner is stored");
}

/// Of twenty concurrent registrations with one normalized username (typed in different
/// cases, with distinct emails), exactly one succeeds and nineteen get `Taken(Username)`.
pub async fn of_twenty_concurrent_registrations_with_one_username_one_wins<S: Store>(store: &S) {
    let name = unique("racer");
    let users: Vec<UserRecord> = (0..20)
        .map(|i| {
            let typed = if i % 2 == 0 {
                name.clone()
            } else {
                name.to_ascii_uppercase()
            };
            fixtures::user().username(&typed).build()
        })
        .collect();
    let results = race(users.len(), |i| store.insert_user(&users[i], None));
    let winner = one_winner(&users, results, Taken::Username);
    let found = store.user_by_username(&name).await.must("user_by_username");
    assert_eq!(found.map(|u| u.id), Some(winner), "the winner is stored");
}

/// Asserts one `Ok` and `Taken(which)` for the rest; returns the winner's id.
#[track_caller]
fn one_winner(users: &[UserRecord], results: Vec<Result<(), StoreError>>, which: Taken) -> UserId {
    let mut winners = Vec::new();
    let mut taken = 0;
    for (user, result) in users.iter().zip(results) {
        match result {
            Ok(()) => winners.push(user.id),
            Err(StoreError::Taken(found)) if found == which => taken += 1,
            Err(other) => panic!("a losing registration must get Taken({which:?}), got {other:?}"),
        }
    }
    assert_eq!(
        (winners.len(), taken),
        (1, users.len() - 1),
        "exactly one registration wins"
    );
    winners[0]
}
