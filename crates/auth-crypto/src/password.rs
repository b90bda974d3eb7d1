//! Password hashing: bcrypt over a keyed pre-hash, off the async workers, bounded.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_domain::ports::{PasswordHasher, PortError};
use auth_domain::types::{Password, PasswordHash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha384;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::keys::Key32;

/// bcrypt (cost configurable) over `base64(HMAC-SHA-384(pepper, password))`: 64 ASCII
/// characters, so bcrypt's 72-byte truncation never cuts a long password, and a stolen
/// database is useless without the pepper.
///
/// Hashes run on tokio's blocking pool, at most `concurrency` at once, so a login flood
/// queues here instead of stalling the async workers that verify tokens.
///
/// [`BcryptHasher::stats`] tells how many hashes wait for a permit and how many run, and an
/// observer set with [`BcryptHasher::observed`] learns how long each one waited and ran
/// (for metrics, which this crate knows nothing of).
#[derive(Clone)]
pub struct BcryptHasher {
    cost: u32,
    pepper: Arc<Key32>,
    permits: Arc<Semaphore>,
    fallback: Arc<String>,
    load: Arc<Load>,
    observer: Option<Arc<dyn Fn(HashTiming) + Send + Sync>>,
}

/// Hashes waiting for a permit and hashes running, right now.
#[derive(Debug, Default)]
struct Load {
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
}

/// Counts one unit of `counter` for as long as it lives (also when the future holding it is
/// dropped mid-way).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The load of a [`BcryptHasher`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashStats {
    /// Hashes (or verifications) waiting for one of the `concurrency` permits.
    pub waiting: usize,
    /// Hashes running on the blocking pool.
    pub in_flight: usize,
}

/// How long one hash (or verification) took, given to the observer when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTiming {
    /// Time waiting for a permit.
    pub waited: Duration,
    /// Time computing, once it had one (blocking-pool scheduling included).
    pub hashed: Duration,
}

impl fmt::Debug for BcryptHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BcryptHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HashError(String);

