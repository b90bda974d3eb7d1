//! Health, metrics and the JWKS.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use auth_domain::ports::{Cache, Store};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/health/live").route(web::get().to(live)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Round-trip time of the check.
    pub latency_ms: f64,
    /// What backs it.
    pub backend: &'static str,
}

/// Overall state and each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `unavailable` when a dependency is down.
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
    /// Outgoing mail.
    pub mailer: Check,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveResponse {
    /// Always `ok`.
    pub status: &'static str,
}

async fn timed<F: std::future::Future<Output = Result<(), E>>, E>(
    backend: &'static str,
    check: F,
) -> Check {
    let start = Instant::now();
    let ok = check.await.is_ok();
    Check {
        status: if ok { "ok" } else { "unavailable" },
        latency_ms: (start.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        backend,
    }
}

async fn checks(state: &AppState) -> Checks {
    let ports = state.service.ports();
    Checks {
        database: timed(ports.store.backend(), Store::ping(&ports.store)).await,
        cache: timed(ports.cache.backend(), Cache::ping(&ports.cache)).await,
        mailer: timed(state.mailer_backend, async { Ok::<(), ()>(()) }).await,
    }
}

fn health_response(state: &AppState, checks: Checks) -> HttpResponse {
    let ok = [&checks.database, &checks.cache, &checks.mailer]
        .iter()
        .all(|c| c.status == "ok");
    let body = HealthResponse {
        status: if ok { "ok" } else { "unavailable" },
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
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let checks = checks(&state).await;
    health_response(&state, checks)
}

#[utoipa::path(get, path = "/health/live", tag = "system",
    responses((status = 200, description = "The process serves requests", body = LiveResponse)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(LiveResponse { status: "ok" })
}

#[utoipa::path(get, path = "/health/ready", tag = "system",
    responses(
        (status = 200, description = "Ready for traffic", body = HealthResponse),
        (status = 503, description = "Not ready: a dependency is down", body = HealthResponse),
    ))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = checks(&state).await;
    health_response(&state, checks)
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "system",
    responses((status = 200, description = "Public keys (with kid) to verify access tokens locally. Empty with HS256: a shared secret is never published.", body = Object)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(&state.jwks)
}
