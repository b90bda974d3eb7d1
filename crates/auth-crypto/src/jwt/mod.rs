//! JWTs with josekit: access tokens and device tokens, HS256 or an asymmetric key, `kid`
//! in every header, strict verification, and the JWKS of the public keys.

mod claims;
mod jwk;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use auth_domain::model::AccessClaims;
use auth_domain::ports::{PortError, TokenRejection};
use auth_domain::types::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::JoseError;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, JwsSigner, JwsVerifier, RS256};
use josekit::jwt::{self, JwtPayload};

use claims::to_system;
use jwk::{pem_blocks, public_jwk};
use sha2::{Digest, Sha256};

/// Algorithms for asymmetric keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asymmetric {
    /// RSA PKCS#1 v1.5 with SHA-256 (keys ≥ 2048 bits).
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Asymmetric {
    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key is unusable; the message says why (never the key).
    #[error("{0}")]
    Invalid(String),
}

pub(super) fn invalid(what: &str, err: impl fmt::Display) -> KeyError {
    KeyError::Invalid(format!("{what}: {err}"))
}

/// `header.typ` of access tokens (RFC 9068).
const ACCESS_TYP: &str = "at+jwt";
/// `header.typ` of device tokens.
const DEVICE_TYP: &str = "device+jwt";
/// Clock skew tolerated on `nbf` and `iat` between instances.
const LEEWAY: Duration = Duration::from_secs(30);

