//! The outbox worker: delivers queued mails in the background, on every instance.
//!
//! It wakes when this instance queues a mail, and polls every `MAIL_POLL_INTERVAL` for
//! mails queued by other instances and for retries that came due. Claims are exclusive
//! (see [`auth_domain::ports::OutboxStore::claim_mail`]), so any number of instances run
//! one worker each without sending a mail twice. A claim's lease is short (30 s) and
//! renewed while the worker works, so the mail of a worker that died goes out from another
//! worker within a lease; on SQLite, whose file one process owns, the leases of a killed
//! process are given back when it starts again ([`release_leases_of_a_previous_run`]). On
//! stop it finishes the mail it is sending, releases the rest of its batch, and returns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::web;
use auth_domain::AuthError;
use auth_domain::service::{DeliveryOutcome, DeliveryReport, Leases};
use tokio::sync::Notify;

use crate::state::{AppState, Service};

/// Mails claimed per round trip.
const BATCH: u32 = 10;

/// A running worker.
#[derive(Debug)]
pub struct OutboxWorker {
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl OutboxWorker {
    /// Asks the worker to stop between mails and waits until it has.
    pub async fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "outbox worker ended abnormally");
        }
    }
}

/// Starts the worker on the current runtime.
pub fn spawn_outbox_worker(state: web::Data<AppState>) -> OutboxWorker {
    let stopping = Arc::new(AtomicBool::new(false));
    let wake = state.service.ports().events.mail_queued();
    let poll = Duration::from_secs(
        u64::try_from(state.config.mail_poll_interval.num_seconds()).unwrap_or(5),
    );
    let task = actix_web::rt::spawn(run(state, Arc::clone(&stopping), Arc::clone(&wake), poll));
    OutboxWorker {
        stopping,
        wake,
        task,
    }
}

