//! The service's own metric families (docs/api.md, `GET /metrics`, lists them all). Counters
//! are counted by the routes, where each use case's outcome is known; gauges are read from
//! the adapters when `/metrics` is scraped. No label ever holds an id, an email, an IP or a
//! token: every label value comes from a short fixed set.

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
}

/// A login ended: `success`, or the problem code of the refusal.
pub fn login(outcome: &'static str) {
    counter!("auth_logins_total", "outcome" => outcome).increment(1);
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
    let hashes = ports.hasher.stats();
    gauge!("auth_password_hash_waiting").set(count(hashes.waiting));
    gauge!("auth_password_hash_in_flight").set(count(hashes.in_flight));
}
