//! [`RevocationList::needs_warming`](auth_domain::ports::RevocationList::needs_warming)
//! and [`warmed`](auth_domain::ports::RevocationList::warmed): a list that asked to be
//! warmed and was, is trusted again and keeps what it held. (How a shared list notices
//! that it lost something is the adapter's own: Redis proves it in its own tests.)

use auth_domain::model::RevocationState;
use auth_domain::ports::Cache;
use chrono::TimeDelta;

use crate::contract::{Must, fixtures};

/// Once warmed (if it asked to be), a list needs no warming, answers revocation checks,
/// and still holds what was revoked before: warming adds, it never forgets.
pub async fn a_warmed_list_needs_no_warming_and_keeps_its_revocations<C: Cache>(cache: &C) {
    let (jti, session, user) = fixtures::ids();
    let until = fixtures::now() + TimeDelta::minutes(15);
    cache
        .revoke_session(session, until)
        .await
        .must("revoke_session");

    if let Some(ticket) = cache.needs_warming().await.must("needs_warming") {
        assert!(
            cache.warmed(ticket).await.must("warmed"),
            "nothing was lost meanwhile: trusted again"
        );
    }

    assert_eq!(
        cache.needs_warming().await.must("needs_warming again"),
        None,
        "a warmed list needs no warming"
    );
    assert_eq!(
        cache
            .revocation_state(jti, session, user)
            .await
            .must("revocation_state"),
        RevocationState {
            session_revoked: true,
            ..RevocationState::default()
        },
        "what was revoked before stays revoked"
    );
}
