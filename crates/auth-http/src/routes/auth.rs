//! `/auth/*`: registration, verification, login, tokens, password recovery.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use auth_domain::service::{LoginIdentifier, LoginOutcome, Registration, SecretPassword};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::dto::{
    EmailRequest, LoginRequest, LogoutRequest, MessageResponse, RefreshRequest, RegisterRequest,
    RegisterResponse, RegisteredUser, ResetPasswordRequest, TokenRequest, TokenResponse,
    VerifyTokenResponse,
};
use crate::dto_mfa::{LoginAnswer, MfaRequiredResponse};
use crate::error::{ApiError, Problem};
use crate::extract::{Authenticated, Client, JsonObject, bearer, optional_json};
use crate::state::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").route(web::post().to(register)))
        .service(web::resource("/auth/verify-email").route(web::post().to(verify_email)))
        .service(
            web::resource("/auth/resend-verification").route(web::post().to(resend_verification)),
        )
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh-token").route(web::post().to(refresh_token)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/auth/forgot-password").route(web::post().to(forgot_password)))
        .service(web::resource("/auth/reset-password").route(web::post().to(reset_password)))
        .service(web::resource("/auth/verify-token").route(web::get().to(verify_token)));
}

/// A JSON answer.
pub(crate) fn respond<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; a verification mail is sent. A taken email gets the same answer (the owner is mailed instead).", body = RegisterResponse),
        (status = 400, description = "Invalid fields or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Register an account
///
/// Creates the account and mails a verification link; the account cannot log in until the
/// email is verified. A taken email gets the same answer (the address's owner is mailed
/// instead), so the answer never tells whether an address has an account.
pub async fn register(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let registration = Registration {
        email: body.email,
        username: body.username,
        password: SecretPassword::from(body.password),
        name: body.name,
        surname: body.surname,
        phone_number: body.phone_number,
    };
    let registered = state.service.register(registration, &client.0).await?;
    let answer = RegisterResponse {
        message: "User registered successfully. Please check your email to verify your account."
            .to_owned(),
        email_verification_required: true,
        user: RegisteredUser {
            id: registered.id.0,
            username: registered.username,
            email: registered.email,
            name: registered.name,
            surname: registered.surname,
        },
    };
    Ok(respond(StatusCode::CREATED, &answer))
}

#[utoipa::path(post, path = "/auth/verify-email", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Email verified", body = MessageResponse),
        (status = 400, description = "invalid_token (unknown or used), token_expired, validation_failed (missing token or malformed body)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new email was taken meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Verify an email address
///
/// Consumes the token of a verification link: a registration's address, or a new address
/// from a profile update (which then replaces the old one).
pub async fn verify_email(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .service
        .verify_email(body.token.expose_secret(), &client.0)
        .await
        .map_err(ApiError::mailed)?;
    Ok(respond(
        StatusCode::OK,
        &MessageResponse::new("Email verified successfully."),
    ))
}

#[utoipa::path(post, path = "/auth/resend-verification", tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted, whether or not the address has an unverified account", body = MessageResponse),
        (status = 400, description = "Invalid email or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Resend the verification link
///
/// Always 202, whether or not the address has an unverified account.
pub async fn resend_verification(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .service
        .resend_verification(&body.email, &client.0)
        .await?;
    let msg = MessageResponse::new(
        "If the address belongs to an unverified account, a new verification link is on its way.",
    );
    Ok(respond(StatusCode::ACCEPTED, &msg))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; or, for an account with a second factor (TOTP or a passkey), `mfa_required` with an `mfa_token` and no tokens: complete it with `POST /auth/mfa/verify` or `/auth/passkey/*`", body = LoginAnswer),
        (status = 400, description = "Missing fields or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_credentials (unknown user and wrong password alike)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "email_not_verified (after a correct password only)", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked, with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Log in
///
/// With `username` (or an email in it) or `email`, and the password. Returns an access
/// token, a refresh token and a device token; present the device token at later logins so
/// that failures elsewhere never lock this device out. For an account with a second
/// factor, the right password gives `{"mfa_required": true, "mfa_token", "methods",
/// "expires_in"}` instead.
pub async fn login(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let identifier = match (body.email, body.username) {
        (Some(email), _) if !email.trim().is_empty() => LoginIdentifier::Email(email),
        (_, Some(username)) => LoginIdentifier::Username(username),
        (Some(email), None) => LoginIdentifier::Email(email),
        (None, None) => LoginIdentifier::Username(String::new()),
    };
    let request = auth_domain::service::LoginRequest {
        identifier,
        password: SecretPassword::from(body.password),
        device_token: body
            .device_token
            .map(|token| token.expose_secret().to_owned()),
    };
    match state.service.login(request, &client.0).await? {
        LoginOutcome::SignedIn(logged_in) => Ok(crate::routes::mfa::signed_in(*logged_in)),
        LoginOutcome::MfaRequired(challenge) => Ok(respond(
            StatusCode::OK,
            &MfaRequiredResponse::from(challenge),
        )),
    }
}

#[utoipa::path(post, path = "/auth/refresh-token", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and a new refresh token; the presented one is dead", body = TokenResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_token, token_expired, token_revoked, or token_reused (the session is revoked)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Rotate a refresh token
///
/// Returns a new access token and a new refresh token; the one presented is dead. Presented
/// again within `REFRESH_REUSE_INTERVAL` it yields the same successor (two tabs refreshing
/// at once); later, it revokes the whole session (`token_reused`).
pub async fn refresh_token(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .service
        .refresh(body.refresh_token.expose_secret(), &client.0)
        .await?;
    Ok(respond(StatusCode::OK, &TokenResponse::from(&pair)))
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body(content = LogoutRequest, description = "Optional: without a body (or with `{}`), this session ends; `{\"all\": true}` ends every session of the user. A JSON `null` is refused (400)."),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session (or all sessions) revoked; the access token is denylisted"),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Log out
///
/// Ends this session (or, with `{"all": true}`, every session of the user) and revokes
/// the access token at once, on every instance.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    auth: Authenticated,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: LogoutRequest = optional_json(&req, &body)?;
    state.service.logout(&auth.0, body.all, &client.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted, whether or not the address has an account", body = MessageResponse),
        (status = 400, description = "Invalid email or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Ask for a password reset link
///
/// Always 202, whether or not the address has an account.
pub async fn forgot_password(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .service
        .forgot_password(&body.email, &client.0)
        .await?;
    let msg = MessageResponse::new(
        "If the address belongs to an account, a password reset link is on its way.",
    );
    Ok(respond(StatusCode::ACCEPTED, &msg))
}

#[utoipa::path(post, path = "/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password changed; every session ended", body = MessageResponse),
        (status = 400, description = "invalid_token (unknown or used), token_expired, weak password, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
/// Reset the password
///
/// Sets a new password with the token of a reset link; every session of the account ends.
/// The token also verifies the email.
pub async fn reset_password(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state
        .service
        .reset_password(
            body.token.expose_secret(),
            SecretPassword::from(body.new_password),
            &client.0,
        )
        .await
        .map_err(ApiError::mailed)?;
    Ok(respond(
        StatusCode::OK,
        &MessageResponse::new("Password has been reset. Please log in again."),
    ))
}

#[utoipa::path(get, path = "/auth/verify-token", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is valid", body = VerifyTokenResponse),
        (status = 401, description = "Not valid: `valid` is false, `code` says why", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The revocation list cannot be read: fails closed (`valid` is false)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Verify an access token
///
/// For downstream services: signature, claims and revocation, as the service itself checks
/// them. A refused token is a 401 problem with `valid: false`.
pub async fn verify_token(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let result = async {
        let token = bearer(&req)?;
        state
            .service
            .authenticate(&token)
            .await
            .map_err(ApiError::Bearer)
    }
    .await;
    match result {
        Ok(claims) => {
            metrics::counter!("auth_verify_token_total", "outcome" => "valid").increment(1);
            HttpResponse::Ok().json(VerifyTokenResponse {
                valid: true,
                user_id: claims.user_id.0,
                username: claims.username,
                session_id: claims.session_id.0,
                expires_at: claims.expires_at,
            })
        }
        Err(err) => {
            let mut problem = err.problem();
            metrics::counter!("auth_verify_token_total", "outcome" => problem.code).increment(1);
            // Fails closed: a 503 (revocation list unreadable) is not valid either; its
            // cause is logged once, like every other 5xx.
            err.log_cause();
            problem.valid = Some(false);
            err.response_with(&problem)
        }
    }
}
