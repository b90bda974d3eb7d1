//! [`RevocationList`](auth_domain::ports::RevocationList): what is revoked shows in the
//! revocation state of the tokens it concerns, and only of those.

use auth_domain::model::RevocationState;
use auth_domain::ports::Cache;
use auth_domain::types::{SessionId, Timestamp, UserId};
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::contract::{Must, fixtures};

/// A quarter of an hour from the real current time: revocations given it are in force
/// throughout a case.
fn until() -> Timestamp {
    fixtures::now() + TimeDelta::minutes(15)
}

/// A "not before" mark as the service sets them: the current time in whole seconds.
fn mark() -> Timestamp {
    fixtures::whole_seconds(Utc::now())
}

async fn state<C: Cache>(
    cache: &C,
    jti: Uuid,
    session: SessionId,
    user: UserId,
) -> RevocationState {
    cache
        .revocation_state(jti, session, user)
        .await
        .must("revocation_state")
}

/// A revoked token is revoked; another token of the same session and user is not.
pub async fn a_revoked_token_shows_in_the_revocation_state<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    assert_eq!(
        state(cache, jti, session, user).await,
        RevocationState::default(),
        "nothing known of fresh ids"
    );
    cache.revoke_token(jti, until()).await.must("revoke_token");
    assert_eq!(
        state(cache, jti, session, user).await,
        RevocationState {
            token_revoked: true,
            ..RevocationState::default()
        }
    );
    let (other, _, _) = fixtures::ids();
    assert_eq!(
        state(cache, other, session, user).await,
        RevocationState::default(),
        "another token of the same session"
    );
}

/// A revoked session refuses every token of it; other sessions of the user are not.
pub async fn a_revoked_session_shows_in_the_revocation_state<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    cache
        .revoke_session(session, until())
        .await
        .must("revoke_session");
    let (other_jti, other_session, _) = fixtures::ids();
    let revoked = RevocationState {
        session_revoked: true,
        ..RevocationState::default()
    };
    assert_eq!(state(cache, jti, session, user).await, revoked);
    assert_eq!(
        state(cache, other_jti, session, user).await,
        revoked,
        "any token of the session"
    );
    assert_eq!(
        state(cache, jti, other_session, user).await,
        RevocationState::default(),
        "another session of the user"
    );
}

/// A user's "not before" mark shows for every token of the user, with the rest of the
/// state, and for no other user.
pub async fn a_users_not_before_mark_shows_in_the_revocation_state<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    let mark = mark();
    cache
        .revoke_user_before(user, mark, until())
        .await
        .must("revoke_user_before");
    assert_eq!(
        state(cache, jti, session, user).await,
        RevocationState {
            user_not_before: Some(mark),
            ..RevocationState::default()
        }
    );
    let (other_jti, other_session, other_user) = fixtures::ids();
    assert_eq!(
        state(cache, other_jti, other_session, user)
            .await
            .user_not_before,
        Some(mark),
        "any token of the user"
    );
    assert_eq!(
        state(cache, jti, session, other_user).await,
        RevocationState::default(),
        "another user"
    );

    cache.revoke_token(jti, until()).await.must("revoke_token");
    cache
        .revoke_session(session, until())
        .await
        .must("revoke_session");
    assert_eq!(
        state(cache, jti, session, user).await,
        RevocationState {
            token_revoked: true,
            session_revoked: true,
            user_not_before: Some(mark),
        },
        "all three facts at once"
    );
}

/// A later call with an earlier mark does not move the mark back; a later mark moves it
/// forward.
pub async fn a_users_not_before_mark_never_moves_back<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    let later = mark();
    let earlier = later - TimeDelta::seconds(60);
    cache
        .revoke_user_before(user, later, until())
        .await
        .must("revoke_user_before");
    cache
        .revoke_user_before(user, earlier, until())
        .await
        .must("revoke_user_before earlier");
    assert_eq!(
        state(cache, jti, session, user).await.user_not_before,
        Some(later),
        "an earlier mark is ignored"
    );
    let latest = later + TimeDelta::seconds(1);
    cache
        .revoke_user_before(user, latest, until())
        .await
        .must("revoke_user_before later");
    assert_eq!(
        state(cache, jti, session, user).await.user_not_before,
        Some(latest),
        "a later mark moves it forward"
    );
}

/// A later call with an earlier `until` (even one already past, which a caller racing the
/// clock may pass) neither fails nor shortens a revocation: every entry lives until the
/// latest `until` it was given.
pub async fn an_earlier_until_does_not_shorten_a_revocation<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    let mark = mark();
    cache.revoke_token(jti, until()).await.must("revoke_token");
    cache
        .revoke_session(session, until())
        .await
        .must("revoke_session");
    cache
        .revoke_user_before(user, mark, until())
        .await
        .must("revoke_user_before");
    let past = fixtures::now() - TimeDelta::seconds(1);
    cache
        .revoke_token(jti, past)
        .await
        .must("revoke_token with a past until");
    cache
        .revoke_session(session, past)
        .await
        .must("revoke_session with a past until");
    cache
        .revoke_user_before(user, mark, past)
        .await
        .must("revoke_user_before with a past until");
    assert_eq!(
        state(cache, jti, session, user).await,
        RevocationState {
            token_revoked: true,
            session_revoked: true,
            user_not_before: Some(mark),
        },
        "still revoked until the latest until"
    );
}
