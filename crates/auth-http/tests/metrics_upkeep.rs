//! The Prometheus recorder keeps every latency sample until something folds it into the
//! histogram's buckets. Without the upkeep thread that is only a `/metrics` scrape, so a
//! service nobody scrapes grew by every request it served (the 30-minute soak showed it:
//! ~0.4 MB a minute). Its own test binary: it measures this process's resident memory, which
//! tests running beside it would disturb.
#![cfg(target_os = "linux")]

use std::time::Duration;

use auth_http::startup::{metrics_recorder, spawn_metrics_upkeep};

const CHUNKS: usize = 40;
const PER_CHUNK: usize = 100_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/self/status"))
}

#[test]
fn latency_samples_do_not_pile_up_while_nobody_scrapes_and_are_still_counted() {
    let (recorder, handle) = metrics_recorder();
    spawn_metrics_upkeep(handle.clone(), Duration::from_millis(10))
        .unwrap_or_else(|e| panic!("upkeep thread: {e}"));
    let labels = [
        ("method", "GET"),
        ("route", "/auth/verify-token"),
        ("status", "200"),
    ];
    let before = rss_kib();
    metrics::with_local_recorder(&recorder, || {
        let histogram = metrics::histogram!("http_request_duration_seconds", &labels);
        for _ in 0..CHUNKS {
            for _ in 0..PER_CHUNK {
                histogram.record(0.003);
            }
            // A few upkeep periods: what a service does between bursts of requests.
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let grown_kib = rss_kib().saturating_sub(before);
    // Kept until a scrape, 4 million samples took 64 MB here (8 bytes each, in blocks of 64,
    // plus the allocator's share).
    assert!(
        grown_kib < 10 * 1024,
        "resident memory grew by {grown_kib} KiB over {} samples nobody scraped",
        CHUNKS * PER_CHUNK
    );
    // The samples reach the buckets. Not all of them: metrics-util's lock-free bucket can drop
    // the block of 64 a writer is just replacing when a drain (upkeep or scrape alike) takes
    // the bucket at that instant. Draining every 10 ms against a thread that does nothing but
    // record makes that happen often here (about 0.4 %); at 5 s against real requests, rarely.
    let text = handle.render();
    let count: usize = text
        .lines()
        .find(|line| line.starts_with("http_request_duration_seconds_count{"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in:\n{text}"));
    let recorded = CHUNKS * PER_CHUNK;
    assert!(
        count <= recorded && count >= recorded - recorded / 50,
        "{count} of {recorded} samples counted:\n{text}"
    );
    let in_bucket = format!(
        "http_request_duration_seconds_bucket{{method=\"GET\",route=\"/auth/verify-token\",status=\"200\",le=\"0.005\"}} {count}"
    );
    assert!(text.contains(&in_bucket), "{text}");
}
