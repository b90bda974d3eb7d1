//! Health, metrics and the JWKS.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use auth_domain::ports::{Cache, Store};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::extract::bearer;
use crate::state::AppState;

/// Routes of this module but `/metrics` (see [`configure_metrics`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/health/live").route(web::get().to(live)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

/// `GET /metrics`: on the main port, or alone on `METRICS_PORT` when that is set; behind
/// `METRICS_TOKEN` on either when that is set.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `ok`, `unavailable`, or (mailer only) `warn` when the oldest queued mail waits
    /// longer than `MAIL_QUEUE_WARN_AGE`.
    #[schema(value_type = crate::schema::CheckStatus)]
    pub status: &'static str,
    /// Round-trip time of the check.
    pub latency_ms: f64,
    /// What backs it.
    pub backend: &'static str,
    /// Mailer only: mails waiting in the outbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
    /// Mailer only: age of the oldest queued mail, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_queued_seconds: Option<u64>,
    /// Mailer only: mails given up on (kept 30 days, payload erased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead: Option<u64>,
}

/// Overall state and each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`; `degraded` when mail is late (still ready: requests are served and mail
    /// waits in the outbox); `unavailable` when a dependency is down.
    #[schema(value_type = crate::schema::HealthStatus)]
    pub status: &'static str,
    /// Service version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Database, cache, mailer queue.
    pub checks: Checks,
}

/// The dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// Storage.
    pub database: Check,
    /// Revocation list and rate limits.
    pub cache: Check,
    /// Outgoing mail: the outbox.
    pub mailer: Check,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveResponse {
    /// Always `ok`.
    #[schema(value_type = crate::schema::LiveStatus)]
    pub status: &'static str,
}

async fn timed<F, E>(backend: &'static str, check: F) -> Check
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    let start = Instant::now();
    let result = check.await;
    if let Err(err) = &result {
        unavailable(backend, err);
    }
    let ok = result.is_ok();
    Check {
        status: if ok { "ok" } else { "unavailable" },
        latency_ms: elapsed_ms(start),
        backend,
        queued: None,
        oldest_queued_seconds: None,
        dead: None,
    }
}

/// Logs why a check failed: the health answer only says "unavailable", and the adapters
/// log nothing they return, so this is the one place the cause is seen.
fn unavailable(check: &str, err: &(dyn std::error::Error + 'static)) {
    tracing::warn!(
        check,
        error = %crate::startup::error_chain(err),
        "health check failed"
    );
}

fn elapsed_ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The outbox: `warn` when its oldest mail is older than `MAIL_QUEUE_WARN_AGE`.
async fn outbox_check(state: &AppState) -> Check {
    let start = Instant::now();
    let backend = state.service.ports().mail.backend();
    let stats = match state.service.outbox_stats().await {
        Ok(stats) => stats,
        Err(err) => {
            unavailable("outbox", &err);
            return Check {
                status: "unavailable",
                latency_ms: elapsed_ms(start),
                backend,
                queued: None,
                oldest_queued_seconds: None,
                dead: None,
            };
        }
    };
    let age = stats
        .oldest_queued_at
        .map(|t| (chrono::Utc::now() - t).max(chrono::TimeDelta::zero()));
    let late = age.is_some_and(|a| a > state.config.mail_queue_warn_age);
    Check {
        status: if late { "warn" } else { "ok" },
        latency_ms: elapsed_ms(start),
        backend,
        queued: Some(stats.queued),
        oldest_queued_seconds: Some(age.map_or(0, |a| u64::try_from(a.num_seconds()).unwrap_or(0))),
        dead: Some(stats.dead),
    }
}

/// The checks into `auth_ready` and `auth_dependency_up`.
fn publish_readiness(checks: &Checks) {
    crate::telemetry::readiness(
        checks.database.status != "unavailable",
        checks.cache.status != "unavailable",
        checks.mailer.status != "unavailable",
    );
}

async fn checks(state: &AppState) -> Checks {
    let ports = state.service.ports();
    Checks {
        database: timed(ports.store.backend(), Store::ping(&ports.store)).await,
        cache: timed(ports.cache.backend(), Cache::ping(&ports.cache)).await,
        mailer: outbox_check(state).await,
    }
}

fn health_response(state: &AppState, checks: Checks) -> HttpResponse {
    publish_readiness(&checks);
    let all = [&checks.database, &checks.cache, &checks.mailer];
    let ok = all.iter().all(|c| c.status != "unavailable");
    let degraded = all.iter().any(|c| c.status == "warn");
    let body = HealthResponse {
        status: match (ok, degraded) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ok",
        },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        checks,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "Everything is up", body = HealthResponse),
        (status = 503, description = "A dependency is down", body = HealthResponse),
    ))]
/// Health
///
/// Each dependency's state and latency; 503 when one is down.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let checks = checks(&state).await;
    health_response(&state, checks)
}

#[utoipa::path(get, path = "/health/live", tag = "system",
    responses((status = 200, description = "The process serves requests", body = LiveResponse)))]
/// Liveness
///
/// 200 while the process serves requests (no dependency is checked).
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(LiveResponse { status: "ok" })
}

#[utoipa::path(get, path = "/health/ready", tag = "system",
    responses(
        (status = 200, description = "Ready for traffic", body = HealthResponse),
        (status = 503, description = "Not ready: a dependency is down", body = HealthResponse),
    ))]
/// Readiness
///
/// 200 when the service can serve traffic; 503 when a dependency is down.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = checks(&state).await;
    health_response(&state, checks)
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    description = "Prometheus text exposition format. With `METRICS_TOKEN` set (production needs it unless `/metrics` is moved to `METRICS_PORT`), only a request that carries it as `Authorization: Bearer` is answered, on either port.",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "`METRICS_TOKEN` is set and the request does not carry it (`WWW-Authenticate: Bearer realm=\"metrics\"`)", body = Problem, content_type = "application/problem+json"),
    ))]
/// Metrics
///
/// Prometheus text exposition format.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.config.metrics_token {
        // Counters that move only when an account exists (mails by kind…) would tell a
        // reader who has an account: nothing is rendered before the token is checked.
        let presented = bearer(&req).map_err(|_| ApiError::MetricsToken { presented: false })?;
        if !auth_crypto::secrets_match(presented.as_bytes(), expected.expose_secret().as_bytes()) {
            return Err(ApiError::MetricsToken { presented: true });
        }
    }
    // Readiness as /health/ready would answer now (each check bounded by its adapter's
    // timeouts), so that an alert needs no probe of its own.
    publish_readiness(&checks(&state).await);
    crate::telemetry::publish_gauges(&state);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "system",
    responses((status = 200, description = "Public keys (with kid) to verify access tokens locally. Empty with HS256: a shared secret is never published.", body = crate::schema::Jwks)))]
/// Public signing keys
///
/// The JSON Web Key Set of the keys that verify access tokens, for downstream services that
/// verify tokens themselves.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(&state.jwks)
}
