//! [`SessionStore`](auth_domain::ports::SessionStore): sessions, listing and revoking them.
//! Rotation of their refresh tokens is in [`super::rotation`].

use std::collections::HashSet;

use auth_domain::model::SessionRecord;
use auth_domain::ports::Store;
use auth_domain::types::{SessionId, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::{new_session, new_user};
use crate::contract::{Must, fixtures};

/// A session is found by its id as written (with or without its optional fields); an
/// unknown id finds nothing.
pub async fn a_session_is_found_by_id<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (full, _) = new_session(store, user.id, now).await;
    let bare = SessionRecord {
        user_agent: None,
        ip_sealed: None,
        ..fixtures::session(user.id, now)
    };
    store
        .create_session(&bare, &fixtures::token_hash())
        .await
        .must("create_session");
    for session in [full, bare] {
        let found = store.session(session.id).await.must("session");
        assert_eq!(found, Some(session), "as written");
    }
    let unknown = SessionId(Uuid::now_v7());
    assert_eq!(store.session(unknown).await.must("session"), None);
}

/// `active_sessions` lists the user's sessions neither revoked nor expired at the given
/// time, newest first, and no one else's.
pub async fn active_sessions_are_live_unexpired_and_newest_first<S: Store>(store: &S) {
    let user = new_user(store).await;
    let other = new_user(store).await;
    let now = fixtures::now();
    let (old, _) = new_session(store, user.id, now - TimeDelta::minutes(5)).await;
    let (revoked, _) = new_session(store, user.id, now - TimeDelta::minutes(4)).await;
    let expired = SessionRecord {
        expires_at: now - TimeDelta::seconds(1),
        ..fixtures::session(user.id, now - TimeDelta::minutes(3))
    };
    store
        .create_session(&expired, &fixtures::token_hash())
        .await
        .must("create_session");
    let (newer, _) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    new_session(store, other.id, now - TimeDelta::minutes(2)).await;
    let revoked_at = now - TimeDelta::seconds(30);
    assert!(
        store
            .revoke_session(revoked.id, revoked_at)
            .await
            .must("revoke_session")
    );

    let active = store.active_sessions(user.id, now).await;
    assert_eq!(
        active.must("active_sessions"),
        vec![newer.clone(), old.clone()],
        "live and unexpired, newest first"
    );
    // `old` expires 5 minutes before `newer`.
    let later = old.expires_at + TimeDelta::minutes(1);
    let active = store.active_sessions(user.id, later).await;
    assert_eq!(
        active.must("active_sessions"),
        vec![newer],
        "judged at the time given"
    );
    let nobody = UserId(Uuid::now_v7());
    let active = store.active_sessions(nobody, now).await;
    assert_eq!(active.must("active_sessions"), vec![]);
}

/// `revoke_session` returns `true` for a live session and sets its `revoked_at`; again,
/// or for an unknown id, it returns `false` and changes nothing.
pub async fn revoking_a_session_is_idempotent_and_tells_whether_it_was_live<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (session, _) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    let (bystander, _) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;

    assert!(
        store
            .revoke_session(session.id, now)
            .await
            .must("revoke_session"),
        "it was live"
    );
    let later = now + TimeDelta::seconds(5);
    assert!(
        !store
            .revoke_session(session.id, later)
            .await
            .must("revoke_session again"),
        "it was revoked already"
    );
    let found = store.session(session.id).await.must("session");
    assert_eq!(
        found.must("stored").revoked_at,
        Some(now),
        "the first revocation time stays"
    );
    let unknown = SessionId(Uuid::now_v7());
    assert!(!store.revoke_session(unknown, now).await.must("unknown"));
    let found = store.session(bystander.id).await.must("session");
    assert_eq!(found, Some(bystander), "other sessions are untouched");
}

/// `revoke_user_sessions` revokes the user's live sessions but the excepted one and
/// returns exactly those it revoked (not the ones revoked before, nor anyone else's).
pub async fn revoking_a_users_sessions_spares_the_excepted_one_and_returns_the_revoked<S: Store>(
    store: &S,
) {
    let user = new_user(store).await;
    let other = new_user(store).await;
    let now = fixtures::now();
    let mut sessions = Vec::new();
    for n in 0..4 {
        let created = now - TimeDelta::minutes(10 - n);
        sessions.push(new_session(store, user.id, created).await.0);
    }
    let (others, _) = new_session(store, other.id, now - TimeDelta::minutes(10)).await;
    let early = now - TimeDelta::minutes(1);
    assert!(
        store
            .revoke_session(sessions[0].id, early)
            .await
            .must("revoke_session")
    );

    let mut revoked = store
        .revoke_user_sessions(user.id, Some(sessions[3].id), now)
        .await
        .must("revoke_user_sessions");
    revoked.sort();
    assert_eq!(
        revoked,
        vec![sessions[1].id, sessions[2].id],
        "the live ones but the excepted"
    );
    let revoked_at = |id| async move {
        store
            .session(id)
            .await
            .must("session")
            .map(|s| s.revoked_at)
    };
    assert_eq!(
        revoked_at(sessions[0].id).await,
        Some(Some(early)),
        "revoked before: time kept"
    );
    for session in &sessions[1..3] {
        assert_eq!(revoked_at(session.id).await, Some(Some(now)));
    }
    assert_eq!(revoked_at(sessions[3].id).await, Some(None), "excepted");
    let found = store.session(others.id).await.must("session");
    assert_eq!(found, Some(others), "other users' sessions are untouched");

    let later = now + TimeDelta::seconds(1);
    let revoked = store.revoke_user_sessions(user.id, None, later).await;
    assert_eq!(
        revoked.must("revoke_user_sessions"),
        vec![sessions[3].id],
        "without exception: the last live one"
    );
    let revoked = store.revoke_user_sessions(user.id, None, later).await;
    assert_eq!(revoked.must("revoke_user_sessions"), vec![], "nothing left");
}

/// `revoked_since` lists the sessions revoked at or after the given time, with their
/// revocation time.
pub async fn revoked_since_lists_sessions_revoked_at_or_after_the_time<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let created = now - TimeDelta::minutes(10);
        sessions.push(new_session(store, user.id, created).await.0);
    }
    let times = [
        now - TimeDelta::minutes(2),
        now - TimeDelta::minutes(1),
        now,
    ];
    for (session, at) in sessions.iter().zip(times) {
        assert!(
            store
                .revoke_session(session.id, at)
                .await
                .must("revoke_session")
        );
    }
    let ours: HashSet<SessionId> = sessions.iter().map(|s| s.id).collect();
    let ours = &ours;
    let since = |at| async move {
        let mut found: Vec<_> = store
            .revoked_since(at)
            .await
            .must("revoked_since")
            .into_iter()
            .filter(|(id, _)| ours.contains(id))
            .collect();
        found.sort();
        found
    };

    let mut expected = vec![(sessions[1].id, times[1]), (sessions[2].id, times[2])];
    expected.sort();
    assert_eq!(
        since(times[1]).await,
        expected,
        "at or after, with the time"
    );
    assert_eq!(
        since(now + TimeDelta::milliseconds(1)).await,
        vec![],
        "none after"
    );
    assert_eq!(
        since(now - TimeDelta::minutes(5)).await.len(),
        3,
        "never the live one"
    );
}
