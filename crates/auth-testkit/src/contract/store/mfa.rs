//! [`MfaStore`](auth_domain::ports::MfaStore): a TOTP authenticator per account (pending
//! until confirmed with the secret it was enrolled with), single-use recovery codes (a new
//! set kills the old one; each code works once, even under races), passkeys (credential
//! ids unique across accounts, decided by the store also under races; sign-ins recorded by
//! compare-and-set on the signature counter), each change's mail written with it and only
//! if it happened, and everything gone with the account. The mails are checked by claiming
//! every mail in the store, so these cases, like the outbox ones, need a store no other
//! test writes to meanwhile.

use std::collections::BTreeSet;

use auth_domain::model::{MailKind, MfaRecord, Outgoing, PasskeyRecord, TotpRecord, UserRecord};
use auth_domain::ports::{Store, StoreError, Taken};
use auth_domain::types::{PasskeyId, Timestamp, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::outbox::claim;
use super::{insert, new_user};
use crate::contract::{Must, fixtures, race};

/// A notice to write with a change, created at `at`.
fn notice(at: Timestamp) -> Outgoing {
    fixtures::notice(MailKind::PasswordChanged, at)
}

/// The ids of every mail in the outbox (claims them: call it last, or once).
async fn mails<S: Store>(store: &S, now: Timestamp) -> BTreeSet<Uuid> {
    claim(store, now + TimeDelta::minutes(1), 100)
        .await
        .into_iter()
        .map(|mail| mail.id)
        .collect()
}

/// The ids of `notices`.
fn ids<'a>(notices: impl IntoIterator<Item = &'a Outgoing>) -> BTreeSet<Uuid> {
    notices.into_iter().map(|n| n.mail.id).collect()
}

/// Everything stored about `user`'s second factors.
async fn mfa<S: Store>(store: &S, user: UserId) -> MfaRecord {
    store.mfa(user).await.must("mfa")
}

/// Stores `totp` as pending, which must succeed.
async fn set_pending<S: Store>(store: &S, totp: &TotpRecord) {
    store.set_pending_totp(totp).await.must("set_pending_totp");
}

/// A confirmed TOTP authenticator of `user` (enrolled at `now`, confirmed a second later)
/// with `codes` recovery codes, as stored.
async fn confirmed_totp<S: Store>(
    store: &S,
    user: UserId,
    now: Timestamp,
    codes: usize,
) -> TotpRecord {
    let totp = fixtures::pending_totp(user, now);
    set_pending(store, &totp).await;
    let confirmed_at = now + TimeDelta::seconds(1);
    store
        .confirm_totp(
            user,
            &totp.secret_sealed,
            &fixtures::recovery_codes(codes),
            confirmed_at,
            None,
        )
        .await
        .must("confirm_totp");
    TotpRecord {
        confirmed_at: Some(confirmed_at),
        ..totp
    }
}

/// Stores `passkey`, which must succeed.
async fn add_passkey<S: Store>(store: &S, passkey: &PasskeyRecord) {
    store
        .insert_passkey(passkey, None)
        .await
        .must("insert_passkey");
}

/// An account never seen and an account without second factors both have an empty record.
pub async fn the_second_factors_of_an_unknown_or_new_user_are_empty<S: Store>(store: &S) {
    let nobody = UserId(Uuid::now_v7());
    assert_eq!(
        mfa(store, nobody).await,
        MfaRecord::default(),
        "unknown user"
    );
    let user = new_user(store).await;
    let record = mfa(store, user.id).await;
    assert_eq!(record, MfaRecord::default(), "a new account");
    assert!(!record.required());
}

