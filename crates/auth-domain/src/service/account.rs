//! The signed-in user's own account: profile, password, sessions, deletion.

use crate::error::{AuthError, Validation};
use crate::model::{AccessClaims, MailKind, OneTimeKind, Profile, ProfileChanges, SessionView};
use crate::ports::{Keyring, SealedField, SessionStore, UserStore};
use crate::types::{Email, Password, PersonName, PhoneNumber, SessionId, UserId, Username};

use super::credentials::reauthenticated_write_failed;
use super::register::SecretPassword;
use super::{Adapters, AuthService, ClientContext, LinkMail};
use crate::events::{Event, Reauthentication};

/// Changes asked for in `PUT /users/profile`. `None` leaves a field alone; for the phone,
/// `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// New username.
    pub username: Option<String>,
    /// New first name.
    pub name: Option<String>,
    /// New surname.
    pub surname: Option<String>,
    /// New phone, or removal.
    pub phone_number: Option<Option<String>>,
    /// New email: takes effect once verified.
    pub email: Option<String>,
    /// The current password: required with a new email (re-authentication).
    pub current_password: Option<SecretPassword>,
}

/// The fields of a profile update, parsed; `None` leaves a field alone.
struct ParsedUpdate {
    username: Option<Username>,
    name: Option<PersonName>,
    surname: Option<PersonName>,
    /// `Some(None)` removes the phone.
    phone: Option<Option<PhoneNumber>>,
    /// An address other than the current one.
    new_email: Option<Email>,
}

