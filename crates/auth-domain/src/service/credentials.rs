//! Re-authenticated changes: the password, the account's deletion, and the checks an email
//! change shares with them.

use crate::error::{AuthError, Validation};
use crate::events::{Event, Reauthentication};
use crate::model::{AccessClaims, MailKind, Profile};
use crate::ports::{PasswordHasher, RateLimiter, RevocationList, StoreError, UserStore};
use crate::types::{Email, Password, UserId};

use super::register::SecretPassword;
use super::{Adapters, AuthService, ClientContext};

impl<A: Adapters> AuthService<A> {
    /// Counts an email change against the account's limit and the new address's limit.
    pub(crate) async fn throttle_email_change(
        &self,
        user: UserId,
        to: &Email,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let limit = self.policy.rate.email_change;
        let keys = [
            format!("rl:change_email:user:{user}"),
            format!("rl:change_email:to:{}", self.email_index(to).to_hex()),
        ];
        for key in keys {
            let decision = self.ports.cache.hit(&key, limit, now).await?;
            if !decision.allowed {
                return Err(AuthError::RateLimited(decision));
            }
        }
        Ok(())
    }

    /// Re-authenticates the caller with their password (`WrongPassword` if it is wrong).
    pub(crate) async fn reauthenticate(
        &self,
        user: &crate::model::UserRecord,
        raw: &SecretPassword,
    ) -> Result<(), AuthError> {
        let mut v = Validation::default();
        let presented = v.field("password", Password::presented(&raw.0));
        v.finish()?;
        let Some(presented) = presented else {
            return Err(AuthError::WrongPassword);
        };
        // Whoever holds an access token must not get unlimited password guesses: the
        // per-identifier limit applies to re-authentication, keyed by the account.
        let key = format!("rl:reauthenticate:user:{}", user.id);
        let decision = self
            .ports
            .cache
            .hit(&key, self.policy.rate.per_identifier, self.now())
            .await?;
        if !decision.allowed {
            return Err(AuthError::RateLimited(decision));
        }
        if self
            .ports
            .hasher
            .verify(presented, Some(user.password_hash.clone()))
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::WrongPassword)
        }
    }

    /// Changes the password after checking the current one; ends the user's other sessions.
    /// Reports `PasswordChanged` or `ReauthenticationFailed`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "change_password",
        skip_all,
        fields(use_case = "change_password")
    )]
    pub async fn change_password(
        &self,
        claims: &AccessClaims,
        current: SecretPassword,
        new: SecretPassword,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let result = self.change_password_steps(claims, current, new).await;
        match &result {
            Ok(()) => self.publish(
                Event::PasswordChanged {
                    user: claims.user_id,
                    session: claims.session_id,
                },
                ctx,
            ),
            Err(err) => {
                self.reauthentication_refused(err, Reauthentication::ChangePassword, claims, ctx);
            }
        }
        result
    }

    async fn change_password_steps(
        &self,
        claims: &AccessClaims,
        current: SecretPassword,
        new: SecretPassword,
    ) -> Result<(), AuthError> {
        let user = self.current_user(claims.user_id).await?;
        let mut v = Validation::default();
        if current.0.is_empty() {
            v.add("current_password", "is required");
        }
        let new_password = v.field("new_password", Password::parse(&new.0));
        v.finish()?;
        self.reauthenticate(&user, &current)
            .await
            .map_err(|err| match err {
                AuthError::Validation(_) => AuthError::WrongPassword,
                other => other,
            })?;
        let Some(new_password) = new_password else {
            return Err(AuthError::WrongPassword);
        };
        let profile = self.profile_of(&user)?;
        self.check_new_password(&new_password, &profile)?;

        let hash = self.ports.hasher.hash(new_password).await?;
        let mail = self
            .notice_to_profile(MailKind::PasswordChanged, &profile)
            .await?;
        // Only over the password that was checked: a reset committed meanwhile wins, and
        // the current password presented here is then no longer the password.
        self.ports
            .store
            .set_password(
                user.id,
                &hash,
                self.now(),
                mail.as_ref(),
                Some(user.password_version),
            )
            .await
            .map_err(reauthenticated_write_failed)?;
        self.queued(mail.as_ref());
        self.revoke_other_sessions(user.id, Some(claims.session_id))
            .await
    }

    /// A notice (no link) to the profile's address, by its first name.
    pub(crate) async fn notice_to_profile(
        &self,
        kind: MailKind,
        profile: &Profile,
    ) -> Result<Option<crate::model::Outgoing>, AuthError> {
        match Email::parse(&profile.email) {
            Ok(email) => self.notice(kind, &email, Some(profile.name.clone())).await,
            Err(_) => Ok(None),
        }
    }

    /// Deletes the account after re-authentication: personal data erased, every session and
    /// token revoked, email and username free again. Reports `AccountDeleted` or
    /// `ReauthenticationFailed`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "delete_account",
        skip_all,
        fields(use_case = "delete_account")
    )]
    pub async fn delete_account(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let result = self.delete_account_steps(claims, password).await;
        match &result {
            Ok(()) => self.publish(
                Event::AccountDeleted {
                    user: claims.user_id,
                    session: claims.session_id,
                },
                ctx,
            ),
            Err(err) => {
                self.reauthentication_refused(err, Reauthentication::DeleteAccount, claims, ctx);
            }
        }
        result
    }

    async fn delete_account_steps(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
    ) -> Result<(), AuthError> {
        let user = self.current_user(claims.user_id).await?;
        self.reauthenticate(&user, &password).await?;
        let profile = self.profile_of(&user)?;
        self.revoke_everything(user.id).await?;
        self.ports
            .cache
            .revoke_token(claims.jti, claims.expires_at.max(self.now()))
            .await?;
        let mail = self
            .notice_to_profile(MailKind::AccountDeleted, &profile)
            .await?;
        // Only while the password checked above is still the password: a reset committed
        // meanwhile (the owner taking the account back) wins.
        self.ports
            .store
            .delete_user(user.id, mail.as_ref(), Some(user.password_version))
            .await
            .map_err(reauthenticated_write_failed)?;
        self.queued(mail.as_ref());
        Ok(())
    }

    /// Reports a refused re-authenticated change: a wrong password, or a rate limit (also
    /// reported as `RateLimited`). Other failures are not the caller's guesses.
    pub(crate) fn reauthentication_refused(
        &self,
        err: &AuthError,
        change: Reauthentication,
        claims: &AccessClaims,
        ctx: &ClientContext,
    ) {
        let reason = match err {
            AuthError::WrongPassword => "invalid_credentials",
            AuthError::RateLimited(_) => {
                self.publish(
                    Event::RateLimited {
                        action: change.as_str(),
                    },
                    ctx,
                );
                "rate_limited"
            }
            _ => return,
        };
        self.publish(
            Event::ReauthenticationFailed {
                change,
                reason,
                user: claims.user_id,
                session: claims.session_id,
            },
            ctx,
        );
    }
}

/// A write authorised by a re-authentication failed: the password checked was replaced
/// meanwhile (`Stale`: it is no longer the password) or the account is gone (the token
/// that asked was revoked by the deletion).
pub(crate) fn reauthenticated_write_failed(err: StoreError) -> AuthError {
    match err {
        StoreError::Stale => AuthError::WrongPassword,
        StoreError::NotFound => AuthError::TokenRevoked,
        other => other.into(),
    }
}
