//! [`Store::ping`].

use auth_domain::ports::Store;

use crate::contract::Must;

/// A reachable store answers `ping`.
pub async fn ping_answers<S: Store>(store: &S) {
    store.ping().await.must("ping");
}
