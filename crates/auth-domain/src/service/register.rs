//! Registration and email verification.

use secrecy::{ExposeSecret, SecretString};

use crate::error::{AuthError, Validation};
use crate::model::{MailKind, OneTimeKind, OneTimeTokenRecord, PendingFor, UserRecord};
use crate::ports::{
    IndexPurpose, Keyring, OneTimeTokenStore, PasswordHasher, SealedField, StoreError, Taken,
    UserStore,
};
use crate::types::{Email, Password, PersonName, PhoneNumber, PlainToken, UserId, Username};

use super::{Action, Adapters, AuthService, ClientContext, EmailVerified, LinkMail};
use crate::events::Event;

/// A registration as received.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Email.
    pub email: String,
    /// Username.
    pub username: String,
    /// Password (clear; parsed here).
    pub password: SecretPassword,
    /// First name.
    pub name: String,
    /// Surname.
    pub surname: String,
    /// Optional phone.
    pub phone_number: Option<String>,
}

/// A registration's fields, parsed.
struct Parsed {
    email: Email,
    username: Username,
    password: Password,
    name: PersonName,
    surname: PersonName,
    phone: Option<PhoneNumber>,
}

/// A password field as received, before parsing; its Debug form hides it.
#[derive(Clone, Default)]
pub struct SecretPassword(pub String);

impl From<SecretString> for SecretPassword {
    fn from(secret: SecretString) -> Self {
        Self(secret.expose_secret().to_owned())
    }
}

impl std::fmt::Debug for SecretPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The answer to a registration. For an email that is already registered it is the same:
/// its id is that of a pending registration for a taken email (see
/// [`crate::model::PendingFor`]), which can never be verified; the owner is mailed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Id.
    pub id: UserId,
    /// Username as typed.
    pub username: String,
    /// Normalized email.
    pub email: String,
    /// First name.
    pub name: String,
    /// Surname.
    pub surname: String,
}

