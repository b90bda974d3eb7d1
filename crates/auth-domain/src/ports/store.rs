//! Durable storage: users, sessions and refresh tokens, single-use tokens, the outbox.

use std::future::Future;

use uuid::Uuid;

use crate::model::{
    MfaRecord, OneTimeKind, OneTimeTokenRecord, OutboxMail, OutboxStats, Outgoing, PasskeyRecord,
    ProfileChanges, RecoveryCodeHash, Rotation, SessionRecord, TotpRecord, UserRecord,
};
use crate::types::{
    BlindIndex, PasskeyId, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};

use super::{PortError, StoreError};

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
    /// The account with this id, to show it to its owner (the profile): an adapter with
    /// read replicas may answer from one, as of at least the last write it made for this
    /// account and at most its replica lag bound behind (decision record 0012). Never for
    /// a decision (a password check, a version compare): use [`UserStore::user_by_id`].
    fn user_for_display(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<UserRecord>, PortError>> + Send {
        self.user_by_id(id)
    }
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
    /// Deletes the account and, in the same transaction, its sessions, refresh tokens,
    /// one-time tokens and second factors (TOTP, recovery codes, passkeys). Returns whether it existed; the mail is written only if it did.
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
    /// Shown to the user, never used for a decision: an adapter with read replicas may
    /// answer from one, as [`UserStore::user_for_display`] may.
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

/// Second factors: a TOTP authenticator, recovery codes (by keyed hash only), passkeys
/// (public keys with their signature counter). [`UserStore::delete_user`] deletes them
/// with the account.
///
/// Methods that take `mail: Option<&Outgoing>` write it to the outbox in the same
/// transaction as the change, and only if the change happened.
pub trait MfaStore: Send + Sync + 'static {
    /// Everything stored about the user's second factors (empty for an unknown user).
    fn mfa(&self, user: UserId) -> impl Future<Output = Result<MfaRecord, PortError>> + Send;
    /// Whether a login of the user must give a second factor: a confirmed TOTP
    /// authenticator or a passkey, as [`MfaRecord::required`] says of [`Self::mfa`]. Asked
    /// at every login with the right password, so an adapter answers it with one cheap
    /// query.
    fn second_factor_enabled(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<bool, PortError>> + Send {
        async move { Ok(self.mfa(user).await?.required()) }
    }
    /// Stores a pending TOTP authenticator (`confirmed_at` = `None`), replacing a pending
    /// one. `Stale`, changing nothing, if the user has a confirmed one; `NotFound` if the
    /// account is gone.
    fn set_pending_totp(
        &self,
        totp: &TotpRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Confirms the user's pending TOTP authenticator, only while its secret is still
    /// `secret` (the one the caller checked the code against), and in the same
    /// transaction replaces every recovery code of the user with `codes`. `Stale`,
    /// changing nothing, if there is no pending authenticator with that secret (confirmed,
    /// replaced or removed meanwhile).
    fn confirm_totp(
        &self,
        user: UserId,
        secret: &Sealed,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes the user's TOTP authenticator (confirmed or pending); when no passkey is
    /// left either, the recovery codes go too. Returns whether a confirmed authenticator
    /// was removed (the mail is written only then).
    fn delete_totp(
        &self,
        user: UserId,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Replaces every recovery code of the user with `codes` (the old set dies).
    /// `NotFound` if the account is gone.
    fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Atomically marks the user's unused recovery code with this hash used at `now`.
    /// Returns whether it did: of concurrent calls with one code, at most one gets `true`
    /// (a conditional update whose row count decides). The mail is written only then.
    fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Stores a new passkey. `Taken(Credential)` if its credential id is registered
    /// already (to any account); `NotFound` if the account is gone.
    fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The passkey with this credential id, whoever's it is.
    fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> impl Future<Output = Result<Option<PasskeyRecord>, PortError>> + Send;
    /// Records a sign-in with the passkey: stores `credential`, `sign_count` and
    /// `last_used_at` = `now`, only while its signature counter is still `expected_count`
    /// (the one the assertion was checked against): `Stale`, changing nothing, otherwise
    /// (another sign-in with a cloned authenticator won). `NotFound` if it is gone.
    fn record_passkey_use(
        &self,
        id: PasskeyId,
        credential: &str,
        sign_count: u32,
        expected_count: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes the user's passkey with this id; when it was the user's last factor (no
    /// other passkey, no confirmed TOTP authenticator), the recovery codes go too. Returns
    /// whether it existed and was the user's (another user's id deletes nothing); the mail
    /// is written only then.
    fn delete_passkey(
        &self,
        user: UserId,
        id: PasskeyId,
        mail: Option<&Outgoing>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Everything the domain stores durably.
pub trait Store: UserStore + SessionStore + OneTimeTokenStore + OutboxStore + MfaStore {
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