/// A pending authenticator is stored as given and read back whole; a new enrolment
/// replaces a pending one; once confirmed, a new enrolment is `Stale` and changes nothing;
/// for a missing account it is `NotFound`.
pub async fn a_pending_totp_is_stored_replaced_and_refused_once_confirmed<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let first = fixtures::pending_totp(user.id, now);
    set_pending(store, &first).await;
    let record = mfa(store, user.id).await;
    assert_eq!(record.totp.as_ref(), Some(&first), "read back whole");
    assert!(
        !record.required(),
        "a pending authenticator is not required"
    );

    let second = fixtures::pending_totp(user.id, now + TimeDelta::seconds(5));
    set_pending(store, &second).await;
    assert_eq!(
        mfa(store, user.id).await.totp,
        Some(second.clone()),
        "a new enrolment replaces a pending one"
    );

    let codes = fixtures::recovery_codes(3);
    let at = now + TimeDelta::seconds(6);
    store
        .confirm_totp(user.id, &second.secret_sealed, &codes, at, None)
        .await
        .must("confirm_totp");
    let confirmed = TotpRecord {
        confirmed_at: Some(at),
        ..second
    };
    let third = fixtures::pending_totp(user.id, now + TimeDelta::seconds(7));
    let result = store.set_pending_totp(&third).await;
    assert!(
        matches!(result, Err(StoreError::Stale)),
        "a confirmed authenticator is not replaced: {result:?}"
    );
    let record = mfa(store, user.id).await;
    assert_eq!(record.totp, Some(confirmed), "unchanged");
    assert_eq!(record.recovery_codes_left, 3, "codes unchanged");
    assert!(record.totp_enabled() && record.required());

    let nobody = fixtures::pending_totp(UserId(Uuid::now_v7()), now);
    let result = store.set_pending_totp(&nobody).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a missing account: {result:?}"
    );
    assert_eq!(mfa(store, nobody.user_id).await, MfaRecord::default());
}

/// Confirming needs the pending authenticator's own secret: another secret (a replaced
/// enrolment), or an authenticator confirmed already, is `Stale` and writes neither codes
/// nor mail. A confirmation replaces every recovery code with the new set and writes its
/// mail with it.
pub async fn a_totp_is_confirmed_only_with_its_pending_secret_and_replaces_the_codes<S: Store>(
    store: &S,
) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let old_codes = fixtures::recovery_codes(2);
    store
        .replace_recovery_codes(user.id, &old_codes, now)
        .await
        .must("replace_recovery_codes");
    let first = fixtures::pending_totp(user.id, now);
    set_pending(store, &first).await;
    let second = fixtures::pending_totp(user.id, now + TimeDelta::seconds(1));
    set_pending(store, &second).await;

    let refused = notice(now);
    let codes = fixtures::recovery_codes(10);
    let at = now + TimeDelta::seconds(2);
    let result = store
        .confirm_totp(user.id, &first.secret_sealed, &codes, at, Some(&refused))
        .await;
    assert!(
        matches!(result, Err(StoreError::Stale)),
        "the secret of a replaced enrolment: {result:?}"
    );
    let record = mfa(store, user.id).await;
    assert_eq!(record.totp.as_ref(), Some(&second), "still pending");
    assert_eq!(record.recovery_codes_left, 2, "the old codes stay");

    let confirmed_mail = notice(now + TimeDelta::seconds(1));
    store
        .confirm_totp(
            user.id,
            &second.secret_sealed,
            &codes,
            at,
            Some(&confirmed_mail),
        )
        .await
        .must("confirm_totp with the pending secret");
    let confirmed = TotpRecord {
        confirmed_at: Some(at),
        ..second.clone()
    };
    let record = mfa(store, user.id).await;
    assert_eq!(record.totp.as_ref(), Some(&confirmed), "confirmed at `at`");
    assert_eq!(record.recovery_codes_left, 10, "the new set");
    let later = at + TimeDelta::seconds(1);
    for code in &old_codes {
        let used = store.use_recovery_code(user.id, code, later, None).await;
        assert!(!used.must("use_recovery_code"), "an old code is dead");
    }
    let used = store
        .use_recovery_code(user.id, &codes[0], later, None)
        .await;
    assert!(used.must("use_recovery_code"), "a new code works");

    let again = notice(now + TimeDelta::seconds(2));
    let other_codes = fixtures::recovery_codes(10);
    let result = store
        .confirm_totp(
            user.id,
            &second.secret_sealed,
            &other_codes,
            later,
            Some(&again),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Stale)),
        "confirmed already: {result:?}"
    );
    let record = mfa(store, user.id).await;
    assert_eq!(record.totp, Some(confirmed), "unchanged");
    assert_eq!(record.recovery_codes_left, 9, "the codes unchanged");

    let other = new_user(store).await;
    let result = store
        .confirm_totp(other.id, &second.secret_sealed, &codes, at, Some(&again))
        .await;
    assert!(
        matches!(result, Err(StoreError::Stale)),
        "no pending authenticator: {result:?}"
    );
    assert_eq!(mfa(store, other.id).await, MfaRecord::default());

    assert_eq!(
        mails(store, now).await,
        ids([&confirmed_mail]),
        "only the confirmation's mail"
    );
}

