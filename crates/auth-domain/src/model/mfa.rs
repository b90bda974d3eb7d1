//! Second factors as stored: a TOTP authenticator, single-use recovery codes, passkeys; and
//! what a login waiting for its second factor keeps in the cache.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{BlindIndex, PasskeyId, Sealed, Timestamp, UserId};

/// A user's TOTP authenticator (RFC 6238). One per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Whose.
    pub user_id: UserId,
    /// The shared secret (raw bytes, base32 in the `otpauth://` URL), sealed.
    pub secret_sealed: Sealed,
    /// Enrolled (secret handed out).
    pub created_at: Timestamp,
    /// When the first code confirmed it: from then on, login requires a second factor.
    /// `None`: pending, not required at login, replaced by a new enrolment.
    pub confirmed_at: Option<Timestamp>,
}

/// A registered passkey (a WebAuthn credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Our id (UUID v7).
    pub id: PasskeyId,
    /// Whose.
    pub user_id: UserId,
    /// The authenticator's credential id (unique across accounts).
    pub credential_id: Vec<u8>,
    /// The name the user gave it, sealed.
    pub name_sealed: Sealed,
    /// The credential as the passkey port serializes it: public key, signature counter,
    /// flags. Never a private key.
    pub credential: String,
    /// The authenticator's signature counter as of the last use (0: it keeps none).
    pub sign_count: u32,
    /// Registered.
    pub created_at: Timestamp,
    /// Last used to sign in.
    pub last_used_at: Option<Timestamp>,
}

/// Everything stored about a user's second factors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaRecord {
    /// The TOTP authenticator, confirmed or pending.
    pub totp: Option<TotpRecord>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Passkeys, oldest first.
    pub passkeys: Vec<PasskeyRecord>,
}

impl MfaRecord {
    /// Whether a login must give a second factor: a confirmed TOTP or a passkey.
    pub fn required(&self) -> bool {
        self.totp_enabled() || !self.passkeys.is_empty()
    }

    /// Whether a confirmed TOTP authenticator is enrolled.
    pub fn totp_enabled(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed_at.is_some())
    }

    /// The methods a login can complete with, in the order the API lists them.
    pub fn methods(&self) -> Vec<MfaMethod> {
        let mut methods = Vec::new();
        if self.totp_enabled() {
            methods.push(MfaMethod::Totp);
        }
        if !self.passkeys.is_empty() {
            methods.push(MfaMethod::Passkey);
        }
        if self.required() && self.recovery_codes_left > 0 {
            methods.push(MfaMethod::RecoveryCode);
        }
        methods
    }
}

/// A way to complete a login's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    /// A code from an authenticator app.
    Totp,
    /// A passkey.
    Passkey,
    /// A single-use recovery code.
    RecoveryCode,
}

impl MfaMethod {
    /// Stable name (API, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// A recovery code as stored: a keyed hash of the user and the normalized code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeHash(pub BlindIndex);

/// A login whose password was right, waiting for its second factor: kept in the cache
/// under the hash of its `mfa_token`, for 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Whose.
    pub user: UserId,
    /// The password version the login checked: the session starts only while it holds.
    pub password_version: i64,
    /// The device id of a device token the login presented, if any (renewed at sign-in).
    pub device_id: Option<Uuid>,
    /// The lockout key the login counted its attempt under; wrong codes count there too.
    pub lock_key: String,
    /// When the token dies.
    pub expires_at: Timestamp,
}

/// What a WebAuthn ceremony in progress is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum CeremonyPurpose {
    /// Registering a passkey for a signed-in user.
    Register {
        /// Whose.
        user: UserId,
    },
    /// The second factor of a login (the hash, hex, of its `mfa_token`).
    SecondFactor {
        /// Whose.
        user: UserId,
        /// Hex of the `mfa_token`'s hash.
        mfa_token_hash: String,
    },
    /// Passwordless sign-in with a discoverable passkey.
    Passwordless,
}

/// A WebAuthn ceremony in progress: kept in the cache under its challenge id, 5 minutes,
/// single use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCeremony {
    /// What it is for.
    pub purpose: CeremonyPurpose,
    /// The passkey port's state (holds the challenge; no secret).
    pub state: String,
    /// When it dies.
    pub expires_at: Timestamp,
}
