//! Bodies of the second-factor operations: `/users/mfa*`, `/users/passkeys*`,
//! `/auth/mfa/verify` and `/auth/passkey/*`.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use auth_domain::model::MfaMethod;
use auth_domain::service::{MfaChallenge, MfaStatus, PasskeyView};

use crate::dto::LoginResponse;

/// A login answer: tokens, or (for an account with a second factor) the token that
/// completes the login.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    /// Signed in.
    Tokens(Box<LoginResponse>),
    /// A second factor is required.
    Mfa(MfaRequiredResponse),
}

/// The password was right; a second factor must complete the login.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// What happened.
    #[schema(example = "A second factor is required")]
    pub message: String,
    /// Always `true`.
    #[schema(example = true)]
    pub mfa_required: bool,
    /// Opaque, single use; dies after `expires_in` seconds or 5 wrong codes. Give it to
    /// `POST /auth/mfa/verify` or `POST /auth/passkey/start`.
    #[schema(example = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5")]
    pub mfa_token: String,
    /// What can complete the login.
    pub methods: Vec<MfaMethodName>,
    /// Seconds until `mfa_token` dies.
    #[schema(example = 300)]
    pub expires_in: i64,
}

impl From<MfaChallenge> for MfaRequiredResponse {
    fn from(c: MfaChallenge) -> Self {
        Self {
            message: "A second factor is required".to_owned(),
            mfa_required: true,
            mfa_token: c.mfa_token,
            methods: c.methods.into_iter().map(MfaMethodName::from).collect(),
            expires_in: c.expires_in,
        }
    }
}

/// A second-factor method.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethodName {
    /// A code from an authenticator app.
    Totp,
    /// A passkey (`POST /auth/passkey/start` with the `mfa_token`).
    Passkey,
    /// A single-use recovery code.
    RecoveryCode,
}

impl From<MfaMethod> for MfaMethodName {
    fn from(m: MfaMethod) -> Self {
        match m {
            MfaMethod::Totp => Self::Totp,
            MfaMethod::Passkey => Self::Passkey,
            MfaMethod::RecoveryCode => Self::RecoveryCode,
        }
    }
}

/// `POST /auth/mfa/verify`: `code` (TOTP) or `recovery_code`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"mfa_token": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5", "code": "123456"}))]
pub struct MfaVerifyRequest {
    /// From the login's answer.
    #[schema(value_type = String, required = true, max_length = 1024)]
    #[serde(default)]
    pub mfa_token: SecretString,
    /// A 6-digit code from the authenticator app.
    #[schema(value_type = Option<String>, max_length = 64, example = "123456")]
    #[serde(default)]
    pub code: Option<SecretString>,
    /// One of the recovery codes (each works once).
    #[schema(value_type = Option<String>, max_length = 64, example = "7kq2m-x9d4t")]
    #[serde(default)]
    pub recovery_code: Option<SecretString>,
}

/// `GET /users/mfa`.
#[derive(Serialize, ToSchema)]
pub struct MfaStatusResponse {
    /// Whether an authenticator app (TOTP) is enabled.
    pub totp: bool,
    /// Passkeys, oldest first.
    pub passkeys: Vec<PasskeyBody>,
    /// Unused recovery codes.
    #[schema(example = 10)]
    pub recovery_codes_left: u32,
}

impl From<MfaStatus> for MfaStatusResponse {
    fn from(s: MfaStatus) -> Self {
        Self {
            totp: s.totp,
            passkeys: s.passkeys.into_iter().map(PasskeyBody::from).collect(),
            recovery_codes_left: s.recovery_codes_left,
        }
    }
}

/// A passkey.
#[derive(Serialize, ToSchema)]
pub struct PasskeyBody {
    /// Id (for `DELETE /users/passkeys/{id}`).
    pub id: Uuid,
    /// The name given at registration.
    #[schema(example = "MacBook Touch ID")]
    pub name: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last used to sign in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<PasskeyView> for PasskeyBody {
    fn from(p: PasskeyView) -> Self {
        Self {
            id: p.id.0,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A body with only the password (re-authentication).
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"password": "SecurePass123!"}))]
pub struct PasswordRequest {
    /// The account's password.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, format = Password)]
    #[serde(default)]
    pub password: SecretString,
}