/// `delete_totp` removes a pending or a confirmed authenticator but says `true` (and
/// writes its mail) only for a confirmed one; the recovery codes stay while a passkey is
/// left, and go with the last factor.
pub async fn deleting_a_totp_tells_a_confirmed_one_and_keeps_codes_while_a_passkey_is_left<
    S: Store,
>(
    store: &S,
) {
    let now = fixtures::now();

    // Nothing to delete.
    let user = new_user(store).await;
    let nothing = notice(now);
    let deleted = store.delete_totp(user.id, Some(&nothing)).await;
    assert!(!deleted.must("delete_totp"), "nothing enrolled");

    // A pending one goes, but it was no factor.
    let pending = fixtures::pending_totp(user.id, now);
    set_pending(store, &pending).await;
    let pending_mail = notice(now);
    let deleted = store.delete_totp(user.id, Some(&pending_mail)).await;
    assert!(!deleted.must("delete_totp"), "a pending one is no factor");
    assert_eq!(mfa(store, user.id).await.totp, None, "but it is gone");

    // Confirmed, with a passkey left: the codes stay.
    let with_passkey = new_user(store).await;
    confirmed_totp(store, with_passkey.id, now, 10).await;
    let passkey = fixtures::passkey(with_passkey.id, now, 0);
    add_passkey(store, &passkey).await;
    let removed = notice(now + TimeDelta::seconds(1));
    let deleted = store.delete_totp(with_passkey.id, Some(&removed)).await;
    assert!(deleted.must("delete_totp"), "a confirmed one");
    let record = mfa(store, with_passkey.id).await;
    assert_eq!(record.totp, None);
    assert_eq!(record.passkeys, vec![passkey.clone()]);
    assert_eq!(record.recovery_codes_left, 10, "a passkey is left");
    let deleted = store.delete_totp(with_passkey.id, Some(&nothing)).await;
    assert!(!deleted.must("delete_totp again"), "gone already");
    // The last factor takes the codes.
    let last = notice(now + TimeDelta::seconds(2));
    let deleted = store
        .delete_passkey(with_passkey.id, passkey.id, Some(&last))
        .await;
    assert!(deleted.must("delete_passkey"));
    assert_eq!(mfa(store, with_passkey.id).await, MfaRecord::default());

    // Confirmed and alone: the codes go with it.
    let alone = new_user(store).await;
    confirmed_totp(store, alone.id, now, 10).await;
    let alone_mail = notice(now + TimeDelta::seconds(3));
    let deleted = store.delete_totp(alone.id, Some(&alone_mail)).await;
    assert!(deleted.must("delete_totp"), "a confirmed one");
    assert_eq!(
        mfa(store, alone.id).await,
        MfaRecord::default(),
        "codes gone"
    );

    assert_eq!(
        mails(store, now).await,
        ids([&removed, &last, &alone_mail]),
        "mails for the factors removed only"
    );
}

