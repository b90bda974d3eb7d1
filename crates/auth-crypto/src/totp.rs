//! TOTP (RFC 6238) (placeholder: MFA-UNIMPLEMENTED, replaced before landing).

use auth_domain::ports::TotpCodec;

/// TOTP with SHA-1, 6 digits and 30-second steps, as every authenticator app computes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rfc6238;

impl TotpCodec for Rfc6238 {
    fn matches(&self, _secret: &[u8], _step: u64, _code: &str) -> bool {
        false
    }
    fn code_at(&self, _secret: &[u8], _step: u64) -> String {
        String::from("MFA-UNIMPLEMENTED")
    }
    fn otpauth_url(&self, _secret: &[u8], _issuer: &str, _account: &str) -> String {
        String::from("MFA-UNIMPLEMENTED")
    }
    fn secret_base32(&self, _secret: &[u8]) -> String {
        String::from("MFA-UNIMPLEMENTED")
    }
}
