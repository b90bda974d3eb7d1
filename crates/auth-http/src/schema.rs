//! Types that exist for the OpenAPI document only: the fixed sets the service answers with,
//! as enums, and the JWKS as RFC 7517 names its members. Generated clients read them as
//! types (a `code` is a union of literals, `keys` an array of keys), so a value outside
//! the set is a bug the schema tests catch.

use serde::Serialize;
use utoipa::ToSchema;

/// Every `code` a problem document carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A field is missing or invalid, or the body is unreadable (`errors` says which).
    ValidationFailed,
    /// Wrong identifier or password (indistinguishable on purpose).
    InvalidCredentials,
    /// Correct password, email not verified yet.
    EmailNotVerified,
    /// Too many failed logins: wait for `Retry-After`.
    AccountLocked,
    /// Too many requests: wait for `Retry-After`.
    RateLimited,
    /// A token past its expiry.
    TokenExpired,
    /// A revoked token (logout, password change, account deletion…).
    TokenRevoked,
    /// A rotated refresh token presented again: its session is revoked.
    TokenReused,
    /// A token that is not one of ours, used already, or missing.
    InvalidToken,
    /// A wrong or already used second-factor code, or a passkey that did not verify.
    InvalidMfaCode,
    /// The username (or email) is taken, or a second-factor change does not fit the
    /// account's factors.
    Conflict,
    /// No such resource or route.
    NotFound,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// Refused before any route saw it (a CORS preflight not allowed…).
    BadRequest,
    /// A dependency is down: retry after `Retry-After`.
    ServiceUnavailable,
    /// A bug on the service's side; the body says nothing more.
    Internal,
}

/// The token type of every token answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum TokenType {
    /// `Authorization: Bearer <access_token>`.
    Bearer,
}

/// The overall state in `GET /health` and `GET /health/ready`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every dependency answers.
    Ok,
    /// Ready, but mail is late (it waits in the outbox).
    Degraded,
    /// A dependency is down.
    Unavailable,
}

/// The state of one dependency.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// It answers.
    Ok,
    /// Mailer only: the oldest queued mail waits longer than `MAIL_QUEUE_WARN_AGE`.
    Warn,
    /// It does not answer.
    Unavailable,
}

/// The state in `GET /health/live`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveStatus {
    /// The process serves requests.
    Ok,
}

/// A JSON Web Key Set (RFC 7517, section 5).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The public keys that verify access tokens; empty with HS256 (a shared secret is
    /// never published).
    pub keys: Vec<Jwk>,
}

/// A public key (RFC 7517 section 4; RFC 7518 section 6 for the members of each type).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// Key type.
    pub kty: KeyType,
    /// Always `sig`: the key verifies signatures.
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
    /// The algorithm tokens signed with this key use.
    pub alg: SigningAlgorithm,
    /// The key id tokens name in their header.
    #[schema(example = "rs-3f9c2a1b7d4e6f80")]
    pub kid: String,
    /// RSA: modulus (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA: public exponent (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "AQAB")]
    pub e: Option<String>,
    /// EC and OKP: curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<Curve>,
    /// EC and OKP: x coordinate or public key (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC: y coordinate (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// RFC 7518 key types this service publishes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum KeyType {
    /// RSA (RS256).
    #[serde(rename = "RSA")]
    Rsa,
    /// Elliptic curve (ES256).
    #[serde(rename = "EC")]
    Ec,
    /// Octet key pair (EdDSA).
    #[serde(rename = "OKP")]
    Okp,
}

/// Signing algorithms of published keys.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum SigningAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

/// Curves of published keys.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum Curve {
    /// NIST P-256 (ES256).
    #[serde(rename = "P-256")]
    P256,
    /// Ed25519 (EdDSA).
    #[serde(rename = "Ed25519")]
    Ed25519,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_service_answers_is_in_the_schema() {
        use crate::error::ApiError;
        use auth_domain::AuthError;
        use auth_domain::ports::PortError;
        let listed: Vec<String> = [
            ProblemCode::ValidationFailed,
            ProblemCode::InvalidCredentials,
            ProblemCode::EmailNotVerified,
            ProblemCode::AccountLocked,
            ProblemCode::RateLimited,
            ProblemCode::TokenExpired,
            ProblemCode::TokenRevoked,
            ProblemCode::TokenReused,
            ProblemCode::InvalidToken,
            ProblemCode::InvalidMfaCode,
            ProblemCode::Conflict,
            ProblemCode::NotFound,
            ProblemCode::MethodNotAllowed,
            ProblemCode::UnsupportedMediaType,
            ProblemCode::PayloadTooLarge,
            ProblemCode::BadRequest,
            ProblemCode::ServiceUnavailable,
            ProblemCode::Internal,
        ]
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
        let decision = auth_domain::policy::gcra(
            auth_domain::policy::RateLimit {
                name: "ip",
                limit: 1,
                window: chrono::TimeDelta::minutes(1),
            },
            None,
            chrono::Utc::now(),
        )
        .1;
        let answered = [
            ApiError::Domain(AuthError::Validation(Default::default())),
            ApiError::Domain(AuthError::InvalidCredentials),
            ApiError::Domain(AuthError::WrongPassword),
            ApiError::Domain(AuthError::EmailNotVerified),
            ApiError::Domain(AuthError::AccountLocked {
                retry_after_secs: 1,
            }),
            ApiError::Domain(AuthError::RateLimited(decision)),
            ApiError::Domain(AuthError::TokenExpired),
            ApiError::Domain(AuthError::TokenRevoked),
            ApiError::Domain(AuthError::TokenReused),
            ApiError::Domain(AuthError::InvalidToken),
            ApiError::Domain(AuthError::InvalidMfaCode),
            ApiError::Domain(AuthError::MfaState("nothing pending")),
            ApiError::Domain(AuthError::Conflict("username")),
            ApiError::Domain(AuthError::NotFound),
            ApiError::Domain(AuthError::Unavailable(PortError::unavailable("down"))),
            ApiError::Domain(AuthError::Unexpected(PortError::unexpected("bug"))),
            ApiError::BadJson("x".into()),
            ApiError::BadRequest,
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge(1),
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::MissingBearer,
            ApiError::MetricsToken { presented: true },
            ApiError::MailedToken { expired: true },
            ApiError::MailedToken { expired: false },
            ApiError::BadPath("session"),
        ];
        for err in &answered {
            assert!(
                listed.iter().any(|c| c == err.code()),
                "{} is answered but not in ProblemCode",
                err.code()
            );
        }
        assert_eq!(listed.len(), 18);
    }

    /// Every variant of `AuthError`: a new one fails to compile here until it is added to
    /// `answered` above (and its code to `ProblemCode`).
    #[allow(dead_code)]
    fn every_domain_error_is_listed(err: &auth_domain::AuthError) {
        use auth_domain::AuthError as E;
        match err {
            E::Validation(_)
            | E::InvalidCredentials
            | E::WrongPassword
            | E::EmailNotVerified
            | E::AccountLocked { .. }
            | E::RateLimited(_)
            | E::TokenExpired
            | E::TokenRevoked
            | E::TokenReused
            | E::InvalidToken
            | E::InvalidMfaCode
            | E::MfaState(_)
            | E::Conflict(_)
            | E::NotFound
            | E::Unavailable(_)
            | E::Unexpected(_) => {}
        }
    }
}
