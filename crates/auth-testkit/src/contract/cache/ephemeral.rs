//! [`EphemeralStore`](auth_domain::ports::EphemeralStore): short-lived values, single-use
//! takes and claims, counters with a fixed expiry. Every case uses fresh keys
//! ([`fixtures::key`]), so cases running at once on one cache never see each other's
//! entries. Expiry is judged by the `now` passed in: the cases move it forward instead of
//! waiting, and an entry MUST NOT be returned (or count as present) at its expiry.

use auth_domain::ports::Cache;
use auth_domain::types::Timestamp;
use chrono::TimeDelta;

use crate::contract::{Must, fixtures, race};

/// `now + seconds`.
fn after(now: Timestamp, seconds: i64) -> Timestamp {
    now + TimeDelta::seconds(seconds)
}

/// A value put is read back as written, as often as asked; a second put replaces it; a
/// key never written reads as nothing.
pub async fn a_value_put_is_read_back_and_a_second_put_replaces_it<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("ephemeral"), fixtures::now());
    let until = after(now, 300);
    let unknown = cache.get_ephemeral(&key, now).await.must("get_ephemeral");
    assert_eq!(unknown, None, "a key never written");

    cache
        .put_ephemeral(&key, b"first", until, now)
        .await
        .must("put_ephemeral");
    for _ in 0..2 {
        let found = cache
            .get_ephemeral(&key, after(now, 1))
            .await
            .must("get_ephemeral");
        assert_eq!(found.as_deref(), Some(&b"first"[..]), "read back, twice");
    }

    cache
        .put_ephemeral(&key, b"second", until, now)
        .await
        .must("put_ephemeral");
    let found = cache.get_ephemeral(&key, now).await.must("get_ephemeral");
    assert_eq!(found.as_deref(), Some(&b"second"[..]), "replaced");

    let other = cache
        .get_ephemeral(&fixtures::key("ephemeral"), now)
        .await
        .must("get_ephemeral");
    assert_eq!(other, None, "other keys see nothing");
}

/// A value is there just before its expiry and gone at it and after, for `get` and
/// `take`; a put whose expiry has passed stores nothing that can be read.
pub async fn a_value_is_gone_at_its_expiry<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("ephemeral"), fixtures::now());
    let until = after(now, 60);
    cache
        .put_ephemeral(&key, b"value", until, now)
        .await
        .must("put_ephemeral");
    let before = cache
        .get_ephemeral(&key, until - TimeDelta::milliseconds(1))
        .await
        .must("get_ephemeral");
    assert_eq!(before.as_deref(), Some(&b"value"[..]), "live 1 ms before");
    for at in [until, after(until, 1), after(until, 3600)] {
        let found = cache.get_ephemeral(&key, at).await.must("get_ephemeral");
        assert_eq!(found, None, "gone at and after its expiry ({at})");
    }
    let taken = cache
        .take_ephemeral(&key, until)
        .await
        .must("take_ephemeral");
    assert_eq!(taken, None, "an expired value is not taken");

    let stale = fixtures::key("ephemeral");
    cache
        .put_ephemeral(&stale, b"value", now, now)
        .await
        .must("put_ephemeral");
    let found = cache.get_ephemeral(&stale, now).await.must("get_ephemeral");
    assert_eq!(found, None, "a value put at its expiry is never read");
}

/// A value is taken once: the first take returns it, and it is gone for the next take
/// and for `get`.
pub async fn a_value_is_taken_once<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("ephemeral"), fixtures::now());
    cache
        .put_ephemeral(&key, b"challenge", after(now, 300), now)
        .await
        .must("put_ephemeral");
    let first = cache.take_ephemeral(&key, now).await.must("take_ephemeral");
    assert_eq!(first.as_deref(), Some(&b"challenge"[..]), "the first take");
    let second = cache.take_ephemeral(&key, now).await.must("take_ephemeral");
    assert_eq!(second, None, "the second take");
    let found = cache.get_ephemeral(&key, now).await.must("get_ephemeral");
    assert_eq!(found, None, "gone after the take");
}

