//! The service's own metric families (docs/api.md, `GET /metrics`, lists them all). Counters
//! are counted by the routes, where each use case's outcome is known; gauges are read from
//! the adapters when `/metrics` is scraped. No label ever holds an id, an email, an IP or a
//! token: every label value comes from a short fixed set.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use auth_crypto::HashTiming;
use auth_domain::monitoring::PoolStatus;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::state::AppState;

/// Gives each family its help text, sets `auth_build_info`, and registers the counters
/// without labels at zero (so a rate over them exists before the first event). Once, after
/// the recorder is installed.
// Long on purpose: one help text per metric family, the list operators read.
pub fn describe() {
    describe_counter!(
        "auth_logins_total",
        "Login attempts by outcome: success or the problem code of the refusal"
    );
    describe_counter!(
        "auth_lockouts_total",
        "Identifiers locked after too many failed logins"
    );
    describe_counter!(
        "auth_rate_limited_total",
        "Requests refused by a rate limit, by endpoint action"
    );
    describe_counter!("auth_tokens_issued_total", "Token pairs issued by a login");
    describe_counter!(
        "auth_tokens_refreshed_total",
        "Token pairs issued by a refresh"
    );
    describe_counter!(
        "auth_tokens_revoked_total",
        "Revocations by reason: one per logout, session revocation, password change or reset, account deletion or detected reuse"
    );
    describe_counter!(
        "auth_refresh_reuse_detected_total",
        "Rotated refresh tokens presented after the reuse interval (the session is revoked)"
    );
    describe_gauge!(
        "auth_db_pool_connections",
        "Database pool connections by state (in_use, idle)"
    );
    describe_gauge!(
        "auth_db_pool_waiting",
        "Database operations waiting for a connection"
    );
    describe_gauge!(
        "auth_db_pool_max_connections",
        "Most connections the database pool opens"
    );
    describe_gauge!(
        "auth_db_replica_pool_connections",
        "Read replica pool connections by replica (its position in DATABASE_REPLICA_URL, from 1) and state (in_use, idle)"
    );
    describe_gauge!(
        "auth_db_replica_usable",
        "1 while the read replica serves reads (reachable, lagging no more than DATABASE_REPLICA_MAX_LAG_MS), else 0"
    );
    describe_gauge!(
        "auth_db_replica_lag_seconds",
        "How far behind the primary the read replica is known to be at most (NaN while unknown)"
    );
    describe_counter!(
        "auth_db_replica_reads_total",
        "Reads the read replica served"
    );
    describe_counter!(
        "auth_db_replica_failures_total",
        "Checks and reads that failed on the read replica (reads were run again on the primary)"
    );
    describe_counter!(
        "auth_db_replica_primary_reads_total",
        "Reads a replica could have served that went to the primary, by reason (lagging: no replica fresh enough; own_write: the account was just written through this instance)"
    );
    describe_gauge!(
        "auth_redis_pool_connections",
        "Redis pool connections by state (in_use, idle)"
    );
    describe_gauge!(
        "auth_redis_pool_waiting",
        "Redis operations waiting for a connection"
    );
    describe_gauge!(
        "auth_redis_pool_max_connections",
        "Most connections the Redis pool opens"
    );
    describe_gauge!(
        "auth_password_hash_waiting",
        "Password hashes waiting for a HASH_CONCURRENCY permit"
    );
    describe_gauge!("auth_password_hash_in_flight", "Password hashes running");
    describe_histogram!(
        "auth_password_hash_wait_seconds",
        metrics::Unit::Seconds,
        "Time a password hash waited for a permit"
    );
    describe_histogram!(
        "auth_password_hash_seconds",
        metrics::Unit::Seconds,
        "Time a password hash (or verification) ran"
    );
    describe_counter!(
        "auth_mfa_total",
        "Second-factor outcomes by method (totp, recovery_code, passkey, or none when the attempt failed before one was known) and outcome (required: a login's password was right and it waits for a second factor; success; or the problem code of a failure)"
    );
    describe_counter!(
        "auth_mfa_factor_changes_total",
        "Second factors added or removed, by method and change (added, removed), and recovery codes used or renewed"
    );
    describe_counter!(
        "auth_audit_events_total",
        "Audit events by kind (event: the audit log's event name) and outcome (success, failure)"
    );
    describe_gauge!(
        "auth_login_failed_identifiers",
        "Distinct identifiers with a failed login in the last 5 minutes on this instance (at most 100,000 tracked): many identifiers failing is credential stuffing"
    );
    describe_gauge!(
        "auth_ready",
        "1 when /health/ready answers 200 (checked at each scrape), else 0"
    );
    describe_gauge!(
        "auth_dependency_up",
        "1 when the dependency answers (database, cache, mailer: the outbox), checked at each scrape"
    );
    describe_gauge!("auth_build_info", "Always 1; the labels name the build");
    match option_env!("AUTH_GIT_SHA").filter(|sha| !sha.is_empty()) {
        Some(sha) => {
            gauge!("auth_build_info", "version" => env!("CARGO_PKG_VERSION"), "git_sha" => sha)
                .set(1.0)
        }
        None => gauge!("auth_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0),
    }
    for name in [
        "auth_lockouts_total",
        "auth_tokens_issued_total",
        "auth_tokens_refreshed_total",
        "auth_refresh_reuse_detected_total",
    ] {
        counter!(name).increment(0);
    }
    gauge!("auth_login_failed_identifiers").set(0.0);
    // Labelled counters that move only on trouble, at zero for each label value, so that
    // alerts and panels over them have a series (and a rate) before the first event.
    for operation in crate::cache::FALLBACK_OPERATIONS {
        counter!("auth_cache_fallback_total", "operation" => operation).increment(0);
    }
    for reason in auth_domain::model::ColdReason::ALL {
        counter!("auth_revocation_rewarms_total", "reason" => reason.as_str()).increment(0);
    }
    for kind in auth_domain::model::MailKind::ALL {
        counter!("auth_mail_failed_total", "kind" => kind.as_str()).increment(0);
        counter!("auth_mail_dead_total", "kind" => kind.as_str()).increment(0);
    }
}

/// A login ended: `success`, or the problem code of the refusal.
pub fn login(outcome: &'static str) {
    counter!("auth_logins_total", "outcome" => outcome).increment(1);
}

/// A second-factor outcome (`method`: totp, recovery_code, passkey or none).
pub fn mfa(method: &'static str, outcome: &'static str) {
    counter!("auth_mfa_total", "method" => method, "outcome" => outcome).increment(1);
}

/// A second factor was added or removed (`change`: added, removed, used, renewed).
pub fn mfa_factor_change(method: &'static str, change: &'static str) {
    counter!("auth_mfa_factor_changes_total", "method" => method, "change" => change).increment(1);
}

/// An audit event was written (`outcome`: `success` or `failure`).
pub fn audit_event(event: &'static str, outcome: &'static str) {
    counter!("auth_audit_events_total", "event" => event, "outcome" => outcome).increment(1);
}

/// A login failed for the identifier whose blind index is `index`: counted among the
/// distinct identifiers failing in the last [`FAILED_WINDOW`].
pub fn login_failed_for(index: &str) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(index, &mut hasher);
    let key = std::hash::Hasher::finish(&hasher);
    failed_identifiers().note(key, Instant::now());
}

