//! Second factors (placeholder: MFA-UNIMPLEMENTED, replaced before landing).

use auth_domain::model::{MfaRecord, Outgoing, PasskeyRecord, RecoveryCodeHash, TotpRecord};
use auth_domain::ports::{MfaStore, PortError, StoreError};
use auth_domain::types::{PasskeyId, Sealed, Timestamp, UserId};

use crate::SqliteStore;

fn todo() -> PortError {
    PortError::unexpected("MFA-UNIMPLEMENTED")
}

impl MfaStore for SqliteStore {
    async fn mfa(&self, _user: UserId) -> Result<MfaRecord, PortError> {
        Err(todo())
    }
    async fn set_pending_totp(&self, _totp: &TotpRecord) -> Result<(), StoreError> {
        Err(todo().into())
    }
    async fn confirm_totp(
        &self,
        _user: UserId,
        _secret: &Sealed,
        _codes: &[RecoveryCodeHash],
        _now: Timestamp,
        _mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        Err(todo().into())
    }
    async fn delete_totp(
        &self,
        _user: UserId,
        _mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        Err(todo())
    }
    async fn replace_recovery_codes(
        &self,
        _user: UserId,
        _codes: &[RecoveryCodeHash],
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(todo().into())
    }
    async fn use_recovery_code(
        &self,
        _user: UserId,
        _code: &RecoveryCodeHash,
        _now: Timestamp,
        _mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        Err(todo())
    }
    async fn insert_passkey(
        &self,
        _passkey: &PasskeyRecord,
        _mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        Err(todo().into())
    }
    async fn passkey_by_credential(
        &self,
        _credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, PortError> {
        Err(todo())
    }
    async fn record_passkey_use(
        &self,
        _id: PasskeyId,
        _credential: &str,
        _sign_count: u32,
        _expected_count: u32,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(todo().into())
    }
    async fn delete_passkey(
        &self,
        _user: UserId,
        _id: PasskeyId,
        _mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        Err(todo())
    }
}
