//! Entities as storage keeps them, and the values the use cases return.

use secrecy::SecretString;
use uuid::Uuid;

use crate::types::{
    BlindIndex, Email, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};

/// An account as stored. Personal values are sealed; email and phone also have a blind
/// index for look-ups and uniqueness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Id (UUID v7).
    pub id: UserId,
    /// Username as typed.
    pub username: String,
    /// Lower-cased username; unique.
    pub username_normalized: String,
    /// Blind index of the normalized email; unique.
    pub email_index: BlindIndex,
    /// Sealed normalized email.
    pub email_sealed: Sealed,
    /// Blind index of the normalized phone number.
    pub phone_index: Option<BlindIndex>,
    /// Sealed phone number.
    pub phone_sealed: Option<Sealed>,
    /// Sealed first name.
    pub name_sealed: Sealed,
    /// Sealed surname.
    pub surname_sealed: Sealed,
    /// bcrypt over the keyed pre-hash.
    pub password_hash: PasswordHash,
    /// When the email was verified.
    pub email_verified_at: Option<Timestamp>,
    /// A new email waiting for verification, sealed.
    pub pending_email_sealed: Option<Sealed>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// Goes up by one each time the password is set (change, reset). A session, a rehash
    /// or a password change is written only while the version is still the one read when
    /// the password was checked: a login that races a reset never outlives it.
    pub password_version: i64,
    /// Set on a *pending registration for a taken email*: a registration whose email
    /// another account already holds. It is stored like a fresh, unverified account (it
    /// reserves its username, its password logs in to `email_not_verified`, it expires
    /// like an unverified account) so that no answer tells the two cases apart, but it can
    /// never be verified and holds no email of its own (`email_index` is unique to it).
    pub pending_for: Option<PendingFor>,
}

/// What a pending registration for a taken email was registered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFor {
    /// Blind index of the taken email, so a login by that email finds the registration.
    pub email_index: BlindIndex,
    /// A 16-bit keyed tag of the registration's password. A login by email picks the one
    /// candidate (the account or a pending registration) whose password it may be without
    /// running bcrypt for each, so it costs one hash whatever exists; 16 bits identify no
    /// password (65,536 passwords share each tag) and the key never leaves the keyring.
    pub password_tag: u16,
}

impl UserRecord {
    /// Whether this row is a pending registration for a taken email.
    pub fn is_pending_registration(&self) -> bool {
        self.pending_for.is_some()
    }
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New username (as typed, normalized).
    pub username: Option<(String, String)>,
    /// New sealed first name.
    pub name_sealed: Option<Sealed>,
    /// New sealed surname.
    pub surname_sealed: Option<Sealed>,
    /// New phone (index, sealed), or `Some(None)` to remove it.
    pub phone: Option<Option<(BlindIndex, Sealed)>>,
    /// A new email to verify before it takes effect.
    pub pending_email_sealed: Option<Sealed>,
    /// Apply only while the password version is this one (the change was authorised by
    /// checking that password): `StoreError::Stale` otherwise.
    pub expected_password_version: Option<i64>,
}

/// A session: one refresh-token family on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Id (UUID v7), the `sid` claim of its access tokens.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Started.
    pub created_at: Timestamp,
    /// Last login or refresh.
    pub last_used_at: Timestamp,
    /// Absolute end; refresh does not extend it.
    pub expires_at: Timestamp,
    /// User-Agent of the login, truncated.
    pub user_agent: Option<String>,
    /// Client IP of the login, sealed.
    pub ip_sealed: Option<Sealed>,
    /// When it was revoked (logout, theft, password change…).
    pub revoked_at: Option<Timestamp>,
}

/// The result of presenting a refresh token to [`crate::ports::SessionStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This call won: the presented token is now rotated and the successor stored.
    Rotated(SessionRecord),
    /// The token had been rotated before (by another call or earlier).
    AlreadyRotated {
        /// Its session, as it is now.
        session: SessionRecord,
        /// When it was rotated.
        rotated_at: Timestamp,
    },
    /// No such token.
    Unknown,
}

/// Kinds of single-use tokens sent by mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OneTimeKind {
    /// Verifies the email given at registration.
    VerifyEmail,
    /// Verifies a new email given in the profile.
    ChangeEmail,
    /// Resets a forgotten password.
    ResetPassword,
}

