//! Public keys as JWKs: PEM blocks, the JWK of a public key, RFC 7638 thumbprints.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::Value;
use josekit::jwk::Jwk;
use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::{Id, PKey};
use sha2::{Digest, Sha256};

use super::{Asymmetric, KeyError, invalid};

/// RFC 7638 thumbprint of a public JWK (canonical members in lexicographic order).
pub(super) fn thumbprint(jwk: &Jwk) -> Option<String> {
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
pub(super) fn public_jwk(pem: &[u8], alg: Asymmetric) -> Result<Jwk, KeyError> {
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
pub(super) fn pem_blocks(pems: &str) -> Vec<String> {
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
