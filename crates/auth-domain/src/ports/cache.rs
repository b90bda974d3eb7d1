//! The cache: the revocation list, rate limits, lockout attempt counters.

use std::future::Future;

use uuid::Uuid;

use crate::model::{RevocationState, WarmTicket};
use crate::policy::{AttemptReservation, AttemptState, LockoutPolicy, RateDecision, RateLimit};
use crate::types::{SessionId, Timestamp, UserId};

use super::PortError;

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

/// Short-lived values shared by instances: logins waiting for their second factor,
/// WebAuthn challenges, used TOTP steps. Every entry has an expiry: it MUST NOT be
/// returned (or count as present) at or after it, judged by the `now` passed in, and MAY be
/// dropped after it. Keys are the caller's; the adapter may prefix them.
pub trait EphemeralStore: Send + Sync + 'static {
    /// Stores `value` under `key` until `expires_at`, replacing what was there.
    fn put_ephemeral(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The value under `key`, if it has not expired at `now`.
    fn get_ephemeral(
        &self,
        key: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send;
    /// Atomically removes the value under `key` and returns it if it had not expired at
    /// `now`: of concurrent calls, at most one gets `Some` (single use).
    fn take_ephemeral(
        &self,
        key: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send;
    /// Atomically marks `key` used until `expires_at` if it is not (or its mark expired at
    /// `now`): `true` when this call marked it. Of concurrent calls, at most one gets
    /// `true` (a TOTP step accepted once).
    fn claim_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Atomically adds one to the counter under `key` and returns its new value. A new
    /// counter (none, or expired at `now`) starts at 1 and expires at `expires_at`; later
    /// increments keep its first expiry.
    fn increment(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, PortError>> + Send;
    /// Removes `key` (idempotent).
    fn remove_ephemeral(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Everything the domain keeps in a cache shared by instances.
pub trait Cache: RevocationList + RateLimiter + AttemptCounter + EphemeralStore {
    /// Cheap round trip for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}
