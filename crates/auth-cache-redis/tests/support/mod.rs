//! What the Redis tests share: the server under test, a fresh key prefix per case (its keys
//! deleted afterwards), and a TCP proxy that can cut connections.
// Each test binary uses some of these.
#![allow(dead_code)]

use std::io::Write as _;
use std::time::Duration;

use auth_cache_redis::{RedisCache, RedisOptions};
use auth_domain::ports::{PortError, RevocationList as _};
use auth_testkit::contract::Fixture;
use deadpool_redis::redis::{self, Commands as _};
use uuid::Uuid;

pub fn url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

/// Deletes every key of a test's prefix when dropped (after the cache's pool). Best effort:
/// every key has a TTL anyway.
#[derive(Debug)]
pub struct DropKeys {
    pub url: String,
    pub prefix: String,
}

impl DropKeys {
    pub fn connection(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url.as_str())
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()
    }

    /// The keys of the prefix, by `SCAN`.
    pub fn keys(&self) -> Vec<String> {
        let Some(mut conn) = self.connection() else {
            return Vec::new();
        };
        let pattern = format!("{}*", self.prefix);
        match conn.scan_match::<_, String>(pattern) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for DropKeys {
    fn drop(&mut self) {
        let keys = self.keys();
        if let (false, Some(mut conn)) = (keys.is_empty(), self.connection()) {
            let _: redis::RedisResult<i64> = conn.del(keys);
        }
    }
}

/// A fresh key prefix for one case.
pub fn prefix() -> String {
    format!("authtest:{}:", Uuid::new_v4())
}

/// A cache on `url` under `prefix`, not warmed yet (so it refuses revocation checks), or
/// `None` (said on stderr) when Redis is unreachable outside CI.
pub async fn connect(url: &str, prefix: &str, options: RedisOptions) -> Option<RedisCache> {
    match RedisCache::connect(url, prefix, options).await {
        Ok(cache) => Some(cache),
        Err(PortError::Unavailable(err)) if !under_ci() => {
            // Never the password the URL may hold.
            let shown = auth_domain::monitoring::redact_url(url);
            let line = format!("SKIPPED: Redis unreachable at {shown} (TEST_REDIS_URL): {err}\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
        Err(err) => panic!("Redis at TEST_REDIS_URL: {err:?}"),
    }
}

/// Warms the list as the service does at start (with nothing to copy), and asserts it is
/// trusted then.
pub async fn warm(cache: &RedisCache) {
    match cache.needs_warming().await {
        Ok(Some(ticket)) => match cache.warmed(ticket).await {
            Ok(true) => {}
            other => panic!("warmed: {other:?}"),
        },
        Ok(None) => {}
        Err(err) => panic!("needs_warming: {err:?}"),
    }
}

/// A warmed cache under a fresh prefix, its keys deleted afterwards, or `None` (said on
/// stderr) when Redis is unreachable outside CI.
pub async fn cache() -> Option<Fixture<RedisCache, DropKeys>> {
    let (url, prefix) = (url(), prefix());
    let cache = connect(&url, &prefix, RedisOptions::default()).await?;
    warm(&cache).await;
    Some(Fixture::with_guard(cache, DropKeys { url, prefix }))
}

/// Runs `case` on a cache, or skips it as the contract cases do.
pub fn with_cache<F, Fut>(case: F)
where
    F: FnOnce(Fixture<RedisCache, DropKeys>) -> Fut,
    Fut: Future<Output = ()>,
{
    auth_testkit::contract::run(async {
        if let Some(fixture) = cache().await {
            case(fixture).await;
        }
    });
}

/// A TCP proxy to Redis inside the test: counts the `PING`s clients send through it, and
/// `cut` closes every connection it forwards (as a server restart does), after which it
/// forwards new ones again, unless it is `down` (Redis unreachable: every new connection is
/// closed at once) until `up`.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    pings: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str) -> std::io::Result<Proxy> {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let pings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (upstream, counted, held) = (upstream.to_owned(), pings.clone(), open.clone());
        let refusing = down.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().filter_map(Result::ok) {
                if refusing.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
                    let mut held = held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    held.push(c3);
                    held.push(s3);
                }
                let counted = counted.clone();
                let (mut from_client, mut to_server) = (client, server);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        let chunk = &buf[..n];
                        let found = chunk
                            .windows(4)
                            .filter(|w| w.eq_ignore_ascii_case(b"PING"))
                            .count();
                        counted.fetch_add(found, Ordering::SeqCst);
                        if to_server.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                let (mut from_server, mut to_client) = (s2, c2);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Ok(Proxy {
            addr,
            pings,
            open,
            down,
        })
    }

    pub fn pings(&self) -> usize {
        self.pings.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn cut(&self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for stream in open.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Redis unreachable through the proxy: every connection closed, new ones too.
    pub fn down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut();
    }

    /// Reachable again.
    pub fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A [`Proxy`] to the server of `TEST_REDIS_URL`, and that URL through it; `None` (said on
/// stderr) when the server is unreachable outside CI.
pub fn proxied() -> Option<(Proxy, String)> {
    let url = url();
    let Some(upstream) = url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, host)| host))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
    else {
        panic!("unparsable TEST_REDIS_URL");
    };
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:6379")
    };
    if std::net::TcpStream::connect(&upstream).is_err() {
        assert!(!under_ci(), "Redis unreachable at {upstream} under CI");
        let line = format!(
            "SKIPPED: Redis unreachable at {upstream} (set TEST_REDIS_URL; CI fails here)\n"
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        return None;
    }
    let proxy = match Proxy::start(&upstream) {
        Ok(proxy) => proxy,
        Err(err) => panic!("proxy: {err}"),
    };
    let proxied = url.replacen(&upstream, &proxy.addr.to_string(), 1);
    let proxied = if proxied == url {
        // The URL named no port: the default one was meant.
        url.replacen(
            upstream.trim_end_matches(":6379"),
            &proxy.addr.to_string(),
            1,
        )
    } else {
        proxied
    };
    Some((proxy, proxied))
}