/// Signs with one key; verifies with any of the configured keys (rotation), chosen by `kid`
/// and only for the one configured algorithm.
pub struct JwtCodec {
    signer: Box<dyn JwsSigner>,
    kid: String,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    public_jwks: Vec<Jwk>,
    issuer: String,
    audience: String,
    recent: Option<quick_cache::sync::Cache<String, AccessClaims>>,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("alg", &self.signer.algorithm().name())
            .field("kid", &self.kid)
            .field(
                "verification_kids",
                &self.verifiers.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl JwtCodec {
    /// The same codec, remembering up to `capacity` access tokens it verified (0: none), so
    /// that a token presented again (a downstream service checks the same user's token on
    /// each of their requests) costs a lookup instead of a signature check.
    ///
    /// Only tokens whose signature, header and claims passed are kept, keyed by their
    /// whole text; each use still checks expiry against `now`, and revocation is the
    /// caller's (the service asks the revocation list every time). The keys that verify
    /// are fixed for the codec's life, so a remembered verdict cannot go stale. Memory:
    /// about 1 KB per token kept.
    #[must_use]
    pub fn with_verify_cache(mut self, capacity: usize) -> Self {
        self.recent = (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity));
        self
    }

    /// HS256 with a shared secret (at least 32 bytes). JWKS stays empty: a symmetric key is
    /// never published.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::Invalid(
                "JWT_SECRET_KEY must be at least 32 bytes".into(),
            ));
        }
        let kid = format!(
            "hs-{}",
            &URL_SAFE_NO_PAD.encode(Sha256::digest([b"kid:".as_slice(), secret].concat()))[..16]
        );
        let mut signer = HS256
            .signer_from_bytes(secret)
            .map_err(|e| invalid("JWT_SECRET_KEY", e))?;
        signer.set_key_id(kid.clone());
        let mut verifier = HS256
            .verifier_from_bytes(secret)
            .map_err(|e| invalid("JWT_SECRET_KEY", e))?;
        verifier.set_key_id(kid.clone());
        let verifier: Box<dyn JwsVerifier> = Box::new(verifier);
        Ok(Self {
            signer: Box::new(signer),
            kid: kid.clone(),
            verifiers: HashMap::from([(kid, verifier)]),
            public_jwks: Vec::new(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            recent: None,
        })
    }

    /// An asymmetric signing key (PEM, PKCS#8 or traditional) plus optional extra public
    /// keys (concatenated PEM) that stay valid for verification during a rotation.
    // Long: every check a key gets before it signs (type against algorithm, public half
    // derivable, extra keys of the same algorithm, kids distinct), each with its message.
    pub fn asymmetric(
        alg: Asymmetric,
        private_pem: &str,
        extra_public_pems: Option<&str>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, KeyError> {
        let (signer, public_pem): (Box<dyn JwsSigner>, Vec<u8>) = match alg {
            Asymmetric::Rs256 => {
                let pair = RS256
                    .key_pair_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (RS256)", e))?;
                let signer = RS256
                    .signer_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (RS256)", e))?;
                (Box::new(signer), pair.to_pem_public_key())
            }
            Asymmetric::Es256 => {
                let pair = ES256
                    .key_pair_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (ES256)", e))?;
                let signer = ES256
                    .signer_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (ES256)", e))?;
                (Box::new(signer), pair.to_pem_public_key())
            }
            Asymmetric::EdDsa => {
                let pair = EdDSA
                    .key_pair_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (EdDSA)", e))?;
                let signer = EdDSA
                    .signer_from_pem(private_pem)
                    .map_err(|e| invalid("JWT_PRIVATE_KEY (EdDSA)", e))?;
                (Box::new(signer), pair.to_pem_public_key())
            }
        };
        let mut pems = vec![public_pem];
        pems.extend(
            pem_blocks(extra_public_pems.unwrap_or_default())
                .into_iter()
                .map(String::into_bytes),
        );
        let mut verifiers: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
        let mut public_jwks = Vec::new();
        for pem in &pems {
            let jwk = public_jwk(pem, alg)?;
            let kid = jwk.key_id().unwrap_or_default().to_owned();
            if verifiers.contains_key(&kid) {
                continue;
            }
            let verifier: Box<dyn JwsVerifier> = match alg {
                Asymmetric::Rs256 => Box::new(
                    RS256
                        .verifier_from_jwk(&jwk)
                        .map_err(|e| invalid("JWT_PUBLIC_KEY", e))?,
                ),
                Asymmetric::Es256 => Box::new(
                    ES256
                        .verifier_from_jwk(&jwk)
                        .map_err(|e| invalid("JWT_PUBLIC_KEY", e))?,
                ),
                Asymmetric::EdDsa => Box::new(
                    EdDSA
                        .verifier_from_jwk(&jwk)
                        .map_err(|e| invalid("JWT_PUBLIC_KEY", e))?,
                ),
            };
            verifiers.insert(kid, verifier);
            public_jwks.push(jwk);
        }
        let kid = public_jwks
            .first()
            .and_then(|j| j.key_id())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            signer,
            kid,
            verifiers,
            public_jwks,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            recent: None,
        })
    }

    /// `{"keys": [...]}`: the public keys, each with `kid`, `alg` and `use`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .public_jwks
            .iter()
            .filter_map(|jwk| serde_json::to_value(jwk).ok())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The algorithm that signs.
    pub fn algorithm(&self) -> &str {
        self.signer.algorithm().name()
    }

    /// The `kid` of the signing key.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    fn sign(&self, typ: &str, payload: &JwtPayload) -> Result<String, PortError> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(self.kid.clone());
        jwt::encode_with_signer(payload, &header, &*self.signer).map_err(PortError::unexpected)
    }

    /// Verifies signature, algorithm and `kid`, then the claims every token type shares.
    fn verify(&self, token: &str, typ: &str, now: Timestamp) -> Result<JwtPayload, TokenRejection> {
        let verifiers = &self.verifiers;
        let (payload, header) = jwt::decode_with_verifier_selector(token, |h| {
            Ok(h.key_id().and_then(|kid| verifiers.get(kid)).map(|v| &**v))
        })
        .map_err(|_: JoseError| TokenRejection::Invalid)?;
        if header.token_type() != Some(typ) {
            return Err(TokenRejection::Invalid);
        }
        let now = to_system(now);
        if payload.issuer() != Some(self.issuer.as_str()) {
            return Err(TokenRejection::Invalid);
        }
        if !payload
            .audience()
            .is_some_and(|aud| aud.contains(&self.audience.as_str()))
        {
            return Err(TokenRejection::Invalid);
        }
        let issued = payload.issued_at().ok_or(TokenRejection::Invalid)?;
        if issued > now + LEEWAY {
            return Err(TokenRejection::Invalid);
        }
        if payload.not_before().is_some_and(|nbf| nbf > now + LEEWAY) {
            return Err(TokenRejection::Invalid);
        }
        let exp = payload.expires_at().ok_or(TokenRejection::Invalid)?;
        if exp <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(payload)
    }
}