/// A new set of recovery codes kills the old set (used or not); only unused codes are
/// counted; for a missing account it is `NotFound`.
pub async fn replacing_the_recovery_codes_kills_the_old_set<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let old = fixtures::recovery_codes(4);
    store
        .replace_recovery_codes(user.id, &old, now)
        .await
        .must("replace_recovery_codes");
    assert_eq!(mfa(store, user.id).await.recovery_codes_left, 4);
    let used = store.use_recovery_code(user.id, &old[0], now, None).await;
    assert!(used.must("use_recovery_code"));
    assert_eq!(
        mfa(store, user.id).await.recovery_codes_left,
        3,
        "used codes are not counted"
    );

    let new = fixtures::recovery_codes(10);
    store
        .replace_recovery_codes(user.id, &new, now + TimeDelta::seconds(1))
        .await
        .must("replace_recovery_codes");
    assert_eq!(mfa(store, user.id).await.recovery_codes_left, 10);
    let later = now + TimeDelta::seconds(2);
    for code in &old {
        let used = store.use_recovery_code(user.id, code, later, None).await;
        assert!(!used.must("use_recovery_code"), "an old code is dead");
    }
    for code in &new {
        let used = store.use_recovery_code(user.id, code, later, None).await;
        assert!(used.must("use_recovery_code"), "every new code works");
    }
    assert_eq!(mfa(store, user.id).await.recovery_codes_left, 0);

    store
        .replace_recovery_codes(user.id, &[], later)
        .await
        .must("replace_recovery_codes with none");
    let nobody = UserId(Uuid::now_v7());
    let result = store.replace_recovery_codes(nobody, &new, later).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a missing account: {result:?}"
    );
    let result = store.replace_recovery_codes(nobody, &[], later).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a missing account, no codes: {result:?}"
    );
}

/// A recovery code works once (its mail written then only), and only for its own user.
pub async fn a_recovery_code_is_used_once_and_only_by_its_user<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let other = new_user(store).await;
    let codes = fixtures::recovery_codes(3);
    let other_codes = fixtures::recovery_codes(3);
    store
        .replace_recovery_codes(user.id, &codes, now)
        .await
        .must("replace_recovery_codes");
    store
        .replace_recovery_codes(other.id, &other_codes, now)
        .await
        .must("replace_recovery_codes");

    let first = notice(now);
    let used = store
        .use_recovery_code(user.id, &codes[1], now, Some(&first))
        .await;
    assert!(used.must("use_recovery_code"), "an unused code");
    let second = notice(now + TimeDelta::seconds(1));
    let used = store
        .use_recovery_code(user.id, &codes[1], now, Some(&second))
        .await;
    assert!(!used.must("use_recovery_code again"), "used already");
    let stolen = notice(now + TimeDelta::seconds(2));
    let used = store
        .use_recovery_code(user.id, &other_codes[0], now, Some(&stolen))
        .await;
    assert!(!used.must("use_recovery_code"), "another user's code");
    let used = store
        .use_recovery_code(other.id, &other_codes[0], now, None)
        .await;
    assert!(
        used.must("use_recovery_code"),
        "still unused for its own user"
    );
    assert_eq!(mfa(store, user.id).await.recovery_codes_left, 2);
    assert_eq!(mfa(store, other.id).await.recovery_codes_left, 2);
    assert_eq!(mails(store, now).await, ids([&first]), "one mail");
}

