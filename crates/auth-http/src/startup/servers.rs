//! The HTTP servers: the API on `PORT`, and `/metrics` alone on `METRICS_PORT`.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::extract::{json_config, payload_config};
use crate::state::AppState;
use crate::{middleware, routes};

async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::RouteNotFound)
}

/// Starts serving on `listener` (bind port 0 in tests). The server runs once awaited or
/// spawned; SIGTERM/SIGINT stop it gracefully.
pub fn run(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
    let workers = state.config.workers;
    let grace = u64::try_from(state.config.shutdown_grace.num_seconds()).unwrap_or(30);
    let body_limit = state.config.max_body_bytes;
    let origins = state.config.cors_origins.clone();
    // With METRICS_PORT set, `/metrics` is served there only (see `run_metrics`).
    let metrics_here = state.config.metrics_port.is_none();
    let openapi = crate::openapi::document(state.config.public_url.as_deref());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(json_config(body_limit))
            .app_data(payload_config(body_limit))
            .wrap(from_fn(middleware::rate_limit_headers))
            .wrap(crate::cors::middleware(&origins))
            .wrap(from_fn(middleware::problem_errors))
            .wrap(from_fn(middleware::security_headers))
            .wrap(from_fn(middleware::metrics))
            .wrap(from_fn(middleware::request_id))
            .configure(routes::auth::configure)
            .configure(routes::users::configure)
            .configure(routes::mfa::configure)
            .configure(routes::system::configure)
            .configure(|cfg| {
                if metrics_here {
                    routes::system::configure_metrics(cfg);
                }
            })
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .service(web::redirect("/docs", "/docs/"))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .shutdown_timeout(grace)
    // `serve` handles SIGTERM and SIGINT itself (`stop_on_signal`): actix's handler would
    // make SIGINT a forced stop. Tests stop servers through their handles.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serves `GET /metrics` alone on `listener` (bound to `HOST:METRICS_PORT`), so that it
/// need not be public; every other path is a 404. One worker; spawn it next to [`run`]
/// (which then leaves `/metrics` out). SIGTERM/SIGINT stop it too.
pub fn run_metrics(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(middleware::problem_errors))
            .wrap(from_fn(middleware::security_headers))
            .configure(routes::system::configure_metrics)
            .default_service(web::to(not_found))
    })
    .workers(1)
    .shutdown_timeout(1)
    // Stopped by `serve` after the main server (see `stop_on_signal`).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
