//! The storage adapters this binary can run on, chosen at start by `DATABASE_URL`.
//!
//! An enum rather than a trait object: the ports use `impl Future` (not object-safe), and a
//! match per call costs nothing next to a query.
//!
//! Every write that queues a mail also wakes this instance's outbox worker, so mail goes
//! out at once instead of at the next poll.

use std::sync::Arc;

use auth_domain::model::{
    OneTimeKind, OneTimeTokenRecord, OutboxMail, OutboxStats, Outgoing, ProfileChanges, Rotation,
    SessionRecord, UserRecord,
};
use auth_domain::ports::{
    CleanupReport, OneTimeTokenStore, OutboxStore, PortError, SessionStore, Store, StoreError,
    UserStore,
};
use auth_domain::types::{
    BlindIndex, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use auth_store_postgres::PgStore;
use auth_store_sqlite::SqliteStore;
use tokio::sync::Notify;
use uuid::Uuid;

/// One storage adapter.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// Production.
    Postgres(PgStore),
}

/// The storage adapter in use, and the signal that a mail was queued.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Backend,
    mail_queued: Arc<Notify>,
}

impl Storage {
    /// Wraps an adapter.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            mail_queued: Arc::new(Notify::new()),
        }
    }

    /// Name for health output and the banner.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// Whether one process owns the data (SQLite: one file, one instance), so that at its
    /// start every outbox lease belongs to a worker that is gone.
    pub fn owned_by_one_process(&self) -> bool {
        matches!(self.backend, Backend::Sqlite(_))
    }

    /// Closes the connection pool (at shutdown).
    pub fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close(),
            Backend::Postgres(s) => s.close(),
        }
    }

    /// The connection pool's load (for `/metrics`).
    pub fn pool_status(&self) -> crate::telemetry::PoolLoad {
        match &self.backend {
            Backend::Sqlite(s) => s.pool_status().into(),
            Backend::Postgres(s) => s.pool_status().into(),
        }
    }

    /// Notified after each write that queued a mail.
    pub fn mail_queued(&self) -> Arc<Notify> {
        Arc::clone(&self.mail_queued)
    }

    fn queued<T, E>(&self, result: Result<T, E>, mail: Option<&Outgoing>) -> Result<T, E> {
        if result.is_ok() && mail.is_some() {
            self.mail_queued.notify_one();
        }
        result
    }
}

/// Calls the same method on whichever adapter is in use.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($store) => $call.await,
            Backend::Postgres($store) => $call.await,
        }
    };
}

impl UserStore for Storage {
    async fn insert_user(
        &self,
        user: &UserRecord,
        mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        let result = delegate!(self, s => s.insert_user(user, mail));
        self.queued(result, mail)
    }
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, PortError> {
        delegate!(self, s => s.user_by_id(id))
    }
    async fn user_by_email(&self, index: &BlindIndex) -> Result<Option<UserRecord>, PortError> {
        delegate!(self, s => s.user_by_email(index))
    }
    async fn user_by_username(&self, normalized: &str) -> Result<Option<UserRecord>, PortError> {
        delegate!(self, s => s.user_by_username(normalized))
    }
    async fn pending_registration(
        &self,
        email_index: &BlindIndex,
        password_tag: u16,
    ) -> Result<Option<UserRecord>, PortError> {
        delegate!(self, s => s.pending_registration(email_index, password_tag))
    }
    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> Result<UserRecord, StoreError> {
        let result = delegate!(self, s => s.update_profile(id, changes, now, mail));
        self.queued(result, mail)
    }
    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
        mail: Option<&Outgoing>,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let result = delegate!(self, s => s.set_password(id, hash, now, mail, expected_version));
        self.queued(result, mail)
    }
    async fn rehash_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.rehash_password(id, hash, expected_version))
    }
    async fn mark_email_verified(&self, id: UserId, now: Timestamp) -> Result<(), StoreError> {
        delegate!(self, s => s.mark_email_verified(id, now))
    }
    async fn apply_email_change(
        &self,
        id: UserId,
        index: &BlindIndex,
        sealed: &Sealed,
        now: Timestamp,
        mail: Option<&Outgoing>,
        expected_pending: Option<&Sealed>,
    ) -> Result<(), StoreError> {
        let result = delegate!(self, s => s.apply_email_change(id, index, sealed, now, mail, expected_pending));
        self.queued(result, mail)
    }
    async fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError> {
        delegate!(self, s => s.record_login(id, now))
    }
    async fn delete_user(
        &self,
        id: UserId,
        mail: Option<&Outgoing>,
        expected_password_version: Option<i64>,
    ) -> Result<bool, StoreError> {
        let result = delegate!(self, s => s.delete_user(id, mail, expected_password_version));
        self.queued(result, mail)
    }
}

