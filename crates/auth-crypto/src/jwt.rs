//! JWTs with josekit: access tokens and device tokens, HS256 or an asymmetric key, `kid`
//! in every header, strict verification, and the JWKS of the public keys.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_domain::model::{AccessClaims, DeviceClaims};
use auth_domain::ports::{PortError, TokenCodec, TokenRejection};
use auth_domain::types::{SessionId, Timestamp, UserId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, JwsSigner, JwsVerifier, RS256};
use josekit::jwt::{self, JwtPayload};
use josekit::{JoseError, Value};
use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::{Id, PKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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

fn invalid(what: &str, err: impl fmt::Display) -> KeyError {
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

/// RFC 7638 thumbprint of a public JWK (canonical members in lexicographic order).
fn thumbprint(jwk: &Jwk) -> Option<String> {
    let p = |k: &str| jwk.parameter(k).and_then(Value::as_str);
    let canonical = match jwk.key_type() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p("e")?, p("n")?),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            p("crv")?,
            p("x")?,
            p("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, p("crv")?, p("x")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The public JWK of a PEM public key.
fn public_jwk(pem: &[u8], alg: Asymmetric) -> Result<Jwk, KeyError> {
    let key = PKey::public_key_from_pem(pem).map_err(|e| invalid("public key", e))?;
    let b64 = |b: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(b));
    let set = |jwk: &mut Jwk, name: &str, value: Value| {
        jwk.set_parameter(name, Some(value))
            .map_err(|e| invalid("public key", e))
    };
    let mut jwk = match (key.id(), alg) {
        (Id::RSA, Asymmetric::Rs256) => {
            let rsa = key.rsa().map_err(|e| invalid("RSA public key", e))?;
            let mut jwk = Jwk::new("RSA");
            set(&mut jwk, "n", b64(&rsa.n().to_vec()))?;
            set(&mut jwk, "e", b64(&rsa.e().to_vec()))?;
            jwk
        }
        (Id::EC, Asymmetric::Es256) => {
            let ec = key.ec_key().map_err(|e| invalid("EC public key", e))?;
            let mut ctx = BigNumContext::new().map_err(|e| invalid("EC public key", e))?;
            let (mut x, mut y) = (
                BigNum::new().map_err(|e| invalid("EC", e))?,
                BigNum::new().map_err(|e| invalid("EC", e))?,
            );
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .map_err(|e| invalid("EC public key", e))?;
            let mut jwk = Jwk::new("EC");
            jwk.set_curve("P-256");
            set(
                &mut jwk,
                "x",
                b64(&x.to_vec_padded(32).map_err(|e| invalid("EC", e))?),
            )?;
            set(
                &mut jwk,
                "y",
                b64(&y.to_vec_padded(32).map_err(|e| invalid("EC", e))?),
            )?;
            jwk
        }
        (Id::ED25519, Asymmetric::EdDsa) => {
            let mut jwk = Jwk::new("OKP");
            jwk.set_curve("Ed25519");
            set(
                &mut jwk,
                "x",
                b64(&key
                    .raw_public_key()
                    .map_err(|e| invalid("Ed25519 public key", e))?),
            )?;
            jwk
        }
        _ => {
            return Err(KeyError::Invalid(format!(
                "public key does not match JWT_ALGORITHM={}",
                alg.name()
            )));
        }
    };
    jwk.set_key_use("sig");
    jwk.set_algorithm(alg.name());
    let kid = thumbprint(&jwk).ok_or_else(|| KeyError::Invalid("cannot compute key id".into()))?;
    jwk.set_key_id(kid);
    Ok(jwk)
}

/// Splits concatenated PEM blocks.
fn pem_blocks(pems: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in pems.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
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

fn to_system(t: Timestamp) -> SystemTime {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(t.timestamp_subsec_nanos()))
}

fn secs(t: Timestamp) -> Value {
    Value::from(t.timestamp().max(0))
}

fn from_system(t: SystemTime) -> Option<Timestamp> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    chrono::DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, 0)
}

fn str_claim<'a>(payload: &'a JwtPayload, name: &str) -> Option<&'a str> {
    payload.claim(name).and_then(Value::as_str)
}

/// A claim that must hold a UUID; anything else makes the token invalid.
fn uuid_claim(raw: Option<&str>) -> Result<Uuid, TokenRejection> {
    raw.and_then(|s| Uuid::parse_str(s).ok())
        .ok_or(TokenRejection::Invalid)
}

impl JwtCodec {
    /// Every check of an access token: signature, header, shared claims, its own claims.
    fn verify_access_fully(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<AccessClaims, TokenRejection> {
        let p = self.verify(token, ACCESS_TYP, now)?;
        if str_claim(&p, "typ") != Some("access") {
            return Err(TokenRejection::Invalid);
        }
        Ok(AccessClaims {
            user_id: UserId(uuid_claim(p.subject())?),
            session_id: SessionId(uuid_claim(str_claim(&p, "sid"))?),
            jti: uuid_claim(p.jwt_id())?,
            username: str_claim(&p, "username").unwrap_or_default().to_owned(),
            issued_at: p
                .issued_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
            expires_at: p
                .expires_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
        })
    }

    fn base_payload(
        &self,
        subject: &str,
        issued_at: Timestamp,
        expires_at: Timestamp,
        kind: &str,
    ) -> Result<JwtPayload, PortError> {
        let mut p = JwtPayload::new();
        p.set_issuer(self.issuer.clone());
        p.set_audience(vec![self.audience.clone()]);
        p.set_subject(subject);
        p.set_claim("iat", Some(secs(issued_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("nbf", Some(secs(issued_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("exp", Some(secs(expires_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("typ", Some(Value::from(kind)))
            .map_err(PortError::unexpected)?;
        Ok(p)
    }
}

impl TokenCodec for JwtCodec {
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, PortError> {
        let mut p = self.base_payload(
            &claims.user_id.to_string(),
            claims.issued_at,
            claims.expires_at,
            "access",
        )?;
        p.set_jwt_id(claims.jti.to_string());
        p.set_claim("sid", Some(Value::from(claims.session_id.to_string())))
            .map_err(PortError::unexpected)?;
        p.set_claim("username", Some(Value::from(claims.username.clone())))
            .map_err(PortError::unexpected)?;
        self.sign(ACCESS_TYP, &p)
    }

    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenRejection> {
        let Some(recent) = &self.recent else {
            return self.verify_access_fully(token, now);
        };
        if let Some(claims) = recent.get(token) {
            return if claims.expires_at > now {
                Ok(claims)
            } else {
                recent.remove(token);
                Err(TokenRejection::Expired)
            };
        }
        let claims = self.verify_access_fully(token, now)?;
        recent.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn issue_device(&self, claims: &DeviceClaims) -> Result<String, PortError> {
        let now = chrono::Utc::now().min(claims.expires_at);
        let mut p = self.base_payload(
            &claims.user_id.to_string(),
            now,
            claims.expires_at,
            "device",
        )?;
        p.set_claim("did", Some(Value::from(claims.device_id.to_string())))
            .map_err(PortError::unexpected)?;
        self.sign(DEVICE_TYP, &p)
    }

    fn verify_device(&self, token: &str, now: Timestamp) -> Result<DeviceClaims, TokenRejection> {
        let p = self.verify(token, DEVICE_TYP, now)?;
        if str_claim(&p, "typ") != Some("device") {
            return Err(TokenRejection::Invalid);
        }
        Ok(DeviceClaims {
            user_id: UserId(uuid_claim(p.subject())?),
            device_id: uuid_claim(str_claim(&p, "did"))?,
            expires_at: p
                .expires_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
        })
    }
}