/// `POST /users/mfa/totp`.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentResponse {
    /// The shared secret, base32 (to type into an app).
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// `otpauth://totp/{issuer}:{username}?secret=…&issuer=…` (to show as a QR code).
    #[schema(
        example = "otpauth://totp/Auth:testuser?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Auth"
    )]
    pub otpauth_url: String,
}

/// `POST /users/mfa/totp/confirm`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
pub struct TotpConfirmRequest {
    /// A current code from the app.
    #[schema(value_type = String, required = true, max_length = 64)]
    #[serde(default)]
    pub code: SecretString,
}

/// `DELETE /users/mfa/totp`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({"password": "SecurePass123!", "code": "123456"}))]
pub struct TotpDisableRequest {
    /// The account's password.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, format = Password)]
    #[serde(default)]
    pub password: SecretString,
    /// A current TOTP code, or a recovery code.
    #[schema(value_type = String, required = true, max_length = 64)]
    #[serde(default)]
    pub code: SecretString,
}

/// A new set of recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use codes; store them safely.
    #[schema(example = json!(["7kq2m-x9d4t", "b3n8r-p0w6z"]))]
    pub recovery_codes: Vec<String>,
}

/// A WebAuthn ceremony started.
#[derive(Serialize, ToSchema)]
pub struct CeremonyResponse {
    /// Give it back to the matching `finish` within 5 minutes; single use.
    #[schema(example = "Q2hhbGxlbmdlSWRDaGFsbGVuZ2VJZENoYWxsZW5nZUlk")]
    pub challenge_id: String,
    /// For `PublicKeyCredential.parseCreationOptionsFromJSON` (registration) or
    /// `parseRequestOptionsFromJSON` (sign-in); binary members base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /users/passkeys/register/finish`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "challenge_id": "Q2hhbGxlbmdlSWRDaGFsbGVuZ2VJZENoYWxsZW5nZUlk",
    "credential": {
        "id": "rBR1GbUkm0Gzjg34VZ-NnQkNYzbWsZx-Z-JFbMIH1Y8",
        "rawId": "rBR1GbUkm0Gzjg34VZ-NnQkNYzbWsZx-Z-JFbMIH1Y8",
        "type": "public-key",
        "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0",
            "attestationObject": "o2NmbXRkbm9uZQ",
            "transports": ["internal"]
        },
        "clientExtensionResults": {}
    },
    "name": "MacBook Touch ID"
}))]
pub struct PasskeyRegisterFinishRequest {
    /// From `register/start`.
    #[schema(value_type = String, required = true, max_length = 1024)]
    #[serde(default)]
    pub challenge_id: SecretString,
    /// `RegistrationResponseJSON`: what `PublicKeyCredential.toJSON()` gives.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub credential: serde_json::Value,
    /// A name to tell it apart (default "Passkey").
    #[schema(max_length = 64, example = "MacBook Touch ID")]
    #[serde(default)]
    pub name: Option<String>,
}

/// A passkey just registered.
#[derive(Serialize, ToSchema)]
pub struct PasskeyCreatedResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    #[schema(example = "MacBook Touch ID")]
    pub name: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// `POST /auth/passkey/start` (body optional).
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({}))]
pub struct PasskeyStartRequest {
    /// The login's `mfa_token`: the passkey is its second factor. Absent: passwordless
    /// sign-in with a discoverable passkey.
    #[schema(value_type = Option<String>, max_length = 1024)]
    #[serde(default)]
    pub mfa_token: Option<SecretString>,
}

/// `POST /auth/passkey/finish`.
#[derive(Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "challenge_id": "Q2hhbGxlbmdlSWRDaGFsbGVuZ2VJZENoYWxsZW5nZUlk",
    "credential": {
        "id": "rBR1GbUkm0Gzjg34VZ-NnQkNYzbWsZx-Z-JFbMIH1Y8",
        "rawId": "rBR1GbUkm0Gzjg34VZ-NnQkNYzbWsZx-Z-JFbMIH1Y8",
        "type": "public-key",
        "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "signature": "MEUCIQDiK",
            "userHandle": "AZOj8nwefUqbL16MHQpLbw"
        },
        "clientExtensionResults": {}
    }
}))]
pub struct PasskeyFinishRequest {
    /// From `/auth/passkey/start`.
    #[schema(value_type = String, required = true, max_length = 1024)]
    #[serde(default)]
    pub challenge_id: SecretString,
    /// `AuthenticationResponseJSON`: what `PublicKeyCredential.toJSON()` gives.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub credential: serde_json::Value,
}
