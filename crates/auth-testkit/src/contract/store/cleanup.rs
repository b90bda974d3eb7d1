//! [`Store::cleanup`]: what can no longer serve is deleted, what can is kept, and the
//! report counts what was deleted. These cases count exactly, so they need a store no
//! other test writes to meanwhile.

use auth_domain::model::{MailKind, OneTimeKind, OutboxMail, OutboxStats, Rotation, SessionRecord};
use auth_domain::ports::{CleanupReport, DEAD_MAIL_RETENTION, Store};
use auth_domain::types::{TokenHash, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::{new_session, new_user};
use crate::contract::{Must, fixtures};

/// An `unverified_before` that expires no account: these cases are about other rows.
fn never_unverified() -> auth_domain::types::Timestamp {
    chrono::DateTime::UNIX_EPOCH
}

/// Presents `refresh` (with a fresh successor) at `at`.
async fn rotate<S: Store>(
    store: &S,
    refresh: &TokenHash,
    at: auth_domain::types::Timestamp,
) -> Rotation {
    store
        .rotate_refresh(refresh, &fixtures::token_hash(), at)
        .await
        .must("rotate_refresh")
}

/// Sessions past their expiry are deleted with their refresh tokens (live and rotated);
/// live sessions stay.
pub async fn cleanup_deletes_expired_sessions_with_their_refresh_tokens<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (expired, first) = new_session(store, user.id, now - TimeDelta::minutes(90)).await;
    let second = fixtures::token_hash();
    let rotated = store
        .rotate_refresh(&first, &second, now - TimeDelta::minutes(80))
        .await;
    assert!(
        matches!(rotated.must("rotate_refresh"), Rotation::Rotated(_)),
        "setup: a rotated token and its successor"
    );
    let (live, live_refresh) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    assert!(expired.expires_at < now && live.expires_at > now, "setup");

    let report = store
        .cleanup(now, now - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            sessions: 1,
            ..CleanupReport::default()
        },
        "one expired session"
    );
    assert_eq!(store.session(expired.id).await.must("session"), None);
    for refresh in [first, second] {
        assert_eq!(
            rotate(store, &refresh, now).await,
            Rotation::Unknown,
            "its refresh tokens are gone with it"
        );
    }
    assert_eq!(
        store.session(live.id).await.must("session"),
        Some(live.clone()),
        "the live session stays"
    );
    assert!(
        matches!(
            rotate(store, &live_refresh, now).await,
            Rotation::Rotated(_)
        ),
        "its refresh token still works"
    );
    let again = store
        .cleanup(now, now - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup again");
    assert_eq!(again, CleanupReport::default(), "nothing left to delete");
}

/// Sessions revoked before `revoked_before` are deleted; those revoked at or after it are
/// kept (with their refresh tokens), since `revoked_since` may still be asked about them.
pub async fn cleanup_deletes_sessions_revoked_before_the_cutoff_only<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let cutoff = now - TimeDelta::minutes(15);
    let mut sessions = Vec::new();
    for revoked_at in [
        cutoff - TimeDelta::minutes(5),
        cutoff,
        cutoff + TimeDelta::minutes(5),
    ] {
        let (session, refresh) = new_session(store, user.id, now - TimeDelta::minutes(30)).await;
        assert!(
            store
                .revoke_session(session.id, revoked_at)
                .await
                .must("revoke_session")
        );
        sessions.push((session, refresh, revoked_at));
    }

    let report = store
        .cleanup(now, cutoff, never_unverified())
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            sessions: 1,
            ..CleanupReport::default()
        },
        "one session revoked before the cutoff"
    );
    let (old, old_refresh, _) = &sessions[0];
    assert_eq!(store.session(old.id).await.must("session"), None);
    assert_eq!(rotate(store, old_refresh, now).await, Rotation::Unknown);
    for (session, refresh, revoked_at) in &sessions[1..] {
        let kept = SessionRecord {
            revoked_at: Some(*revoked_at),
            ..session.clone()
        };
        let found = store.session(session.id).await.must("session");
        assert_eq!(found, Some(kept), "revoked at or after the cutoff: kept");
        assert_ne!(
            rotate(store, refresh, now).await,
            Rotation::Unknown,
            "with its refresh token"
        );
    }
    let mut since: Vec<_> = store
        .revoked_since(cutoff)
        .await
        .must("revoked_since")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    since.sort();
    assert_eq!(since, vec![sessions[1].0.id, sessions[2].0.id]);
}

