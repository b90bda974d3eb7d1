//! The storage adapters this binary can run on, chosen at start by `DATABASE_URL`.
//!
//! An enum rather than a trait object: the ports use `impl Future` (not object-safe), and a
//! match per call costs nothing next to a query.
//!
//! It only chooses: the outbox worker is woken by the use cases' `MailQueued` event
//! (`crate::events`), not here.

use auth_domain::model::{
    MfaRecord, OneTimeKind, OneTimeTokenRecord, OutboxMail, OutboxStats, Outgoing, PasskeyRecord,
    ProfileChanges, RecoveryCodeHash, Rotation, SessionRecord, TotpRecord, UserRecord,
};
use auth_domain::monitoring::PoolStatus;
use auth_domain::ports::{
    CleanupReport, MfaStore, OneTimeTokenStore, OutboxStore, PortError, SessionStore, Store,
    StoreError, UserStore,
};
use auth_domain::types::{
    BlindIndex, PasskeyId, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use auth_store_postgres::PgStore;
use auth_store_sqlite::SqliteStore;
use uuid::Uuid;

/// One storage adapter.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// Production.
    Postgres(PgStore),
}

/// The storage adapter in use.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Backend,
}

impl Storage {
    /// Wraps an adapter.
    pub fn new(backend: Backend) -> Self {
        Self { backend }
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
    pub fn pool_status(&self) -> PoolStatus {
        match &self.backend {
            Backend::Sqlite(s) => s.pool_status(),
            Backend::Postgres(s) => s.pool_status(),
        }
    }
}

impl Storage {
    /// The read replicas and the reads they did not serve (for `/metrics`); empty without
    /// replicas.
    pub fn replicas(
        &self,
    ) -> (
        Vec<auth_store_postgres::ReplicaStatus>,
        Option<auth_store_postgres::PrimaryReads>,
    ) {
        match &self.backend {
            Backend::Sqlite(_) => (Vec::new(), None),
            Backend::Postgres(s) => (s.replica_status(), s.primary_reads()),
        }
    }
}

/// Implements ports for [`Storage`] from their methods' signatures: each method calls the
/// same method of whichever adapter is in use.
///
/// A macro because the ports use `impl Future` (not object-safe: no `dyn Store`) and a
/// generic `Storage<S: Store>` would make every handler and the state generic over it;
/// the signatures are written once more here, the bodies not at all. The compiler checks
/// them against the traits.
macro_rules! delegate {
    ($(impl $port:ident { $(
        fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )* })*) => {$(
        impl $port for Storage {$(
            async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match &self.backend {
                    Backend::Sqlite(s) => $port::$name(s $(, $arg)*).await,
                    Backend::Postgres(s) => $port::$name(s $(, $arg)*).await,
                }
            }
        )*}
    )*};
}

