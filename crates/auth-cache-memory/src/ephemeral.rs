//! Short-lived shared values ([`EphemeralStore`]): logins waiting for their second factor,
//! WebAuthn challenges, used TOTP steps, wrong-code counters.
//!
//! One table of byte values with their expiry, behind one lock: every method applies its
//! whole read-modify-write under it, so of concurrent `take`s or `claim`s of one key exactly
//! one wins. A mark set by [`EphemeralStore::claim_once`] is stored as an empty value, a
//! counter of [`EphemeralStore::increment`] as its decimal digits (as the Redis adapter
//! stores them), so [`EphemeralStore::get_ephemeral`] reads either. Expiry is judged by the
//! `now` passed in, never by a clock.

use auth_domain::ports::{EphemeralStore, PortError};
use auth_domain::types::Timestamp;

use crate::{EphemeralEntry, MemoryCache, lock};

impl EphemeralStore for MemoryCache {
    /// Replaces the entry under `key` (a value that expires at or before `now` is stored
    /// all the same: it is never returned, and the next sweep drops it).
    async fn put_ephemeral(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), PortError> {
        let mut table = lock(&self.inner.ephemeral);
        table.store(key, value.to_vec(), expires_at);
        table.after_write(now);
        Ok(())
    }

    /// A copy of the value, if it is live at `now`.
    async fn get_ephemeral(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, PortError> {
        let table = lock(&self.inner.ephemeral);
        Ok(table.live(key, now).map(|entry| entry.value.clone()))
    }

    /// Removes the entry under the lock; returns its value if it was live at `now`.
    async fn take_ephemeral(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, PortError> {
        let mut table = lock(&self.inner.ephemeral);
        let taken = table.entries.remove(key);
        Ok(taken
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value))
    }

    /// Under the lock: a live entry refuses; otherwise an empty mark is stored until
    /// `expires_at`.
    async fn claim_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, PortError> {
        let mut table = lock(&self.inner.ephemeral);
        if table.live(key, now).is_some() {
            return Ok(false);
        }
        table.store(key, Vec::new(), expires_at);
        table.after_write(now);
        Ok(true)
    }

    /// Under the lock: a live counter goes up by one and keeps its expiry; anything else
    /// (none, or expired at `now`) starts again at 1 until `expires_at`. A live entry that
    /// is not a counter (a value put under the same key) is an error.
    async fn increment(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, PortError> {
        let mut table = lock(&self.inner.ephemeral);
        let count = match table.entries.get_mut(key).filter(|e| e.expires > now) {
            Some(entry) => {
                let count = parse_count(&entry.value)?.saturating_add(1);
                entry.value = count.to_string().into_bytes();
                count
            }
            None => {
                table.store(key, b"1".to_vec(), expires_at);
                1
            }
        };
        table.after_write(now);
        Ok(count)
    }

    /// Removes the entry, if any.
    async fn remove_ephemeral(&self, key: &str) -> Result<(), PortError> {
        lock(&self.inner.ephemeral).entries.remove(key);
        Ok(())
    }
}

/// The count a counter entry holds (its decimal digits).
fn parse_count(value: &[u8]) -> Result<u64, PortError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|digits| digits.parse::<u64>().ok())
        .ok_or_else(|| PortError::unexpected(NotACounter))
}

/// [`EphemeralStore::increment`] on a key that holds a value, not a counter.
#[derive(Debug)]
struct NotACounter;

impl std::fmt::Display for NotACounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ephemeral entry to increment is not a counter")
    }
}

impl std::error::Error for NotACounter {}

impl crate::EphemeralTable {
    /// The entry under `key` if it is live at `now`.
    fn live(&self, key: &str, now: Timestamp) -> Option<&EphemeralEntry> {
        self.entries.get(key).filter(|entry| entry.expires > now)
    }

    /// Stores `value` under `key` until `expires`, replacing what was there.
    fn store(&mut self, key: &str, value: Vec<u8>, expires: Timestamp) {
        let entry = EphemeralEntry { value, expires };
        match self.entries.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                self.entries.insert(key.to_owned(), entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => runtime.block_on(future),
            Err(err) => panic!("no runtime: {err}"),
        }
    }

    #[test]
    fn expired_entries_are_swept_by_later_writes() {
        let cache = MemoryCache::new();
        let now = Utc::now();
        let soon = now + TimeDelta::seconds(1);
        block_on(async {
            for i in 0..MemoryCache::SWEEP_AFTER_WRITES {
                let put = cache.put_ephemeral(&format!("k{i}"), b"v", soon, now).await;
                assert!(put.is_ok());
            }
            assert_eq!(cache.len(), MemoryCache::SWEEP_AFTER_WRITES);
            let later = soon + TimeDelta::seconds(1);
            let claimed = cache.claim_once("fresh", later + TimeDelta::minutes(1), later);
            assert!(claimed.await.is_ok_and(|c| c));
        });
        assert_eq!(
            cache.len(),
            1,
            "the write past the threshold swept the rest"
        );
    }

    #[test]
    fn sweep_drops_expired_entries_only() {
        let cache = MemoryCache::new();
        let now = Utc::now();
        block_on(async {
            let a = cache.put_ephemeral("a", b"1", now + TimeDelta::seconds(1), now);
            assert!(a.await.is_ok());
            let b = cache.increment("b", now + TimeDelta::minutes(1), now);
            assert!(b.await.is_ok_and(|n| n == 1));
        });
        assert_eq!(cache.sweep(now + TimeDelta::seconds(1)), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn incrementing_a_value_that_is_no_counter_is_an_error() {
        let cache = MemoryCache::new();
        let now = Utc::now();
        let until = now + TimeDelta::minutes(1);
        block_on(async {
            assert!(cache.put_ephemeral("k", b"x", until, now).await.is_ok());
            let counted = cache.increment("k", until, now).await;
            assert!(matches!(counted, Err(PortError::Unexpected(_))));
        });
    }
}