/// Of eight concurrent uses of one recovery code, exactly one gets `true`, and one mail
/// is written.
pub async fn of_eight_concurrent_uses_of_one_recovery_code_one_wins<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let codes = fixtures::recovery_codes(2);
    store
        .replace_recovery_codes(user.id, &codes, now)
        .await
        .must("replace_recovery_codes");
    let notices: Vec<Outgoing> = (0..8).map(|_| notice(now)).collect();
    let results = race(8, |i| {
        store.use_recovery_code(user.id, &codes[0], now, Some(&notices[i]))
    });
    let winners: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, result)| result.must("use_recovery_code").then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one use wins: {winners:?}");
    assert_eq!(mfa(store, user.id).await.recovery_codes_left, 1);
    assert_eq!(
        mails(store, now).await,
        ids([&notices[winners[0]]]),
        "the winner's mail only"
    );
}

/// A passkey is read back whole, by its credential id and in `mfa`, with its mail
/// written; for a missing account it is `NotFound` (no mail); an unknown credential id
/// finds nothing.
pub async fn a_passkey_is_stored_and_found_by_its_credential_id<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let passkey = fixtures::passkey(user.id, now, 7);
    let added = notice(now);
    store
        .insert_passkey(&passkey, Some(&added))
        .await
        .must("insert_passkey");
    let found = store.passkey_by_credential(&passkey.credential_id).await;
    assert_eq!(
        found.must("passkey_by_credential").as_ref(),
        Some(&passkey),
        "read back whole"
    );
    let record = mfa(store, user.id).await;
    assert_eq!(record.passkeys, vec![passkey.clone()]);
    assert!(record.required() && !record.totp_enabled());

    let unknown = store
        .passkey_by_credential(&fixtures::credential_id())
        .await;
    assert_eq!(unknown.must("passkey_by_credential"), None, "unknown");

    let orphan = fixtures::passkey(UserId(Uuid::now_v7()), now, 0);
    let refused = notice(now + TimeDelta::seconds(1));
    let result = store.insert_passkey(&orphan, Some(&refused)).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a missing account: {result:?}"
    );
    let found = store.passkey_by_credential(&orphan.credential_id).await;
    assert_eq!(found.must("passkey_by_credential"), None, "not stored");
    assert_eq!(
        mails(store, now).await,
        ids([&added]),
        "the stored one's mail"
    );
}

/// A credential id registered already, to this or another account, is
/// `Taken(Credential)`, with nothing stored and no mail written.
pub async fn a_credential_registered_already_is_taken<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let other = new_user(store).await;
    let passkey = fixtures::passkey(user.id, now, 0);
    add_passkey(store, &passkey).await;

    for owner in [other.id, user.id] {
        let copy = PasskeyRecord {
            credential_id: passkey.credential_id.clone(),
            ..fixtures::passkey(owner, now, 0)
        };
        let result = store.insert_passkey(&copy, Some(&notice(now))).await;
        assert!(
            matches!(result, Err(StoreError::Taken(Taken::Credential))),
            "a credential id registered already: {result:?}"
        );
    }
    let found = store.passkey_by_credential(&passkey.credential_id).await;
    assert_eq!(found.must("passkey_by_credential"), Some(passkey.clone()));
    assert_eq!(mfa(store, other.id).await.passkeys, vec![]);
    assert_eq!(mfa(store, user.id).await.passkeys, vec![passkey]);
    assert_eq!(mails(store, now).await, BTreeSet::new(), "no mail");
}

/// Of eight concurrent registrations of one credential id (by eight accounts), exactly
/// one is stored; the others are `Taken(Credential)`.
pub async fn of_eight_concurrent_registrations_of_one_credential_one_wins<S: Store>(store: &S) {
    let now = fixtures::now();
    let mut users = Vec::new();
    for _ in 0..8 {
        users.push(new_user(store).await.id);
    }
    let credential_id = fixtures::credential_id();
    let passkeys: Vec<PasskeyRecord> = users
        .iter()
        .map(|user| PasskeyRecord {
            credential_id: credential_id.clone(),
            ..fixtures::passkey(*user, now, 0)
        })
        .collect();
    let results = race(8, |i| store.insert_passkey(&passkeys[i], None));
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(i),
            Err(StoreError::Taken(Taken::Credential)) => {}
            Err(err) => panic!("insert_passkey: {err:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one registration wins: {winners:?}"
    );
    let found = store.passkey_by_credential(&credential_id).await;
    assert_eq!(
        found.must("passkey_by_credential").as_ref(),
        Some(&passkeys[winners[0]]),
        "the winner's"
    );
}