async fn run(
    state: web::Data<AppState>,
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    poll: Duration,
) {
    let mut failures_in_a_row = 0u32;
    let renew_every = state
        .service
        .policy()
        .outbox
        .renew_every()
        .to_std()
        .unwrap_or(Duration::from_secs(10));
    while !stopping.load(Ordering::SeqCst) {
        let flag = Arc::clone(&stopping);
        let leases = Leases::default();
        let delivering =
            state
                .service
                .deliver_batch(BATCH, move || flag.load(Ordering::SeqCst), &leases);
        let result = while_renewing(delivering, renew_every, async || {
            state.service.renew_mail_leases(&leases).await
        })
        .await;
        let (full_batch, failure) = match result {
            Ok(mut report) => {
                record(&report);
                let full = report.claimed() == BATCH as usize;
                (full, report.interrupted.take())
            }
            Err(err) => (false, Some(err)),
        };
        match failure {
            Some(err) => {
                failures_in_a_row = failures_in_a_row.saturating_add(1);
                // Every failure while it lasts would flood the log: the first, then every
                // tenth (the pause below grows to a minute).
                if failures_in_a_row % 10 == 1 {
                    tracing::error!(
                        error = %crate::startup::error_chain(&err),
                        failures_in_a_row,
                        "outbox worker: storage failed; retrying"
                    );
                }
            }
            None if failures_in_a_row > 0 => {
                tracing::info!(failures_in_a_row, "outbox worker: storage is back");
                failures_in_a_row = 0;
            }
            None => {}
        }
        update_gauges(&state).await;
        if full_batch && failures_in_a_row == 0 {
            continue;
        }
        // Storage down: back off up to a minute instead of hammering it.
        let pause = poll.saturating_mul(failures_in_a_row.clamp(1, 12));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Runs `delivering` (a batch) to its end while calling `renew` every `every`, so that a
/// delivery longer than the lease (a slow SMTP server: up to six `MAIL_TIMEOUT`s) keeps
/// its mail and no other worker sends it too. A renewal under way when the batch ends is
/// finished, never cut. A failed renewal is logged; the batch itself starts no mail once
/// its leases were last confirmed half a lease ago.
async fn while_renewing<T>(
    delivering: impl Future<Output = T>,
    every: Duration,
    renew: impl AsyncFn() -> Result<(), AuthError>,
) -> T {
    let done = Notify::new();
    let delivering = async {
        let result = delivering.await;
        done.notify_one();
        result
    };
    let renewing = async {
        loop {
            tokio::select! {
                () = done.notified() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(err) = renew().await {
                tracing::warn!(
                    error = %crate::startup::error_chain(&err),
                    "outbox worker: cannot renew the leases of the mails it holds"
                );
            }
        }
    };
    let (result, ()) = tokio::join!(delivering, renewing);
    result
}

/// At start, before the worker runs. When one process owns the data (SQLite), every outbox
/// lease in it was taken by this process's worker before it was killed, and that worker is
/// gone: the leases are given back, so that its mail goes out now rather than when they
/// end. Instances sharing a database (PostgreSQL) keep them: a dead worker's leases are
/// short and run out by themselves. Returns how many mails it gave back.
pub async fn release_leases_of_a_previous_run(service: &Service) -> Result<u64, AuthError> {
    if !service.ports().store.owned_by_one_process() {
        return Ok(0);
    }
    let released = service.release_mail_leases().await?;
    if released > 0 {
        tracing::info!(
            mails = released,
            "outbox: mails claimed before the last stop are due again"
        );
    }
    Ok(released)
}

/// Counts and logs each mail handled. Logs name the kind, id and attempt, never the
/// recipient, name or link.
fn record(report: &DeliveryReport) {
    for mail in &report.mails {
        let kind = mail.kind.as_str();
        let error = mail.error.as_deref().unwrap_or_default();
        match mail.outcome {
            DeliveryOutcome::Sent => {
                metrics::counter!("auth_mail_sent_total", "kind" => kind).increment(1);
                let waited = (chrono::Utc::now() - mail.queued_at).num_milliseconds();
                metrics::histogram!("auth_mail_queue_wait_seconds")
                    .record(waited.max(0) as f64 / 1000.0);
                tracing::info!(mail_id = %mail.id, kind, attempts = mail.attempts, "mail sent");
            }
            DeliveryOutcome::Retry(at) => {
                metrics::counter!("auth_mail_failed_total", "kind" => kind).increment(1);
                tracing::warn!(mail_id = %mail.id, kind, attempts = mail.attempts, retry_at = %at, error, "mail delivery failed; will retry");
            }
            DeliveryOutcome::Dead => {
                metrics::counter!("auth_mail_failed_total", "kind" => kind).increment(1);
                metrics::counter!("auth_mail_dead_total", "kind" => kind).increment(1);
                tracing::error!(mail_id = %mail.id, kind, attempts = mail.attempts, error, "mail delivery failed for good; the mail is dead");
            }
            DeliveryOutcome::LeaseLost => {
                metrics::counter!("auth_mail_failed_total", "kind" => kind).increment(1);
                tracing::warn!(mail_id = %mail.id, kind, attempts = mail.attempts, error, "mail delivery failed after its lease ran out; another worker has it");
            }
            // A forgot-password or resend request that needed no mail. Neither counted nor
            // logged above debug: either would tell which addresses have no account.
            DeliveryOutcome::Discarded => {
                tracing::debug!(mail_id = %mail.id, kind, "mail request needed no mail");
            }
        }
    }
}

/// Queue depth, oldest age and dead count, as gauges.
pub async fn update_gauges(state: &AppState) {
    let stats = state.service.outbox_stats().await;
    if let Err(err) = &stats {
        // Swallowed (the scrape still answers, the gauges keep their last values), so
        // logged here: the store logs nothing it returns.
        tracing::warn!(
            error = %crate::startup::error_chain(err),
            "outbox gauges not updated"
        );
    }
    if let Ok(stats) = stats {
        metrics::gauge!("auth_mail_queue_depth").set(stats.queued as f64);
        metrics::gauge!("auth_mail_dead").set(stats.dead as f64);
        let age = stats.oldest_queued_at.map_or(0.0, |t| {
            (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics::gauge!("auth_mail_queue_oldest_age_seconds").set(age);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_delivery_longer_than_the_renewal_period_is_renewed_meanwhile() {
        // Arrange: a delivery that ends only once its leases were renewed twice.
        let renewals = AtomicUsize::new(0);
        let renewed_twice = Notify::new();
        let delivering = async {
            renewed_twice.notified().await;
            "delivered"
        };

        // Act
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            while_renewing(delivering, Duration::from_millis(5), async || {
                if renewals.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                    renewed_twice.notify_one();
                }
                Ok(())
            }),
        )
        .await;

        // Assert
        assert_eq!(result, Ok("delivered"));
        assert!(renewals.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn a_quick_delivery_renews_nothing_and_a_failed_renewal_does_not_stop_it() {
        let renewals = AtomicUsize::new(0);
        let quick = while_renewing(async { 7 }, Duration::from_secs(3600), async || {
            renewals.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert_eq!((quick, renewals.load(Ordering::SeqCst)), (7, 0));

        let failing = Notify::new();
        let delivering = async {
            failing.notified().await;
            "delivered anyway"
        };
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            while_renewing(delivering, Duration::from_millis(5), async || {
                failing.notify_one();
                Err(AuthError::Unavailable(
                    auth_domain::ports::PortError::unavailable("storage down"),
                ))
            }),
        )
        .await;
        assert_eq!(result, Ok("delivered anyway"));
    }
}
