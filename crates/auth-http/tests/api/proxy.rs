//! A TCP proxy inside the test, between the service and PostgreSQL or Redis, to take the
//! dependency away and give it back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards TCP connections to `upstream` until cut; while cut, it closes every connection
/// it holds and refuses new ones; restored, it forwards again on the same address. With
/// [`Proxy::cut_revocation_writes`], it drops a connection when a revocation write (a Lua
/// script call on a `rv:sid:`, `rv:jti:` or `rv:usr:` key) goes through it, as if Redis
/// went away at that very moment, while everything else (the `MGET` of a token check, rate
/// limits, the revocation keeper's own script) still passes.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    writes_cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let writes_cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut2, writes2, conns2) = (cut.clone(), writes_cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let writes = writes2.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        forward(client, server, writes).await;
                    }
                });
                conns2
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(handle);
            }
        });
        Ok(Self {
            addr,
            cut,
            writes_cut,
            connections,
        })
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for handle in self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            handle.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.writes_cut.store(false, Ordering::SeqCst);
    }

    /// From now until [`Proxy::restore`], a connection that carries a revocation write is
    /// dropped before the write reaches the server.
    pub fn cut_revocation_writes(&self) {
        self.writes_cut.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways until either side closes, or a revocation write comes while they are
/// cut.
async fn forward(client: TcpStream, server: TcpStream, writes_cut: Arc<AtomicBool>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf).await {
            let chunk = &buf[..n];
            if writes_cut.load(Ordering::SeqCst) && is_revocation_write(chunk) {
                break;
            }
            if to_server.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    };
    // Either direction ending ends both: the halves are dropped, the sockets closed.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// Whether `chunk` (RESP, as the service sends it) holds a script call on a revocation key.
fn is_revocation_write(chunk: &[u8]) -> bool {
    let has = |needle: &[u8]| chunk.windows(needle.len()).any(|w| w == needle);
    has(b"EVAL") && (has(b"rv:sid:") || has(b"rv:jti:") || has(b"rv:usr:"))
}

/// `postgres://user@host:port/db` → (`host:port`, the same URL through `proxy`).
pub fn through(url: &str, proxy: SocketAddr) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let at = if credentials.is_empty() {
        String::new()
    } else {
        format!("{credentials}@")
    };
    Some((host, format!("{scheme}://{at}{proxy}/{path}")))
}
