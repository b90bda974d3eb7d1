//! The passkey adapter this binary runs: the WebAuthn relying party of `WEBAUTHN_RP_ID` and
//! `WEBAUTHN_ORIGIN`, or none. Passkeys are optional: when neither variable is set and the
//! defaults taken from `APP_URL` cannot name a relying party (its host is an IP address,
//! which WebAuthn refuses), the service runs without them and says so at start; the passkey
//! operations then answer 409. A relying party set explicitly and unusable stops the start.

use auth_domain::ports::{
    AssertionIdentity, Ceremony, NewPasskey, PasskeyCeremonies, PasskeyError, PasskeyUse,
};
use auth_domain::types::UserId;
use auth_webauthn::WebauthnRp;

/// Passkeys on or off.
#[derive(Debug)]
pub enum Passkeys {
    /// Ceremonies for this relying party.
    On(Box<WebauthnRp>),
    /// Off, and why (for the start-up banner).
    Off(String),
}

impl Passkeys {
    /// What the start-up banner says.
    pub fn describe(&self, rp_id: &str, origin: &str) -> String {
        match self {
            Self::On(_) => format!("relying party {rp_id}, origin {origin}"),
            Self::Off(why) => format!("off: {why}"),
        }
    }
}

macro_rules! on {
    ($self:ident, $rp:ident => $call:expr) => {
        match $self {
            Passkeys::On($rp) => $call,
            Passkeys::Off(_) => Err(PasskeyError::Disabled),
        }
    };
}

impl PasskeyCeremonies for Passkeys {
    fn start_registration(
        &self,
        user: UserId,
        username: &str,
        exclude: &[Vec<u8>],
    ) -> Result<Ceremony, PasskeyError> {
        on!(self, rp => rp.start_registration(user, username, exclude))
    }
    fn finish_registration(
        &self,
        state: &str,
        response: &serde_json::Value,
    ) -> Result<NewPasskey, PasskeyError> {
        on!(self, rp => rp.finish_registration(state, response))
    }
    fn start_authentication(&self, credentials: &[String]) -> Result<Ceremony, PasskeyError> {
        on!(self, rp => rp.start_authentication(credentials))
    }
    fn identify(&self, response: &serde_json::Value) -> Result<AssertionIdentity, PasskeyError> {
        on!(self, rp => rp.identify(response))
    }
    fn finish_authentication(
        &self,
        state: &str,
        response: &serde_json::Value,
        credential: &str,
    ) -> Result<PasskeyUse, PasskeyError> {
        on!(self, rp => rp.finish_authentication(state, response, credential))
    }
}
