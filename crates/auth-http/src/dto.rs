//! Request and response bodies, in the original service's shapes.
//!
//! Request fields default to empty so that a missing field is reported per field
//! (`validation_failed`) rather than as a parse error. Passwords and tokens arrive as
//! `SecretString`: no `Debug`, no copy left behind unzeroed by the body.

use auth_domain::model::{Profile, SessionView, TokenPair};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `Debug` that names the body but none of its values: bodies carry passwords, tokens and
/// personal data, none of which may reach a log through `{:?}`.
macro_rules! opaque_debug {
    ($($body:ident),* $(,)?) => {
        $(
            impl std::fmt::Debug for $body {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.debug_struct(stringify!($body)).finish_non_exhaustive()
                }
            }
        )*
    };
}

opaque_debug!(
    RegisterRequest,
    RegisteredUser,
    RegisterResponse,
    TokenRequest,
    EmailRequest,
    LoginRequest,
    UserBody,
    LoginResponse,
    RefreshRequest,
    TokenResponse,
    ResetPasswordRequest,
    VerifyTokenResponse,
    ProfileResponse,
    ProfileUpdateResponse,
    ProfileUpdateRequest,
    ChangePasswordRequest,
    DeleteAccountRequest,
    SessionBody,
    SessionsResponse,
);

/// `POST /auth/register`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "test@example.com", "username": "testuser", "password": "SecurePass123!", "name": "Test", "surname": "User"}))]
pub struct RegisterRequest {
    /// Email address (normalized to lower case).
    #[schema(required = true, min_length = 1, max_length = 254, format = Email, example = "test@example.com")]
    #[serde(default)]
    pub email: String,
    /// 3–32 letters, digits, `_`, `.`, `-`, starting with a letter or a digit.
    #[schema(required = true, min_length = 1, example = "testuser")]
    #[serde(default)]
    pub username: String,
    /// 8–128 characters, zxcvbn score ≥ 3.
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128, example = "SecurePass123!", format = Password)]
    #[serde(default)]
    pub password: SecretString,
    /// First name.
    #[schema(required = true, min_length = 1, example = "Test")]
    #[serde(default)]
    pub name: String,
    /// Surname.
    #[schema(required = true, min_length = 1, example = "User")]
    #[serde(default)]
    pub surname: String,
    /// Optional phone number (7–15 digits, optional leading `+`).
    #[schema(example = "+15550100200")]
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// The public part of a new account.
#[derive(Serialize, ToSchema)]
pub struct RegisteredUser {
    /// Id.
    #[schema(example = "0193a3f2-7c1e-7d4a-9b2f-5e8c1d0a4b6f")]
    pub id: Uuid,
    /// Username.
    #[schema(example = "testuser")]
    pub username: String,
    /// Email.
    #[schema(example = "test@example.com")]
    pub email: String,
    /// First name.
    #[schema(example = "Test")]
    pub name: String,
    /// Surname.
    #[schema(example = "User")]
    pub surname: String,
}

/// Answer to a registration.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    /// What happens next.
    #[schema(
        example = "User registered successfully. Please check your email to verify your account."
    )]
    pub message: String,
    /// Always true: the email must be verified before login.
    pub email_verification_required: bool,
    /// The account.
    pub user: RegisteredUser,
}

/// A single-use token from a mailed link.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"token": "vz8ynVD7ZnowxDoFe41cIAECME7AcDeiCxgf9IozRhE"}))]
pub struct TokenRequest {
    /// The token.
    #[schema(value_type = String, required = true, min_length = 1)]
    #[serde(default)]
    pub token: SecretString,
}

/// An email address.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "test@example.com"}))]
pub struct EmailRequest {
    /// Email address.
    #[schema(required = true, min_length = 1, max_length = 254, format = Email, example = "test@example.com")]
    #[serde(default)]
    pub email: String,
}

/// A plain message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// What happened.
    #[schema(example = "Email verified successfully.")]
    pub message: String,
}

impl MessageResponse {
    /// A message.
    pub fn new(message: &str) -> Self {
        Self {
            message: message.to_owned(),
        }
    }
}

/// `POST /auth/login`: `username` or `email`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"username": "testuser", "password": "SecurePass123!"}))]
pub struct LoginRequest {
    /// Username (or an email).
    #[schema(example = "testuser")]
    #[serde(default)]
    pub username: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Password.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, example = "SecurePass123!", format = Password)]
    #[serde(default)]
    pub password: SecretString,
    /// Device token from an earlier login: exempts this device from lockouts caused elsewhere.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