/// A sign-in is recorded (credential, counter, last use) only while the counter is the
/// expected one: otherwise `Stale`, changing nothing; a passkey that is gone is
/// `NotFound`.
pub async fn a_passkey_use_is_recorded_only_at_the_expected_counter<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let passkey = fixtures::passkey(user.id, now, 5);
    add_passkey(store, &passkey).await;

    let at = now + TimeDelta::seconds(1);
    store
        .record_passkey_use(passkey.id, "credential after use", 6, 5, at)
        .await
        .must("record_passkey_use");
    let used = PasskeyRecord {
        credential: "credential after use".to_owned(),
        sign_count: 6,
        last_used_at: Some(at),
        ..passkey.clone()
    };
    let found = store.passkey_by_credential(&passkey.credential_id).await;
    assert_eq!(found.must("passkey_by_credential").as_ref(), Some(&used));

    let result = store
        .record_passkey_use(passkey.id, "a clone's", 6, 5, at + TimeDelta::seconds(1))
        .await;
    assert!(
        matches!(result, Err(StoreError::Stale)),
        "the counter moved on: {result:?}"
    );
    assert_eq!(mfa(store, user.id).await.passkeys, vec![used], "unchanged");

    let gone = PasskeyId(Uuid::now_v7());
    let result = store.record_passkey_use(gone, "x", 1, 0, at).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "an unknown passkey: {result:?}"
    );
    assert!(
        store
            .delete_passkey(user.id, passkey.id, None)
            .await
            .must("delete_passkey")
    );
    let result = store.record_passkey_use(passkey.id, "x", 7, 6, at).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a deleted passkey: {result:?}"
    );
}

/// Of eight concurrent sign-ins checked against one counter, exactly one is recorded;
/// the others are `Stale`.
pub async fn of_eight_concurrent_sign_ins_with_one_counter_one_is_recorded<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let passkey = fixtures::passkey(user.id, now, 41);
    add_passkey(store, &passkey).await;
    let credentials: Vec<String> = (0..8)
        .map(|i| format!("credential of sign-in {i}"))
        .collect();
    let results = race(8, |i| {
        store.record_passkey_use(passkey.id, &credentials[i], 42, 41, now)
    });
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(i),
            Err(StoreError::Stale) => {}
            Err(err) => panic!("record_passkey_use: {err:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one sign-in is recorded: {winners:?}"
    );
    let found = store.passkey_by_credential(&passkey.credential_id).await;
    let found = found.must("passkey_by_credential").must("stored");
    assert_eq!(
        (
            found.credential.as_str(),
            found.sign_count,
            found.last_used_at
        ),
        (credentials[winners[0]].as_str(), 42, Some(now)),
        "the winner's"
    );
}

