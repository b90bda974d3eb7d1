//! [`RateLimiter`](auth_domain::ports::RateLimiter): decisions exactly as
//! [`gcra`] makes them, atomically per key.

use auth_domain::policy::{RateLimit, gcra};
use auth_domain::ports::Cache;
use chrono::TimeDelta;

use crate::contract::{Must, fixtures, race};

fn limit(limit: u32, window_secs: i64) -> RateLimit {
    RateLimit {
        name: "contract",
        limit,
        window: TimeDelta::seconds(window_secs),
    }
}

/// A burst of `limit` hits at one time is allowed, the next refused with a retry-after of
/// at least a second, each decision exactly [`gcra`]'s; after the retry-after a hit is
/// allowed again.
pub async fn a_burst_of_the_limit_is_allowed_then_refused_with_a_retry_after<C: Cache>(cache: &C) {
    let (policy, key, now) = (limit(5, 60), fixtures::key("rate"), fixtures::now());
    let mut tat = None;
    for n in 1..=5 {
        let decision = cache.hit(&key, policy, now).await.must("hit");
        let (next, expected) = gcra(policy, tat, now);
        assert_eq!(decision, expected, "hit {n}: as gcra decides");
        assert!(decision.allowed, "hit {n} of a burst of the limit");
        tat = Some(next);
    }
    let refused = cache.hit(&key, policy, now).await.must("hit");
    assert_eq!(refused, gcra(policy, tat, now).1, "as gcra decides");
    assert!(!refused.allowed, "one more than the limit is refused");
    assert!(refused.retry_after_secs >= 1, "with a retry-after");

    let retry = i64::try_from(refused.retry_after_secs).must("retry-after");
    let later = now + TimeDelta::seconds(retry);
    let decision = cache.hit(&key, policy, later).await.must("hit");
    assert!(decision.allowed, "allowed again after the retry-after");
}

/// Hits on one key do not count against another.
pub async fn rate_limit_keys_are_independent<C: Cache>(cache: &C) {
    let (policy, now) = (limit(1, 60), fixtures::now());
    let (a, b) = (fixtures::key("rate-a"), fixtures::key("rate-b"));
    assert!(cache.hit(&a, policy, now).await.must("hit").allowed);
    assert!(
        !cache.hit(&a, policy, now).await.must("hit").allowed,
        "a is spent"
    );
    assert!(
        cache.hit(&b, policy, now).await.must("hit").allowed,
        "b is not"
    );
}

/// Of fifty concurrent hits on one key with a limit of ten, exactly ten are allowed.
pub async fn of_fifty_concurrent_hits_with_a_limit_of_ten_ten_are_allowed<C: Cache>(cache: &C) {
    let (policy, key, now) = (limit(10, 60), fixtures::key("rate-hot"), fixtures::now());
    let decisions = race(50, |_| cache.hit(&key, policy, now));
    let mut allowed = 0;
    for decision in decisions {
        let decision = decision.must("hit");
        if decision.allowed {
            allowed += 1;
        } else {
            assert!(
                decision.retry_after_secs >= 1,
                "a refusal has a retry-after"
            );
        }
    }
    assert_eq!(allowed, 10, "exactly the limit is allowed");
}
