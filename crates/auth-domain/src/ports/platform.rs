//! The rest of the outside world: mail transport, time, randomness, password hashing,
//! token signing, keyed operations on personal data.

use std::error::Error as StdError;
use std::future::Future;

use crate::model::{AccessClaims, DeviceClaims, Mail};
use crate::types::{BlindIndex, Password, PasswordHash, PlainToken, Sealed, Timestamp};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

use super::PortError;

/// Why a mail was not delivered. The error MUST NOT hold the recipient, the name or the
/// link: it is logged.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later: the server is unreachable, timed out, refused the login, or
    /// answered with a temporary (4xx) failure.
    #[error("delivery failed, will retry")]
    Transient(#[source] BoxError),
    /// The server refused this message for good (a permanent 5xx answer to the recipient
    /// or the content): retrying cannot help.
    #[error("delivery refused")]
    Permanent(#[source] BoxError),
}

/// Delivers mail (SMTP, a log, a test mailbox). Called by the outbox worker only, never
/// on a request's path.
pub trait MailTransport: Send + Sync + 'static {
    /// Delivers one mail, or says why not.
    fn send(&self, mail: &Mail) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// The time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Cryptographic randomness.
pub trait Randomness: Send + Sync + 'static {
    /// Fills `buf` with unpredictable bytes; fails only if the system source fails.
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError>;
}

/// Password hashing. Implementations MUST run the work off the async workers with bounded
/// concurrency, and MUST take the same time for an unknown user (`hash` = `None`) as for a
/// wrong password.
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a new password.
    fn hash(
        &self,
        password: Password,
    ) -> impl Future<Output = Result<PasswordHash, PortError>> + Send;
    /// Whether the password matches; `None` compares against a fallback hash and is false.
    fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Whether a stored hash should be replaced (its cost differs from the configured one).
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
}

/// Why a presented JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Well-formed and correctly signed, but past `exp`.
    #[error("token expired")]
    Expired,
    /// Anything else: bad signature, algorithm, issuer, audience, type, `nbf`, shape.
    #[error("invalid token")]
    Invalid,
}

/// Signs and verifies the service's JWTs. Verification MUST allow only the configured
/// algorithms and keys (by `kid`), and check `exp`, `nbf`, `iss`, `aud` and the type.
pub trait TokenCodec: Send + Sync + 'static {
    /// Signs an access token.
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, PortError>;
    /// Verifies an access token at `now`.
    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenRejection>;
    /// Signs a device token.
    fn issue_device(&self, claims: &DeviceClaims) -> Result<String, PortError>;
    /// Verifies a device token at `now`.
    fn verify_device(&self, token: &str, now: Timestamp) -> Result<DeviceClaims, TokenRejection>;
}

/// Purposes of blind indexes: the same value indexed for two purposes gives unrelated
/// indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPurpose {
    /// Email look-up and uniqueness.
    Email,
    /// Phone look-up.
    Phone,
    /// Rate-limit and lockout keys for a login identifier.
    Identifier,
    /// The password tag of a pending registration (see [`crate::model::PendingFor`]).
    PendingPassword,
}

/// Fields that are sealed; each is authenticated with its own associated data, so a
/// ciphertext moved to another column does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedField {
    /// Email (current or pending).
    Email,
    /// Phone.
    Phone,
    /// First name or surname.
    Name,
    /// Client IP of a session.
    Ip,
    /// The payload of a queued mail.
    Mail,
}

/// Keyed operations on personal data and tokens, with keys the domain never sees.
pub trait Keyring: Send + Sync + 'static {
    /// Keyed hash of a normalized value (deterministic).
    fn blind_index(&self, purpose: IndexPurpose, normalized: &str) -> BlindIndex;
    /// Authenticated encryption with a fresh nonce.
    fn seal(&self, field: SealedField, plaintext: &str) -> Result<Sealed, PortError>;
    /// Decrypts and authenticates.
    fn open(&self, field: SealedField, sealed: &Sealed) -> Result<String, PortError>;
    /// The successor of a refresh token: a keyed, deterministic function of it, so that
    /// every request presenting the same token within the reuse interval gets the same
    /// successor without the service storing any token in a recoverable form.
    fn successor(&self, presented: &PlainToken) -> PlainToken;
}
