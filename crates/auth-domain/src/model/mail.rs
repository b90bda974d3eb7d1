//! Mail: its kinds, a mail as rendered, and a mail as the outbox keeps it.

use secrecy::SecretString;
use uuid::Uuid;

use crate::types::{Email, Sealed, Timestamp};

use super::OneTimeTokenRecord;

/// Kinds of mail the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// Link to verify the address given at registration.
    VerifyEmail,
    /// Link to verify a new address given in the profile.
    ChangeEmail,
    /// Link to reset the password.
    ResetPassword,
    /// Someone tried to register with this address.
    RegistrationAttempt,
    /// The password was changed or reset.
    PasswordChanged,
    /// The email was changed (sent to the old address).
    EmailChanged,
    /// A change of email was requested (sent to the current address, before it changes).
    EmailChangeRequested,
    /// The account was locked after failed logins.
    AccountLocked,
    /// The account was deleted.
    AccountDeleted,
    /// An authenticator app (TOTP) was turned on as a second factor.
    TotpEnabled,
    /// The authenticator app (TOTP) was removed.
    TotpDisabled,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
    /// A recovery code was used.
    RecoveryCodeUsed,
}

impl MailKind {
    /// Stable name for storage, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
            Self::ResetPassword => "reset_password",
            Self::RegistrationAttempt => "registration_attempt",
            Self::PasswordChanged => "password_changed",
            Self::EmailChanged => "email_changed",
            Self::EmailChangeRequested => "email_change_requested",
            Self::AccountLocked => "account_locked",
            Self::AccountDeleted => "account_deleted",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    /// Default subject line.
    pub fn subject(self) -> &'static str {
        match self {
            Self::VerifyEmail => "Verify your email",
            Self::ChangeEmail => "Confirm your new email address",
            Self::ResetPassword => "Reset your password",
            Self::RegistrationAttempt => "Someone tried to register with your email",
            Self::PasswordChanged => "Your password was changed",
            Self::EmailChanged => "Your email address was changed",
            Self::EmailChangeRequested => "A change of your email address was requested",
            Self::AccountLocked => "Your account was locked",
            Self::AccountDeleted => "Your account was deleted",
            Self::TotpEnabled => "Two-step verification was turned on",
            Self::TotpDisabled => "Your authenticator app was removed",
            Self::PasskeyAdded => "A passkey was added to your account",
            Self::PasskeyRemoved => "A passkey was removed from your account",
            Self::RecoveryCodeUsed => "A recovery code was used to sign in",
        }
    }
}

/// A mail to send. Holds a token in its link: never log it outside a development mailer.
/// Its `Debug` form masks the recipient and hides the name and link.
#[derive(Clone)]
pub struct Mail {
    /// Recipient.
    pub to: Email,
    /// Recipient's first name, when known.
    pub name: Option<String>,
    /// What it says.
    pub kind: MailKind,
    /// The action link, if the kind has one.
    pub link: Option<SecretString>,
}

impl MailKind {
    /// Every kind, for templates and metrics.
    pub const ALL: [MailKind; 14] = [
        Self::VerifyEmail,
        Self::ChangeEmail,
        Self::ResetPassword,
        Self::RegistrationAttempt,
        Self::PasswordChanged,
        Self::EmailChanged,
        Self::EmailChangeRequested,
        Self::AccountLocked,
        Self::AccountDeleted,
        Self::TotpEnabled,
        Self::TotpDisabled,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::RecoveryCodeUsed,
    ];

    /// The kind with this stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A mail in the durable outbox. Everything that names the recipient or carries a token
/// is in `payload`, sealed; the rest is what a worker and an operator need to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    /// Id (UUID v7).
    pub id: Uuid,
    /// What it says.
    pub kind: MailKind,
    /// The sealed [`Mail`] (recipient, name, link).
    pub payload: Sealed,
    /// Queued.
    pub created_at: Timestamp,
    /// Delivery attempts so far; a claim counts the attempt it starts.
    pub attempts: u32,
}

/// A mail to write in the same transaction as the change that causes it, with the
/// single-use token its link carries (written in that transaction too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The mail.
    pub mail: OutboxMail,
    /// The token of its link, if it has one.
    pub token: Option<OneTimeTokenRecord>,
}

/// The state of the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Mails waiting to be sent (due or backing off, claimed or not).
    pub queued: u64,
    /// When the oldest of them was queued.
    pub oldest_queued_at: Option<Timestamp>,
    /// Mails given up on (kept, with their payload erased, until cleanup).
    pub dead: u64,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("name", &self.name.as_ref().map(|_| "***"))
            .field("kind", &self.kind)
            .field("link", &self.link.as_ref().map(|_| "***"))
            .finish()
    }
}
