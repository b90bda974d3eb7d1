//! The process-wide metrics recorder and its upkeep.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// How often histogram samples recorded since the last scrape are folded into their buckets.
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus recorder and its handle, with the service's histogram buckets.
///
/// The recorder keeps every histogram sample until the next upkeep or `/metrics` scrape
/// folds it into the buckets: run [`spawn_metrics_upkeep`] beside it, or memory grows with
/// every request while nobody scrapes.
pub fn metrics_recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".into()),
            &buckets,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("auth_mail_queue_wait_seconds".into()),
                &[
                    0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0, 86400.0,
                ],
            )
        })
        .and_then(|b| {
            // bcrypt: about 1 ms at cost 4, 0.2 s at cost 12, 0.8 s at 14; queues longer.
            b.set_buckets_for_metric(
                Matcher::Prefix("auth_password_hash_".into()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
        })
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

/// Folds pending histogram samples into their buckets every `every`, on a thread of its own
/// for the life of the process (not a task: tests run many runtimes, the recorder outlives
/// each). `build_recorder` does not do this; `/metrics` does it only when scraped.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                handle.run_upkeep();
            }
        })
        .map(drop)
}

/// The Prometheus recorder: installed globally once per process (tests start many apps),
/// with its upkeep thread.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (recorder, handle) = metrics_recorder();
            if let Err(e) = spawn_metrics_upkeep(handle.clone(), METRICS_UPKEEP_EVERY) {
                tracing::warn!(
                    "cannot start the metrics upkeep thread ({e}): latency samples pile up between /metrics scrapes"
                );
            }
            if ::metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only this one's"
                );
            }
            crate::telemetry::describe();
            handle
        })
        .clone()
}