impl OneTimeKind {
    /// Every kind.
    pub const ALL: [OneTimeKind; 3] = [Self::VerifyEmail, Self::ChangeEmail, Self::ResetPassword];

    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "verify_email" => Some(Self::VerifyEmail),
            "change_email" => Some(Self::ChangeEmail),
            "reset_password" => Some(Self::ResetPassword),
            _ => None,
        }
    }
}

/// A single-use token as stored (by hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it is for.
    pub kind: OneTimeKind,
    /// Whose it is.
    pub user_id: UserId,
    /// Issued.
    pub created_at: Timestamp,
    /// Dead after this.
    pub expires_at: Timestamp,
    /// When it was used, if it was.
    pub used_at: Option<Timestamp>,
    /// For an email change: the blind index of the address the link was mailed to. The
    /// change applies only while that address is still the pending one, so a link mailed
    /// for an earlier pending address never confirms a later one.
    pub email_index: Option<BlindIndex>,
}

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
    pub const ALL: [MailKind; 9] = [
        Self::VerifyEmail,
        Self::ChangeEmail,
        Self::ResetPassword,
        Self::RegistrationAttempt,
        Self::PasswordChanged,
        Self::EmailChanged,
        Self::EmailChangeRequested,
        Self::AccountLocked,
        Self::AccountDeleted,
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

/// Claims of an access token that the service issues and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`.
    pub user_id: UserId,
    /// `sid`.
    pub session_id: SessionId,
    /// `jti`.
    pub jti: Uuid,
    /// `username` (as at issue time).
    pub username: String,
    /// `iat` (whole seconds).
    pub issued_at: Timestamp,
    /// `exp` (whole seconds).
    pub expires_at: Timestamp,
}

/// Claims of a device token: proof that this device logged in as this user before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClaims {
    /// Whose device.
    pub user_id: UserId,
    /// Random id of the device.
    pub device_id: Uuid,
    /// End of validity.
    pub expires_at: Timestamp,
}

/// What the cache knows of the revocation of one access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RevocationState {
    /// Its `jti` is denylisted.
    pub token_revoked: bool,
    /// Its session is revoked.
    pub session_revoked: bool,
    /// Tokens of its user issued before this are revoked.
    pub user_not_before: Option<Timestamp>,
}

/// Why a shared revocation list may lack revocations that storage holds, and so must be
/// warmed (taught them again) before it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdReason {
    /// This instance has not warmed it yet (it just started).
    Unwarmed,
    /// The list lost its data: a restart of a server that keeps nothing on disk, a flush,
    /// an eviction.
    Emptied,
    /// A different server answers now (a restart or a failover), which may have lost the
    /// latest writes.
    Replaced,
    /// This instance could not reach the list for a while: another instance's revocation
    /// may have been lost meanwhile.
    Unreachable,
    /// A revocation this instance recorded in storage could not be written to the list.
    WriteFailed,
}

impl ColdReason {
    /// Stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unwarmed => "unwarmed",
            Self::Emptied => "emptied",
            Self::Replaced => "replaced",
            Self::Unreachable => "unreachable",
            Self::WriteFailed => "write_failed",
        }
    }
}

/// Handed out by [`crate::ports::RevocationList::needs_warming`] and handed back,
/// unchanged, to [`crate::ports::RevocationList::warmed`] once the revocations storage
/// remembers are copied: it lets the list tell whether it lost anything while the copy ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmTicket {
    /// Why the list needs warming.
    pub reason: ColdReason,
    /// The adapter's own bookkeeping (e.g. counters of losses), opaque to the domain.
    pub stamp: [u64; 2],
}

/// A user's profile, decrypted for its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Id.
    pub id: UserId,
    /// Username as typed.
    pub username: String,
    /// Email.
    pub email: String,
    /// First name.
    pub name: String,
    /// Surname.
    pub surname: String,
    /// Phone, if given.
    pub phone_number: Option<String>,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// A new email waiting for verification.
    pub pending_email: Option<String>,
}

/// A session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Id.
    pub id: SessionId,
    /// Started.
    pub created_at: Timestamp,
    /// Last login or refresh.
    pub last_used_at: Timestamp,
    /// Absolute end.
    pub expires_at: Timestamp,
    /// User-Agent of the login.
    pub user_agent: Option<String>,
    /// IP of the login.
    pub ip: Option<String>,
    /// Whether it is the session of the token that asked.
    pub current: bool,
}

/// A fresh access and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The signed access token.
    pub access_token: SecretString,
    /// The opaque refresh token.
    pub refresh_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The session they belong to.
    pub session_id: SessionId,
}
