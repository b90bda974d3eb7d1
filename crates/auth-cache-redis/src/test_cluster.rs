//! A real Redis Cluster of three masters (and, if asked, one replica each, or TLS only) on
//! free loopback ports in a temporary directory, for tests here and in other crates (feature
//! `test-support`). Nodes keep nothing on disk but the cluster's own `nodes-*.conf`, so a
//! node stopped and started again comes back as the master of its slots, empty.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Errors of the fixture.
pub type FixtureError = Box<dyn std::error::Error>;

/// How long a node may go unreachable before the others mark it failed: short, so that
/// tests of an outage or a failover do not wait long.
const NODE_TIMEOUT_MS: u32 = 2000;

/// One redis-server of the cluster.
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// The cluster; every node is killed on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    /// TLS only (`rediss://`, the cluster bus too), with `server.crt`, `server.key` and
    /// `ca.crt` in `dir`.
    tls: bool,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts three masters; `Ok(None)` (after a `SKIPPED:` line) where `redis-server` is
/// missing, a panic instead when `CI` is set.
pub fn start() -> Result<Option<RedisCluster>, FixtureError> {
    start_with(false, None)
}

/// Starts three masters, each with one replica (six nodes); skips as [`start`] does.
pub fn start_with_replicas() -> Result<Option<RedisCluster>, FixtureError> {
    start_with(true, None)
}

/// Starts three masters that speak TLS only (clients and the cluster bus), with `cert` and
/// `key` (PEM; the nodes announce `127.0.0.1`, so the certificate must name that address)
/// and `ca` for the bus; skips as [`start`] does.
pub fn start_tls(cert: &str, key: &str, ca: &str) -> Result<Option<RedisCluster>, FixtureError> {
    start_with(false, Some([cert, key, ca]))
}

/// A cluster of three masters shared by the tests of one process that run at the same
/// time (each under its own key prefix), started by the first and killed when the last
/// lets go of it; skips as [`start`] does.
pub fn shared() -> Result<Option<Arc<RedisCluster>>, FixtureError> {
    static SHARED: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cluster) = slot.upgrade() {
        return Ok(Some(cluster));
    }
    let Some(cluster) = start()? else {
        return Ok(None);
    };
    let cluster = Arc::new(cluster);
    *slot = Arc::downgrade(&cluster);
    Ok(Some(cluster))
}