/// Of eight concurrent takes of one value, exactly one gets it.
pub async fn of_eight_concurrent_takes_one_gets_the_value<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("ephemeral"), fixtures::now());
    cache
        .put_ephemeral(&key, b"once", after(now, 300), now)
        .await
        .must("put_ephemeral");
    let taken: Vec<Option<Vec<u8>>> = race(8, |_| cache.take_ephemeral(&key, now))
        .into_iter()
        .map(|result| result.must("take_ephemeral"))
        .collect();
    let winners: Vec<&Vec<u8>> = taken.iter().flatten().collect();
    assert_eq!(winners, [&b"once".to_vec()], "exactly one take wins");
}

/// A claim succeeds once, fails while its mark lives (to the last millisecond), and
/// succeeds again once the mark expired.
pub async fn a_claim_succeeds_once_until_its_mark_expires<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("claim"), fixtures::now());
    let until = after(now, 30);
    let first = cache.claim_once(&key, until, now).await.must("claim_once");
    assert!(first, "the first claim marks the key");
    for at in [now, after(now, 10), until - TimeDelta::milliseconds(1)] {
        let again = cache
            .claim_once(&key, after(at, 30), at)
            .await
            .must("claim_once");
        assert!(!again, "refused while marked ({at})");
    }
    let renewed = cache
        .claim_once(&key, after(until, 30), until)
        .await
        .must("claim_once");
    assert!(renewed, "claimed again at the mark's expiry");
    let refused = cache
        .claim_once(&key, after(until, 60), after(until, 10))
        .await
        .must("claim_once");
    assert!(!refused, "the new mark holds");

    let other = cache
        .claim_once(&fixtures::key("claim"), until, now)
        .await
        .must("claim_once");
    assert!(other, "other keys are not marked");
}

/// Of eight concurrent claims of one key, exactly one succeeds.
pub async fn of_eight_concurrent_claims_one_succeeds<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("claim"), fixtures::now());
    let until = after(now, 90);
    let claimed: Vec<bool> = race(8, |_| cache.claim_once(&key, until, now))
        .into_iter()
        .map(|result| result.must("claim_once"))
        .collect();
    assert_eq!(
        claimed.iter().filter(|won| **won).count(),
        1,
        "exactly one claim wins: {claimed:?}"
    );
}

/// A counter counts 1, 2, 3; later increments keep its first expiry (a later
/// `expires_at` does not extend it); at that expiry it starts again at 1, with the new
/// expiry.
pub async fn a_counter_counts_up_and_keeps_its_first_expiry<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("counter"), fixtures::now());
    let first_expiry = after(now, 300);
    let mut counts = Vec::new();
    for i in 0..3 {
        let at = after(now, i);
        let count = cache
            .increment(&key, after(at, 300), at)
            .await
            .must("increment");
        counts.push(count);
    }
    assert_eq!(counts, [1, 2, 3], "counts up from 1");
    let just_before = first_expiry - TimeDelta::milliseconds(1);
    let fourth = cache
        .increment(&key, after(just_before, 300), just_before)
        .await
        .must("increment");
    assert_eq!(fourth, 4, "still counting 1 ms before the first expiry");

    let restarted = cache
        .increment(&key, after(first_expiry, 300), first_expiry)
        .await
        .must("increment");
    assert_eq!(restarted, 1, "a new counter at the first expiry");
    let next = cache
        .increment(&key, after(first_expiry, 600), after(first_expiry, 299))
        .await
        .must("increment");
    assert_eq!(next, 2, "the new counter lives until its own expiry");
    let again = cache
        .increment(&key, after(first_expiry, 900), after(first_expiry, 300))
        .await
        .must("increment");
    assert_eq!(again, 1, "and restarts at it");

    let other = cache
        .increment(&fixtures::key("counter"), first_expiry, now)
        .await
        .must("increment");
    assert_eq!(other, 1, "other keys count on their own");
}

