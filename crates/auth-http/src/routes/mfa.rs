//! Second factors: `/users/mfa*` and `/users/passkeys*` (the signed-in user's factors),
//! `/auth/mfa/verify` and `/auth/passkey/*` (completing a login, or passwordless sign-in).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use auth_domain::AuthError;
use auth_domain::service::{LoggedIn, SecondFactor, SecretPassword};
use auth_domain::types::PasskeyId;
use secrecy::ExposeSecret;

use crate::dto::{LoginResponse, TokenResponse};
use crate::dto_mfa::{
    CeremonyResponse, MfaStatusResponse, MfaVerifyRequest, PasskeyCreatedResponse,
    PasskeyFinishRequest, PasskeyRegisterFinishRequest, PasskeyStartRequest, PasswordRequest,
    RecoveryCodesResponse, TotpConfirmRequest, TotpDisableRequest, TotpEnrolmentResponse,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Authenticated, Client, JsonObject, optional_json};
use crate::routes::auth::respond;
use crate::state::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users/mfa").route(web::get().to(mfa_status)))
        .service(
            web::resource("/users/mfa/totp")
                .route(web::post().to(enrol_totp))
                .route(web::delete().to(disable_totp)),
        )
        .service(web::resource("/users/mfa/totp/confirm").route(web::post().to(confirm_totp)))
        .service(web::resource("/users/mfa/recovery-codes").route(web::post().to(recovery_codes)))
        .service(
            web::resource("/users/passkeys/register/start")
                .route(web::post().to(passkey_register_start)),
        )
        .service(
            web::resource("/users/passkeys/register/finish")
                .route(web::post().to(passkey_register_finish)),
        )
        .service(web::resource("/users/passkeys/{id}").route(web::delete().to(delete_passkey)))
        .service(web::resource("/auth/mfa/verify").route(web::post().to(mfa_verify)))
        .service(web::resource("/auth/passkey/start").route(web::post().to(passkey_start)))
        .service(web::resource("/auth/passkey/finish").route(web::post().to(passkey_finish)));
}

/// A use case of the signed-in user failed (see `users::failed`).
fn failed(err: AuthError) -> ApiError {
    match err {
        AuthError::TokenRevoked => ApiError::Bearer(err),
        other => ApiError::Domain(other),
    }
}

/// The body of a successful login, as `POST /auth/login` gives it.
pub(crate) fn signed_in(logged_in: LoggedIn) -> HttpResponse {
    let tokens = TokenResponse::from(&logged_in.tokens);
    let answer = LoginResponse {
        message: "Login successful".to_owned(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: tokens.token_type,
        expires_in: tokens.expires_in,
        device_token: logged_in.device_token,
        user: logged_in.profile.into(),
    };
    respond(StatusCode::OK, &answer)
}

#[utoipa::path(get, path = "/users/mfa", tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's second factors", body = MfaStatusResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    ))]
/// List the second factors
///
/// Whether TOTP is enabled, the passkeys, and how many recovery codes are left.
pub async fn mfa_status(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let status = state.service.mfa_status(&auth.0).await.map_err(failed)?;
    Ok(respond(StatusCode::OK, &MfaStatusResponse::from(status)))
}

#[utoipa::path(post, path = "/users/mfa/totp", tag = "mfa",
    security(("bearer" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "A new secret, pending until a first code confirms it", body = TotpEnrolmentResponse),
        (status = 400, description = "Missing password or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is already enabled (conflict)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Enrol an authenticator app (TOTP)
///
/// Needs the password. Returns the secret and its `otpauth://` URL (show it as a QR code);
/// nothing is required at login until `POST /users/mfa/totp/confirm` confirms a first code.
/// Enrolling again before confirming replaces the pending secret.
pub async fn enrol_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let enrolment = state
        .service
        .enrol_totp(&auth.0, SecretPassword::from(body.into_inner().password))
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &TotpEnrolmentResponse {
            secret: enrolment.secret,
            otpauth_url: enrolment.otpauth_url,
        },
    ))
}

