//! [`SessionStore::rotate_refresh`](auth_domain::ports::SessionStore::rotate_refresh):
//! a refresh token is rotated once; of concurrent presentations exactly one wins.

use auth_domain::model::{Rotation, SessionRecord};
use auth_domain::ports::Store;
use auth_domain::types::{Timestamp, TokenHash};
use chrono::TimeDelta;

use super::{new_session, new_user};
use crate::contract::{Must, fixtures, race};

/// Rotates `presented` to a fresh successor at `at` and asserts the token is unknown.
async fn assert_unknown<S: Store>(store: &S, presented: &TokenHash, at: Timestamp, what: &str) {
    let rotation = store
        .rotate_refresh(presented, &fixtures::token_hash(), at)
        .await
        .must("rotate_refresh");
    assert_eq!(rotation, Rotation::Unknown, "{what}");
}

/// The first presentation of a live token returns `Rotated` with the session as stored,
/// its `last_used_at` set to now; the successor is then live itself.
pub async fn a_first_rotation_wins_and_marks_the_session_used<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (session, refresh) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    let successor = fixtures::token_hash();

    let rotation = store.rotate_refresh(&refresh, &successor, now).await;
    let used = SessionRecord {
        last_used_at: now,
        ..session.clone()
    };
    assert_eq!(
        rotation.must("rotate_refresh"),
        Rotation::Rotated(used.clone()),
        "rotated, the session used now"
    );
    let found = store.session(session.id).await.must("session");
    assert_eq!(found, Some(used), "stored");

    let later = now + TimeDelta::seconds(1);
    let next = store
        .rotate_refresh(&successor, &fixtures::token_hash(), later)
        .await
        .must("rotate the successor");
    assert_eq!(
        next,
        Rotation::Rotated(SessionRecord {
            last_used_at: later,
            ..session
        }),
        "the successor is live"
    );
}

/// Presenting a rotated token again returns `AlreadyRotated` with its first rotation time
/// and the session as stored; it neither marks the session used nor stores the new
/// successor.
pub async fn a_second_rotation_reports_the_first_rotation_time<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (session, refresh) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    let successor = fixtures::token_hash();
    let first = store.rotate_refresh(&refresh, &successor, now).await;
    assert!(
        matches!(first.must("rotate_refresh"), Rotation::Rotated(_)),
        "setup: first rotation"
    );

    let used = SessionRecord {
        last_used_at: now,
        ..session
    };
    let other_successor = fixtures::token_hash();
    let later = now + TimeDelta::minutes(1);
    for candidate in [successor, other_successor] {
        let again = store.rotate_refresh(&refresh, &candidate, later).await;
        assert_eq!(
            again.must("rotate_refresh again"),
            Rotation::AlreadyRotated {
                session: used.clone(),
                rotated_at: now,
            },
            "the first rotation time, the session untouched"
        );
    }
    assert_unknown(
        store,
        &other_successor,
        later,
        "a refused rotation stores no successor",
    )
    .await;
}

/// A token never stored is `Unknown`, and its successor is not stored.
pub async fn an_unknown_refresh_token_is_unknown<S: Store>(store: &S) {
    let now = fixtures::now();
    let (unknown, successor) = (fixtures::token_hash(), fixtures::token_hash());
    let rotation = store.rotate_refresh(&unknown, &successor, now).await;
    assert_eq!(rotation.must("rotate_refresh"), Rotation::Unknown);
    assert_unknown(
        store,
        &successor,
        now,
        "no successor stored for an unknown token",
    )
    .await;
}

/// Rotation does not judge the session: a token of a revoked or an expired session is
/// rotated, and the session returned as stored (revocation and expiry are the caller's to
/// judge).
pub async fn rotation_returns_the_session_as_stored_even_when_revoked_or_expired<S: Store>(
    store: &S,
) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (revoked, revoked_refresh) = new_session(store, user.id, now - TimeDelta::minutes(5)).await;
    let revoked_at = now - TimeDelta::minutes(1);
    assert!(
        store
            .revoke_session(revoked.id, revoked_at)
            .await
            .must("revoke_session")
    );
    let (expired, expired_refresh) = new_session(store, user.id, now - TimeDelta::hours(2)).await;
    assert!(expired.expires_at < now, "setup: expired");

    let revoked = SessionRecord {
        revoked_at: Some(revoked_at),
        last_used_at: now,
        ..revoked
    };
    let expired = SessionRecord {
        last_used_at: now,
        ..expired
    };
    for (refresh, expected) in [(revoked_refresh, revoked), (expired_refresh, expired)] {
        let rotation = store
            .rotate_refresh(&refresh, &fixtures::token_hash(), now)
            .await;
        assert_eq!(rotation.must("rotate_refresh"), Rotation::Rotated(expected));
    }
}

/// Of sixteen concurrent presentations of one token (with its one successor), exactly one
/// gets `Rotated` and fifteen `AlreadyRotated` with the winner's time; the successor is
/// then live.
pub async fn of_sixteen_concurrent_rotations_of_one_token_one_wins<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let (session, refresh) = new_session(store, user.id, now - TimeDelta::minutes(1)).await;
    let successor = fixtures::token_hash();

    let results = race(16, |_| store.rotate_refresh(&refresh, &successor, now));
    let (mut rotated, mut already) = (0, 0);
    for result in results {
        match result.must("rotate_refresh") {
            Rotation::Rotated(found) => {
                rotated += 1;
                assert_eq!(found.id, session.id);
                assert_eq!(found.last_used_at, now, "the winner used the session");
            }
            Rotation::AlreadyRotated {
                session: found,
                rotated_at,
            } => {
                already += 1;
                assert_eq!(found.id, session.id);
                assert_eq!(rotated_at, now, "the winner's rotation time");
            }
            Rotation::Unknown => panic!("the presented token is known"),
        }
    }
    assert_eq!((rotated, already), (1, 15), "exactly one rotation wins");

    let later = now + TimeDelta::seconds(1);
    let next = store
        .rotate_refresh(&successor, &fixtures::token_hash(), later)
        .await;
    assert!(
        matches!(next.must("rotate the successor"), Rotation::Rotated(_)),
        "the successor is live"
    );
}
