//! The revocation keeper: keeps the shared revocation list (Redis) in step with storage.
//!
//! Every revocation is written to storage first, then to Redis. Redis can miss some: a
//! write fails after storage recorded it (Redis unreachable, a timeout), or Redis loses
//! its data (a restart of a server that keeps nothing on disk, `FLUSHALL`, a failover).
//! The cache adapter notices (see `auth_cache_redis`'s `revocations` module) and refuses
//! revocation checks (503, fail closed) until the list is warmed again from storage; this
//! task does the warming, at once when the adapter signals a loss and otherwise every
//! [`CHECK_EVERY`] (one `MGET` of two keys), which also finds a flush on an idle instance.
//! With the in-process cache there is nothing to keep: no task runs.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use auth_domain::AuthError;
use tokio::sync::Notify;

use crate::state::AppState;

/// How often the keeper asks whether the list needs warming, when nothing signalled it.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Warmings in a row when each found the list had lost something again meanwhile, before
/// the keeper waits for the next check.
const IMMEDIATE_RETRIES: u32 = 3;

/// The running keeper; stopped when dropped.
#[derive(Debug)]
pub struct RevocationKeeper {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RevocationKeeper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the keeper on the current runtime, if the cache is shared (Redis).
pub fn spawn_revocation_keeper(state: web::Data<AppState>) -> RevocationKeeper {
    let task = state
        .service
        .ports()
        .cache
        .revocations_lost()
        .map(|lost| actix_web::rt::spawn(keep(state, lost)));
    RevocationKeeper { task }
}

async fn keep(state: web::Data<AppState>, lost: Arc<Notify>) {
    let mut failures_in_a_row = 0u32;
    loop {
        match reconcile(&state).await {
            Ok(()) if failures_in_a_row > 0 => {
                tracing::info!(
                    failures_in_a_row,
                    "revocation keeper: the revocation list can be checked again"
                );
                failures_in_a_row = 0;
            }
            Ok(()) => {}
            Err(err) => {
                failures_in_a_row = failures_in_a_row.saturating_add(1);
                // Every second while Redis is down would flood the log: the first, then
                // every sixtieth.
                if failures_in_a_row % 60 == 1 {
                    tracing::warn!(
                        error = %crate::startup::error_chain(&err),
                        failures_in_a_row,
                        "revocation keeper: cannot warm the revocation list; token checks fail closed until it can"
                    );
                }
                // Failed operations signal a loss each: pause regardless, rather than
                // retry as fast as requests fail.
                tokio::time::sleep(CHECK_EVERY).await;
                continue;
            }
        }
        tokio::select! {
            () = lost.notified() => {}
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

/// Warms the list if it needs it, again while it lost something during the warming (a
/// few times at most).
async fn reconcile(state: &AppState) -> Result<(), AuthError> {
    for _ in 0..IMMEDIATE_RETRIES {
        let Some(rewarmed) = state.service.reconcile_revocations().await? else {
            return Ok(());
        };
        let reason = rewarmed.reason.as_str();
        metrics::counter!("auth_revocation_rewarms_total", "reason" => reason).increment(1);
        tracing::warn!(
            reason,
            restored = rewarmed.restored,
            trusted = rewarmed.trusted,
            "revocation list warmed again from storage"
        );
        if rewarmed.trusted {
            return Ok(());
        }
    }
    Ok(())
}
