//! TOTP (RFC 6238) with totp-rs: HMAC-SHA-1, 6 digits, 30-second steps.
//!
//! The domain speaks in time steps (Unix time / 30), not in seconds, so the codec builds a
//! totp-rs [`Totp`] whose step lasts one "second": the "time" it is given is then the step
//! itself, the HOTP counter of RFC 4226, for every `u64` step (no multiplication by 30 that
//! could overflow). The 30-second period is the caller's arithmetic, and what the otpauth://
//! URL tells the authenticator app.
//!
//! Secrets of any length are taken as they are (totp-rs's RFC check of at least 128 bits
//! is not applied: the service generates its secrets, and a check here could only fail on
//! a code path that returns no error). totp-rs wipes its copy of the secret on drop.

use std::fmt::Write as _;

use auth_domain::ports::TotpCodec;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Digits of a code.
const DIGITS: usize = 6;
/// Seconds per time step.
const PERIOD_SECS: u64 = 30;

/// TOTP with SHA-1, 6 digits and 30-second steps, as every authenticator app computes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rfc6238;

impl Rfc6238 {
    /// A totp-rs codec for `secret` whose "time" is the step (see the module docs), with
    /// no skew: the domain decides which steps it tries.
    fn totp(secret: &[u8]) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(0)
            .with_step_duration(1)
            .with_secret(secret.to_vec())
            // Never fails: `build` would only refuse a secret shorter than 128 bits.
            .build_noncompliant()
    }
}

/// Whether `code` has the shape of a code: exactly [`DIGITS`] ASCII digits.
fn well_formed(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

impl TotpCodec for Rfc6238 {
    /// Refuses anything but 6 ASCII digits first (a sign, spaces, other scripts' digits),
    /// then compares with totp-rs's constant-time comparison of codes.
    fn matches(&self, secret: &[u8], step: u64, code: &str) -> bool {
        well_formed(code) && Self::totp(secret).check(code, step) == Some(step)
    }

    /// The 6-digit code, with its leading zeros.
    fn code_at(&self, secret: &[u8], step: u64) -> String {
        Self::totp(secret).generate(step).to_string()
    }

    /// `otpauth://totp/{issuer}:{account}?secret={base32}&issuer={issuer}&algorithm=SHA1&digits=6&period=30`,
    /// with issuer and account percent-encoded (every byte but the unreserved characters
    /// of RFC 3986, so a `:` in either cannot be read as the separator).
    fn otpauth_url(&self, secret: &[u8], issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
             &algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
            account = percent_encode(account),
            secret = self.secret_base32(secret),
        )
    }

    /// RFC 4648 base32, upper case, without padding.
    fn secret_base32(&self, secret: &[u8]) -> String {
        Secret::from(secret.to_vec()).to_base32()
    }
}

/// Percent-encodes every byte of `text` (UTF-8) but the unreserved characters of RFC 3986
/// (`A-Z a-z 0-9 - . _ ~`); a space is `%20`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String never fails.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret of RFC 6238 Appendix B for SHA-1.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    /// RFC 6238 Appendix B, SHA-1: Unix time and the last 6 digits of the 8-digit code.
    const VECTORS: [(u64, &str); 6] = [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];

    #[test]
    fn codes_are_the_rfc_6238_sha1_vectors() {
        for (time, code) in VECTORS {
            let step = time / PERIOD_SECS;
            assert_eq!(Rfc6238.code_at(RFC_SECRET, step), code, "T = {time}");
            assert!(Rfc6238.matches(RFC_SECRET, step, code), "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_step_only() {
        // T = 59 is the last second of step 1; T = 60 starts step 2.
        assert_eq!(59 / PERIOD_SECS, 1);
        assert_eq!(60 / PERIOD_SECS, 2);
        assert!(Rfc6238.matches(RFC_SECRET, 1, "287082"));
        assert!(!Rfc6238.matches(RFC_SECRET, 0, "287082"));
        assert!(!Rfc6238.matches(RFC_SECRET, 2, "287082"));
        for t in 30..60 {
            assert_eq!(Rfc6238.code_at(RFC_SECRET, t / PERIOD_SECS), "287082");
        }
        let codes: Vec<String> = (0..4).map(|s| Rfc6238.code_at(RFC_SECRET, s)).collect();
        for pair in codes.windows(2) {
            assert_ne!(pair[0], pair[1], "neighbouring steps: {codes:?}");
        }
        assert!(!Rfc6238.matches(b"another secret, 20 b", 1, "287082"));
    }

    #[test]
    fn the_extreme_steps_have_codes() {
        for step in [0, u64::MAX / PERIOD_SECS, u64::MAX] {
            let code = Rfc6238.code_at(RFC_SECRET, step);
            assert!(well_formed(&code), "{code}");
            assert!(Rfc6238.matches(RFC_SECRET, step, &code));
        }
        let short = Rfc6238.code_at(b"", 1);
        assert!(Rfc6238.matches(b"", 1, &short), "any secret length works");
    }

    #[test]
    fn anything_but_six_ascii_digits_never_matches() {
        let step = 59 / PERIOD_SECS;
        for code in [
            "",
            "28708",
            "2870820",
            "0287082",
            " 287082",
            "287082 ",
            "287 082",
            "+87082",
            "-87082",
            "28708a",
            "28708\0",
            "２８７０８２",
            "٢٨٧٠٨٢",
            "287082\n",
        ] {
            assert!(!Rfc6238.matches(RFC_SECRET, step, code), "{code:?}");
        }
    }

    #[test]
    fn the_url_carries_the_secret_issuer_and_account() {
        let url = Rfc6238.otpauth_url(RFC_SECRET, "Acme", "alice");
        assert_eq!(
            url,
            "otpauth://totp/Acme:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn issuer_and_account_are_percent_encoded() {
        let url = Rfc6238.otpauth_url(&[0xff], "Acme & Co: Zoë", "bob@example.com/x?y=1#z");
        assert_eq!(
            url,
            "otpauth://totp/Acme%20%26%20Co%3A%20Zo%C3%AB:bob%40example.com%2Fx%3Fy%3D1%23z\
             ?secret=74&issuer=Acme%20%26%20Co%3A%20Zo%C3%AB&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e", "unreserved stay");
    }

    #[test]
    fn base32_has_no_padding() {
        assert_eq!(
            Rfc6238.secret_base32(RFC_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(Rfc6238.secret_base32(b"f"), "MY");
        assert_eq!(Rfc6238.secret_base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(Rfc6238.secret_base32(b""), "");
    }
}
