//! The OpenAPI 3.1 document, generated from the handlers and body types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;
use crate::routes::{auth, mfa, system, users};

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

/// `POST /auth/logout` takes an optional body: absent means this session only. It is
/// documented as an optional `LogoutRequest` rather than `LogoutRequest | null` (a JSON
/// `null` body is refused like any other non-object).
struct OptionalLogoutBody;

impl Modify for OptionalLogoutBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        let logout = openapi
            .paths
            .paths
            .get_mut("/auth/logout")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut());
        if let Some(utoipa::openapi::RefOr::T(body)) = logout {
            body.required = Some(Required::False);
        }
        let passkey_start = openapi
            .paths
            .paths
            .get_mut("/auth/passkey/start")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut());
        if let Some(utoipa::openapi::RefOr::T(body)) = passkey_start {
            body.required = Some(Required::False);
        }
    }
}

/// Documents the headers the service sets: `X-Request-Id` and `Cache-Control` on every
/// answer, `RateLimit`/`RateLimit-Policy` on the answers of counted operations (`/auth/*`
/// but verify-token) and on every 429, `Retry-After` with 423, 429 and 503, `WWW-Authenticate` with a 401
/// of an operation that takes a bearer token.
struct ResponseHeaders;

impl Modify for ResponseHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for (path, item) in &mut openapi.paths.paths {
            let counted = path.starts_with("/auth/") && path != "/auth/verify-token";
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let bearer = operation.security.is_some() || path == "/metrics";
                for (status, response) in &mut operation.responses.responses {
                    if let RefOr::T(response) = response {
                        headers_of(path, status, counted, bearer, &mut response.headers);
                    }
                }
            }
        }
    }
}

/// The headers of one documented answer.
fn headers_of(
    path: &str,
    status: &str,
    counted: bool,
    bearer: bool,
    headers: &mut std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::header::Header>,
    >,
) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ObjectBuilder, Type};
    let mut add = |name: &str, description: &str, integer: bool| {
        let schema = ObjectBuilder::new()
            .schema_type(if integer { Type::Integer } else { Type::String })
            .build();
        headers.insert(
            name.to_owned(),
            utoipa::openapi::RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(schema))
                    .description(Some(description))
                    .build(),
            ),
        );
    };
    add(
        "X-Request-Id",
        "The request's id: the client's own `X-Request-Id` when it sent a sane one, else a new UUID. Logs carry it.",
        false,
    );
    let cache = if path == "/.well-known/jwks.json" {
        "`public, max-age=300`: keys may be cached for five minutes."
    } else {
        "`no-store`: answers carry tokens and personal data."
    };
    add("Cache-Control", cache, false);
    if status == "429" || (counted && status != "413" && status != "415") {
        add(
            "RateLimit-Policy",
            "The tightest limit this request counted against (IETF draft): `\"ip\";q=10;w=60` is 10 requests per 60 s per client IP; `\"identifier\"` counts per email or username.",
            false,
        );
        add(
            "RateLimit",
            "What is left of that limit: `\"ip\";r=9;t=6` is 9 more requests now, the window refills in 6 s.",
            false,
        );
    }
    if matches!(status, "423" | "429" | "503") {
        add("Retry-After", "Seconds to wait before trying again.", true);
    }
    if status == "401" && bearer {
        add(
            "WWW-Authenticate",
            "RFC 6750: `Bearer realm=\"auth\"` when no token was sent; with `error=\"invalid_token\"` and `error_description` (the problem code) when it was refused.",
            false,
        );
    }
}

/// The document as this instance serves it: `servers` from `PUBLIC_URL`, or the origin the
/// document is fetched from (a relative `/`).
pub fn document(public_url: Option<&str>) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::server::ServerBuilder;
    let mut doc = ApiDoc::openapi();
    let server = match public_url {
        Some(url) => ServerBuilder::new()
            .url(url.trim_end_matches('/'))
            .description(Some("This service (PUBLIC_URL)"))
            .build(),
        None => ServerBuilder::new()
            .url("/")
            .description(Some("The origin this document is served from"))
            .build(),
    };
    doc.servers = Some(vec![server]);
    doc
}

/// The API document, served at `/openapi.json` and shown at `/docs`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Auth service",
        description = "Registration, login, token rotation and revocation, account management. Every error is application/problem+json (RFC 9457) with a stable `code` and the original service's `error` member. A method a path does not declare is answered 405 `method_not_allowed` with `Allow`; an unknown path 404 `not_found`.",
    ),
    paths(
        auth::register, auth::verify_email, auth::resend_verification, auth::login,
        auth::refresh_token, auth::logout, auth::forgot_password, auth::reset_password,
        auth::verify_token,
        users::get_profile, users::update_profile, users::change_password,
        users::delete_account, users::list_sessions, users::revoke_session,
        mfa::mfa_status, mfa::enrol_totp, mfa::confirm_totp, mfa::disable_totp,
        mfa::recovery_codes, mfa::passkey_register_start, mfa::passkey_register_finish,
        mfa::delete_passkey, mfa::mfa_verify, mfa::passkey_start, mfa::passkey_finish,
        system::health, system::live, system::ready, system::metrics, system::jwks,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &BodyRefusals, &OptionalLogoutBody, &ResponseHeaders),
    tags(
        (name = "auth", description = "Registration, login, tokens, recovery"),
        (name = "users", description = "The signed-in user's account"),
        (name = "mfa", description = "Second factors: TOTP, recovery codes, passkeys; completing a login with one"),
        (name = "system", description = "Health, metrics, keys"),
    ),
)]
pub struct ApiDoc;