/// A user deletes only their own passkey: another user's id gives `false` and deletes
/// nothing (no mail); the owner's deletion gives `true` with its mail, once. Recovery
/// codes stay while a factor is left.
pub async fn deleting_another_users_passkey_deletes_nothing<S: Store>(store: &S) {
    let now = fixtures::now();
    let owner = new_user(store).await;
    let intruder = new_user(store).await;
    let first = fixtures::passkey(owner.id, now, 0);
    let second = fixtures::passkey(owner.id, now + TimeDelta::seconds(1), 0);
    add_passkey(store, &first).await;
    add_passkey(store, &second).await;
    store
        .replace_recovery_codes(owner.id, &fixtures::recovery_codes(5), now)
        .await
        .must("replace_recovery_codes");

    let refused = notice(now);
    let deleted = store
        .delete_passkey(intruder.id, first.id, Some(&refused))
        .await;
    assert!(!deleted.must("delete_passkey"), "another user's passkey");
    let record = mfa(store, owner.id).await;
    assert_eq!(record.passkeys, vec![first.clone(), second.clone()], "kept");
    assert_eq!(record.recovery_codes_left, 5);
    let unknown = store
        .delete_passkey(owner.id, PasskeyId(Uuid::now_v7()), Some(&refused))
        .await;
    assert!(!unknown.must("delete_passkey"), "an unknown id");

    let removed = notice(now + TimeDelta::seconds(1));
    let deleted = store
        .delete_passkey(owner.id, first.id, Some(&removed))
        .await;
    assert!(deleted.must("delete_passkey"), "the owner's");
    let again = store
        .delete_passkey(owner.id, first.id, Some(&refused))
        .await;
    assert!(!again.must("delete_passkey again"), "gone already");
    let record = mfa(store, owner.id).await;
    assert_eq!(record.passkeys, vec![second], "the other one stays");
    assert_eq!(record.recovery_codes_left, 5, "a factor is left");
    assert_eq!(mails(store, now).await, ids([&removed]), "one mail");
}

/// Deleting an account deletes its TOTP authenticator, recovery codes and passkeys: an
/// account made later with the same id has none, and the credential ids are free again.
/// Another account's factors stay.
pub async fn deleting_a_user_deletes_its_second_factors<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let other = new_user(store).await;
    confirmed_totp(store, user.id, now, 10).await;
    let passkey = fixtures::passkey(user.id, now, 3);
    add_passkey(store, &passkey).await;
    let other_totp = confirmed_totp(store, other.id, now, 4).await;
    let other_passkey = fixtures::passkey(other.id, now, 0);
    add_passkey(store, &other_passkey).await;

    assert!(
        store
            .delete_user(user.id, None, None)
            .await
            .must("delete_user")
    );
    assert_eq!(mfa(store, user.id).await, MfaRecord::default(), "all gone");
    let found = store.passkey_by_credential(&passkey.credential_id).await;
    assert_eq!(found.must("passkey_by_credential"), None, "passkey gone");

    let again = insert(store, fixtures::user().build()).await;
    let reborn = UserRecord {
        id: user.id,
        ..fixtures::user().build()
    };
    let reborn = insert(store, reborn).await;
    for id in [again.id, reborn.id] {
        assert_eq!(
            mfa(store, id).await,
            MfaRecord::default(),
            "a new account sees nothing of the old one"
        );
    }
    let reused = PasskeyRecord {
        credential_id: passkey.credential_id.clone(),
        ..fixtures::passkey(again.id, now, 0)
    };
    store
        .insert_passkey(&reused, None)
        .await
        .must("the credential id is free again");

    let record = mfa(store, other.id).await;
    assert_eq!(record.totp, Some(other_totp), "another account's stay");
    assert_eq!(record.recovery_codes_left, 4);
    assert_eq!(record.passkeys, vec![other_passkey]);
}

/// `mfa` lists the passkeys oldest first (whatever order they were added in) and counts
/// only unused recovery codes.
pub async fn mfa_lists_passkeys_oldest_first_and_counts_unused_codes<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;
    let newest = fixtures::passkey(user.id, now + TimeDelta::seconds(2), 0);
    let oldest = fixtures::passkey(user.id, now - TimeDelta::hours(1), 0);
    let middle = fixtures::passkey(user.id, now, 0);
    for passkey in [&newest, &oldest, &middle] {
        add_passkey(store, passkey).await;
    }
    let codes = fixtures::recovery_codes(5);
    store
        .replace_recovery_codes(user.id, &codes, now)
        .await
        .must("replace_recovery_codes");
    for code in &codes[..2] {
        let used = store.use_recovery_code(user.id, code, now, None).await;
        assert!(used.must("use_recovery_code"));
    }
    let record = mfa(store, user.id).await;
    assert_eq!(
        record.passkeys,
        vec![oldest, middle, newest],
        "oldest first"
    );
    assert_eq!(record.recovery_codes_left, 3, "unused codes only");
    assert_eq!(record.totp, None);
}

