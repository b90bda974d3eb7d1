//! The OpenAPI 3.1 document, generated from the handlers and body types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;
use crate::routes::{auth, system, users};

/// Adds the bearer scheme that protected operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// The API document, served at `/openapi.json` and shown at `/docs`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Auth service",
        description = "Registration, login, token rotation and revocation, account management. Every error is application/problem+json (RFC 9457) with a stable `code` and the original service's `error` member.",
    ),
    paths(
        auth::register, auth::verify_email, auth::resend_verification, auth::login,
        auth::refresh_token, auth::logout, auth::forgot_password, auth::reset_password,
        auth::verify_token,
        users::get_profile, users::update_profile, users::change_password,
        users::delete_account, users::list_sessions, users::revoke_session,
        system::health, system::live, system::ready, system::metrics, system::jwks,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, tokens, recovery"),
        (name = "users", description = "The signed-in user's account"),
        (name = "system", description = "Health, metrics, keys"),
    ),
)]
pub struct ApiDoc;
