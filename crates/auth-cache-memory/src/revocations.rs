//! The revocation list: denylisted tokens, revoked sessions, users' "not before" marks.

use auth_domain::model::{RevocationState, WarmTicket};
use auth_domain::ports::{PortError, RevocationList};
use auth_domain::types::{SessionId, Timestamp, UserId};
use chrono::Utc;
use uuid::Uuid;

use super::{MemoryCache, UserMark, extend, read, write};

impl RevocationList for MemoryCache {
    /// Denylists `jti` until `until`; a second call keeps the later `until`.
    async fn revoke_token(&self, jti: Uuid, until: Timestamp) -> Result<(), PortError> {
        let now = Utc::now();
        let mut table = write(&self.inner.revocations);
        extend(&mut table.tokens, jti, until, now);
        table.after_write(now);
        Ok(())
    }

    /// Revokes the session until `until`; a second call keeps the later `until`.
    async fn revoke_session(&self, id: SessionId, until: Timestamp) -> Result<(), PortError> {
        let now = Utc::now();
        let mut table = write(&self.inner.revocations);
        extend(&mut table.sessions, id, until, now);
        table.after_write(now);
        Ok(())
    }

    /// Sets the user's "not before" mark. While a mark is live, the later of the old and the
    /// new mark is kept, with the later of the two `until`s: the mark never moves back.
    async fn revoke_user_before(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        let now = Utc::now();
        let mut table = write(&self.inner.revocations);
        let fresh = UserMark { not_before, until };
        table
            .users
            .entry(user)
            .and_modify(|mark| {
                *mark = if mark.until > now {
                    UserMark {
                        not_before: mark.not_before.max(not_before),
                        until: mark.until.max(until),
                    }
                } else {
                    fresh
                };
            })
            .or_insert(fresh);
        table.after_write(now);
        Ok(())
    }

    /// The three facts under one read lock (a consistent snapshot). An entry counts while
    /// its `until` is after the system clock's now.
    async fn revocation_state(
        &self,
        jti: Uuid,
        session: SessionId,
        user: UserId,
    ) -> Result<RevocationState, PortError> {
        let now = Utc::now();
        let table = read(&self.inner.revocations);
        Ok(RevocationState {
            token_revoked: table.tokens.get(&jti).is_some_and(|until| *until > now),
            session_revoked: table
                .sessions
                .get(&session)
                .is_some_and(|until| *until > now),
            user_not_before: table
                .users
                .get(&user)
                .filter(|mark| mark.until > now)
                .map(|mark| mark.not_before),
        })
    }

    /// Always `None`: the list lives and dies with the process, so it loses nothing the
    /// service does not warm again at start, and a write to it never fails.
    async fn needs_warming(&self) -> Result<Option<WarmTicket>, PortError> {
        Ok(None)
    }

    /// Always trusted (see [`Self::needs_warming`]).
    async fn warmed(&self, _ticket: WarmTicket) -> Result<bool, PortError> {
        Ok(true)
    }
}