/// Writes for an account that is gone: `NotFound` where the port says so, `false` or
/// `Stale` elsewhere, and never a mail.
pub async fn second_factor_writes_for_a_missing_account_change_nothing<S: Store>(store: &S) {
    let now = fixtures::now();
    let nobody = UserId(Uuid::now_v7());
    let n = || notice(now);
    let codes = fixtures::recovery_codes(2);
    let totp = fixtures::pending_totp(nobody, now);

    let result = store.set_pending_totp(&totp).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let result = store
        .confirm_totp(nobody, &totp.secret_sealed, &codes, now, Some(&n()))
        .await;
    assert!(matches!(result, Err(StoreError::Stale)), "{result:?}");
    let deleted = store.delete_totp(nobody, Some(&n())).await;
    assert!(!deleted.must("delete_totp"));
    let result = store.replace_recovery_codes(nobody, &codes, now).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let used = store
        .use_recovery_code(nobody, &codes[0], now, Some(&n()))
        .await;
    assert!(!used.must("use_recovery_code"));
    let passkey = fixtures::passkey(nobody, now, 0);
    let result = store.insert_passkey(&passkey, Some(&n())).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let result = store.record_passkey_use(passkey.id, "x", 1, 0, now).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let deleted = store.delete_passkey(nobody, passkey.id, Some(&n())).await;
    assert!(!deleted.must("delete_passkey"));

    assert_eq!(mfa(store, nobody).await, MfaRecord::default());
    assert_eq!(mails(store, now).await, BTreeSet::new(), "no mail");
}

/// `second_factor_enabled` says what `mfa().required()` says, in every state a login meets:
/// nothing, a pending authenticator, a confirmed one, a passkey alone, both, and after
/// each is removed; and `false` for an unknown user.
pub async fn second_factor_enabled_agrees_with_the_record<S: Store>(store: &S) {
    let now = fixtures::now();
    let enabled = |user: UserId| async move {
        let quick = store
            .second_factor_enabled(user)
            .await
            .must("second_factor_enabled");
        let full = mfa(store, user).await.required();
        assert_eq!(quick, full, "second_factor_enabled vs mfa().required()");
        quick
    };
    assert!(!enabled(UserId(Uuid::now_v7())).await, "unknown user");
    let user = new_user(store).await;
    assert!(!enabled(user.id).await, "a new account");
    let totp = fixtures::pending_totp(user.id, now);
    set_pending(store, &totp).await;
    assert!(!enabled(user.id).await, "a pending authenticator");
    store
        .confirm_totp(
            user.id,
            &totp.secret_sealed,
            &fixtures::recovery_codes(2),
            now,
            None,
        )
        .await
        .must("confirm_totp");
    assert!(enabled(user.id).await, "a confirmed authenticator");
    let passkey = fixtures::passkey(user.id, now, 0);
    store
        .insert_passkey(&passkey, None)
        .await
        .must("insert_passkey");
    assert!(enabled(user.id).await, "both");
    store.delete_totp(user.id, None).await.must("delete_totp");
    assert!(enabled(user.id).await, "a passkey alone");
    store
        .delete_passkey(user.id, passkey.id, None)
        .await
        .must("delete_passkey");
    assert!(!enabled(user.id).await, "nothing left");
    let other = new_user(store).await;
    store
        .insert_passkey(&fixtures::passkey(other.id, now, 0), None)
        .await
        .must("insert_passkey");
    assert!(
        !enabled(user.id).await,
        "another account's passkey is not this one's"
    );
}