fn start_with(
    replicas: bool,
    tls: Option<[&str; 3]>,
) -> Result<Option<RedisCluster>, FixtureError> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set, and redis-server is not installed");
        }
        eprintln!("SKIPPED: Redis Cluster tests: redis-server is not installed");
        return Ok(None);
    }
    let count = if replicas { 6 } else { 3 };
    let mut cluster = RedisCluster {
        nodes: Vec::new(),
        dir: tempfile::tempdir()?,
        tls: tls.is_some(),
    };
    if let Some([cert, key, ca]) = tls {
        for (name, text) in [("server.crt", cert), ("server.key", key), ("ca.crt", ca)] {
            std::fs::write(cluster.dir.path().join(name), text)?;
        }
    }
    for _ in 0..count {
        cluster.nodes.push(Node {
            port: free_port()?,
            bus_port: free_port()?,
            child: None,
        });
    }
    for index in 0..count {
        cluster.spawn(index)?;
    }
    let mut create = Command::new("redis-cli");
    create.args(cluster.tls_args());
    create.arg("--cluster").arg("create");
    for node in &cluster.nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    let output = create
        .args(["--cluster-replicas", if replicas { "1" } else { "0" }])
        .arg("--cluster-yes")
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() || !String::from_utf8_lossy(&output.stdout).contains("[OK]") {
        return Err(format!(
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    cluster.wait_ok(Duration::from_secs(30))?;
    if replicas {
        cluster.wait_replicas_synced(Duration::from_secs(30))?;
    }
    Ok(Some(cluster))
}

/// A port nothing listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `redis-cli -p port args…` (over TLS with `tls_args`), its standard output.
fn cli(tls_args: &[String], port: u16, args: &[&str]) -> Result<String, FixtureError> {
    let output = Command::new("redis-cli")
        .args(tls_args)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // redis-cli prints an error reply on standard output, and may exit with 0.
    if !output.status.success() || stdout.starts_with("ERR") || stdout.starts_with("(error)") {
        return Err(format!(
            "redis-cli -p {port} {args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(stdout)
}

/// A line of `CLUSTER NODES`: the node's port, whether it is a master, its id, its
/// master's id (replicas), and its slot ranges.
struct NodeLine {
    id: String,
    port: u16,
    master: bool,
    master_id: String,
    slots: Vec<(u16, u16)>,
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let address = fields.get(1)?;
            let port = address
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter_map(|range| {
                    let (low, high) = range.split_once('-').unwrap_or((range, range));
                    Some((low.parse().ok()?, high.parse().ok()?))
                })
                .collect();
            Some(NodeLine {
                id: (*fields.first()?).to_owned(),
                port,
                master: flags.contains("master") && !flags.contains("fail"),
                master_id: (*fields.get(3)?).to_owned(),
                slots,
            })
        })
        .collect()
}

impl RedisCluster {
    /// What `redis-cli` needs to reach a TLS node (nothing without TLS).
    fn tls_args(&self) -> Vec<String> {
        if !self.tls {
            return Vec::new();
        }
        let ca = self.dir.path().join("ca.crt");
        vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            ca.display().to_string(),
        ]
    }

    fn cli(&self, port: u16, args: &[&str]) -> Result<String, FixtureError> {
        cli(&self.tls_args(), port, args)
    }

    fn spawn(&mut self, index: usize) -> Result<(), FixtureError> {
        let dir: PathBuf = self.dir.path().to_path_buf();
        let tls = self.tls;
        let node = self.nodes.get_mut(index).ok_or("no such node")?;
        let mut command = Command::new("redis-server");
        if tls {
            let file = |name: &str| dir.join(name).display().to_string();
            command
                .args(["--port", "0", "--tls-port", &node.port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                .args(["--tls-cert-file", &file("server.crt")])
                .args(["--tls-key-file", &file("server.key")])
                .args(["--tls-ca-cert-file", &file("ca.crt")])
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.args(["--port", &node.port.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args([
                "--cluster-config-file",
                &format!("nodes-{}.conf", node.port),
            ])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join(format!("{}.log", node.port)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("redis-server did not listen on port {}", node.port).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `redis://127.0.0.1:port` (`rediss://` with TLS) of every node.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.tls { "rediss" } else { "redis" };
        self.ports()
            .into_iter()
            .map(|port| format!("{scheme}://127.0.0.1:{port}"))
            .collect()
    }

    /// The ports of every node, masters first as created.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// Waits until every running node says `cluster_state:ok` and agrees on three masters
    /// that cover every slot.
    pub fn wait_ok(&self, within: Duration) -> Result<(), FixtureError> {
        let deadline = Instant::now() + within;
        loop {
            let ok = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .all(|node| {
                    self.cli(node.port, &["CLUSTER", "INFO"])
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
                        && self
                            .cli(node.port, &["CLUSTER", "NODES"])
                            .is_ok_and(|text| {
                                let nodes = parse_nodes(&text);
                                let covered: u32 = nodes
                                    .iter()
                                    .filter(|n| n.master)
                                    .flat_map(|n| &n.slots)
                                    .map(|(low, high)| u32::from(high - low) + 1)
                                    .sum();
                                covered == 16384
                            })
                });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the cluster is not ok within {within:?}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every replica has finished its first sync with its master
    /// (`master_link_status:up`), so that a manual failover loses nothing.
    fn wait_replicas_synced(&self, within: Duration) -> Result<(), FixtureError> {
        let deadline = Instant::now() + within;
        loop {
            let synced = self.nodes.iter().all(|node| {
                self.cli(node.port, &["INFO", "replication"])
                    .is_ok_and(|info| {
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
            });
            if synced {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the replicas did not sync within {within:?}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> Result<u16, FixtureError> {
        let port = self.any_running()?;
        Ok(self
            .cli(port, &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()?)
    }

    /// The port of the master that serves `slot` now.
    pub fn master_of(&self, slot: u16) -> Result<u16, FixtureError> {
        let port = self.any_running()?;
        parse_nodes(&self.cli(port, &["CLUSTER", "NODES"])?)
            .into_iter()
            .find(|n| n.master && n.slots.iter().any(|(l, h)| (*l..=*h).contains(&slot)))
            .map(|n| n.port)
            .ok_or_else(|| format!("no master serves slot {slot}").into())
    }

    /// The ports of the masters now.
    pub fn masters(&self) -> Result<Vec<u16>, FixtureError> {
        let port = self.any_running()?;
        Ok(parse_nodes(&self.cli(port, &["CLUSTER", "NODES"])?)
            .into_iter()
            .filter(|n| n.master && !n.slots.is_empty())
            .map(|n| n.port)
            .collect())
    }

    /// Has the replica of the master on `port` take over (`CLUSTER FAILOVER`, which waits
    /// for the replica to catch up, so nothing is lost), and waits until it serves.
    pub fn fail_over(&self, port: u16) -> Result<u16, FixtureError> {
        // The master learns of its replica by gossip, soon after the cluster is created.
        let deadline = Instant::now() + Duration::from_secs(15);
        let replica = loop {
            let nodes = parse_nodes(&self.cli(port, &["CLUSTER", "NODES"])?);
            let master = nodes
                .iter()
                .find(|n| n.port == port)
                .ok_or("the master is not in CLUSTER NODES")?;
            if let Some(replica) = nodes.iter().find(|n| n.master_id == master.id) {
                break replica.port;
            }
            if Instant::now() > deadline {
                return Err("the master has no replica".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.cli(replica, &["CLUSTER", "FAILOVER"])?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.masters()?.contains(&replica) {
            if Instant::now() > deadline {
                return Err("the replica did not take over within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ok(Duration::from_secs(15))?;
        Ok(replica)
    }

    /// Moves `slot`, with its keys, to the master on `to` (as a resharding does:
    /// `IMPORTING`/`MIGRATING`, `MIGRATE`, then `SETSLOT … NODE` on every master); clients
    /// that knew the old owner get `MOVED` (or `ASK` while it goes on).
    pub fn move_slot(&self, slot: u16, to: u16) -> Result<(), FixtureError> {
        let from = self.master_of(slot)?;
        if from == to {
            return Ok(());
        }
        let id = |port: u16| {
            self.cli(port, &["CLUSTER", "MYID"])
                .map(|s| s.trim().to_owned())
        };
        let (from_id, to_id) = (id(from)?, id(to)?);
        let (slot, to_port) = (slot.to_string(), to.to_string());
        self.cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id])?;
        self.cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id])?;
        loop {
            let listed = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])?;
            let keys: Vec<&str> = listed.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            self.cli(from, &args)?;
        }
        for port in self.masters()? {
            self.cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])?;
        }
        self.wait_ok(Duration::from_secs(15))
    }

    /// Kills the node on `port` (as a crash: no shutdown of its own).
    pub fn kill(&mut self, port: u16) -> Result<(), FixtureError> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .ok_or("no node on that port")?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the node on `port` again (empty: it kept nothing but its cluster config).
    pub fn restart(&mut self, port: u16) -> Result<(), FixtureError> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .ok_or("no node on that port")?;
        self.spawn(index)
    }

    fn any_running(&self) -> Result<u16, FixtureError> {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .map(|n| n.port)
            .ok_or_else(|| "no node is running".into())
    }
}
