//! The storage adapters this binary can run on, chosen at start by `DATABASE_URL`.
//!
//! An enum rather than a trait object: the ports use `impl Future` (not object-safe), and a
//! match per call costs nothing next to a query.

use auth_domain::model::{
    OneTimeKind, OneTimeTokenRecord, ProfileChanges, Rotation, SessionRecord, UserRecord,
};
use auth_domain::ports::{
    CleanupReport, OneTimeTokenStore, PortError, SessionStore, Store, StoreError, UserStore,
};
use auth_domain::types::{
    BlindIndex, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use auth_store_postgres::PgStore;
use auth_store_sqlite::SqliteStore;

/// One storage adapter.
#[derive(Debug, Clone)]
pub enum Storage {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// Production.
    Postgres(PgStore),
}

impl Storage {
    /// Name for health output and the banner.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

/// Calls the same method on whichever adapter is in use.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Storage::Sqlite($store) => $call.await,
            Storage::Postgres($store) => $call.await,
        }
    };
}

impl UserStore for Storage {
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.insert_user(user))
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
    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: Timestamp,
    ) -> Result<UserRecord, StoreError> {
        delegate!(self, s => s.update_profile(id, changes, now))
    }
    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.set_password(id, hash, now))
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
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.apply_email_change(id, index, sealed, now))
    }
    async fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError> {
        delegate!(self, s => s.record_login(id, now))
    }
    async fn delete_user(&self, id: UserId) -> Result<bool, PortError> {
        delegate!(self, s => s.delete_user(id))
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

impl Store for Storage {
    async fn ping(&self) -> Result<(), PortError> {
        delegate!(self, s => Store::ping(s))
    }
    async fn cleanup(
        &self,
        now: Timestamp,
        revoked_before: Timestamp,
    ) -> Result<CleanupReport, PortError> {
        delegate!(self, s => s.cleanup(now, revoked_before))
    }
}
