//! The ports: what the domain needs from the outside world, with the contract every
//! adapter MUST keep. Adapters turn library errors into [`PortError`] (or a business
//! variant where the contract names one); they never panic on I/O.
//!
//! Async methods return `impl Future + Send` so a service generic over its ports runs on a
//! multi-threaded runtime; adapters implement them with plain `async fn`.

use std::error::Error as StdError;
use std::future::Future;

use uuid::Uuid;

use crate::model::{
    AccessClaims, DeviceClaims, Mail, OneTimeKind, OneTimeTokenRecord, OutboxMail, OutboxStats,
    Outgoing, ProfileChanges, RevocationState, Rotation, SessionRecord, UserRecord, WarmTicket,
};
use crate::policy::{AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit};
use crate::types::{
    BlindIndex, Password, PasswordHash, PlainToken, Sealed, SessionId, Timestamp, TokenHash, UserId,
};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of an adapter that is not a business outcome.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The backing service cannot be reached or is overloaded: retrying later may work.
    #[error("dependency unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, corrupt data, a broken invariant.
    #[error("unexpected adapter failure")]
    Unexpected(#[source] BoxError),
}

impl PortError {
    /// Wraps an error as [`PortError::Unexpected`].
    pub fn unexpected(err: impl Into<BoxError>) -> Self {
        Self::Unexpected(err.into())
    }

    /// Wraps an error as [`PortError::Unavailable`].
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }
}

/// Which unique value a new or changed account collided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The normalized username.
    Username,
    /// The email blind index.
    Email,
}

/// Storage failures that the use cases handle.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already used by another account.
    #[error("{0:?} already taken")]
    Taken(Taken),
    /// The row to change does not exist (any more).
    #[error("not found")]
    NotFound,
    /// A compare-and-set lost: the row changed since it was read (e.g. the password version
    /// moved on), so nothing was written.
    #[error("changed since read")]
    Stale,
    /// Any other failure.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Accounts.