/// Of sixteen concurrent increments of one counter, each is counted once.
pub async fn concurrent_increments_are_all_counted<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("counter"), fixtures::now());
    let until = after(now, 300);
    let mut counts: Vec<u64> = race(16, |_| cache.increment(&key, until, now))
        .into_iter()
        .map(|result| result.must("increment"))
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=16).collect::<Vec<u64>>(), "no increment lost");
}

/// Removing a key removes its value, mark or counter; removing it again, or a key never
/// written, is no error.
pub async fn removing_is_idempotent<C: Cache>(cache: &C) {
    let (key, now) = (fixtures::key("ephemeral"), fixtures::now());
    let until = after(now, 300);
    cache
        .put_ephemeral(&key, b"value", until, now)
        .await
        .must("put_ephemeral");
    for _ in 0..2 {
        cache.remove_ephemeral(&key).await.must("remove_ephemeral");
        let found = cache.get_ephemeral(&key, now).await.must("get_ephemeral");
        assert_eq!(found, None, "removed");
    }
    cache
        .remove_ephemeral(&fixtures::key("ephemeral"))
        .await
        .must("remove_ephemeral of a key never written");

    let claimed = fixtures::key("claim");
    assert!(cache.claim_once(&claimed, until, now).await.must("claim"));
    cache
        .remove_ephemeral(&claimed)
        .await
        .must("remove_ephemeral");
    assert!(
        cache.claim_once(&claimed, until, now).await.must("claim"),
        "a removed mark can be claimed again"
    );

    let counter = fixtures::key("counter");
    for _ in 0..2 {
        cache
            .increment(&counter, until, now)
            .await
            .must("increment");
    }
    cache
        .remove_ephemeral(&counter)
        .await
        .must("remove_ephemeral");
    let restarted = cache
        .increment(&counter, until, now)
        .await
        .must("increment");
    assert_eq!(restarted, 1, "a removed counter starts again");
}

/// Values are bytes, not text: every byte value (NUL, invalid UTF-8, a `:`), and the
/// empty value, survive a put and a get or take.
pub async fn binary_values_survive<C: Cache>(cache: &C) {
    let now = fixtures::now();
    let until = after(now, 300);
    let every_byte: Vec<u8> = (0..=255).rev().collect();
    let values: [&[u8]; 4] = [&every_byte, &[0xff, 0xfe, 0, b':', 0xc3], b"", b"12:34"];
    for value in values {
        let key = fixtures::key("binary");
        cache
            .put_ephemeral(&key, value, until, now)
            .await
            .must("put_ephemeral");
        let found = cache.get_ephemeral(&key, now).await.must("get_ephemeral");
        assert_eq!(found.as_deref(), Some(value), "read back as written");
        let taken = cache.take_ephemeral(&key, now).await.must("take_ephemeral");
        assert_eq!(taken.as_deref(), Some(value), "taken as written");
    }
}

/// Keys are the caller's whole text: keys that share a prefix, differ in case or only in
/// punctuation, or hold non-ASCII text, are distinct entries.
pub async fn similar_keys_are_distinct<C: Cache>(cache: &C) {
    let (base, now) = (fixtures::key("ephemeral"), fixtures::now());
    let until = after(now, 300);
    let keys = [
        base.clone(),
        format!("{base}:x"),
        format!("{base}x"),
        base.to_uppercase(),
        format!("{base}:é"),
        format!("{base}:{{tag}}"),
    ];
    for (i, key) in keys.iter().enumerate() {
        cache
            .put_ephemeral(key, i.to_string().as_bytes(), until, now)
            .await
            .must("put_ephemeral");
    }
    for (i, key) in keys.iter().enumerate() {
        let found = cache.get_ephemeral(key, now).await.must("get_ephemeral");
        assert_eq!(
            found,
            Some(i.to_string().into_bytes()),
            "{key} holds its own value"
        );
    }
}
