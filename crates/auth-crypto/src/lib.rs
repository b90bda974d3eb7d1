//! Crypto adapters of the auth service: JWTs with josekit, bcrypt over a keyed pre-hash,
//! personal-data encryption and blind indexes, TOTP codes (RFC 6238) with totp-rs, OS
//! randomness, the system clock.
#![forbid(unsafe_code)]

mod jwt;
mod keygen;
mod keys;
mod password;
mod totp;

pub use jwt::{Asymmetric, JwtCodec, KeyError};
pub use keygen::{GeneratedKey, RSA_BITS, generate_key_pair};
pub use keys::{
    Key32, KeyMaterial, OsRandom, SecretKeyring, SystemClock, hmac_sha256, secrets_match,
};
pub use password::{BcryptHasher, HashStats, HashTiming};
pub use totp::Rfc6238;