#[utoipa::path(post, path = "/users/mfa/totp/confirm", tag = "mfa",
    security(("bearer" = [])),
    request_body = TotpConfirmRequest,
    responses(
        (status = 200, description = "TOTP is enabled: required at every login from now on. Ten recovery codes, shown once; the user is mailed a notice", body = RecoveryCodesResponse),
        (status = 400, description = "Missing code or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A wrong or already used code (invalid_mfa_code), or a missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment is pending (conflict)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes tried for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Confirm the authenticator app
///
/// With a current code from the app. Returns ten single-use recovery codes (any earlier set
/// is dead).
pub async fn confirm_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<TotpConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let codes = state
        .service
        .confirm_totp(&auth.0, body.code.expose_secret())
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &RecoveryCodesResponse {
            recovery_codes: codes,
        },
    ))
}

#[utoipa::path(delete, path = "/users/mfa/totp", tag = "mfa",
    security(("bearer" = [])),
    request_body = TotpDisableRequest,
    responses(
        (status = 204, description = "Removed; the user is mailed a notice"),
        (status = 400, description = "Missing fields or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A wrong or already used code (invalid_mfa_code), or a missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TOTP is not enabled", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password or code checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Remove the authenticator app
///
/// Needs the password and a code: a current TOTP code or a recovery code. When no passkey
/// is left either, the recovery codes go too and logins need the password only.
pub async fn disable_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<TotpDisableRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state
        .service
        .disable_totp(
            &auth.0,
            SecretPassword::from(body.password),
            body.code.expose_secret(),
        )
        .await
        .map_err(failed)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/users/mfa/recovery-codes", tag = "mfa",
    security(("bearer" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "A new set of ten; the old set is dead", body = RecoveryCodesResponse),
        (status = 400, description = "Missing password or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has no second factor (conflict)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Renew the recovery codes
///
/// Needs the password. Ten new single-use codes, shown once; the old ones stop working.
pub async fn recovery_codes(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let codes = state
        .service
        .renew_recovery_codes(&auth.0, SecretPassword::from(body.into_inner().password))
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &RecoveryCodesResponse {
            recovery_codes: codes,
        },
    ))
}

#[utoipa::path(post, path = "/users/passkeys/register/start", tag = "mfa",
    security(("bearer" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Options for `navigator.credentials.create` (via `PublicKeyCredential.parseCreationOptionsFromJSON`) and the challenge id", body = CeremonyResponse),
        (status = 400, description = "Missing password or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Start registering a passkey
///
/// Needs the password. The options ask for a discoverable credential (usable for
/// passwordless sign-in) with user verification, excluding the user's passkeys.
pub async fn passkey_register_start(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = state
        .service
        .start_passkey_registration(&auth.0, SecretPassword::from(body.into_inner().password))
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &CeremonyResponse {
            challenge_id: started.challenge_id,
            options: started.options,
        },
    ))
}

#[utoipa::path(post, path = "/users/passkeys/register/finish", tag = "mfa",
    security(("bearer" = [])),
    request_body = PasskeyRegisterFinishRequest,
    responses(
        (status = 201, description = "Registered: required (or usable) at every login from now on; the user is mailed a notice", body = PasskeyCreatedResponse),
        (status = 400, description = "A credential that is not a registration response or does not verify, a bad name, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "An unknown, used or expired challenge_id (invalid_token), or a missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This authenticator's credential is registered already (conflict)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Finish registering a passkey
///
/// With the challenge id and what `PublicKeyCredential.toJSON()` gives for the new
/// credential.
pub async fn passkey_register_finish(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: JsonObject<PasskeyRegisterFinishRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let registered = state
        .service
        .finish_passkey_registration(
            &auth.0,
            body.challenge_id.expose_secret(),
            &body.credential,
            body.name.as_deref(),
        )
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::CREATED,
        &PasskeyCreatedResponse {
            id: registered.id.0,
            name: registered.name,
            created_at: registered.created_at,
        },
    ))
}

#[utoipa::path(delete, path = "/users/passkeys/{id}", tag = "mfa",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Passkey id")),
    responses(
        (status = 204, description = "Removed; the user is mailed a notice"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No passkey with this id belongs to the caller", body = Problem, content_type = "application/problem+json"),
    ))]
/// Remove a passkey
///
/// When it was the last second factor, the recovery codes go too.
pub async fn delete_passkey(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PasskeyId::parse(&id).map_err(|_| ApiError::BadPath("passkey"))?;
    state
        .service
        .delete_passkey(&auth.0, id)
        .await
        .map_err(failed)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/auth/mfa/verify", tag = "mfa",
    request_body = MfaVerifyRequest,
    responses(
        (status = 200, description = "Logged in: the same body as a login without a second factor", body = LoginResponse),
        (status = 400, description = "Neither or both of code and recovery_code, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_mfa_code (a wrong or already used code), or invalid_token (an unknown, used or expired mfa_token, or one dead after 5 wrong codes)", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked: wrong codes count toward the account's lockout (Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Complete a login with a code
///
/// With the login's `mfa_token` and a TOTP `code` or a `recovery_code`.
pub async fn mfa_verify(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<MfaVerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let code = match (body.code, body.recovery_code) {
        (Some(code), None) => SecondFactor::Totp(code.expose_secret().trim().to_owned()),
        (None, Some(code)) => SecondFactor::RecoveryCode(code.expose_secret().to_owned()),
        (both, _) => {
            let message = if both.is_some() {
                "give either code or recovery_code, not both"
            } else {
                "is required (or recovery_code)"
            };
            return Err(ApiError::Domain(AuthError::invalid_field("code", message)));
        }
    };
    let logged_in = state
        .service
        .verify_mfa(body.mfa_token.expose_secret(), code, &client.0)
        .await?;
    Ok(signed_in(logged_in))
}

#[utoipa::path(post, path = "/auth/passkey/start", tag = "mfa",
    request_body(content = PasskeyStartRequest, description = "Optional: `{}` or no body for passwordless sign-in"),
    responses(
        (status = 200, description = "Options for `navigator.credentials.get` (via `PublicKeyCredential.parseRequestOptionsFromJSON`) and the challenge id", body = CeremonyResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "An unknown, used or expired mfa_token (invalid_token)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The login's account has no passkey (conflict)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Start a passkey sign-in
///
/// With a login's `mfa_token`: the passkey is that login's second factor. Without:
/// passwordless sign-in, the authenticator offering the discoverable passkeys it holds.
pub async fn passkey_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: PasskeyStartRequest = optional_json(&req, &body)?;
    let token = body
        .mfa_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    let started = state
        .service
        .start_passkey_sign_in(token.as_deref(), &client.0)
        .await?;
    Ok(respond(
        StatusCode::OK,
        &CeremonyResponse {
            challenge_id: started.challenge_id,
            options: started.options,
        },
    ))
}

#[utoipa::path(post, path = "/auth/passkey/finish", tag = "mfa",
    request_body = PasskeyFinishRequest,
    responses(
        (status = 200, description = "Logged in: the same body as a successful login", body = LoginResponse),
        (status = 400, description = "A credential that is not an authentication response, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_token (an unknown, used or expired challenge_id or mfa_token), invalid_mfa_code (second factor: the passkey did not verify), invalid_credentials (passwordless: unknown passkey or it did not verify)", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked (second factor)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Finish a passkey sign-in
///
/// With the challenge id and what `PublicKeyCredential.toJSON()` gives for the assertion.
pub async fn passkey_finish(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<PasskeyFinishRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let logged_in = state
        .service
        .finish_passkey_sign_in(
            body.challenge_id.expose_secret(),
            &body.credential,
            &client.0,
        )
        .await?;
    Ok(signed_in(logged_in))
}