/// Single-use tokens expired or used are deleted; unused live ones stay.
pub async fn cleanup_deletes_expired_and_used_one_time_tokens<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let at = now + TimeDelta::minutes(10);
    let expired = fixtures::one_time(
        user.id,
        OneTimeKind::VerifyEmail,
        now + TimeDelta::minutes(1),
    );
    let used = fixtures::one_time(
        user.id,
        OneTimeKind::ResetPassword,
        now + TimeDelta::hours(1),
    );
    let live = fixtures::one_time(user.id, OneTimeKind::ChangeEmail, now + TimeDelta::hours(1));
    for token in [&expired, &used, &live] {
        store.insert_one_time(token).await.must("insert_one_time");
    }
    let consumed = store.consume_one_time(&used.hash, used.kind, now).await;
    assert!(consumed.must("consume_one_time").is_some(), "setup: used");

    let report = store
        .cleanup(at, at - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            one_time_tokens: 2,
            ..CleanupReport::default()
        },
        "one expired and one used token"
    );
    for token in [&expired, &used] {
        let found = store.find_one_time(&token.hash, token.kind).await;
        assert_eq!(
            found.must("find_one_time"),
            None,
            "deleted: {:?}",
            token.kind
        );
    }
    let found = store.find_one_time(&live.hash, live.kind).await;
    assert_eq!(found.must("find_one_time").as_ref(), Some(&live), "kept");
    let consumed = store.consume_one_time(&live.hash, live.kind, at).await;
    assert!(
        consumed.must("consume_one_time").is_some(),
        "and still usable"
    );
}

/// Users' marks past their `until` are deleted; marks in force stay.
pub async fn cleanup_deletes_expired_user_marks<S: Store>(store: &S) {
    let now = fixtures::now();
    let at = now + TimeDelta::minutes(10);
    let (gone, kept) = (UserId(Uuid::now_v7()), UserId(Uuid::now_v7()));
    let kept_mark = (kept, now, now + TimeDelta::minutes(15));
    store
        .revoke_user_tokens(gone, now, now + TimeDelta::minutes(5))
        .await
        .must("revoke_user_tokens");
    store
        .revoke_user_tokens(kept_mark.0, kept_mark.1, kept_mark.2)
        .await
        .must("revoke_user_tokens");

    let report = store
        .cleanup(at, at - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            user_revocations: 1,
            ..CleanupReport::default()
        },
        "one mark past its until"
    );
    // Asked about a time when both were in force, only the kept one is left.
    let marks: Vec<_> = store
        .user_revocations(now)
        .await
        .must("user_revocations")
        .into_iter()
        .filter(|(user, _, _)| *user == gone || *user == kept)
        .collect();
    assert_eq!(marks, vec![kept_mark]);
}

/// With nothing spent, cleanup deletes nothing: not accounts, not live or recently revoked
/// sessions, not rotated refresh tokens of live sessions (reuse detection needs them), not
/// live single-use tokens, not marks in force.
pub async fn cleanup_keeps_everything_still_usable<S: Store>(store: &S) {
    let now = fixtures::now();
    let cutoff = now - TimeDelta::minutes(15);
    let user = new_user(store).await;
    let (_, first) = new_session(store, user.id, now - TimeDelta::minutes(10)).await;
    let second = fixtures::token_hash();
    let rotated = store
        .rotate_refresh(&first, &second, now - TimeDelta::minutes(5))
        .await;
    let session = match rotated.must("rotate_refresh") {
        Rotation::Rotated(session) => session,
        other => panic!("setup: expected Rotated, got {other:?}"),
    };
    let (revoked, _) = new_session(store, user.id, now - TimeDelta::minutes(10)).await;
    let revoked_at = cutoff + TimeDelta::seconds(1);
    assert!(
        store
            .revoke_session(revoked.id, revoked_at)
            .await
            .must("revoke_session")
    );
    let token = fixtures::one_time(user.id, OneTimeKind::VerifyEmail, now + TimeDelta::hours(1));
    store.insert_one_time(&token).await.must("insert_one_time");
    let mark = (user.id, now, now + TimeDelta::minutes(15));
    store
        .revoke_user_tokens(mark.0, mark.1, mark.2)
        .await
        .must("revoke_user_tokens");

    let report = store
        .cleanup(now, cutoff, never_unverified())
        .await
        .must("cleanup");
    assert_eq!(report, CleanupReport::default(), "nothing to delete");

    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(found, Some(user), "the account");
    let found = store.session(session.id).await.must("session");
    assert_eq!(found, Some(session), "the live session");
    let found = store.session(revoked.id).await.must("session");
    assert_eq!(
        found.map(|s| s.revoked_at),
        Some(Some(revoked_at)),
        "the session revoked after the cutoff"
    );
    assert!(
        matches!(
            rotate(store, &first, now).await,
            Rotation::AlreadyRotated { .. }
        ),
        "the rotated refresh token, still recognised as rotated"
    );
    assert!(
        matches!(rotate(store, &second, now).await, Rotation::Rotated(_)),
        "the live refresh token"
    );
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(
        found.must("find_one_time"),
        Some(token),
        "the single-use token"
    );
    let marks: Vec<_> = store
        .user_revocations(now)
        .await
        .must("user_revocations")
        .into_iter()
        .filter(|(id, _, _)| *id == mark.0)
        .collect();
    assert_eq!(marks, vec![mark], "the mark in force");
}