/// How far back [`login_failed_for`] counts.
pub const FAILED_WINDOW: Duration = Duration::from_secs(300);
/// The most identifiers tracked at once (a few MB at most): beyond it the gauge stays at
/// this count, which is far above any alert threshold.
const MAX_TRACKED: usize = 100_000;

/// Identifiers (a hash of their blind index: never the identifier) with a failed login,
/// and when their last one failed.
#[derive(Default)]
struct FailedIdentifiers {
    seen: Mutex<HashMap<u64, Instant>>,
}

impl FailedIdentifiers {
    fn note(&self, key: u64, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&key) {
            seen.retain(|_, at| now.duration_since(*at) <= FAILED_WINDOW);
            if seen.len() >= MAX_TRACKED {
                return;
            }
        }
        seen.insert(key, now);
    }

    fn count(&self, now: Instant) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| now.duration_since(*at) <= FAILED_WINDOW);
        seen.len()
    }
}

/// One per process, as the metrics recorder is.
fn failed_identifiers() -> &'static FailedIdentifiers {
    static TRACKER: OnceLock<FailedIdentifiers> = OnceLock::new();
    TRACKER.get_or_init(FailedIdentifiers::default)
}

/// Readiness as `/health/ready` judged it: each dependency, and whether all answer.
pub fn readiness(database: bool, cache: bool, mailer: bool) {
    let up = |ok: bool| if ok { 1.0 } else { 0.0 };
    gauge!("auth_dependency_up", "dependency" => "database").set(up(database));
    gauge!("auth_dependency_up", "dependency" => "cache").set(up(cache));
    gauge!("auth_dependency_up", "dependency" => "mailer").set(up(mailer));
    gauge!("auth_ready").set(up(database && cache && mailer));
}

