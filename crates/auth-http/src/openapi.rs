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

/// Documents the framework's own refusals of a request body on every operation that takes
/// one: 400 (unreadable JSON, or a field of the wrong type), 413 (larger than the limit) and
/// 415 (not `application/json`), each a problem document like every other error.
struct BodyRefusals;

impl Modify for BodyRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let refusal = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.request_body.is_none() {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                responses.entry("400".to_owned()).or_insert_with(|| {
                    refusal("The body is not JSON, or a field has the wrong type")
                });
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| refusal("The body is larger than the limit"));
                responses
                    .entry("415".to_owned())
                    .or_insert_with(|| refusal("The body is not `application/json`"));
            }
        }
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
    modifiers(&BearerAuth, &BodyRefusals),
    tags(
        (name = "auth", description = "Registration, login, tokens, recovery"),
        (name = "users", description = "The signed-in user's account"),
        (name = "system", description = "Health, metrics, keys"),
    ),
)]
pub struct ApiDoc;