impl<A: Adapters> AuthService<A> {
    /// The caller's profile.
    #[tracing::instrument(
        target = "auth_trace",
        name = "profile",
        skip_all,
        fields(use_case = "profile")
    )]
    pub async fn profile(&self, claims: &AccessClaims) -> Result<Profile, AuthError> {
        // Shown, not decided on: a read replica may answer (the caller's own writes
        // included).
        let user = self
            .ports
            .store
            .user_for_display(claims.user_id)
            .await?
            .ok_or(AuthError::TokenRevoked)?;
        self.profile_of(&user)
    }

    pub(crate) async fn current_user(
        &self,
        id: UserId,
    ) -> Result<crate::model::UserRecord, AuthError> {
        // A valid token whose account is gone was revoked by the deletion.
        self.ports
            .store
            .user_by_id(id)
            .await?
            .ok_or(AuthError::TokenRevoked)
    }

    /// Updates the profile. A new email needs the current password (a stolen access token
    /// alone must not be enough to take the account), is rate limited per account and per
    /// new address, is mailed a verification link, and only replaces the current one when
    /// verified; the current address is told at once. The answer does not say whether the
    /// new email is used by another account. Returns the profile and whether an email
    /// change is pending.
    ///
    /// Reports `EmailChangeRequested`, or `ReauthenticationFailed` when the password was
    /// wrong or the change rate limited.
    #[tracing::instrument(
        target = "auth_trace",
        name = "update_profile",
        skip_all,
        fields(use_case = "update_profile")
    )]
    pub async fn update_profile(
        &self,
        claims: &AccessClaims,
        update: ProfileUpdate,
        ctx: &ClientContext,
    ) -> Result<(Profile, bool), AuthError> {
        let result = self.update_profile_steps(claims, update).await;
        match &result {
            Ok((_, true)) => self.publish(
                Event::EmailChangeRequested {
                    user: claims.user_id,
                    session: claims.session_id,
                },
                ctx,
            ),
            Ok(_) => {}
            Err(err) => {
                self.reauthentication_refused(err, Reauthentication::ChangeEmail, claims, ctx);
            }
        }
        result
    }

    async fn update_profile_steps(
        &self,
        claims: &AccessClaims,
        update: ProfileUpdate,
    ) -> Result<(Profile, bool), AuthError> {
        let user = self.current_user(claims.user_id).await?;
        let current_email = self.open(SealedField::Email, &user.email_sealed)?;
        let mut parsed = Self::parse_profile_update(&update, &current_email)?;
        if let (Some(new_email), Some(password)) = (&parsed.new_email, &update.current_password) {
            self.reauthenticate(&user, password)
                .await
                .map_err(|err| match err {
                    AuthError::Validation(_) => AuthError::WrongPassword,
                    other => other,
                })?;
            self.throttle_email_change(user.id, new_email).await?;
        }
        parsed.username = parsed.username.filter(|u| u.as_str() != user.username);
        if let Some(wanted) = &parsed.username
            && parsed.new_email.is_some()
            && self
                .ports
                .store
                .user_by_username(&wanted.normalized())
                .await?
                .is_some_and(|other| other.id != user.id)
        {
            // Refused before the change-email mail takes its once-a-minute slot, so the
            // corrected request still gets its mail (the unique index decides races).
            return Err(AuthError::Conflict("username"));
        }
        let mail = match &parsed.new_email {
            Some(new_email) => self.change_email_mail(&user, new_email, &parsed).await?,
            None => None,
        };
        let changes = self.profile_changes(&user, &parsed)?;
        let updated = self
            .ports
            .store
            .update_profile(user.id, &changes, self.now(), mail.as_ref())
            .await
            .map_err(reauthenticated_write_failed)?;
        self.queued(mail.as_ref());
        let pending = parsed.new_email.is_some();
        if pending && let Ok(old) = Email::parse(&current_email) {
            let name = self.open(SealedField::Name, &updated.name_sealed).ok();
            let notice = self
                .notice(MailKind::EmailChangeRequested, &old, name)
                .await?;
            self.enqueue(notice).await?;
        }
        let profile = self.profile_of(&updated)?;
        Ok((profile, pending))
    }

    /// Parses every field present, reporting each bad one. A new email (one that differs
    /// from `current_email`) needs `current_password`, which is checked whenever present,
    /// so that a malformed one is refused alike with or without a new email.
    fn parse_profile_update(
        update: &ProfileUpdate,
        current_email: &str,
    ) -> Result<ParsedUpdate, AuthError> {
        let mut v = Validation::default();
        let mut parse = |field: &str, raw: &Option<String>| {
            raw.as_deref()
                .and_then(|raw| v.field(field, PersonName::parse(raw)))
        };
        let (name, surname) = (
            parse("name", &update.name),
            parse("surname", &update.surname),
        );
        let username = update
            .username
            .as_deref()
            .and_then(|raw| v.field("username", Username::parse(raw)));
        let phone = match &update.phone_number {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) if raw.trim().is_empty() => Some(None),
            Some(Some(raw)) => v.field("phone_number", PhoneNumber::parse(raw)).map(Some),
        };
        let new_email = update
            .email
            .as_deref()
            .and_then(|raw| v.field("email", Email::parse(raw)))
            .filter(|e| e.as_str() != current_email);
        if let Some(raw) = &update.current_password {
            v.field("current_password", Password::presented(&raw.0));
        }
        if new_email.is_some() && update.current_password.is_none() {
            v.add("current_password", "is required to change the email");
        }
        v.finish()?;
        Ok(ParsedUpdate {
            username,
            name,
            surname,
            phone,
            new_email,
        })
    }

    /// The verification link for a new email, to that address, by the first name the
    /// update leaves.
    async fn change_email_mail(
        &self,
        user: &crate::model::UserRecord,
        new_email: &Email,
        parsed: &ParsedUpdate,
    ) -> Result<Option<crate::model::Outgoing>, AuthError> {
        let first_name = match &parsed.name {
            Some(name) => name.as_str().to_owned(),
            None => self.open(SealedField::Name, &user.name_sealed)?,
        };
        let link = LinkMail {
            token_kind: OneTimeKind::ChangeEmail,
            mail_kind: MailKind::ChangeEmail,
            path: "verify-email",
            user: user.id,
            ttl: self.policy.verify_email_ttl,
            email_index: Some(self.email_index(new_email)),
        };
        self.link_mail(link, new_email, Some(first_name)).await
    }

    /// The update as storage writes it: personal data sealed, the phone with its index.
    fn profile_changes(
        &self,
        user: &crate::model::UserRecord,
        parsed: &ParsedUpdate,
    ) -> Result<ProfileChanges, AuthError> {
        let keys = &self.ports.keys;
        let seal_name = |n: &Option<PersonName>| {
            n.as_ref()
                .map(|n| self.seal(SealedField::Name, n.as_str()))
                .transpose()
        };
        let phone = match &parsed.phone {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some((
                keys.blind_index(crate::ports::IndexPurpose::Phone, p.as_str()),
                self.seal(SealedField::Phone, p.as_str())?,
            ))),
        };
        Ok(ProfileChanges {
            username: parsed
                .username
                .as_ref()
                .map(|u| (u.as_str().to_owned(), u.normalized())),
            name_sealed: seal_name(&parsed.name)?,
            surname_sealed: seal_name(&parsed.surname)?,
            phone,
            pending_email_sealed: parsed
                .new_email
                .as_ref()
                .map(|e| self.seal(SealedField::Email, e.as_str()))
                .transpose()?,
            // The password checked must still be the password when this is written.
            expected_password_version: parsed.new_email.as_ref().map(|_| user.password_version),
        })
    }

    /// The caller's live sessions, newest first.
    #[tracing::instrument(
        target = "auth_trace",
        name = "sessions",
        skip_all,
        fields(use_case = "sessions")
    )]
    pub async fn sessions(&self, claims: &AccessClaims) -> Result<Vec<SessionView>, AuthError> {
        let sessions = self
            .ports
            .store
            .active_sessions(claims.user_id, self.now())
            .await?;
        sessions
            .into_iter()
            .map(|s| {
                Ok(SessionView {
                    current: s.id == claims.session_id,
                    ip: s
                        .ip_sealed
                        .as_ref()
                        .map(|ip| self.open(SealedField::Ip, ip))
                        .transpose()?,
                    id: s.id,
                    created_at: s.created_at,
                    last_used_at: s.last_used_at,
                    expires_at: s.expires_at,
                    user_agent: s.user_agent,
                })
            })
            .collect()
    }

    /// Revokes one of the caller's sessions; another user's (or an unknown) id is `NotFound`.
    /// Reports `SessionRevoked`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "revoke_session",
        skip_all,
        fields(use_case = "revoke_session")
    )]
    pub async fn revoke_session(
        &self,
        claims: &AccessClaims,
        id: SessionId,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let session = self.ports.store.session(id).await?;
        match session {
            Some(s) if s.user_id == claims.user_id && s.revoked_at.is_none() => {
                self.revoke_sessions(&[id]).await?;
                self.publish(
                    Event::SessionRevoked {
                        user: claims.user_id,
                        session: id,
                    },
                    ctx,
                );
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }
}
