//! Forgotten passwords.

use crate::error::{AuthError, Validation};
use crate::model::{MailKind, OneTimeKind};
use crate::ports::{PasswordHasher, StoreError, UserStore};
use crate::types::{Password, PlainToken, UserId};

use super::register::SecretPassword;
use super::{Action, Adapters, AuthService, ClientContext};
use crate::events::Event;

impl<A: Adapters> AuthService<A> {
    /// Mails a reset link if the address belongs to an account. Answers the same, after
    /// the same work, whether or not it does: the request is queued as it is, and the
    /// outbox relay looks the address up when it delivers (no account: nothing is sent).
    ///
    /// Counts the per-IP and per-email limits.
    #[tracing::instrument(
        target = "auth_trace",
        name = "forgot_password",
        skip_all,
        fields(use_case = "forgot_password")
    )]
    pub async fn forgot_password(
        &self,
        raw_email: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        self.throttle_client(Action::ForgotPassword, ctx, Some(raw_email))
            .await?;
        let email = Self::email_field(raw_email)?;
        self.request_link_mail(MailKind::ResetPassword, &email)
            .await
    }

    /// Sets a new password with a reset token (single use) and ends every session. The
    /// token proves control of the mailbox, so it also verifies the email. Returns whose
    /// password it was.
    ///
    /// Counts the per-IP limit; reports `PasswordReset`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "reset_password",
        skip_all,
        fields(use_case = "reset_password")
    )]
    pub async fn reset_password(
        &self,
        raw_token: &str,
        new_password: SecretPassword,
        ctx: &ClientContext,
    ) -> Result<UserId, AuthError> {
        self.throttle_client(Action::ResetPassword, ctx, None)
            .await?;
        let mut v = Validation::default();
        let token = match PlainToken::presented(raw_token) {
            Ok(token) => Some(token),
            Err(_) if raw_token.trim().is_empty() => {
                v.add("token", "is required");
                None
            }
            Err(_) => None,
        };
        let password = v.field("new_password", Password::parse(&new_password.0));
        v.finish()?;
        let (Some(token), Some(password)) = (token, password) else {
            return Err(AuthError::InvalidToken);
        };
        let record = self
            .peek_one_time(&token, OneTimeKind::ResetPassword)
            .await?;
        let user = self
            .ports
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let profile = self.profile_of(&user)?;
        self.check_new_password(&password, &profile)?;

        self.consume_one_time(&token, OneTimeKind::ResetPassword)
            .await?;
        let hash = self.ports.hasher.hash(password).await?;
        let store = &self.ports.store;
        let mail = self
            .notice_to_profile(MailKind::PasswordChanged, &profile)
            .await?;
        // Only over the password read above: of two resets (or a reset and a change) that
        // race, one wins and the other's link is dead, as every other outstanding link is.
        store
            .set_password(
                user.id,
                &hash,
                self.now(),
                mail.as_ref(),
                Some(user.password_version),
            )
            .await
            .map_err(|err| match err {
                StoreError::Stale | StoreError::NotFound => AuthError::InvalidToken,
                other => other.into(),
            })?;
        self.queued(mail.as_ref());
        if user.email_verified_at.is_none() {
            store.mark_email_verified(user.id, self.now()).await?;
        }
        self.revoke_everything(user.id).await?;
        self.publish(Event::PasswordReset { user: user.id }, ctx);
        Ok(user.id)
    }
}
