//! The single mapping from failures to `application/problem+json` (RFC 9457), with the
//! stable `code` and the `error` member that the original service's clients read.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use auth_domain::{AuthError, FieldErrors};
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::ProblemCode;

use crate::ratelimit::rate_limit_headers;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error body (RFC 9457 problem details, with the original service's `error` member).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type: `urn:problem:auth:{code}`.
    #[serde(rename = "type")]
    #[schema(example = "urn:problem:auth:validation_failed")]
    pub type_: String,
    /// Short summary of the problem type.
    #[schema(example = "Validation failed")]
    pub title: &'static str,
    /// HTTP status.
    #[schema(example = 400)]
    pub status: u16,
    /// What happened, for people.
    #[schema(example = "One or more fields are invalid.")]
    pub detail: String,
    /// Stable machine-readable code.
    #[schema(value_type = ProblemCode)]
    pub code: &'static str,
    /// The message, as the original service's clients read it.
    #[schema(example = "password must be at least 8 characters")]
    pub error: String,
    /// Per-field messages (`validation_failed` only): field name → messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, Vec<String>>>, example = json!({"password": ["must be at least 8 characters"]}))]
    pub errors: Option<FieldErrors>,
    /// `false` on `GET /auth/verify-token` failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
}

/// A failure on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case failed.
    #[error(transparent)]
    Domain(#[from] AuthError),
    /// Authenticating the bearer token failed: a 401 here carries `WWW-Authenticate`.
    #[error(transparent)]
    Bearer(AuthError),
    /// The body is not JSON, or not the JSON expected.
    #[error("malformed request body: {0}")]
    BadJson(String),
    /// The body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A request refused before any route saw it (a CORS origin not allowed…).
    #[error("bad request")]
    BadRequest,
    /// The body exceeds the limit.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// No such route.
    #[error("not found")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    MissingBearer,
    /// `/metrics` with `METRICS_TOKEN` set, and the request does not carry it.
    #[error("metrics token missing or wrong")]
    MetricsToken {
        /// A bearer token was sent (a wrong one) rather than none.
        presented: bool,
    },
    /// A mailed single-use token (verification, reset) that is unknown, used or expired:
    /// a bad field of the body, so 400 rather than 401.
    #[error("bad mailed token")]
    MailedToken {
        /// Expired rather than unknown or used.
        expired: bool,
    },
    /// An invalid path parameter.
    #[error("invalid path parameter {0}")]
    BadPath(&'static str),
}

impl ApiError {
    /// Status, code, title, detail.
    // Long on purpose: the table of every problem the API answers, one arm each, kept in
    // one place so that a code and its status are read together.
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use AuthError as E;
        match self {
            Self::Domain(err) | Self::Bearer(err) => {
                let (status, title, detail) = match err {
                    E::Validation(_) => (
                        StatusCode::BAD_REQUEST,
                        "Validation failed",
                        "One or more fields are invalid.".into(),
                    ),
                    E::InvalidCredentials => (
                        StatusCode::UNAUTHORIZED,
                        "Invalid credentials",
                        "Invalid credentials.".into(),
                    ),
                    E::WrongPassword => (
                        StatusCode::FORBIDDEN,
                        "Invalid credentials",
                        "The password is not correct.".into(),
                    ),
                    E::EmailNotVerified => (
                        StatusCode::FORBIDDEN,
                        "Email not verified",
                        "Verify your email address before logging in.".into(),
                    ),
                    E::AccountLocked { .. } => (
                        StatusCode::LOCKED,
                        "Account locked",
                        "Too many failed attempts; try again later.".into(),
                    ),
                    E::RateLimited(_) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many requests",
                        "Too many requests; slow down.".into(),
                    ),
                    E::TokenExpired => (
                        StatusCode::UNAUTHORIZED,
                        "Token expired",
                        "The token has expired.".into(),
                    ),
                    E::TokenRevoked => (
                        StatusCode::UNAUTHORIZED,
                        "Token revoked",
                        "The token has been revoked.".into(),
                    ),
                    E::TokenReused => (
                        StatusCode::UNAUTHORIZED,
                        "Token reused",
                        "The refresh token was already used; the session has been revoked.".into(),
                    ),
                    E::InvalidToken => (
                        StatusCode::UNAUTHORIZED,
                        "Invalid token",
                        "The token is invalid.".into(),
                    ),
                    E::InvalidMfaCode => (
                        StatusCode::UNAUTHORIZED,
                        "Invalid MFA code",
                        "The second-factor code or passkey was not accepted.".into(),
                    ),
                    E::MfaState(what) => (StatusCode::CONFLICT, "Conflict", (*what).to_owned()),
                    E::Conflict(what) => (
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!("This {what} is already taken."),
                    ),
                    E::NotFound => (
                        StatusCode::NOT_FOUND,
                        "Not found",
                        "No such resource.".into(),
                    ),
                    E::Unavailable(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service unavailable",
                        "The service is temporarily unavailable; retry later.".into(),
                    ),
                    E::Unexpected(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal error",
                        "Something went wrong on our side.".into(),
                    ),
                };
                (status, err.code(), title, detail)
            }
            Self::BadJson(why) => (
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Malformed request body",
                format!("The request body is not valid JSON for this endpoint: {why}"),
            ),
            Self::BadRequest => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Bad request",
                "The request was refused.".into(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.".into(),
            ),
            Self::PayloadTooLarge(0) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "The request body is too large.".into(),
            ),
            Self::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                format!("The request body exceeds {limit} bytes."),
            ),
            Self::RouteNotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                "No such endpoint.".into(),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "This endpoint does not accept this method.".into(),
            ),
            Self::MissingBearer => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Missing token",
                "Send an access token as 'Authorization: Bearer <token>'.".into(),
            ),
            Self::MetricsToken { presented: false } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Missing token",
                "Send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'.".into(),
            ),
            Self::MetricsToken { presented: true } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Invalid token",
                "The metrics token is not valid.".into(),
            ),
            Self::MailedToken { expired: true } => (
                StatusCode::BAD_REQUEST,
                "token_expired",
                "Token expired",
                "The link has expired; ask for a new one.".into(),
            ),
            Self::MailedToken { expired: false } => (
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "Invalid token",
                "The link is invalid or was already used.".into(),
            ),
            Self::BadPath(name) => (
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                format!("No such {name}."),
            ),
        }
    }

    /// Logs the cause chain of a 5xx: once, here at the boundary; never in the body.
    pub fn log_cause(&self) {
        if let Self::Domain(AuthError::Unexpected(cause) | AuthError::Unavailable(cause))
        | Self::Bearer(AuthError::Unexpected(cause) | AuthError::Unavailable(cause)) = self
        {
            let chain = crate::startup::error_chain(cause);
            tracing::error!(error = %chain, status = self.status_code().as_u16(), "request failed");
        }
    }

    /// For routes that take a mailed token: its failures are 400s.
    pub fn mailed(err: AuthError) -> Self {
        match err {
            AuthError::InvalidToken => Self::MailedToken { expired: false },
            AuthError::TokenExpired => Self::MailedToken { expired: true },
            other => Self::Domain(other),
        }
    }

    /// The stable `code` of the problem (a label of metrics, the reason of audit events).
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        let (status, code, title, detail) = self.parts();
        let errors = match self {
            Self::Domain(AuthError::Validation(fields)) => Some(fields.clone()),
            Self::BadJson(why) => Some(FieldErrors::from([("body".to_owned(), vec![why.clone()])])),
            _ => None,
        };
        let error = match &errors {
            Some(fields) if !fields.is_empty() => fields
                .iter()
                .map(|(field, msgs)| format!("{field} {}", msgs.join("; ")))
                .collect::<Vec<_>>()
                .join(", "),
            _ => detail.clone(),
        };
        Problem {
            type_: format!("urn:problem:auth:{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            error,
            errors,
            valid: None,
        }
    }

    /// The response, with `problem` as body (so a route can adjust it).
    pub fn response_with(&self, problem: &Problem) -> HttpResponse {
        let status = self.status_code();
        let mut builder = HttpResponse::build(status);
        builder.content_type(PROBLEM_JSON);
        if status == StatusCode::UNAUTHORIZED
            && matches!(
                self,
                Self::Bearer(_) | Self::MissingBearer | Self::MetricsToken { .. }
            )
        {
            let code = problem.code;
            let value = if matches!(self, Self::MissingBearer) {
                "Bearer realm=\"auth\"".to_owned()
            } else if let Self::MetricsToken { presented } = self {
                // Its own realm: an access token is not what is asked for here.
                if *presented {
                    "Bearer realm=\"metrics\", error=\"invalid_token\"".to_owned()
                } else {
                    "Bearer realm=\"metrics\"".to_owned()
                }
            } else {
                format!(
                    "Bearer realm=\"auth\", error=\"invalid_token\", error_description=\"{code}\""
                )
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                builder.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        match self {
            Self::Domain(AuthError::RateLimited(decision)) => {
                for (name, value) in rate_limit_headers(decision) {
                    builder.insert_header((name, value));
                }
                builder.insert_header((header::RETRY_AFTER, decision.retry_after_secs.to_string()));
            }
            Self::Domain(AuthError::AccountLocked { retry_after_secs }) => {
                builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Domain(AuthError::Unavailable(_)) | Self::Bearer(AuthError::Unavailable(_)) => {
                builder.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        builder.json(problem)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        self.log_cause();
        self.response_with(&self.problem())
    }
}
