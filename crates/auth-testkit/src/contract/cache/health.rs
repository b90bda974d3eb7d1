//! [`Cache::ping`].

use auth_domain::ports::Cache;

use crate::contract::Must;

/// A reachable cache answers `ping`.
pub async fn ping_answers<C: Cache>(cache: &C) {
    cache.ping().await.must("ping");
}
