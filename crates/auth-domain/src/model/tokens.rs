//! Tokens: access and device claims, the revocation list's view, a token pair.

use secrecy::SecretString;
use uuid::Uuid;

use crate::types::{SessionId, Timestamp, UserId};

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
    /// Every reason, for metrics registered before the first event.
    pub const ALL: [ColdReason; 5] = [
        Self::Unwarmed,
        Self::Emptied,
        Self::Replaced,
        Self::Unreachable,
        Self::WriteFailed,
    ];

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
