//! Passkeys (placeholder: MFA-UNIMPLEMENTED, replaced before landing).
#![forbid(unsafe_code)]

use auth_domain::ports::{
    AssertionIdentity, Ceremony, NewPasskey, PasskeyCeremonies, PasskeyError, PasskeyUse, PortError,
};
use auth_domain::types::UserId;

/// The relying party could not be set up from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid relying party: {0}")]
pub struct RelyingPartyError(pub String);

/// WebAuthn ceremonies for one relying party.
#[derive(Debug)]
pub struct WebauthnRp {
    _rp_id: String,
}

impl WebauthnRp {
    /// A relying party with id `rp_id` (a registrable domain: the host of `origin` or a
    /// parent of it), serving pages at `origin`, shown as `rp_name`.
    ///
    /// # Errors
    /// When the id does not fit the origin, or the origin is not a URL.
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> Result<Self, RelyingPartyError> {
        let _ = (origin, rp_name);
        Ok(Self {
            _rp_id: rp_id.to_owned(),
        })
    }
}

fn todo() -> PasskeyError {
    PasskeyError::Port(PortError::unexpected("MFA-UNIMPLEMENTED"))
}

impl PasskeyCeremonies for WebauthnRp {
    fn start_registration(
        &self,
        _user: UserId,
        _username: &str,
        _exclude: &[Vec<u8>],
    ) -> Result<Ceremony, PasskeyError> {
        Err(todo())
    }
    fn finish_registration(
        &self,
        _state: &str,
        _response: &serde_json::Value,
    ) -> Result<NewPasskey, PasskeyError> {
        Err(todo())
    }
    fn start_authentication(&self, _credentials: &[String]) -> Result<Ceremony, PasskeyError> {
        Err(todo())
    }
    fn identify(&self, _response: &serde_json::Value) -> Result<AssertionIdentity, PasskeyError> {
        Err(todo())
    }
    fn finish_authentication(
        &self,
        _state: &str,
        _response: &serde_json::Value,
        _credential: &str,
    ) -> Result<PasskeyUse, PasskeyError> {
        Err(todo())
    }
}