fn prehash(pepper: &Key32, password: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha384> as Mac>::new_from_slice(&pepper.0) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(password.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

impl BcryptHasher {
    /// A hasher. Computes the fallback hash (for unknown users) once, now: one hash of work.
    pub fn new(cost: u32, pepper: Key32, concurrency: usize) -> Result<Self, PortError> {
        let fallback_input = prehash(&pepper, "fallback password for unknown users");
        let fallback = bcrypt::hash(fallback_input, cost)
            .map_err(|e| PortError::unexpected(HashError(e.to_string())))?;
        Ok(Self {
            cost,
            pepper: Arc::new(pepper),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            fallback: Arc::new(fallback),
            load: Arc::new(Load::default()),
            observer: None,
        })
    }

    /// The same hasher, telling `observer` how long each hash waited and ran. Called on
    /// the async worker that awaited the hash, so it must be quick.
    #[must_use]
    pub fn observed(mut self, observer: impl Fn(HashTiming) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Hashes waiting for a permit and hashes running, now.
    pub fn stats(&self) -> HashStats {
        HashStats {
            waiting: self.load.waiting.load(Ordering::Relaxed),
            in_flight: self.load.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` (`op`: `hash` or `verify`) once a permit is free. Traced as two spans,
    /// `password.wait` (for the permit) and `password.hash` (bcrypt on a blocking thread),
    /// with `op` and the cost only.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, PortError> {
        let asked = Instant::now();
        let waiting = Counted::new(&self.load.waiting);
        let _permit = self
            .permits
            .acquire()
            .instrument(tracing::info_span!(
        target: "auth_trace",
        "password.wait", password.op = op))
            .await
            .map_err(PortError::unexpected)?;
        drop(waiting);
        let _running = Counted::new(&self.load.in_flight);
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(work)
            .instrument(tracing::info_span!(
            target: "auth_trace",
            "password.hash",
                    password.op = op,
                    password.cost = self.cost
                ))
            .await
            .map_err(PortError::unexpected)?
            .map_err(|e| PortError::unexpected(HashError(e.to_string())));
        if let Some(observer) = &self.observer {
            observer(HashTiming {
                waited: started - asked,
                hashed: started.elapsed(),
            });
        }
        result
    }
}

/// The cost field of a `$2b$12$…` hash.
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, PortError> {
        let input = prehash(&self.pepper, password.expose());
        let cost = self.cost;
        self.run("hash", move || bcrypt::hash(input, cost))
            .await
            .map(PasswordHash)
    }

    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, PortError> {
        let input = prehash(&self.pepper, password.expose());
        let known = hash.is_some();
        let target = hash.map_or_else(|| self.fallback.as_str().to_owned(), |h| h.0);
        let matches = self
            .run("verify", move || bcrypt::verify(input, &target))
            .await?;
        Ok(known && matches)
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        cost_of(&hash.0) != Some(self.cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(cost: u32) -> Result<BcryptHasher, PortError> {
        BcryptHasher::new(cost, Key32([9; 32]), 2)
    }

    fn pw(s: &str) -> Password {
        Password::presented(s).unwrap_or_else(|_| unreachable!("test input is valid"))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() -> Result<(), PortError> {
        let h = hasher(4)?;
        let hash = h.hash(pw("correct horse battery")).await?;
        assert!(
            h.verify(pw("correct horse battery"), Some(hash.clone()))
                .await?
        );
        assert!(
            !h.verify(pw("wrong horse battery"), Some(hash.clone()))
                .await?
        );
        assert!(!h.needs_rehash(&hash));
        assert!(
            hasher(5)?.needs_rehash(&hash),
            "another cost asks for a rehash"
        );
        Ok(())
    }

    #[tokio::test]
    async fn passwords_longer_than_72_bytes_are_not_truncated() -> Result<(), PortError> {
        let h = hasher(4)?;
        let base = "x".repeat(80);
        let hash = h.hash(pw(&format!("{base}A"))).await?;
        assert!(!h.verify(pw(&format!("{base}B")), Some(hash)).await?);
        Ok(())
    }

    #[tokio::test]
    async fn an_unknown_user_never_matches_even_with_the_fallback_password() -> Result<(), PortError>
    {
        let h = hasher(4)?;
        assert!(
            !h.verify(pw("fallback password for unknown users"), None)
                .await?
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stats_count_hashes_waiting_and_running_and_the_observer_hears_each_one()
    -> Result<(), PortError> {
        let timings = Arc::new(std::sync::Mutex::new(Vec::new()));
        let heard = Arc::clone(&timings);
        let h = BcryptHasher::new(10, Key32([9; 32]), 1)?.observed(move |t| {
            heard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(t);
        });
        assert_eq!(h.stats(), HashStats::default(), "idle at first");
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(pw("correct horse battery")).await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = HashStats::default();
        while Instant::now() < deadline
            && seen
                != (HashStats {
                    waiting: 2,
                    in_flight: 1,
                })
        {
            seen = h.stats();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            seen,
            HashStats {
                waiting: 2,
                in_flight: 1
            },
            "one permit: one runs, two wait"
        );
        for task in tasks {
            task.await.map_err(PortError::unexpected)??;
        }
        assert_eq!(h.stats(), HashStats::default(), "idle again");
        let timings = timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(timings.len(), 3, "one timing per hash");
        // The last one served waited for the whole of the middle one's hash at least.
        let longest_wait = timings.iter().map(|t| t.waited).max();
        let shortest_hash = timings.iter().map(|t| t.hashed).min();
        assert!(
            longest_wait >= shortest_hash && shortest_hash > Some(Duration::ZERO),
            "the queued ones waited: {timings:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn another_pepper_does_not_verify() -> Result<(), PortError> {
        let hash = hasher(4)?.hash(pw("correct horse battery")).await?;
        let other = BcryptHasher::new(4, Key32([1; 32]), 1)?;
        assert!(
            !other
                .verify(pw("correct horse battery"), Some(hash))
                .await?
        );
        Ok(())
    }
}