impl<A: Adapters> AuthService<A> {
    /// Registers an account and mails a verification link. A taken username is
    /// `Conflict("username")`; a taken email is indistinguishable from success (see
    /// [`Registered`]): same answer, same work (one bcrypt, one insert with one mail).
    ///
    /// Counts the per-IP and per-email limits.
    #[tracing::instrument(
        target = "auth_trace",
        name = "register",
        skip_all,
        fields(use_case = "register")
    )]
    pub async fn register(
        &self,
        input: Registration,
        ctx: &ClientContext,
    ) -> Result<Registered, AuthError> {
        self.throttle_client(Action::Register, ctx, Some(&input.email))
            .await?;
        let parsed = self.parse_registration(&input)?;
        let (email, username) = (&parsed.email, &parsed.username);

        let store = &self.ports.store;
        if store
            .user_by_username(&username.normalized())
            .await?
            .is_some()
        {
            return Err(AuthError::Conflict("username"));
        }
        let email_index = self.email_index(email);
        let password_tag = self.password_tag(&parsed.password);
        let password_hash = self.ports.hasher.hash(parsed.password.clone()).await?;
        let answer = Registered {
            id: UserId(self.new_uuid()?),
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            name: parsed.name.as_str().to_owned(),
            surname: parsed.surname.as_str().to_owned(),
        };
        let record = self.user_record(answer.id, &parsed, &email_index, password_hash)?;

        if store.user_by_email(&email_index).await?.is_none() {
            let mail = self
                .link_mail(
                    self.verification_link(record.id),
                    email,
                    Some(answer.name.clone()),
                )
                .await?;
            match store.insert_user(&record, mail.as_ref()).await {
                Ok(()) => {
                    self.queued(mail.as_ref());
                    return Ok(answer);
                }
                // Another registration took the email meanwhile: this one is pending too.
                Err(StoreError::Taken(Taken::Email)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.register_pending(record, email, email_index, password_tag)
            .await?;
        Ok(answer)
    }

    /// The account a registration creates: personal data sealed, not verified yet.
    fn user_record(
        &self,
        id: UserId,
        parsed: &Parsed,
        email_index: &crate::types::BlindIndex,
        password_hash: crate::types::PasswordHash,
    ) -> Result<UserRecord, AuthError> {
        let (username, email, phone) = (&parsed.username, &parsed.email, &parsed.phone);
        let (name, surname) = (&parsed.name, &parsed.surname);
        let now = self.now();
        let keys = &self.ports.keys;
        Ok(UserRecord {
            id,
            username: username.as_str().to_owned(),
            username_normalized: username.normalized(),
            email_index: email_index.clone(),
            email_sealed: self.seal(SealedField::Email, email.as_str())?,
            phone_index: phone
                .as_ref()
                .map(|p| keys.blind_index(IndexPurpose::Phone, p.as_str())),
            phone_sealed: phone
                .as_ref()
                .map(|p| self.seal(SealedField::Phone, p.as_str()))
                .transpose()?,
            name_sealed: self.seal(SealedField::Name, name.as_str())?,
            surname_sealed: self.seal(SealedField::Name, surname.as_str())?,
            password_hash,
            email_verified_at: None,
            pending_email_sealed: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            password_version: 0,
            pending_for: None,
        })
    }

    /// Parses every field of a registration, reporting each bad one.
    fn parse_registration(&self, input: &Registration) -> Result<Parsed, AuthError> {
        let mut v = Validation::default();
        let email = v.field("email", Email::parse(&input.email));
        let username = v.field("username", Username::parse(&input.username));
        let password = v.field("password", Password::parse(&input.password.0));
        let name = v.field("name", PersonName::parse(&input.name));
        let surname = v.field("surname", PersonName::parse(&input.surname));
        let phone = match input.phone_number.as_deref().map(str::trim) {
            Some(raw) if !raw.is_empty() => v.field("phone_number", PhoneNumber::parse(raw)),
            _ => None,
        };
        if let (Some(pass), Some(user), Some(mail)) = (&password, &username, &email) {
            let inputs = [user.as_str(), mail.as_str(), &input.name, &input.surname];
            v.field("password", self.policy.password.check(pass, &inputs));
        }
        v.finish()?;
        match (email, username, password, name, surname) {
            (Some(email), Some(username), Some(password), Some(name), Some(surname)) => {
                Ok(Parsed {
                    email,
                    username,
                    password,
                    name,
                    surname,
                    phone,
                })
            }
            _ => Err(AuthError::Validation(Default::default())),
        }
    }

    /// Stores a registration whose email is taken as pending, so that it answers like a
    /// fresh one everywhere (its username is reserved, its password logs in to
    /// `email_not_verified`, it expires unverified), and mails the owner instead.
    async fn register_pending(
        &self,
        mut record: UserRecord,
        email: &Email,
        email_index: crate::types::BlindIndex,
        password_tag: u16,
    ) -> Result<(), AuthError> {
        let store = &self.ports.store;
        let keys = &self.ports.keys;
        record.pending_for = Some(PendingFor {
            email_index,
            password_tag,
        });
        record.email_index = keys.blind_index(
            IndexPurpose::Email,
            &format!("pending-registration:{}", record.id),
        );
        let notice = self
            .notice(MailKind::RegistrationAttempt, email, None)
            .await?;
        store.insert_user(&record, notice.as_ref()).await?;
        self.queued(notice.as_ref());
        Ok(())
    }

    /// Consumes an email-verification token (from registration or from an email change).
    ///
    /// Counts the per-IP limit; reports `EmailVerified`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "verify_email",
        skip_all,
        fields(use_case = "verify_email")
    )]
    pub async fn verify_email(
        &self,
        raw_token: &str,
        ctx: &ClientContext,
    ) -> Result<EmailVerified, AuthError> {
        self.throttle_client(Action::VerifyEmail, ctx, None).await?;
        if raw_token.trim().is_empty() {
            let mut v = Validation::default();
            v.add("token", "is required");
            v.finish()?;
        }
        let token = PlainToken::presented(raw_token).map_err(|_| AuthError::InvalidToken)?;
        let hash = token.hash();
        let store = &self.ports.store;
        let kind = if store
            .find_one_time(&hash, OneTimeKind::VerifyEmail)
            .await?
            .is_some()
        {
            OneTimeKind::VerifyEmail
        } else {
            OneTimeKind::ChangeEmail
        };
        let record = self.consume_one_time(&token, kind).await?;
        let email_changed = kind == OneTimeKind::ChangeEmail;
        if email_changed {
            self.apply_email_change(&record).await?;
        } else {
            store
                .mark_email_verified(record.user_id, self.now())
                .await
                .map_err(|err| match err {
                    StoreError::NotFound => AuthError::InvalidToken,
                    other => other.into(),
                })?;
        }
        self.publish(
            Event::EmailVerified {
                user: record.user_id,
                email_changed,
            },
            ctx,
        );
        Ok(EmailVerified {
            user: record.user_id,
            email_changed,
        })
    }

    /// Makes the pending email the email, if it is still the address this link was mailed
    /// to: a link for an earlier pending address never confirms a later one.
    async fn apply_email_change(&self, token: &OneTimeTokenRecord) -> Result<(), AuthError> {
        let user_id = token.user_id;
        let store = &self.ports.store;
        let user = store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let pending = user
            .pending_email_sealed
            .as_ref()
            .ok_or(AuthError::InvalidToken)?;
        let new_email = Email::parse(&self.open(SealedField::Email, pending)?)
            .map_err(|_| AuthError::InvalidToken)?;
        let old_email = Email::parse(&self.open(SealedField::Email, &user.email_sealed)?).ok();
        let index = self.email_index(&new_email);
        if token.email_index.as_ref() != Some(&index) {
            return Err(AuthError::InvalidToken);
        }
        let sealed = self.seal(SealedField::Email, new_email.as_str())?;
        let mail = match old_email {
            Some(old) => {
                let name = self.open(SealedField::Name, &user.name_sealed).ok();
                self.notice(MailKind::EmailChanged, &old, name).await?
            }
            None => None,
        };
        // Only while the pending email is still the one checked above: a reset that cancelled
        // it, or a later change that replaced it, wins over this link.
        store
            .apply_email_change(
                user_id,
                &index,
                &sealed,
                self.now(),
                mail.as_ref(),
                Some(pending),
            )
            .await
            .map_err(|err| match err {
                StoreError::Stale | StoreError::NotFound => AuthError::InvalidToken,
                other => other.into(),
            })?;
        self.queued(mail.as_ref());
        Ok(())
    }

    /// Mails a new verification link if the address belongs to an unverified account.
    /// Answers the same, after the same work, whether or not it does: the request is queued
    /// as it is, and the outbox relay looks the address up when it delivers.
    ///
    /// Counts the per-IP and per-email limits.
    #[tracing::instrument(
        target = "auth_trace",
        name = "resend_verification",
        skip_all,
        fields(use_case = "resend_verification")
    )]
    pub async fn resend_verification(
        &self,
        raw_email: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        self.throttle_client(Action::ResendVerification, ctx, Some(raw_email))
            .await?;
        let email = Self::email_field(raw_email)?;
        self.request_link_mail(MailKind::VerifyEmail, &email).await
    }

    fn verification_link(&self, user: UserId) -> LinkMail<'static> {
        LinkMail {
            token_kind: OneTimeKind::VerifyEmail,
            mail_kind: MailKind::VerifyEmail,
            path: "verify-email",
            user,
            ttl: self.policy.verify_email_ttl,
            email_index: None,
        }
    }

    /// Checks and consumes a single-use token: unknown or used → `InvalidToken`, expired →
    /// `TokenExpired`, a lost race → `InvalidToken`.
    pub(crate) async fn consume_one_time(
        &self,
        token: &PlainToken,
        kind: OneTimeKind,
    ) -> Result<crate::model::OneTimeTokenRecord, AuthError> {
        let record = self.peek_one_time(token, kind).await?;
        let consumed = self
            .ports
            .store
            .consume_one_time(&record.hash, kind, self.now())
            .await?;
        consumed.ok_or(AuthError::InvalidToken)
    }

    /// Checks a single-use token without consuming it.
    pub(crate) async fn peek_one_time(
        &self,
        token: &PlainToken,
        kind: OneTimeKind,
    ) -> Result<crate::model::OneTimeTokenRecord, AuthError> {
        let record = self
            .ports
            .store
            .find_one_time(&token.hash(), kind)
            .await?
            .filter(|r| r.used_at.is_none())
            .ok_or(AuthError::InvalidToken)?;
        if record.expires_at <= self.now() {
            return Err(AuthError::TokenExpired);
        }
        Ok(record)
    }
}
