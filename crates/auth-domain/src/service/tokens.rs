//! Access tokens, refresh rotation, revocation.

use chrono::TimeDelta;
use secrecy::SecretString;

use crate::error::AuthError;
use crate::model::{AccessClaims, ColdReason, Rotation, SessionRecord, TokenPair};
use crate::ports::{
    Keyring, RevocationList, SessionStore, Store, TokenCodec, TokenRejection, UserStore,
};
use crate::types::{PlainToken, SessionId, Timestamp, UserId};

use super::{Action, Adapters, AuthService, ClientContext, Trail};
use crate::events::Event;

impl<A: Adapters> AuthService<A> {
    /// Signs a fresh access token for the session and pairs it with `refresh`.
    pub(crate) fn token_pair(
        &self,
        user: UserId,
        username: &str,
        session: SessionId,
        refresh: PlainToken,
    ) -> Result<TokenPair, AuthError> {
        let now = self.now_floor_secs();
        let claims = AccessClaims {
            user_id: user,
            session_id: session,
            jti: self.new_uuid()?,
            username: username.to_owned(),
            issued_at: now,
            expires_at: now + self.policy.access_ttl,
        };
        let access = self.ports.tokens.issue_access(&claims)?;
        Ok(TokenPair {
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh.expose().to_owned()),
            expires_in: self.policy.access_ttl.num_seconds(),
            session_id: session,
        })
    }

    /// Rotates a refresh token. Within the reuse interval after a rotation, the same token
    /// yields the same successor (two tabs refreshing at once stay logged in); after it,
    /// presenting a rotated token revokes the whole session (`TokenReused`).
    ///
    /// Counts the per-IP limit. Reports `TokensRefreshed`, or `RefreshReused` when a reuse
    /// revoked the session.
    #[tracing::instrument(
        target = "auth_trace",
        name = "refresh",
        skip_all,
        fields(use_case = "refresh")
    )]
    pub async fn refresh(
        &self,
        raw_token: &str,
        ctx: &ClientContext,
    ) -> Result<TokenPair, AuthError> {
        self.throttle_client(Action::Refresh, ctx, None).await?;
        let mut trail = Trail::default();
        let result = self.refresh_steps(raw_token, &mut trail).await;
        match &result {
            Ok(_) => self.publish(Event::TokensRefreshed, ctx),
            Err(AuthError::TokenReused) => self.publish(
                Event::RefreshReused {
                    user: trail.user,
                    session: trail.session,
                },
                ctx,
            ),
            Err(_) => {}
        }
        result
    }

    async fn refresh_steps(
        &self,
        raw_token: &str,
        trail: &mut Trail,
    ) -> Result<TokenPair, AuthError> {
        let presented = PlainToken::presented(raw_token).map_err(|_| AuthError::InvalidToken)?;
        let successor = self.ports.keys.successor(&presented);
        let now = self.now();
        let rotation = self
            .ports
            .store
            .rotate_refresh(&presented.hash(), &successor.hash(), now)
            .await?;
        let session = match rotation {
            Rotation::Unknown => return Err(AuthError::InvalidToken),
            Rotation::Rotated(session) => live(trail.seen(session), now)?,
            Rotation::AlreadyRotated {
                session,
                rotated_at,
            } => {
                let session = live(trail.seen(session), now)?;
                if now - rotated_at > self.policy.reuse_interval {
                    self.revoke_sessions(&[session.id]).await?;
                    return Err(AuthError::TokenReused);
                }
                session
            }
        };
        let user = self
            .ports
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::TokenRevoked)?;
        self.token_pair(user.id, &user.username, session.id, successor)
    }

    /// Verifies an access token: signature, algorithm, claims, then the revocation list
    /// (one cache round trip, no storage query).
    #[tracing::instrument(
        target = "auth_trace",
        name = "authenticate",
        skip_all,
        fields(use_case = "authenticate")
    )]
    pub async fn authenticate(&self, access_token: &str) -> Result<AccessClaims, AuthError> {
        let claims = self
            .ports
            .tokens
            .verify_access(access_token, self.now())
            .map_err(|rejection| match rejection {
                TokenRejection::Expired => AuthError::TokenExpired,
                TokenRejection::Invalid => AuthError::InvalidToken,
            })?;
        let state = self
            .ports
            .cache
            .revocation_state(claims.jti, claims.session_id, claims.user_id)
            .await?;
        let before_user_mark = state
            .user_not_before
            .is_some_and(|not_before| claims.issued_at < not_before);
        if state.token_revoked || state.session_revoked || before_user_mark {
            return Err(AuthError::TokenRevoked);
        }
        Ok(claims)
    }

    /// Ends the token's session (or, with `all`, every session of its user) and denylists
    /// the token itself until it expires.
    ///
    /// Counts the per-IP limit; reports `LoggedOut`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "logout",
        skip_all,
        fields(use_case = "logout")
    )]
    pub async fn logout(
        &self,
        claims: &AccessClaims,
        all: bool,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        self.throttle_client(Action::Logout, ctx, None).await?;
        let now = self.now();
        if all {
            self.revoke_everything(claims.user_id).await?;
        } else {
            self.ports
                .store
                .revoke_session(claims.session_id, now)
                .await?;
            self.revoke_sessions_in_cache(&[claims.session_id]).await?;
        }
        self.ports
            .cache
            .revoke_token(claims.jti, claims.expires_at.max(now))
            .await?;
        self.publish(
            Event::LoggedOut {
                user: claims.user_id,
                session: claims.session_id,
                all,
            },
            ctx,
        );
        Ok(())
    }

    /// How long a revocation must be remembered: as long as a token issued just before it
    /// may live.
    fn revocation_horizon(&self) -> Timestamp {
        self.now() + self.policy.access_ttl + TimeDelta::seconds(1)
    }

    /// Revokes sessions in storage and in the revocation list.
    pub(crate) async fn revoke_sessions(&self, ids: &[SessionId]) -> Result<(), AuthError> {
        let now = self.now();
        for id in ids {
            self.ports.store.revoke_session(*id, now).await?;
        }
        self.revoke_sessions_in_cache(ids).await
    }

    pub(crate) async fn revoke_sessions_in_cache(
        &self,
        ids: &[SessionId],
    ) -> Result<(), AuthError> {
        let until = self.revocation_horizon();
        for id in ids {
            self.ports.cache.revoke_session(*id, until).await?;
        }
        Ok(())
    }

    /// Revokes every session of the user but `except`, everywhere.
    pub(crate) async fn revoke_other_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
    ) -> Result<(), AuthError> {
        let ids = self
            .ports
            .store
            .revoke_user_sessions(user, except, self.now())
            .await?;
        self.revoke_sessions_in_cache(&ids).await
    }

    /// Revokes every session and every access token of the user.
    pub(crate) async fn revoke_everything(&self, user: UserId) -> Result<(), AuthError> {
        self.revoke_other_sessions(user, None).await?;
        let (not_before, until) = (self.now_floor_secs(), self.revocation_horizon());
        self.ports
            .store
            .revoke_user_tokens(user, not_before, until)
            .await?;
        self.ports
            .cache
            .revoke_user_before(user, not_before, until)
            .await?;
        Ok(())
    }

    /// Deletes expired and spent rows from storage, keeping revoked sessions for one
    /// access-token lifetime (a restart must still learn those revocations); accounts never
    /// verified go after `unverified_ttl`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "cleanup",
        skip_all,
        fields(use_case = "cleanup")
    )]
    pub async fn cleanup(&self) -> Result<crate::ports::CleanupReport, AuthError> {
        let now = self.now();
        let keep = now - self.policy.access_ttl - TimeDelta::seconds(1);
        let unverified_before = now - self.policy.unverified_ttl;
        Ok(self
            .ports
            .store
            .cleanup(now, keep, unverified_before)
            .await?)
    }

    /// Teaches a fresh cache the revocations that storage remembers (sessions revoked within
    /// one access-token lifetime, and users' "not before" marks still in force), so a
    /// restart does not revive a revoked access token, and tells a shared cache it is warm.
    /// Called at start, before serving: it copies even when the cache says it needs
    /// nothing (an in-process cache is empty after a restart). Returns how many it restored.
    #[tracing::instrument(
        target = "auth_trace",
        name = "warm_revocations",
        skip_all,
        fields(use_case = "warm_revocations")
    )]
    pub async fn warm_revocations(&self) -> Result<usize, AuthError> {
        let ticket = self.ports.cache.needs_warming().await?;
        let restored = self.copy_revocations().await?;
        if let Some(ticket) = ticket {
            self.ports.cache.warmed(ticket).await?;
        }
        Ok(restored)
    }

    /// Warms the cache again if it says it may lack revocations that storage holds (it lost
    /// its data, a revocation write to it failed, it could not be reached); until then it
    /// refuses revocation checks (fail closed). Run it every second or so and whenever the
    /// cache signals a loss. `None` when nothing was needed.
    pub async fn reconcile_revocations(&self) -> Result<Option<Rewarmed>, AuthError> {
        let Some(ticket) = self.ports.cache.needs_warming().await? else {
            return Ok(None);
        };
        let restored = self.copy_revocations().await?;
        let trusted = self.ports.cache.warmed(ticket).await?;
        Ok(Some(Rewarmed {
            reason: ticket.reason,
            restored,
            trusted,
        }))
    }

    /// Writes the revocations storage remembers to the cache; returns how many.
    async fn copy_revocations(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let since = now - self.policy.access_ttl - TimeDelta::seconds(1);
        let revoked = self.ports.store.revoked_since(since).await?;
        for (id, revoked_at) in &revoked {
            let until = *revoked_at + self.policy.access_ttl + TimeDelta::seconds(1);
            self.ports.cache.revoke_session(*id, until).await?;
        }
        let users = self.ports.store.user_revocations(now).await?;
        for (user, not_before, until) in &users {
            self.ports
                .cache
                .revoke_user_before(*user, *not_before, *until)
                .await?;
        }
        Ok(revoked.len() + users.len())
    }
}

/// What one [`AuthService::reconcile_revocations`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewarmed {
    /// Why the cache needed it.
    pub reason: ColdReason,
    /// Revocations copied from storage.
    pub restored: usize,
    /// Whether the cache is trusted again; `false` when it lost something while the copy
    /// ran (call again).
    pub trusted: bool,
}

impl Trail {
    /// Notes the session (and its user), and hands it on.
    fn seen(&mut self, session: SessionRecord) -> SessionRecord {
        self.user = Some(session.user_id);
        self.session = Some(session.id);
        session
    }
}

/// The session if it may still be used at `now`.
fn live(session: SessionRecord, now: Timestamp) -> Result<SessionRecord, AuthError> {
    if session.revoked_at.is_some() {
        return Err(AuthError::TokenRevoked);
    }
    if session.expires_at <= now {
        return Err(AuthError::TokenExpired);
    }
    Ok(session)
}