/// A failed login locked its identifier.
pub fn lockout() {
    counter!("auth_lockouts_total").increment(1);
}

/// A rate limit refused a request of `action` (`login`, `register`, …, `change_password`,
/// `delete_account`).
pub fn rate_limited(action: &'static str) {
    counter!("auth_rate_limited_total", "action" => action).increment(1);
}

/// A login issued a token pair.
pub fn tokens_issued() {
    counter!("auth_tokens_issued_total").increment(1);
}

/// A refresh issued a token pair.
pub fn tokens_refreshed() {
    counter!("auth_tokens_refreshed_total").increment(1);
}

/// Tokens were revoked, for `reason`: `logout`, `logout_all`, `session`,
/// `password_change`, `password_reset`, `account_deleted` or `reuse`.
pub fn tokens_revoked(reason: &'static str) {
    counter!("auth_tokens_revoked_total", "reason" => reason).increment(1);
}

/// A rotated refresh token came back after the reuse interval.
pub fn refresh_reuse_detected() {
    counter!("auth_refresh_reuse_detected_total").increment(1);
}

/// One password hash ended (the hasher's observer).
pub fn password_hashed(timing: HashTiming) {
    histogram!("auth_password_hash_wait_seconds").record(timing.waited);
    histogram!("auth_password_hash_seconds").record(timing.hashed);
}

fn pool_gauges(prefix: &str, load: PoolStatus) {
    let gauge_of = |suffix: &str| format!("{prefix}_{suffix}");
    gauge!(gauge_of("pool_connections"), "state" => "in_use").set(count(load.in_use));
    gauge!(gauge_of("pool_connections"), "state" => "idle").set(count(load.idle));
    gauge!(gauge_of("pool_waiting")).set(count(load.waiting));
    gauge!(gauge_of("pool_max_connections")).set(count(load.max_size));
}

/// A count as a gauge value (exact: counts stay far below 2^52).
fn count(n: usize) -> f64 {
    n as f64
}

/// Reads the pools and the password hasher into their gauges (just before a scrape).
pub fn publish_gauges(state: &AppState) {
    let ports = state.service.ports();
    pool_gauges("auth_db", ports.store.pool_status());
    let (replicas, primary_reads) = ports.store.replicas();
    // Labelled by position in DATABASE_REPLICA_URL (1, 2, ...), not by address: the
    // startup log names each replica.
    for (position, replica) in replicas.into_iter().enumerate() {
        let name = (position + 1).to_string();
        let pool = replica.pool;
        gauge!("auth_db_replica_pool_connections", "replica" => name.clone(), "state" => "in_use")
            .set(count(pool.in_use));
        gauge!("auth_db_replica_pool_connections", "replica" => name.clone(), "state" => "idle")
            .set(count(pool.idle));
        gauge!("auth_db_replica_usable", "replica" => name.clone()).set(if replica.usable {
            1.0
        } else {
            0.0
        });
        match replica.lag {
            Some(lag) => gauge!("auth_db_replica_lag_seconds", "replica" => name.clone())
                .set(lag.as_secs_f64()),
            None => gauge!("auth_db_replica_lag_seconds", "replica" => name.clone()).set(f64::NAN),
        }
        counter!("auth_db_replica_reads_total", "replica" => name.clone()).absolute(replica.reads);
        counter!("auth_db_replica_failures_total", "replica" => name).absolute(replica.failures);
    }
    if let Some(primary) = primary_reads {
        counter!("auth_db_replica_primary_reads_total", "reason" => "lagging")
            .absolute(primary.lagging);
        counter!("auth_db_replica_primary_reads_total", "reason" => "own_write")
            .absolute(primary.own_writes);
    }
    if let Some(redis) = ports.cache.pool_status() {
        pool_gauges("auth_redis", redis);
    }
    gauge!("auth_login_failed_identifiers").set(count(failed_identifiers().count(Instant::now())));
    let hashes = ports.hasher.stats();
    gauge!("auth_password_hash_waiting").set(count(hashes.waiting));
    gauge!("auth_password_hash_in_flight").set(count(hashes.in_flight));
}
