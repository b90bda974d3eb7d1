//! Short-lived shared values (placeholder: MFA-UNIMPLEMENTED, replaced before landing).

use auth_domain::ports::{EphemeralStore, PortError};
use auth_domain::types::Timestamp;

use crate::MemoryCache;

fn todo() -> PortError {
    PortError::unexpected("MFA-UNIMPLEMENTED")
}

impl EphemeralStore for MemoryCache {
    async fn put_ephemeral(
        &self,
        _key: &str,
        _value: &[u8],
        _expires_at: Timestamp,
        _now: Timestamp,
    ) -> Result<(), PortError> {
        Err(todo())
    }
    async fn get_ephemeral(
        &self,
        _key: &str,
        _now: Timestamp,
    ) -> Result<Option<Vec<u8>>, PortError> {
        Err(todo())
    }
    async fn take_ephemeral(
        &self,
        _key: &str,
        _now: Timestamp,
    ) -> Result<Option<Vec<u8>>, PortError> {
        Err(todo())
    }
    async fn claim_once(
        &self,
        _key: &str,
        _expires_at: Timestamp,
        _now: Timestamp,
    ) -> Result<bool, PortError> {
        Err(todo())
    }
    async fn increment(
        &self,
        _key: &str,
        _expires_at: Timestamp,
        _now: Timestamp,
    ) -> Result<u64, PortError> {
        Err(todo())
    }
    async fn remove_ephemeral(&self, _key: &str) -> Result<(), PortError> {
        Err(todo())
    }
}
