//! Keys derived from one root secret, the keyring of personal data, randomness and time.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use auth_domain::ports::{Clock, IndexPurpose, Keyring, PortError, Randomness, SealedField};
use auth_domain::types::{BlindIndex, PlainToken, Sealed, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A 256-bit key; its Debug form shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Key32(pub [u8; 32]);

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(***)")
    }
}

/// HMAC-SHA-256 of `parts` (each length-prefixed, so part boundaries are unambiguous).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `presented` (from a request) equals `expected` (a configured secret), in time
/// that tells nothing about where they differ or how long `expected` is: both are MACed
/// under one fixed key, and the two 32-byte tags are compared without an early exit
/// (`verify_slice` is constant-time).
pub fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    const KEY: &[u8] = b"auth-crypto secrets_match";
    let expected_tag = hmac_sha256(KEY, &[expected]);
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(KEY) else {
        return false;
    };
    // The same length-prefixed framing as `hmac_sha256`, over `presented`.
    mac.update(&(presented.len() as u64).to_be_bytes());
    mac.update(presented);
    mac.verify_slice(&expected_tag).is_ok()
}

/// Every key the service needs, derived from `SECRET_KEY` by HMAC-SHA-256 with a distinct
/// label each (an HKDF-Expand of one block), unless given explicitly.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    /// Blind indexes of email, phone, identifiers.
    pub index: Key32,
    /// AES-256-GCM of personal data.
    pub seal: Key32,
    /// Pepper of the password pre-hash.
    pub pepper: Key32,
    /// Derivation of refresh-token successors.
    pub successor: Key32,
}

impl KeyMaterial {
    /// Derives all keys from a root secret.
    pub fn derive(root: &[u8]) -> Self {
        let k = |label: &str| Key32(hmac_sha256(root, &[b"auth-service/v1", label.as_bytes()]));
        Self {
            index: k("blind-index"),
            seal: k("seal"),
            pepper: k("password-pepper"),
            successor: k("refresh-successor"),
        }
    }
}

/// [`Keyring`] over [`KeyMaterial`] and the OS random source.
#[derive(Clone)]
pub struct SecretKeyring {
    keys: KeyMaterial,
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKeyring(***)")
    }
}

/// First byte of every sealed value: lets a later key rotation tell versions apart.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

impl SecretKeyring {
    /// A keyring over these keys.
    pub fn new(keys: KeyMaterial) -> Self {
        let cipher = Aes256Gcm::new(&keys.seal.0.into());
        Self { keys, cipher }
    }
}

fn purpose_label(purpose: IndexPurpose) -> &'static [u8] {
    match purpose {
        IndexPurpose::Email => b"email",
        IndexPurpose::Phone => b"phone",
        IndexPurpose::Identifier => b"identifier",
        IndexPurpose::PendingPassword => b"pending-password",
        IndexPurpose::RecoveryCode => b"recovery-code",
    }
}

fn field_label(field: SealedField) -> &'static [u8] {
    match field {
        SealedField::Email => b"field:email",
        SealedField::Phone => b"field:phone",
        SealedField::Name => b"field:name",
        SealedField::Ip => b"field:ip",
        SealedField::Mail => b"field:mail",
        SealedField::TotpSecret => b"field:totp-secret",
        SealedField::PasskeyName => b"field:passkey-name",
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CryptoError(&'static str);

impl Keyring for SecretKeyring {
    fn blind_index(&self, purpose: IndexPurpose, normalized: &str) -> BlindIndex {
        BlindIndex(
            hmac_sha256(
                &self.keys.index.0,
                &[purpose_label(purpose), normalized.as_bytes()],
            )
            .to_vec(),
        )
    }

    fn seal(&self, field: SealedField, plaintext: &str) -> Result<Sealed, PortError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRandom.fill(&mut nonce)?;
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: field_label(field),
        };
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| PortError::unexpected(CryptoError("encryption failed")))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed(out))
    }

    fn open(&self, field: SealedField, sealed: &Sealed) -> Result<String, PortError> {
        let bytes = &sealed.0;
        if bytes.len() < 1 + NONCE_LEN || bytes[0] != SEAL_VERSION {
            return Err(PortError::unexpected(CryptoError(
                "sealed value has an unknown format",
            )));
        }
        let (nonce, ciphertext) = bytes[1..].split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: field_label(field),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                PortError::unexpected(CryptoError(
                    "sealed value does not authenticate (wrong key or field)",
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| PortError::unexpected(CryptoError("sealed value is not UTF-8")))
    }

    fn successor(&self, presented: &PlainToken) -> PlainToken {
        PlainToken::from_bytes(&hmac_sha256(
            &self.keys.successor.0,
            &[presented.expose().as_bytes()],
        ))
    }
}

/// The operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        getrandom::fill(buf).map_err(|e| {
            PortError::unavailable(CryptoError(if e.raw_os_error().is_some() {
                "OS random source failed"
            } else {
                "random source unavailable"
            }))
        })
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(root: &[u8]) -> SecretKeyring {
        SecretKeyring::new(KeyMaterial::derive(root))
    }

    #[test]
    fn secrets_match_only_the_same_bytes() {
        let expected = b"a-metrics-token-of-thirty-two-bytes";
        assert!(secrets_match(expected, expected));
        for (presented, why) in [
            (
                &b"a-metrics-token-of-thirty-two-byteS"[..],
                "one byte differs",
            ),
            (&b"a-metrics-token-of-thirty-two-byte"[..], "a prefix"),
            (
                &b"a-metrics-token-of-thirty-two-bytes!"[..],
                "one byte more",
            ),
            (&b""[..], "nothing"),
        ] {
            assert!(!secrets_match(presented, expected), "{why}");
        }
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_field() -> Result<(), PortError> {
        let ring = keyring(b"root");
        let sealed = ring.seal(SealedField::Email, "someone@example.com")?;
        assert!(
            !sealed.0.windows(7).any(|w| w == b"someone"),
            "no plaintext in the ciphertext"
        );
        assert_eq!(
            ring.open(SealedField::Email, &sealed)?,
            "someone@example.com"
        );
        assert!(
            ring.open(SealedField::Name, &sealed).is_err(),
            "moved to another field"
        );
        assert!(
            keyring(b"other").open(SealedField::Email, &sealed).is_err(),
            "another key"
        );
        let again = ring.seal(SealedField::Email, "someone@example.com")?;
        assert_ne!(sealed, again, "fresh nonce each time");
        Ok(())
    }

    #[test]
    fn blind_indexes_are_deterministic_keyed_and_separated_by_purpose() {
        let ring = keyring(b"root");
        let a = ring.blind_index(IndexPurpose::Email, "a@example.com");
        assert_eq!(a, ring.blind_index(IndexPurpose::Email, "a@example.com"));
        assert_ne!(
            a,
            ring.blind_index(IndexPurpose::Identifier, "a@example.com")
        );
        assert_ne!(
            a,
            keyring(b"other").blind_index(IndexPurpose::Email, "a@example.com")
        );
    }

    #[test]
    fn successors_are_deterministic_and_differ_from_their_parent() {
        let ring = keyring(b"root");
        let parent = PlainToken::from_bytes(&[1; 32]);
        let child = ring.successor(&parent);
        assert_eq!(child.hash(), ring.successor(&parent).hash());
        assert_ne!(child.hash(), parent.hash());
        assert_ne!(ring.successor(&child).hash(), child.hash());
    }
}