/// A user's profile.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    /// Id.
    #[schema(example = "0193a3f2-7c1e-7d4a-9b2f-5e8c1d0a4b6f")]
    pub id: Uuid,
    /// Username.
    #[schema(example = "testuser")]
    pub username: String,
    /// Email.
    #[schema(example = "test@example.com")]
    pub email: String,
    /// First name.
    #[schema(example = "Test")]
    pub name: String,
    /// Surname.
    #[schema(example = "User")]
    pub surname: String,
    /// Phone number.
    #[schema(example = "+15550100200")]
    pub phone_number: Option<String>,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Created.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Last successful login.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub last_login_at: Option<DateTime<Utc>>,
    /// A new email waiting for verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "new@example.com")]
    pub pending_email: Option<String>,
}

impl From<Profile> for UserBody {
    fn from(p: Profile) -> Self {
        Self {
            id: p.id.0,
            username: p.username,
            email: p.email,
            name: p.name,
            surname: p.surname,
            phone_number: p.phone_number,
            email_verified: p.email_verified,
            created_at: p.created_at,
            updated_at: p.updated_at,
            last_login_at: p.last_login_at,
            pending_email: p.pending_email,
        }
    }
}

/// Answer to a login.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// What happened.
    #[schema(example = "Login successful")]
    pub message: String,
    /// Signed access token (JWT).
    #[schema(
        example = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLTBZal9qS1ItN2dXcGt6ZnoiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiIwMTkzYTNmMi03YzFlLTdkNGEtOWIyZi01ZThjMWQwYTRiNmYiLCJ0eXAiOiJhY2Nlc3MifQ.3q2-7wAbCdEfGhIjKlMnOpQrStUvWxYz0123456789A"
    )]
    pub access_token: String,
    /// Opaque refresh token (single use: rotate it).
    #[schema(example = "kM3pQ9xR2vT7wY1zA4bC6dE8fG0hJ2kL4mN6pQ8rS0t")]
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = crate::schema::TokenType)]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Present at later logins on this device.
    #[schema(
        example = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLTBZal9qS1ItN2dXcGt6ZnoiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiIwMTkzYTNmMi03YzFlLTdkNGEtOWIyZi01ZThjMWQwYTRiNmYiLCJ0eXAiOiJhY2Nlc3MifQ.3q2-7wAbCdEfGhIjKlMnOpQrStUvWxYz0123456789A"
    )]
    pub device_token: String,
    /// The user.
    pub user: UserBody,
}

/// `POST /auth/refresh-token`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"refresh_token": "kM3pQ9xR2vT7wY1zA4bC6dE8fG0hJ2kL4mN6pQ8rS0t"}))]
pub struct RefreshRequest {
    /// The refresh token.
    #[schema(value_type = String, required = true, min_length = 1)]
    #[serde(default)]
    pub refresh_token: SecretString,
}

/// A fresh token pair.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Signed access token (JWT).
    #[schema(
        example = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLTBZal9qS1ItN2dXcGt6ZnoiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiIwMTkzYTNmMi03YzFlLTdkNGEtOWIyZi01ZThjMWQwYTRiNmYiLCJ0eXAiOiJhY2Nlc3MifQ.3q2-7wAbCdEfGhIjKlMnOpQrStUvWxYz0123456789A"
    )]
    pub access_token: String,
    /// The new refresh token; the one presented is dead.
    #[schema(example = "kM3pQ9xR2vT7wY1zA4bC6dE8fG0hJ2kL4mN6pQ8rS0t")]
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = crate::schema::TokenType)]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

impl From<&TokenPair> for TokenResponse {
    fn from(t: &TokenPair) -> Self {
        Self {
            access_token: t.access_token.expose_secret().to_owned(),
            refresh_token: t.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: t.expires_in,
        }
    }
}

/// `POST /auth/logout` (body optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"all": false}))]
pub struct LogoutRequest {
    /// End every session of the user, not just this one.
    #[serde(default)]
    pub all: bool,
}

/// `POST /auth/reset-password`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"token": "vz8ynVD7ZnowxDoFe41cIAECME7AcDeiCxgf9IozRhE", "new_password": "NewSecurePass456!"}))]
pub struct ResetPasswordRequest {
    /// The token from the mailed link.
    #[schema(value_type = String, required = true, min_length = 1)]
    #[serde(default)]
    pub token: SecretString,
    /// The new password (8–128 characters, zxcvbn score ≥ 3).
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128, format = Password)]
    #[serde(default)]
    pub new_password: SecretString,
}

