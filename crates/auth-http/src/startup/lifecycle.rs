//! Lifecycle: signals, graceful shutdown, and the periodic cleanup.

use actix_web::web;
use chrono::TimeDelta;

use crate::error::ApiError;
use crate::state::AppState;

/// After the HTTP server has stopped (in-flight requests finished or cut at
/// `SHUTDOWN_GRACE`): stops the outbox worker between mails (bounded by the grace too: an
/// unfinished batch is claimed again by another instance when its lease ends), says goodbye
/// to the SMTP server, and closes the database and cache pools.
pub async fn shutdown(
    state: web::Data<AppState>,
    worker: Option<crate::outbox::OutboxWorker>,
    stop_began: Option<std::time::Instant>,
) {
    tracing::info!("HTTP server stopped; stopping the outbox worker");
    if let Some(worker) = worker {
        stop_worker(&state, worker, stop_began).await;
    }
    let ports = state.service.ports();
    ports.mail.close().await;
    ports.store.close();
    ports.cache.close();
    tracing::info!("shutdown complete");
}

/// Stops the outbox worker between mails, within what the requests left of the grace.
async fn stop_worker(
    state: &AppState,
    worker: crate::outbox::OutboxWorker,
    stop_began: Option<std::time::Instant>,
) {
    // One deadline for both phases: what the requests left of SHUTDOWN_GRACE (at least a
    // second, to finish a mail in flight when the requests took it all).
    let full = seconds(state.config.shutdown_grace);
    let used = stop_began.map_or(std::time::Duration::ZERO, |t| t.elapsed());
    let grace = full
        .saturating_sub(used)
        .max(std::time::Duration::from_secs(1));
    if tokio::time::timeout(grace, worker.stop()).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "outbox worker still delivering at the end of the grace period; its mail is left to the next worker"
        );
    }
}

/// Deletes expired rows every `CLEANUP_INTERVAL` (unless 0), on the server's runtime.
pub fn spawn_cleanup(state: web::Data<AppState>) {
    let every = state.config.cleanup_interval;
    if every <= TimeDelta::zero() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(seconds(every));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match state.service.cleanup().await {
                Ok(r) => tracing::info!(
                    sessions = r.sessions,
                    one_time_tokens = r.one_time_tokens,
                    user_revocations = r.user_revocations,
                    dead_mails = r.dead_mails,
                    unverified_users = r.unverified_users,
                    "cleanup"
                ),
                Err(e) => ApiError::Domain(e).log_cause(),
            }
        }
    });
}

pub(super) fn seconds(d: TimeDelta) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(d.num_seconds()).unwrap_or(0))
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then stops `main` gracefully — no new
/// connections, in-flight requests get `SHUTDOWN_GRACE` — and then `extra` (the metrics
/// listener). Both servers run with actix's own signal handling off: it treats SIGINT as
/// a forced stop, and a second server's stop would end the whole system early. Returns
/// when the stop has begun, with the time the signal came.
pub async fn stop_on_signal(
    main: actix_web::dev::ServerHandle,
    extra: Option<actix_web::dev::ServerHandle>,
) -> std::time::Instant {
    let signal = wait_for_signal().await;
    let at = std::time::Instant::now();
    tracing::info!(
        signal,
        "stopping: no new connections; in-flight requests get SHUTDOWN_GRACE"
    );
    actix_web::rt::spawn(async move {
        main.stop(true).await;
        if let Some(extra) = extra {
            extra.stop(true).await;
        }
    });
    at
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
