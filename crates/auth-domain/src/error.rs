//! The business outcomes a use case can end in, other than success.

use std::collections::BTreeMap;

use crate::policy::RateDecision;
use crate::ports::{PortError, StoreError, Taken};
use crate::types::Invalid;

/// An error and its causes on one line (`outer: cause: root cause`), for messages and
/// logs: the one place the workspace walks a cause chain.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// Field name → messages, for `validation_failed`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Collects per-field validation messages.
#[derive(Debug, Default)]
pub struct Validation(FieldErrors);

impl Validation {
    /// Parses a required field, recording the message on failure.
    pub fn field<T>(&mut self, name: &str, parsed: Result<T, Invalid>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(Invalid(msg)) => {
                self.add(name, msg);
                None
            }
        }
    }

    /// Records a message for a field.
    pub fn add(&mut self, name: &str, msg: &str) {
        self.0
            .entry(name.to_owned())
            .or_default()
            .push(msg.to_owned());
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), AuthError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Validation(self.0))
        }
    }
}

/// Every way a use case can fail. The HTTP layer maps each variant to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input refused, per field.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Wrong identifier or password (indistinguishable on purpose).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Re-authentication (change password, delete account) with a wrong password.
    #[error("wrong password")]
    WrongPassword,
    /// Correct password, but the email is not verified yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// The identifier is locked after failed logins.
    #[error("account locked")]
    AccountLocked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// Too many requests.
    #[error("rate limited")]
    RateLimited(RateDecision),
    /// A token past its expiry.
    #[error("token expired")]
    TokenExpired,
    /// A token that was revoked (logout, password change, account deletion…).
    #[error("token revoked")]
    TokenRevoked,
    /// A rotated refresh token presented after the reuse interval: the family is revoked.
    #[error("refresh token reused")]
    TokenReused,
    /// A token that is not one of ours, or used already.
    #[error("invalid token")]
    InvalidToken,
    /// A wrong second-factor code (TOTP or recovery code), or a passkey that did not
    /// verify, for a login waiting for its second factor or a change that asks for one.
    #[error("invalid mfa code")]
    InvalidMfaCode,
    /// The request does not fit the account's second factors as they are (a TOTP enrolment
    /// when one is enabled, a confirmation with nothing pending…); the text says which.
    #[error("{0}")]
    MfaState(&'static str),
    /// The username (or, on an email change, the email) is taken.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// No such resource for this user.
    #[error("not found")]
    NotFound,
    /// A dependency is down; retry later.
    #[error("service unavailable")]
    Unavailable(#[source] PortError),
    /// A bug or broken invariant; the cause is for the log only.
    #[error("unexpected failure")]
    Unexpected(#[source] PortError),
}

impl AuthError {
    /// `validation_failed` with one message on one field.
    pub fn invalid_field(field: &str, message: &str) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.to_owned()]);
        Self::Validation(errors)
    }

    /// The stable problem code clients get for this outcome (the HTTP layer's `code`, the
    /// `reason` of events).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InvalidCredentials | Self::WrongPassword => "invalid_credentials",
            Self::EmailNotVerified => "email_not_verified",
            Self::AccountLocked { .. } => "account_locked",
            Self::RateLimited(_) => "rate_limited",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::TokenReused => "token_reused",
            Self::InvalidToken => "invalid_token",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::Conflict(_) | Self::MfaState(_) => "conflict",
            Self::NotFound => "not_found",
            Self::Unavailable(_) => "service_unavailable",
            Self::Unexpected(_) => "internal",
        }
    }
}

impl From<PortError> for AuthError {
    fn from(err: PortError) -> Self {
        match err {
            PortError::Unavailable(_) => Self::Unavailable(err),
            PortError::Unexpected(_) => Self::Unexpected(err),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Taken(Taken::Username) => Self::Conflict("username"),
            StoreError::Taken(Taken::Email) => Self::Conflict("email"),
            StoreError::Taken(Taken::Credential) => Self::Conflict("passkey"),
            StoreError::NotFound => Self::NotFound,
            // Each use case that writes with a compare-and-set says what losing it means;
            // one that reaches here did not expect to lose one.
            StoreError::Stale => {
                Self::Unexpected(PortError::unexpected("a compare-and-set lost unexpectedly"))
            }
            StoreError::Port(port) => port.into(),
        }
    }
}
