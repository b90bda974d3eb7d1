//! New signing key pairs for `JWT_PRIVATE_KEY`, with the `kid` the service will give them.

use std::fmt;

use josekit::jwk::KeyPair;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, RS256};
use secrecy::SecretString;

use crate::jwt::{Asymmetric, JwtCodec, KeyError};

/// RSA modulus size of generated RS256 keys: the size the rest of the codebase (and the
/// measurements in STACK.md) assume; RS256 accepts 2048 bits and more.
pub const RSA_BITS: u32 = 2048;

/// A freshly generated key pair, as PEM.
pub struct GeneratedKey {
    /// The algorithm it signs with.
    pub alg: Asymmetric,
    /// PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`): the value of `JWT_PRIVATE_KEY`.
    pub private_pem: SecretString,
    /// SubjectPublicKeyInfo public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
    /// The RFC 7638 thumbprint the service computes for this key: the `kid` of the tokens
    /// it signs and of its entry in `/.well-known/jwks.json`.
    pub kid: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn pem(bytes: Vec<u8>) -> Result<String, KeyError> {
    String::from_utf8(bytes).map_err(|_| KeyError::Invalid("generated PEM is not UTF-8".into()))
}

/// Generates a key pair for `alg` (RS256: [`RSA_BITS`]-bit RSA; ES256: P-256; EdDSA:
/// Ed25519). The `kid` comes from loading the private key exactly as the service does, so
/// it is the one the service will publish.
pub fn generate_key_pair(alg: Asymmetric) -> Result<GeneratedKey, KeyError> {
    let failed = |e: josekit::JoseError| KeyError::Invalid(format!("key generation: {e}"));
    let (private, public) = match alg {
        Asymmetric::Rs256 => {
            let pair = RS256.generate_key_pair(RSA_BITS).map_err(failed)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
        Asymmetric::Es256 => {
            let pair = ES256.generate_key_pair().map_err(failed)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
        Asymmetric::EdDsa => {
            let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).map_err(failed)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
    };
    let private_pem = pem(private)?;
    let public_pem = pem(public)?;
    let codec = JwtCodec::asymmetric(alg, &private_pem, Some(&public_pem), "", "")?;
    Ok(GeneratedKey {
        alg,
        kid: codec.key_id().to_owned(),
        private_pem: SecretString::from(private_pem),
        public_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_pair_the_codec_loads_under_one_kid() -> Result<(), KeyError> {
        use secrecy::ExposeSecret;
        for alg in [Asymmetric::Rs256, Asymmetric::Es256, Asymmetric::EdDsa] {
            let key = generate_key_pair(alg)?;
            let codec = JwtCodec::asymmetric(alg, key.private_pem.expose_secret(), None, "i", "a")?;
            assert_eq!(codec.key_id(), key.kid, "{alg:?}");
            assert!(
                key.private_pem
                    .expose_secret()
                    .starts_with("-----BEGIN PRIVATE KEY-----"),
                "{alg:?}: PKCS#8"
            );
            assert!(key.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
            assert_eq!(
                codec.jwks()["keys"].as_array().map(Vec::len),
                Some(1),
                "{alg:?}: the public PEM is the private key's own"
            );
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
        Ok(())
    }

    #[test]
    fn two_generated_keys_differ() -> Result<(), KeyError> {
        let (a, b) = (
            generate_key_pair(Asymmetric::Es256)?,
            generate_key_pair(Asymmetric::Es256)?,
        );
        assert_ne!(a.kid, b.kid);
        Ok(())
    }
}