/// Answer of `GET /auth/verify-token`.
#[derive(Serialize, ToSchema)]
pub struct VerifyTokenResponse {
    /// Always true here; failures are 401 problems with `valid: false`.
    pub valid: bool,
    /// `sub`.
    #[schema(example = "0193a3f2-7c1e-7d4a-9b2f-5e8c1d0a4b6f")]
    pub user_id: Uuid,
    /// Username when the token was issued.
    #[schema(example = "testuser")]
    pub username: String,
    /// `sid`.
    #[schema(example = "0193a3f2-8a40-7b11-8c3d-2f6e9a1b5c7d")]
    pub session_id: Uuid,
    /// `exp`.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub expires_at: DateTime<Utc>,
}

/// `{"user": …}`.
#[derive(Serialize, ToSchema)]
pub struct ProfileResponse {
    /// The user.
    pub user: UserBody,
}

/// Answer of `PUT /users/profile`.
#[derive(Serialize, ToSchema)]
pub struct ProfileUpdateResponse {
    /// What happened.
    #[schema(example = "Profile updated successfully.")]
    pub message: String,
    /// The user.
    pub user: UserBody,
    /// A new email waits for verification.
    pub email_change_pending: bool,
}

/// Deserializes a present field (even `null`) as `Some(value)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PUT /users/profile`: only the fields present change; an absent field is kept.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Test", "surname": "User"}))]
pub struct ProfileUpdateRequest {
    /// New username (3–32 letters, digits, `_`, `.`, `-`).
    #[serde(default)]
    #[schema(min_length = 1)]
    pub username: Option<String>,
    /// New first name.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// New surname.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub surname: Option<String>,
    /// New phone number. Absent: the phone is kept; `null` or `""`: it is removed.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone_number: Option<Option<String>>,
    /// New email: takes effect once the link mailed to it is followed. Needs
    /// `current_password`; the current address is told of the request.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 254, format = Email)]
    pub email: Option<String>,
    /// The current password: required with a new `email` (re-authentication, rate limited
    /// like `POST /users/change-password`), ignored otherwise.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1024, format = Password)]
    pub current_password: Option<SecretString>,
}

/// `POST /users/change-password`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"current_password": "SecurePass123!", "new_password": "NewSecurePass456!"}))]
pub struct ChangePasswordRequest {
    /// The current password.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, format = Password)]
    #[serde(default)]
    pub current_password: SecretString,
    /// The new password (8–128 characters, zxcvbn score ≥ 3).
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128, format = Password)]
    #[serde(default)]
    pub new_password: SecretString,
}

/// `DELETE /users/delete-account`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"password": "SecurePass123!"}))]
pub struct DeleteAccountRequest {
    /// The password, to re-authenticate.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, format = Password)]
    #[serde(default)]
    pub password: SecretString,
}

/// One session.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// Id.
    #[schema(example = "0193a3f2-8a40-7b11-8c3d-2f6e9a1b5c7d")]
    pub id: Uuid,
    /// Started.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub last_used_at: DateTime<Utc>,
    /// Absolute end.
    #[schema(example = "2027-01-04T10:15:00Z")]
    pub expires_at: DateTime<Utc>,
    /// User-Agent of the login.
    #[schema(example = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")]
    pub user_agent: Option<String>,
    /// IP of the login.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// The session of the token that asked.
    pub current: bool,
}

impl From<SessionView> for SessionBody {
    fn from(s: SessionView) -> Self {
        Self {
            id: s.id.0,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
            current: s.current,
        }
    }
}

/// `GET /users/sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionsResponse {
    /// Live sessions, newest first.
    pub active_sessions: Vec<SessionBody>,
    /// How many.
    pub total_count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_forms_show_no_password_token_or_personal_data() {
        let login = LoginRequest {
            username: Some("ada_lovelace".to_owned()),
            email: Some("ada@example.com".to_owned()),
            password: "Sekrit-Passphrase-1".to_owned().into(),
            device_token: Some("device.token.value".to_owned().into()),
        };
        let tokens = TokenResponse {
            access_token: "access.token.value".to_owned(),
            refresh_token: "refresh-token-value".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 900,
        };
        let shown = format!("{login:?} {tokens:?}");
        for secret in [
            "ada_lovelace",
            "ada@example.com",
            "Sekrit",
            "device.token",
            "access.token",
            "refresh-token",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("LoginRequest"), "the body is still named");
    }
}
