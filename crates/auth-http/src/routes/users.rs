//! `/users/*`: the signed-in user's own account.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use auth_domain::AuthError;
use auth_domain::service::{ProfileUpdate, SecretPassword};
use auth_domain::types::SessionId;

use crate::dto::{
    ChangePasswordRequest, DeleteAccountRequest, MessageResponse, ProfileResponse,
    ProfileUpdateRequest, ProfileUpdateResponse, SessionBody, SessionsResponse,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Authenticated, Client, JsonObject};
use crate::routes::auth::respond;
use crate::state::AppState;

/// A use case of the signed-in user failed. `TokenRevoked` here means the account behind a
/// valid token is gone: a bearer failure, so it carries `WWW-Authenticate`.
fn failed(err: AuthError) -> ApiError {
    match err {
        AuthError::TokenRevoked => ApiError::Bearer(err),
        other => ApiError::Domain(other),
    }
}

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users/profile")
            .route(web::get().to(get_profile))
            .route(web::put().to(update_profile)),
    )
    .service(web::resource("/users/change-password").route(web::post().to(change_password)))
    .service(web::resource("/users/delete-account").route(web::delete().to(delete_account)))
    .service(web::resource("/users/sessions").route(web::get().to(list_sessions)))
    .service(web::resource("/users/sessions/{id}").route(web::delete().to(revoke_session)));
}

#[utoipa::path(get, path = "/users/profile", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    ))]
/// Read the profile
///
/// The signed-in user's profile.
pub async fn get_profile(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let profile = state.service.profile(&auth.0).await.map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &ProfileResponse {
            user: profile.into(),
        },
    ))
}

#[utoipa::path(put, path = "/users/profile", tag = "users",
    security(("bearer" = [])),
    request_body = ProfileUpdateRequest,
    responses(
        (status = 200, description = "Updated. A new email is pending until the link mailed to it is followed; the current address is told.", body = ProfileUpdateResponse),
        (status = 400, description = "Invalid fields, a new email without current_password, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A new email with a wrong current_password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks or email changes for this account, or changes to this address (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Update the profile
///
/// Changes only the fields present: an absent field is kept; `phone_number: null` (or
/// `""`) removes the phone. A new `email` needs `current_password`, is mailed a
/// verification link, and replaces the current address only once that link is followed.
pub async fn update_profile(
    state: web::Data<AppState>,
    auth: Authenticated,
    client: Client,
    body: JsonObject<ProfileUpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let update = ProfileUpdate {
        username: body.username,
        name: body.name,
        surname: body.surname,
        phone_number: body.phone_number,
        email: body.email,
        current_password: body.current_password.map(SecretPassword::from),
    };
    let (profile, pending) = state
        .service
        .update_profile(&auth.0, update, &client.0)
        .await
        .map_err(failed)?;
    let message = if pending {
        "Profile updated. Follow the link sent to your new email address to confirm it."
    } else {
        "Profile updated successfully."
    };
    let answer = ProfileUpdateResponse {
        message: message.to_owned(),
        user: profile.into(),
        email_change_pending: pending,
    };
    Ok(respond(StatusCode::OK, &answer))
}

#[utoipa::path(post, path = "/users/change-password", tag = "users",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; the user's other sessions are ended", body = MessageResponse),
        (status = 400, description = "Weak new password or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The current password is wrong (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Change the password
///
/// Needs the current password; the user's other sessions end.
pub async fn change_password(
    state: web::Data<AppState>,
    auth: Authenticated,
    client: Client,
    body: JsonObject<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state
        .service
        .change_password(
            &auth.0,
            SecretPassword::from(body.current_password),
            SecretPassword::from(body.new_password),
            &client.0,
        )
        .await
        .map_err(failed)?;
    Ok(respond(
        StatusCode::OK,
        &MessageResponse::new(
            "Password changed successfully. Other sessions have been signed out.",
        ),
    ))
}

#[utoipa::path(delete, path = "/users/delete-account", tag = "users",
    security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Deleted: personal data erased, every session ended, email and username free"),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (invalid_credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password checks for this account (rate_limited, Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Delete the account
///
/// Needs the password. Personal data is erased, every session and token revoked, and the
/// email and username are free again.
pub async fn delete_account(
    state: web::Data<AppState>,
    auth: Authenticated,
    client: Client,
    body: JsonObject<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .service
        .delete_account(
            &auth.0,
            SecretPassword::from(body.into_inner().password),
            &client.0,
        )
        .await
        .map_err(failed)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/users/sessions", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions, newest first", body = SessionsResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    ))]
/// List the sessions
///
/// The user's live sessions, newest first; `current` marks the one of the token used.
pub async fn list_sessions(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let sessions: Vec<SessionBody> = state
        .service
        .sessions(&auth.0)
        .await
        .map_err(failed)?
        .into_iter()
        .map(SessionBody::from)
        .collect();
    let answer = SessionsResponse {
        total_count: sessions.len(),
        active_sessions: sessions,
    };
    Ok(respond(StatusCode::OK, &answer))
}

#[utoipa::path(delete, path = "/users/sessions/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live session with this id belongs to the caller", body = Problem, content_type = "application/problem+json"),
    ))]
/// Revoke a session
///
/// Ends one of the user's sessions (another device's, or this one).
pub async fn revoke_session(
    state: web::Data<AppState>,
    auth: Authenticated,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId::parse(&id).map_err(|_| ApiError::BadPath("session"))?;
    state
        .service
        .revoke_session(&auth.0, id, &client.0)
        .await
        .map_err(failed)?;
    Ok(HttpResponse::NoContent().finish())
}