impl SessionStore for Storage {
    async fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
    ) -> Result<(), PortError> {
        delegate!(self, s => s.create_session(session, refresh))
    }
    async fn create_login_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
        password_version: i64,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.create_login_session(session, refresh, password_version))
    }
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        now: Timestamp,
    ) -> Result<Rotation, PortError> {
        delegate!(self, s => s.rotate_refresh(presented, successor, now))
    }
    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, PortError> {
        delegate!(self, s => s.session(id))
    }
    async fn active_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, PortError> {
        delegate!(self, s => s.active_sessions(user, now))
    }
    async fn revoke_session(&self, id: SessionId, now: Timestamp) -> Result<bool, PortError> {
        delegate!(self, s => s.revoke_session(id, now))
    }
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: Timestamp,
    ) -> Result<Vec<SessionId>, PortError> {
        delegate!(self, s => s.revoke_user_sessions(user, except, now))
    }
    async fn revoke_user_tokens(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        delegate!(self, s => s.revoke_user_tokens(user, not_before, until))
    }
    async fn user_revocations(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(UserId, Timestamp, Timestamp)>, PortError> {
        delegate!(self, s => s.user_revocations(now))
    }
    async fn revoked_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(SessionId, Timestamp)>, PortError> {
        delegate!(self, s => s.revoked_since(since))
    }
}

impl OneTimeTokenStore for Storage {
    async fn insert_one_time(&self, token: &OneTimeTokenRecord) -> Result<(), PortError> {
        delegate!(self, s => s.insert_one_time(token))
    }
    async fn find_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
    ) -> Result<Option<OneTimeTokenRecord>, PortError> {
        delegate!(self, s => s.find_one_time(hash, kind))
    }
    async fn consume_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
        now: Timestamp,
    ) -> Result<Option<OneTimeTokenRecord>, PortError> {
        delegate!(self, s => s.consume_one_time(hash, kind, now))
    }
}

impl OutboxStore for Storage {
    async fn enqueue_mail(&self, mail: &Outgoing) -> Result<(), PortError> {
        let result = delegate!(self, s => s.enqueue_mail(mail));
        self.queued(result, Some(mail))
    }
    async fn claim_mail(
        &self,
        now: Timestamp,
        lease: chrono::TimeDelta,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, PortError> {
        delegate!(self, s => s.claim_mail(now, lease, limit))
    }
    async fn mail_sent(&self, id: Uuid) -> Result<(), PortError> {
        delegate!(self, s => s.mail_sent(id))
    }
    async fn mail_retry(
        &self,
        id: Uuid,
        attempts: u32,
        retry_at: Timestamp,
    ) -> Result<bool, PortError> {
        delegate!(self, s => s.mail_retry(id, attempts, retry_at))
    }
    async fn mail_dead(&self, id: Uuid, attempts: u32, now: Timestamp) -> Result<bool, PortError> {
        delegate!(self, s => s.mail_dead(id, attempts, now))
    }
    async fn mail_release(
        &self,
        id: Uuid,
        attempts: u32,
        now: Timestamp,
    ) -> Result<bool, PortError> {
        delegate!(self, s => s.mail_release(id, attempts, now))
    }
    async fn renew_mail_leases(
        &self,
        claims: &[(Uuid, u32)],
        now: Timestamp,
        lease: chrono::TimeDelta,
    ) -> Result<Vec<Uuid>, PortError> {
        delegate!(self, s => s.renew_mail_leases(claims, now, lease))
    }
    async fn release_all_leases(&self, now: Timestamp) -> Result<u64, PortError> {
        delegate!(self, s => s.release_all_leases(now))
    }
    async fn outbox_stats(&self) -> Result<OutboxStats, PortError> {
        delegate!(self, s => s.outbox_stats())
    }
}

impl Store for Storage {
    async fn ping(&self) -> Result<(), PortError> {
        delegate!(self, s => Store::ping(s))
    }
    async fn cleanup(
        &self,
        now: Timestamp,
        revoked_before: Timestamp,
        unverified_before: Timestamp,
    ) -> Result<CleanupReport, PortError> {
        delegate!(self, s => s.cleanup(now, revoked_before, unverified_before))
    }
}