///
/// Methods that take `mail: Option<&Outgoing>` write that mail to the outbox (and its
/// link's single-use token) in the same transaction as the change: both are stored or
/// neither is.
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a new account. MUST return `Taken(Username)` / `Taken(Email)` when the
    /// normalized username / email index is used by another account, also when two inserts
    /// race (decided by a unique index, never by a read before the write).
    fn insert_user(
        &self,
        user: &UserRecord,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The account with this id.
    fn user_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<UserRecord>, PortError>> + Send;
    /// The account whose email has this blind index.
    fn user_by_email(
        &self,
        index: &BlindIndex,
    ) -> impl Future<Output = Result<Option<UserRecord>, PortError>> + Send;
    /// The account with this normalized username (a pending registration for a taken
    /// email included: it holds its username like any account).
    fn user_by_username(
        &self,
        normalized: &str,
    ) -> impl Future<Output = Result<Option<UserRecord>, PortError>> + Send;
    /// The newest pending registration for the taken email `email_index` whose password
    /// tag is `password_tag` (see [`crate::model::PendingFor`]).
    fn pending_registration(
        &self,
        email_index: &BlindIndex,
        password_tag: u16,
    ) -> impl Future<Output = Result<Option<UserRecord>, PortError>> + Send;
    /// Applies profile changes and returns the account as stored. MUST return
    /// `Taken(Username)` on a username collision, `NotFound` if the account is gone, and
    /// `Stale` (changing nothing) if `changes.expected_password_version` is set and the
    /// password version differs.
    fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<UserRecord, StoreError>> + Send;
    /// Sets a new password (change or reset), in one transaction: replaces the hash, adds
    /// one to the password version, marks every unused reset and change-email token of the
    /// user used at `now` and clears the pending email (whoever held the old password or
    /// an old link loses what it gave them). With `expected_version`, only while the
    /// version is that one: `Stale` otherwise, changing nothing. `NotFound` if the account
    /// is gone.
    fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
        mail: Option<&Outgoing>,
        expected_version: Option<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces the hash of the same password (a cost change), only while the password
    /// version is `expected_version`, and without changing the version: `Stale` otherwise
    /// (a rehash never overwrites a password set meanwhile). `NotFound` if the account is
    /// gone.
    fn rehash_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        expected_version: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Marks the email verified (idempotent). `NotFound` if the account is gone.
    fn mark_email_verified(
        &self,
        id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes the pending email the email, verified, and clears the pending one; in the same
    /// transaction marks every other unused single-use token of the user used at `now`
    /// (links mailed to the old address die with it). MUST return `Taken(Email)` if
    /// another account has that index by now. With `expected_pending`, only while the
    /// pending email is still that sealed value (the one the caller read and checked the
    /// link against): `Stale`, changing nothing, if a reset cancelled it or another change
    /// replaced it meanwhile.
    fn apply_email_change(
        &self,
        id: UserId,
        index: &BlindIndex,
        sealed: &Sealed,
        now: Timestamp,
        mail: Option<&Outgoing>,
        expected_pending: Option<&Sealed>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a successful login.
    fn record_login(
        &self,
        id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes the account and, in the same transaction, its sessions, refresh tokens and
    /// one-time tokens. Returns whether it existed; the mail is written only if it did.
    /// With `expected_password_version`, only while the password version is that one (the
    /// deletion was authorised by checking that password): `Stale`, deleting nothing,
    /// if the account exists at another version.
    fn delete_user(
        &self,
        id: UserId,
        mail: Option<&Outgoing>,
        expected_password_version: Option<i64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Sessions and their refresh tokens (stored by hash only).
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session with its first refresh token.
    fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// A login's session: in one transaction, records the login (`last_login_at` =
    /// `session.created_at`) only while the user's password version is `password_version`
    /// (the password the login checked is still the password), then stores the session and
    /// its first refresh token. `Stale` (nothing stored) if the version moved on, as when
    /// a reset committed while the login was hashing; `NotFound` if the account is gone.
    fn create_login_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
        password_version: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Presents a refresh token. Atomically: if `presented` is live (never rotated), marks it
    /// rotated at `now`, stores `successor` in its session (idempotently: storing the same
    /// successor twice is not an error), sets the session's `last_used_at`, and returns
    /// `Rotated`. Of any number of concurrent calls with one token, exactly one MUST get
    /// `Rotated` (a conditional update whose row count decides, never read-then-write).
    /// A token rotated before gives `AlreadyRotated` with its rotation time. The session is
    /// returned as stored: revocation and expiry are for the caller to judge.
    fn rotate_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        now: Timestamp,
    ) -> impl Future<Output = Result<Rotation, PortError>> + Send;
    /// The session with this id.
    fn session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<Option<SessionRecord>, PortError>> + Send;
    /// The user's sessions that are neither revoked nor expired at `now`, newest first.
    fn active_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, PortError>> + Send;
    /// Revokes one session (idempotent). Returns whether it was live.
    fn revoke_session(
        &self,
        id: SessionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Revokes every live session of the user but `except`; returns the ids revoked.
    fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, PortError>> + Send;
    /// Remembers that the user's tokens issued before `not_before` are revoked, until
    /// `until`: across restarts, and after the account (and so its sessions) is deleted.
    /// A later call with an earlier time MUST NOT move the mark back.
    fn revoke_user_tokens(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The marks of [`Self::revoke_user_tokens`] still in force at `now`:
    /// `(user, not_before, until)`.
    fn user_revocations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<(UserId, Timestamp, Timestamp)>, PortError>> + Send;
    /// Sessions revoked at or after `since`, with their revocation time: lets a fresh
    /// in-process cache learn revocations that happened before a restart.
    fn revoked_since(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<(SessionId, Timestamp)>, PortError>> + Send;
}

/// Single-use tokens sent by mail (stored by hash only).
pub trait OneTimeTokenStore: Send + Sync + 'static {
    /// Stores a new token.
    fn insert_one_time(
        &self,
        token: &OneTimeTokenRecord,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The token with this hash and kind, used or not, expired or not.
    fn find_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
    ) -> impl Future<Output = Result<Option<OneTimeTokenRecord>, PortError>> + Send;
    /// Atomically marks the token used if it is unused and unexpired at `now`, and returns
    /// it; of concurrent calls, at most one gets `Some`.
    fn consume_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<OneTimeTokenRecord>, PortError>> + Send;
}

/// How long a dead mail (payload erased) stays visible to operators before cleanup
/// deletes it.
pub const DEAD_MAIL_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// The durable outbox: mails written with the change that causes them, delivered by a
/// worker. Payloads are sealed by the domain; adapters store them as given.
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues a mail (and its link's token) in one transaction, due at once.
    fn enqueue_mail(&self, mail: &Outgoing) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Claims up to `limit` queued mails due at `now`, the earliest due first. In one
    /// transaction each claimed mail gets `attempts + 1` and becomes leased (due at
    /// `now + lease`), so no other claim returns it while the lease runs; if the worker
    /// dies, it is claimed again when the lease ends (a living worker renews it, see
    /// [`Self::renew_mail_leases`]). Of concurrent claims by any number of workers and
    /// instances, no two MUST return the same mail (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    /// Returns the mails with their attempts counted. A row this build cannot read (e.g. a
    /// kind added by a newer version during a rolling deploy) MUST NOT fail the claim: it
    /// is left out of the result (and so claimed again when its lease ends).
    fn claim_mail(
        &self,
        now: Timestamp,
        lease: chrono::TimeDelta,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OutboxMail>, PortError>> + Send;
    /// The mail was delivered: deletes it, payload included. Idempotent.
    fn mail_sent(&self, id: Uuid) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Delivery failed and will be retried: the mail becomes due at `retry_at`, no longer
    /// leased.
    ///
    /// This and the two methods below are fenced by the claim: they change the mail only
    /// while its `attempts` is still the `attempts` the claim returned and it is not dead,
    /// so a worker whose lease ran out never undoes the work of the worker that claimed
    /// the mail after it. Each returns whether it changed the mail.
    fn mail_retry(
        &self,
        id: Uuid,
        attempts: u32,
        retry_at: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Delivery failed for good: the mail is marked dead at `now`, is never claimed
    /// again, and its payload is erased. Fenced like [`Self::mail_retry`].
    fn mail_dead(
        &self,
        id: Uuid,
        attempts: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// The claim is given back without an attempt (a worker stopping): the mail is due at
    /// `now` again, no longer leased, and its `attempts` goes back to `attempts - 1`.
    /// Fenced like [`Self::mail_retry`].
    fn mail_release(
        &self,
        id: Uuid,
        attempts: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// The worker still holds these claims: each `(id, attempts)` (as its claim returned
    /// them) whose mail is still leased under that claim (its `attempts` unchanged, not
    /// dead, and neither sent, retried nor released since) becomes due at `now + lease`.
    /// Fenced like [`Self::mail_retry`]: a claim that lost its mail to a later claim
    /// renews nothing, and a renewal that comes after the mail was retried or released
    /// does not move its due time. Returns the ids whose lease it extended.
    fn renew_mail_leases(
        &self,
        claims: &[(Uuid, u32)],
        now: Timestamp,
        lease: chrono::TimeDelta,
    ) -> impl Future<Output = Result<Vec<Uuid>, PortError>> + Send;
    /// Ends every lease: each mail a claim holds (claimed, and neither sent, retried,
    /// released nor dead since) becomes due at `now`, its attempt still counted (its
    /// worker may have delivered it before it went away). Only for a store that one
    /// process owns (SQLite), at its start, before its worker runs: every lease then
    /// belongs to a worker that is gone. Mails waiting for a retry and dead mails are left
    /// as they are. Returns how many mails it gave back.
    fn release_all_leases(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, PortError>> + Send;
    /// Queue depth, the oldest queued mail, and the dead count.
    fn outbox_stats(&self) -> impl Future<Output = Result<OutboxStats, PortError>> + Send;
}

/// What one [`Store::cleanup`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Sessions (each with its refresh tokens).
    pub sessions: u64,
    /// Single-use tokens.
    pub one_time_tokens: u64,
    /// Users' "not before" marks.
    pub user_revocations: u64,
    /// Dead mails older than [`DEAD_MAIL_RETENTION`].
    pub dead_mails: u64,
    /// Accounts never verified (pending registrations for taken emails included) that
    /// expired.
    pub unverified_users: u64,
}

/// Everything the domain stores durably.
pub trait Store: UserStore + SessionStore + OneTimeTokenStore + OutboxStore {
    /// Cheap round trip for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes what can no longer serve at `now`: sessions (with their refresh tokens) past
    /// their expiry, or revoked before `revoked_before` (a revoked session must be kept as
    /// long as [`SessionStore::revoked_since`] may be asked about it); single-use tokens
    /// expired or used; users' "not before" marks past their `until`; dead mails marked
    /// dead before `now - DEAD_MAIL_RETENTION`; accounts whose email was never verified
    /// created before `unverified_before` (with their tokens). MUST NOT delete queued
    /// mails, verified accounts, or anything still usable. Returns what it deleted.
    fn cleanup(
        &self,
        now: Timestamp,
        revoked_before: Timestamp,
        unverified_before: Timestamp,
    ) -> impl Future<Output = Result<CleanupReport, PortError>> + Send;
}

/// The access-token denylist and "not before" marks. Entries MUST live until `until` (the
/// latest expiry of a token they can concern) and MAY be dropped after.
///
/// Storage is the authority on revoked sessions and users' marks; the list is what token
/// verification reads, without a storage query. A list shared by instances can miss
/// revocations that storage holds (it lost its data, or a write to it failed after storage
/// recorded the revocation), so it tells when it must be *warmed* (taught again what
/// storage remembers, see `AuthService::reconcile_revocations`) and refuses to answer
/// revocation checks until then.
pub trait RevocationList: Send + Sync + 'static {
    /// Denylists one token by `jti`.
    fn revoke_token(
        &self,
        jti: Uuid,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Refuses every token of the session.
    fn revoke_session(
        &self,
        id: SessionId,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Refuses the user's tokens issued before `not_before`; a later call with an earlier
    /// time MUST NOT move the mark back.
    fn revoke_user_before(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Everything known about one token, in one round trip. MUST fail with
    /// [`PortError::Unavailable`] (so the token is refused: fail closed) while the list may
    /// lack revocations, i.e. while [`Self::needs_warming`] would give a ticket; the check
    /// MUST NOT cost another round trip.
    fn revocation_state(
        &self,
        jti: Uuid,
        session: SessionId,
        user: UserId,
    ) -> impl Future<Output = Result<RevocationState, PortError>> + Send;
    /// A ticket when the list may lack revocations that storage holds: it was never warmed
    /// by this instance, lost its data, is served by another server than before, could not
    /// be reached, or a revocation write to it failed. `None` when it is complete as far as
    /// it can tell. After a failed revocation write a shared list MUST first make every
    /// instance refuse revocation checks until one has warmed it (the others may not know
    /// of the lost write). A list that lives and dies with its process, and is warmed at
    /// start before the service serves, MAY always answer `None`.
    fn needs_warming(&self) -> impl Future<Output = Result<Option<WarmTicket>, PortError>> + Send;
    /// Says that every revocation storage remembered when `ticket` was handed out has been
    /// written to the list since. Returns whether the list is trusted again: `false` when
    /// it lost something meanwhile (another write failed, it was emptied), and must be
    /// warmed again with a new ticket.
    fn warmed(&self, ticket: WarmTicket) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Rate limiting.
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request under `key` and decides, atomically, by [`crate::policy::gcra`].
    fn hit(
        &self,
        key: &str,
        policy: RateLimit,
        now: Timestamp,
    ) -> impl Future<Output = Result<RateDecision, PortError>> + Send;
}

/// Consecutive-failure counters for lockout.
pub trait AttemptCounter: Send + Sync + 'static {
    /// The state of `key` (default when unknown).
    fn attempts(&self, key: &str) -> impl Future<Output = Result<AttemptState, PortError>> + Send;
    /// Atomically applies [`LockoutPolicy::after_failure`] to `key` and returns the new state.
    fn record_failure(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> impl Future<Output = Result<AttemptState, PortError>> + Send;
    /// Reserves one attempt before the password is checked, so that concurrent attempts
    /// cannot all pass a check made before any of them failed. Atomically: if `key` is
    /// locked at `now`, changes nothing and returns `counted: false` with the state;
    /// otherwise applies [`LockoutPolicy::after_failure`] (the attempt counts as a failure
    /// until [`Self::record_success`] says otherwise; it may lock the key) and returns
    /// `counted: true` with the new state.
    fn reserve_attempt(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
    ) -> impl Future<Output = Result<AttemptReservation, PortError>> + Send;
    /// Atomically applies [`LockoutPolicy::after_success_lifting`] to `key`: failures
    /// forgotten, and `lifted` (the lock a reserved attempt set, if it set one) undone if
    /// it is still the lock in force.
    fn record_success(
        &self,
        key: &str,
        policy: &LockoutPolicy,
        now: Timestamp,
        lifted: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Everything the domain keeps in a cache shared by instances.
pub trait Cache: RevocationList + RateLimiter + AttemptCounter {
    /// Cheap round trip for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}

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
