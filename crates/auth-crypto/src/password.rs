//! Password hashing: bcrypt over a keyed pre-hash, off the async workers, bounded.

use std::fmt;
use std::sync::Arc;

use auth_domain::ports::{PasswordHasher, PortError};
use auth_domain::types::{Password, PasswordHash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha384;
use tokio::sync::Semaphore;

use crate::keys::Key32;

/// bcrypt (cost configurable) over `base64(HMAC-SHA-384(pepper, password))`: 64 ASCII
/// characters, so bcrypt's 72-byte truncation never cuts a long password, and a stolen
/// database is useless without the pepper.
///
/// Hashes run on tokio's blocking pool, at most `concurrency` at once, so a login flood
/// queues here instead of stalling the async workers that verify tokens.
#[derive(Clone)]
pub struct BcryptHasher {
    cost: u32,
    pepper: Arc<Key32>,
    permits: Arc<Semaphore>,
    fallback: Arc<String>,
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
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, PortError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(PortError::unexpected)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(PortError::unexpected)?
            .map_err(|e| PortError::unexpected(HashError(e.to_string())))
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
        self.run(move || bcrypt::hash(input, cost))
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
        let matches = self.run(move || bcrypt::verify(input, &target)).await?;
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