delegate! {
    impl MfaStore {
        fn mfa(&self, user: UserId) -> Result<MfaRecord, PortError>;
        fn second_factor_enabled(&self, user: UserId) -> Result<bool, PortError>;
        fn set_pending_totp(&self, totp: &TotpRecord) -> Result<(), StoreError>;
        fn confirm_totp(&self, user: UserId, secret: &Sealed, codes: &[RecoveryCodeHash], now: Timestamp, mail: Option<&Outgoing>) -> Result<(), StoreError>;
        fn delete_totp(&self, user: UserId, mail: Option<&Outgoing>) -> Result<bool, PortError>;
        fn replace_recovery_codes(&self, user: UserId, codes: &[RecoveryCodeHash], now: Timestamp) -> Result<(), StoreError>;
        fn use_recovery_code(&self, user: UserId, code: &RecoveryCodeHash, now: Timestamp, mail: Option<&Outgoing>) -> Result<bool, PortError>;
        fn insert_passkey(&self, passkey: &PasskeyRecord, mail: Option<&Outgoing>) -> Result<(), StoreError>;
        fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, PortError>;
        fn record_passkey_use(&self, id: PasskeyId, credential: &str, sign_count: u32, expected_count: u32, now: Timestamp) -> Result<(), StoreError>;
        fn delete_passkey(&self, user: UserId, id: PasskeyId, mail: Option<&Outgoing>) -> Result<bool, PortError>;
    }
    impl UserStore {
        fn insert_user(&self, user: &UserRecord, mail: Option<&Outgoing>) -> Result<(), StoreError>;
        fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, PortError>;
        fn user_for_display(&self, id: UserId) -> Result<Option<UserRecord>, PortError>;
        fn user_by_email(&self, index: &BlindIndex) -> Result<Option<UserRecord>, PortError>;
        fn user_by_username(&self, normalized: &str) -> Result<Option<UserRecord>, PortError>;
        fn pending_registration(
            &self,
            email_index: &BlindIndex,
            password_tag: u16,
        ) -> Result<Option<UserRecord>, PortError>;
        fn update_profile(
            &self,
            id: UserId,
            changes: &ProfileChanges,
            now: Timestamp,
            mail: Option<&Outgoing>,
        ) -> Result<UserRecord, StoreError>;
        fn set_password(
            &self,
            id: UserId,
            hash: &PasswordHash,
            now: Timestamp,
            mail: Option<&Outgoing>,
            expected_version: Option<i64>,
        ) -> Result<(), StoreError>;
        fn rehash_password(
            &self,
            id: UserId,
            hash: &PasswordHash,
            expected_version: i64,
        ) -> Result<(), StoreError>;
        fn mark_email_verified(&self, id: UserId, now: Timestamp) -> Result<(), StoreError>;
        fn apply_email_change(
            &self,
            id: UserId,
            index: &BlindIndex,
            sealed: &Sealed,
            now: Timestamp,
            mail: Option<&Outgoing>,
            expected_pending: Option<&Sealed>,
        ) -> Result<(), StoreError>;
        fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError>;
        fn delete_user(
            &self,
            id: UserId,
            mail: Option<&Outgoing>,
            expected_password_version: Option<i64>,
        ) -> Result<bool, StoreError>;
    }

    impl SessionStore {
        fn create_session(&self, session: &SessionRecord, refresh: &TokenHash) -> Result<(), PortError>;
        fn create_login_session(
            &self,
            session: &SessionRecord,
            refresh: &TokenHash,
            password_version: i64,
        ) -> Result<(), StoreError>;
        fn rotate_refresh(
            &self,
            presented: &TokenHash,
            successor: &TokenHash,
            now: Timestamp,
        ) -> Result<Rotation, PortError>;
        fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, PortError>;
        fn active_sessions(&self, user: UserId, now: Timestamp) -> Result<Vec<SessionRecord>, PortError>;
        fn revoke_session(&self, id: SessionId, now: Timestamp) -> Result<bool, PortError>;
        fn revoke_user_sessions(
            &self,
            user: UserId,
            except: Option<SessionId>,
            now: Timestamp,
        ) -> Result<Vec<SessionId>, PortError>;
        fn revoke_user_tokens(
            &self,
            user: UserId,
            not_before: Timestamp,
            until: Timestamp,
        ) -> Result<(), PortError>;
        fn user_revocations(&self, now: Timestamp) -> Result<Vec<(UserId, Timestamp, Timestamp)>, PortError>;
        fn revoked_since(&self, since: Timestamp) -> Result<Vec<(SessionId, Timestamp)>, PortError>;
    }

    impl OneTimeTokenStore {
        fn insert_one_time(&self, token: &OneTimeTokenRecord) -> Result<(), PortError>;
        fn find_one_time(
            &self,
            hash: &TokenHash,
            kind: OneTimeKind,
        ) -> Result<Option<OneTimeTokenRecord>, PortError>;
        fn consume_one_time(
            &self,
            hash: &TokenHash,
            kind: OneTimeKind,
            now: Timestamp,
        ) -> Result<Option<OneTimeTokenRecord>, PortError>;
    }

    impl OutboxStore {
        fn enqueue_mail(&self, mail: &Outgoing) -> Result<(), PortError>;
        fn claim_mail(
            &self,
            now: Timestamp,
            lease: chrono::TimeDelta,
            limit: u32,
        ) -> Result<Vec<OutboxMail>, PortError>;
        fn mail_sent(&self, id: Uuid) -> Result<(), PortError>;
        fn mail_retry(&self, id: Uuid, attempts: u32, retry_at: Timestamp) -> Result<bool, PortError>;
        fn mail_dead(&self, id: Uuid, attempts: u32, now: Timestamp) -> Result<bool, PortError>;
        fn mail_release(&self, id: Uuid, attempts: u32, now: Timestamp) -> Result<bool, PortError>;
        fn renew_mail_leases(
            &self,
            claims: &[(Uuid, u32)],
            now: Timestamp,
            lease: chrono::TimeDelta,
        ) -> Result<Vec<Uuid>, PortError>;
        fn release_all_leases(&self, now: Timestamp) -> Result<u64, PortError>;
        fn outbox_stats(&self) -> Result<OutboxStats, PortError>;
    }

    impl Store {
        fn ping(&self) -> Result<(), PortError>;
        fn cleanup(
            &self,
            now: Timestamp,
            revoked_before: Timestamp,
            unverified_before: Timestamp,
        ) -> Result<CleanupReport, PortError>;
    }
}
