//! Middleware: request ids and access logs, metrics, security headers, and a last line of
//! defence that turns any non-problem error (405 from the router, extractor errors…) into
//! problem+json.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse};
use auth_domain::ClientContext;
use tracing::Instrument;
use tracing::field::Empty;

use crate::error::{ApiError, PROBLEM_JSON};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Accepts a sane `X-Request-Id` or makes one, runs the request in a span that carries it,
/// returns it, and logs one line per request (path without query: no tokens in logs).
///
/// The span carries the route pattern (`http.route`). Traces off, it carries the path too
/// (every log line of the request shows it). Traces on, it is exported, so the path (which
/// may hold an id) goes on the access log line only; the span continues an incoming
/// `traceparent`, is named `METHOD /route`, and records the status.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    // At ERROR level so the span exists under any filter (a span's level only decides
    // whether it is created): with `RUST_LOG=warn,audit=info` audit lines still carry
    // their request id.
    let route = req.match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = Empty,
        http.route = route,
        http.response.status_code = Empty,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
    );
    let traced = crate::traces::enabled();
    let path = if traced {
        let name = format!("{} {route}", method_label(req.method()));
        span.record("otel.name", name.as_str());
        span.record("otel.kind", "server");
        crate::traces::continue_remote(&span, req.headers());
        Some(req.path().to_owned())
    } else {
        span.record("path", req.path());
        None
    };
    let start = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status().as_u16();
    if traced {
        span.record("http.response.status_code", status);
        if res.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = start.elapsed().as_secs_f64() * 1e3,
            path = path.as_deref(),
            "request"
        );
    });
    Ok(res)
}

/// Request count and latency by route template, method and status.
pub async fn metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status).record(start.elapsed());
    Ok(res)
}

/// The method as a metrics label: the nine standard ones by name, any other as `OTHER`.
/// HTTP lets a client invent methods; each would otherwise be a new series kept for the
/// life of the process.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

fn set_default(res: &mut ServiceResponse<impl MessageBody>, name: HeaderName, value: &'static str) {
    let headers = res.headers_mut();
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Security headers on every response; `Cache-Control: no-store` unless a route chose
/// otherwise (tokens and personal data must not be cached). The docs page gets a CSP that
/// lets its own scripts run; everything else gets none at all.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    let csp = if docs {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    set_default(&mut res, header::CONTENT_SECURITY_POLICY, csp);
    set_default(&mut res, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(&mut res, header::X_FRAME_OPTIONS, "DENY");
    set_default(&mut res, header::REFERRER_POLICY, "no-referrer");
    set_default(
        &mut res,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set_default(
        &mut res,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        &mut res,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    set_default(&mut res, header::CACHE_CONTROL, "no-store");
    Ok(res)
}

/// Adds `RateLimit-Policy` / `RateLimit` to the answer of a rate-limited request (the
/// handler leaves its decision in the request's extensions), whatever the answer is.
pub async fn rate_limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let decision = res
        .request()
        .extensions()
        .get::<ClientContext>()
        .and_then(ClientContext::rate);
    if let Some(decision) = decision {
        for (name, value) in crate::ratelimit::rate_limit_headers(&decision) {
            if let Ok(value) = HeaderValue::from_str(&value)
                && !res.headers().contains_key(&name)
            {
                res.headers_mut().insert(name, value);
            }
        }
    }
    Ok(res)
}

/// Replaces any 4xx/5xx response that is not JSON of ours (the router's 405, an extractor's
/// plain-text error) with the matching problem.
pub async fn problem_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        // An inner service failed with an error instead of a response: answer its status
        // with a problem. The request is gone with the call, so the problem travels inside
        // the error (and so skips the outer middlewares' headers).
        Err(err) => {
            let status = err.as_response_error().status_code();
            let api = problem_for(status);
            let mut problem = api.problem();
            problem.status = status.as_u16();
            problem.detail = err.to_string();
            let mut response = api.response_with(&problem);
            *response.status_mut() = status;
            return Err(
                actix_web::error::InternalError::from_response(err.to_string(), response).into(),
            );
        }
    };
    let status = res.status();
    // Our own answers are JSON (a problem, or a health report with its 503): left alone.
    let ours = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return Ok(res);
    }
    let api = problem_for(status);
    let mut problem = api.problem();
    problem.status = status.as_u16();
    let mut response: HttpResponse = api.response_with(&problem);
    *response.status_mut() = status;
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = res.headers().get(header::ALLOW)
    {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    Ok(res.into_response(response))
}

/// The problem that stands for a bare error status.
fn problem_for(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(0),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        s if s.is_server_error() => ApiError::Domain(auth_domain::AuthError::Unexpected(
            auth_domain::ports::PortError::unexpected(format!("framework error {s}")),
        )),
        _ => ApiError::BadRequest,
    }
}
