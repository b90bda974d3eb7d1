//! Entities as storage keeps them, and the values the use cases return.

mod mail;
mod mfa;
mod tokens;

pub use mail::*;
pub use mfa::*;
pub use tokens::*;

use crate::types::{BlindIndex, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId};

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
