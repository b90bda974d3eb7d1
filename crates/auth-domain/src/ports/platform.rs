//! The rest of the outside world: mail transport, time, randomness, password hashing,
//! token signing, keyed operations on personal data.

use std::error::Error as StdError;
use std::future::Future;

use crate::model::{AccessClaims, DeviceClaims, Mail};
use crate::types::{BlindIndex, Password, PasswordHash, PlainToken, Sealed, Timestamp, UserId};

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
    /// A recovery code, with its user: `"{user_id}:{normalized code}"`.
    RecoveryCode,
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
    /// The shared secret of a TOTP authenticator.
    TotpSecret,
    /// The name a user gave a passkey.
    PasskeyName,
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

/// TOTP (RFC 6238) arithmetic: SHA-1, 6 digits, 30-second steps. Pure computation; the
/// domain decides which steps it accepts and remembers which were used.
pub trait TotpCodec: Send + Sync + 'static {
    /// Whether `code` is the code of `secret` at time step `step` (Unix time / 30),
    /// compared in constant time. A code that is not 6 ASCII digits never matches.
    fn matches(&self, secret: &[u8], step: u64, code: &str) -> bool;
    /// The code of `secret` at `step` (tests, and authenticators in examples).
    fn code_at(&self, secret: &[u8], step: u64) -> String;
    /// The `otpauth://totp/{issuer}:{account}?secret=…&issuer=…` URL an authenticator
    /// app scans, with the secret in base32 (no padding).
    fn otpauth_url(&self, secret: &[u8], issuer: &str, account: &str) -> String;
    /// The secret in base32 (no padding), as the URL carries it.
    fn secret_base32(&self, secret: &[u8]) -> String;
}

/// A WebAuthn ceremony's start: what the browser gets, what the server keeps.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The JSON form of `PublicKeyCredentialCreationOptions` or
    /// `PublicKeyCredentialRequestOptions` (binary members base64url), as
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`
    /// take it.
    pub options: serde_json::Value,
    /// Opaque state to keep (in the cache) until the ceremony finishes.
    pub state: String,
}

/// A credential a registration ceremony produced.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// The credential to store (see [`crate::model::PasskeyRecord::credential`]).
    pub credential: String,
    /// Its signature counter.
    pub sign_count: u32,
}

/// A successful assertion with a stored passkey.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    /// The credential to store from now on (counter and flags updated).
    pub credential: String,
    /// The new signature counter.
    pub sign_count: u32,
}

/// Who an assertion says it is, before it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionIdentity {
    /// The credential id the authenticator used.
    pub credential_id: Vec<u8>,
    /// The user handle it returned (a discoverable credential returns one), as the user
    /// id it was registered with.
    pub user: Option<UserId>,
}

/// Why a passkey ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The browser's response cannot be read (not the JSON WebAuthn defines): a 400.
    #[error("malformed passkey response: {0}")]
    Malformed(String),
    /// The response is well formed but does not verify: wrong challenge, origin or
    /// relying party, bad signature, a signature counter that went backwards, a credential
    /// not allowed. The reason is for the log, never for the client.
    #[error("passkey refused: {0}")]
    Refused(String),
    /// Passkeys are not enabled on this service (no usable relying party configured).
    #[error("passkeys are not enabled")]
    Disabled,
    /// Anything else (a bug, an unreadable stored credential).
    #[error(transparent)]
    Port(#[from] PortError),
}

/// WebAuthn ceremonies for one relying party (id, origin, name fixed by the adapter).
pub trait PasskeyCeremonies: Send + Sync + 'static {
    /// Starts registering a passkey for `user` (its user handle is the user id), asking
    /// for a discoverable credential and user verification, and excluding the credential
    /// ids the user already has.
    fn start_registration(
        &self,
        user: UserId,
        username: &str,
        exclude: &[Vec<u8>],
    ) -> Result<Ceremony, PasskeyError>;
    /// Verifies the browser's `RegistrationResponseJSON` against the state kept by
    /// [`Self::start_registration`].
    fn finish_registration(
        &self,
        state: &str,
        response: &serde_json::Value,
    ) -> Result<NewPasskey, PasskeyError>;
    /// Starts an authentication with one of `credentials` (stored credentials of one user,
    /// as [`crate::model::PasskeyRecord::credential`]); with none, a discoverable
    /// authentication (passwordless: the authenticator chooses the credential).
    fn start_authentication(&self, credentials: &[String]) -> Result<Ceremony, PasskeyError>;
    /// The credential id and user handle an `AuthenticationResponseJSON` names, unverified:
    /// which stored passkey to verify it with.
    fn identify(&self, response: &serde_json::Value) -> Result<AssertionIdentity, PasskeyError>;
    /// Verifies an `AuthenticationResponseJSON` against the state kept by
    /// [`Self::start_authentication`] and the stored `credential` it names: challenge,
    /// origin, relying party, user verification, signature, and a signature counter that
    /// moved forward (unless the authenticator keeps none).
    fn finish_authentication(
        &self,
        state: &str,
        response: &serde_json::Value,
        credential: &str,
    ) -> Result<PasskeyUse, PasskeyError>;
}