/// Dead mails are deleted once dead for longer than [`DEAD_MAIL_RETENTION`]; mails dead
/// more recently (or exactly that long) stay, and so does every queued mail, however old,
/// due or not.
pub async fn cleanup_deletes_dead_mails_past_their_retention_only<S: Store>(store: &S) {
    let now = fixtures::now();
    let cutoff = now - DEAD_MAIL_RETENTION;
    let created = now - DEAD_MAIL_RETENTION - TimeDelta::days(10);
    let old_queued = fixtures::notice(MailKind::VerifyEmail, created);
    let not_due = fixtures::notice(MailKind::ResetPassword, created);
    let dead: Vec<_> = [
        cutoff - TimeDelta::seconds(1),
        cutoff,
        cutoff + TimeDelta::seconds(1),
    ]
    .into_iter()
    .map(|at| (fixtures::notice(MailKind::AccountLocked, created), at))
    .collect();
    for mail in [&old_queued, &not_due]
        .into_iter()
        .chain(dead.iter().map(|(m, _)| m))
    {
        store.enqueue_mail(mail).await.must("enqueue_mail");
    }
    // Never claimed: their attempts are still 0.
    for (mail, at) in &dead {
        let dead = store.mail_dead(mail.mail.id, 0, *at).await;
        assert!(dead.must("mail_dead"), "setup: dead at {at}");
    }
    let retried = store
        .mail_retry(not_due.mail.id, 0, now + TimeDelta::days(1))
        .await;
    assert!(retried.must("mail_retry"), "setup: due tomorrow");

    let report = store
        .cleanup(now, now - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            dead_mails: 1,
            ..CleanupReport::default()
        },
        "one mail dead for longer than the retention"
    );
    let stats = store.outbox_stats().await.must("outbox_stats");
    assert_eq!(
        stats,
        OutboxStats {
            queued: 2,
            oldest_queued_at: Some(created),
            dead: 2,
        },
        "the queued mails and the recently dead ones are kept"
    );
    let claimed = store
        .claim_mail(now, TimeDelta::minutes(5), 10)
        .await
        .must("claim_mail");
    assert_eq!(
        claimed,
        vec![OutboxMail {
            attempts: 1,
            ..old_queued.mail
        }],
        "the old queued mail is still delivered"
    );
    let again = store
        .cleanup(now, now - TimeDelta::minutes(15), never_unverified())
        .await
        .must("cleanup again");
    assert_eq!(again, CleanupReport::default(), "nothing left to delete");
}

/// Accounts never verified (pending registrations included) created before the cutoff are
/// deleted with their tokens; verified accounts of any age and newer unverified ones stay.
pub async fn cleanup_deletes_unverified_accounts_past_their_time_only<S: Store>(store: &S) {
    let now = fixtures::now();
    let cutoff = now - TimeDelta::days(7);
    let old = cutoff - TimeDelta::minutes(1);
    let expired = super::insert(store, fixtures::user().created_at(old).build()).await;
    let token = fixtures::one_time(expired.id, OneTimeKind::VerifyEmail, now);
    store.insert_one_time(&token).await.must("insert_one_time");
    let owner = super::insert(
        store,
        fixtures::user().created_at(old).verified_at(old).build(),
    )
    .await;
    let pending = super::insert(
        store,
        fixtures::user()
            .created_at(old)
            .pending_for(owner.email_index.clone(), 3)
            .build(),
    )
    .await;
    let recent = super::insert(
        store,
        fixtures::user()
            .created_at(cutoff + TimeDelta::minutes(1))
            .build(),
    )
    .await;

    let report = store
        .cleanup(now, now - TimeDelta::minutes(15), cutoff)
        .await
        .must("cleanup");
    assert_eq!(report.unverified_users, 2, "{report:?}");
    for (user, kept) in [
        (&expired, false),
        (&pending, false),
        (&owner, true),
        (&recent, true),
    ] {
        let found = store.user_by_id(user.id).await.must("user_by_id");
        assert_eq!(found.is_some(), kept, "{}", user.username);
    }
    let token = store
        .find_one_time(&token.hash, token.kind)
        .await
        .must("find_one_time");
    assert_eq!(token, None, "its tokens go with it");
}
