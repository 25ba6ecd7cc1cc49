//! Test helpers (feature `testkit`): private `redis-server` processes on
//! free loopback ports, and three-node Redis Clusters, for this crate's
//! tests and other crates' (enable the feature on the dev-dependency).
//!
//! Every server binds 127.0.0.1 on a port the OS just handed out (never a
//! fixed one, so a system Redis on 6379 is never touched), keeps nothing on
//! disk, lives in its own temporary directory, and is killed and reaped
//! when its handle drops. Every wait is bounded.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Longest wait for a server to answer PING after it was spawned.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Longest wait for `redis-cli --cluster create` and for the cluster to
/// report `cluster_state:ok` on every node.
const CLUSTER_WITHIN: Duration = Duration::from_secs(30);

const MISSING_SERVER: &str = "`redis-server` was not found on PATH: the Redis tests need it \
     (Debian/Ubuntu: `apt-get install redis-server`)";
const MISSING_CLI: &str = "`redis-cli` was not found on PATH: the Redis Cluster tests need it \
     (Debian/Ubuntu: `apt-get install redis-tools`, which `redis-server` pulls in)";

/// A `redis-server` process of its own, killed on drop.
pub struct RedisServer {
    port: u16,
    cluster: bool,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free 127.0.0.1 port and waits until it answers.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing (the message names the package to
    /// install) or does not start within 10 s.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start`](Self::start), with the reason as an error.
    pub fn try_start() -> Result<Self, String> {
        Self::start_with(false)
    }

    fn start_with(cluster: bool) -> Result<Self, String> {
        let mut last_error = String::new();
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port(cluster)?;
            let dir = tempfile::Builder::new()
                .prefix("tickwire-redis-")
                .tempdir()
                .map_err(|e| format!("temporary directory for redis-server: {e}"))?;
            let mut server = Self {
                port,
                cluster,
                dir,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e == MISSING_SERVER => return Err(e),
                Err(e) => last_error = e,
            }
        }
        Err(format!("redis-server did not start: {last_error}"))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, the URL for [`RedisTarget::parse`](crate::RedisTarget::parse).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage), keeping its port for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: either way it is gone and reaped.
            let _gone = child.kill();
            let _reaped = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it
    /// answers.
    ///
    /// # Panics
    ///
    /// When it does not come back within 10 s.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(e) if Instant::now() < deadline && e != MISSING_SERVER => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
            }
        }
    }

    /// A plain (blocking) connection, for tests that inspect the server.
    ///
    /// # Panics
    ///
    /// When the server does not accept it.
    pub fn connection(&self) -> redis::Connection {
        connect(self.port).unwrap_or_else(|e| panic!("connect to redis on {}: {e}", self.port))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let log = std::fs::File::create(self.log_path())
            .map_err(|e| format!("redis-server log file: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("redis-server log file: {e}"))?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]);
        }
        let child = command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => MISSING_SERVER.to_string(),
                _ => format!("spawn redis-server: {e}"),
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Err(e)) => Some(e.to_string()),
                Some(Ok(None)) | None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "redis-server on port {} exited ({status}): {}",
                    self.port,
                    log_tail(&self.log_path())
                ));
            }
            // Ours, not whatever else might have taken the port.
            let pid = self.child.as_ref().map_or(0, Child::id);
            let info = connect(self.port).and_then(|mut c| {
                redis::cmd("INFO")
                    .arg("server")
                    .query::<String>(&mut c)
                    .map_err(|e| e.to_string())
            });
            if info.is_ok_and(|i| i.lines().any(|l| l == format!("process_id:{pid}"))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "redis-server on port {} did not answer within {READY_WITHIN:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("redis.log")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of its own: masters only, every slot assigned, killed
/// on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` (at least 3) cluster nodes on free ports (each with its
    /// own `nodes.conf` directory), joins them with
    /// `redis-cli --cluster create`, and waits for `cluster_state:ok` on
    /// every node.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` is missing (the message names the
    /// package), or the cluster does not form within 30 s.
    pub fn start(n: usize) -> Self {
        assert!(n >= 3, "a Redis Cluster needs at least 3 masters");
        let nodes = (0..n)
            .map(|_| RedisServer::start_with(true).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let cluster = Self { nodes };
        cluster.create();
        cluster.wait_ok();
        cluster
    }

    /// Every node's URL, `redis://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The bus URL naming every node: `redis-cluster://127.0.0.1:P,...`.
    pub fn bus_url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// The nodes, for tests that inspect one of them.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, for tests that stop and restart one of them (a restarted
    /// node keeps its `nodes.conf`, so it rejoins with its slots, empty).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    fn create(&self) {
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let mut child = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => panic!("{MISSING_CLI}"),
                _ => panic!("spawn redis-cli: {e}"),
            });
        let deadline = Instant::now() + CLUSTER_WITHIN;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => {
                    let _gone = child.kill();
                    let _reaped = child.wait();
                    panic!("redis-cli --cluster create did not finish within {CLUSTER_WITHIN:?}");
                }
            }
        };
        if !status.success() {
            let output = child.wait_with_output().map_or_else(
                |e| e.to_string(),
                |o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                },
            );
            panic!("redis-cli --cluster create failed ({status}): {output}");
        }
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + CLUSTER_WITHIN;
        for node in &self.nodes {
            loop {
                let info = connect(node.port()).and_then(|mut c| {
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(&mut c)
                        .map_err(|e| e.to_string())
                });
                if info.is_ok_and(|i| i.contains("cluster_state:ok")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "redis cluster node {} not ok within {CLUSTER_WITHIN:?}",
                    node.port()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A port the OS says is free on 127.0.0.1; for a cluster node, its bus
/// port (+10 000) must be free too.
fn free_port(cluster: bool) -> Result<u16, String> {
    for _ in 0..50 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local address: {e}"))?
            .port();
        if !cluster {
            return Ok(port);
        }
        let Some(bus_port) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus_port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair for a cluster node".into())
}

fn connect(port: u16) -> Result<redis::Connection, String> {
    redis::Client::open(format!("redis://127.0.0.1:{port}").as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
        .map_err(|e| e.to_string())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
