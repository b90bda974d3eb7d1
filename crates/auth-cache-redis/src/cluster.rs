//! Redis Cluster: one multiplexed cluster connection (redis-rs's async cluster client),
//! which knows the slot map, sends each command to the master of its keys' slot, follows
//! `MOVED` and `ASK` redirections, and reconnects (from the seed nodes if need be) after a
//! node goes away. It needs no pool: every operation runs on a clone of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use auth_domain::monitoring::{PoolStatus, redact_url};
use auth_domain::ports::PortError;
use deadpool_redis::redis::cluster::ClusterClientBuilder;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{self, TlsCertificates};

use crate::revocations::Warmth;
use crate::{Backend, Failure, RedisCache, RedisOptions, redis_error};

/// The cluster connection shared by the clones of a [`RedisCache`].
#[derive(Clone)]
pub(crate) struct Cluster {
    conn: ClusterConnection,
    /// Set by [`RedisCache::close`]: later operations fail as unavailable.
    closed: Arc<AtomicBool>,
    /// Operations running on the connection now (for [`RedisCache::pool_status`]).
    in_flight: Arc<AtomicUsize>,
}

/// Counts an operation as running until dropped.
pub(crate) struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Cluster {
    /// A clone of the connection for one operation, counted while it runs; unavailable
    /// once closed.
    pub(crate) fn connection(&self) -> Result<(ClusterConnection, Busy), PortError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PortError::unavailable(Failure::Pool("closed".to_owned())));
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Ok((self.conn.clone(), Busy(Arc::clone(&self.in_flight))))
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// One connection (in redis-rs, one socket per node behind it): in use while any
    /// operation runs on it, and none ever waits for it.
    pub(crate) fn status(&self) -> PoolStatus {
        let busy = usize::from(self.in_flight.load(Ordering::SeqCst) > 0);
        PoolStatus {
            max_size: 1,
            in_use: busy,
            idle: 1 - busy,
            waiting: 0,
        }
    }
}

/// The seed nodes for messages, without their passwords.
fn shown(nodes: &[&str]) -> String {
    nodes
        .iter()
        .map(|node| redact_url(node))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether every node is `redis://`, or every one `rediss://` (TLS); `None` for a mix or
/// another scheme.
fn tls_of(nodes: &[&str]) -> Option<bool> {
    let tls = |node: &&str| {
        if node.starts_with("rediss://") {
            Some(true)
        } else if node.starts_with("redis://") {
            Some(false)
        } else {
            None
        }
    };
    let first = tls(nodes.first()?)?;
    nodes
        .iter()
        .all(|node| tls(node) == Some(first))
        .then_some(first)
}

impl RedisCache {
    /// Connects to the Redis Cluster that `nodes` (seed nodes: `redis://…`, or all
    /// `rediss://…` for TLS, verified as in [`RedisCache::connect`]) belong to: reads its
    /// slot map from a seed that answers, then asks the master of the revocation list's
    /// slot for its `run_id` (one script), which later checks compare. Keys start with `key_prefix` as on one
    /// server; the revocation list's carry the hash tag `{rv}` (see the crate's key table).
    /// `options.pool_size` does not apply: operations share one multiplexed connection.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when no seed can be reached or the cluster does not
    /// answer within `options.timeout` (or is down); [`PortError::Unexpected`] when there
    /// is no node, a URL does not parse, the nodes mix `redis://` and `rediss://`, or a
    /// node answers with an error. Messages never contain a password.
    pub async fn connect_cluster(
        nodes: &[&str],
        key_prefix: &str,
        options: RedisOptions,
    ) -> Result<RedisCache, PortError> {
        let config_error = |source: Box<dyn std::error::Error + Send + Sync>| {
            PortError::unexpected(Failure::Config {
                target: format!("the Redis Cluster at {}", shown(nodes)),
                source,
            })
        };
        if nodes.is_empty() {
            return Err(config_error("no seed node given".into()));
        }
        let Some(tls) = tls_of(nodes) else {
            return Err(config_error(
                "every node must be redis://, or every one rediss:// (TLS)".into(),
            ));
        };
        if tls && rustls::crypto::CryptoProvider::get_default().is_none() {
            // As in `connect`: installing fails only if another thread installed one.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let mut builder = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(options.timeout)
            .response_timeout(options.timeout);
        if let (true, Some(pem)) = (tls, &options.ca_cert_pem) {
            builder = builder.certs(TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            });
        }
        let client = builder.build().map_err(|e| config_error(Box::new(e)))?;
        let conn = connect_within(&client, options.timeout).await?;
        let cache = RedisCache {
            backend: Backend::Cluster(Cluster {
                conn,
                closed: Arc::default(),
                in_flight: Arc::default(),
            }),
            last_failure: Arc::default(),
            warmth: Arc::new(Warmth::new()),
            prefix: key_prefix.to_owned(),
            timeout: options.timeout,
        };
        cache.ping_server().await?;
        Ok(cache)
    }
}

/// The cluster connection (slot map read from a seed), within `timeout`.
async fn connect_within(
    client: &redis::cluster::ClusterClient,
    timeout: Duration,
) -> Result<ClusterConnection, PortError> {
    match tokio::time::timeout(timeout, client.get_async_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(redis_error(err)),
        Err(_) => Err(PortError::unavailable(Failure::Timeout(timeout))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_all_plain_or_all_tls() {
        assert_eq!(tls_of(&["redis://a:1", "redis://b:2"]), Some(false));
        assert_eq!(tls_of(&["rediss://a:1", "rediss://b:2"]), Some(true));
        assert_eq!(tls_of(&["redis://a:1", "rediss://b:2"]), None, "a mix");
        assert_eq!(tls_of(&["http://a:1"]), None, "another scheme");
        assert_eq!(tls_of(&[]), None, "no node");
    }

    #[test]
    fn seed_nodes_are_shown_without_passwords() {
        let text = shown(&["redis://:s3cret@a:1", "rediss://user:pw@b:2"]);
        assert!(!text.contains("s3cret") && !text.contains(":pw@"), "{text}");
        assert!(text.contains("a:1") && text.contains("b:2"), "{text}");
    }
}
