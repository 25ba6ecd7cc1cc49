//! Harness for end-to-end tests over Redis: the built `tickwire` binary as
//! real `ingest` / `gateway` / `run` processes (killed on drop, logs kept
//! in a file per process), real WebSocket clients, `redis-cli` for what
//! Redis itself holds, and raw HTTP for the probes.
//!
//! Every wait is bounded by [`WAIT`]; a test that times out says what it
//! was waiting for and where the processes' logs are.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_tickwire");
/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The first line a child prints on stdout, within `wait`; the rest is
/// drained in the background so the child never blocks on a full pipe.
pub fn first_line(stdout: ChildStdout, wait: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    rx.recv_timeout(wait).ok()
}

/// The demo market's venues: a channel naming one of them is a topic's.
pub const VENUES: [&str; 3] = ["coinbase:", "binance:", "kraken:"];

/// Every instrument of the embedded demo market.
pub const DEMO_SYMBOLS: [&str; 8] = [
    "coinbase:BTC-USD",
    "coinbase:ETH-USD",
    "coinbase:SOL-USD",
    "binance:BTC-USDT",
    "binance:ETH-USDT",
    "binance:DOGE-USDT",
    "kraken:BTC-USD",
    "kraken:ETH-EUR",
];

/// One test at a time per test binary: each starts several processes and
/// a Redis, and two cores shared by parallel tests would turn scheduling
/// delays into conflation and timeouts. (An async lock: each test has its
/// own runtime, and a failed test must not poison the others.)
pub async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// A deadline [`WAIT`] from now.
pub fn deadline() -> Instant {
    Instant::now() + WAIT
}

/// Where this test binary keeps the processes' logs.
fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tickwire-e2e");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// A running `tickwire` process: killed and reaped when dropped.
pub struct Proc {
    child: Child,
    pub name: String,
    pub log: PathBuf,
    /// The first line it printed on stdout.
    pub banner: String,
}

impl Proc {
    /// Starts `tickwire ARGS...` (no `TICKWIRE_*` from the test's own
    /// environment, `envs` added) and waits for its first stdout line.
    pub fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let log = log_dir().join(format!("{name}-{}.log", std::process::id()));
        let stderr = File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TICKWIRE_") {
                cmd.env_remove(key);
            }
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut proc = Proc {
            child,
            name: name.to_string(),
            log,
            banner: String::new(),
        };
        proc.banner = match first_line(stdout, WAIT) {
            Some(line) => line,
            None => panic!(
                "{name} printed nothing on stdout within {WAIT:?}; {}",
                proc.describe()
            ),
        };
        proc
    }

    /// `tickwire ingest --bus URL` with a key prefix.
    pub fn ingest(name: &str, bus: &str, prefix: &str, extra: &[&str]) -> Proc {
        let mut args = vec!["ingest", "--bus", bus];
        args.extend_from_slice(extra);
        let p = Proc::start(name, &args, &[("TICKWIRE_BUS_PREFIX", prefix)]);
        assert!(
            p.banner.starts_with("tickwire ingest publishing to"),
            "{name}: {}",
            p.banner
        );
        p
    }

    /// `tickwire gateway --bus URL --listen 127.0.0.1:0` with a key prefix,
    /// serving clients without credentials.
    pub fn gateway(name: &str, bus: &str, prefix: &str) -> Server {
        let p = Proc::start(
            name,
            &["gateway", "--bus", bus, "--listen", "127.0.0.1:0"],
            // Anonymous access is off by default for `gateway`; these tests
            // are about the bus (tests/auth.rs is about credentials).
            &[
                ("TICKWIRE_BUS_PREFIX", prefix),
                ("TICKWIRE_AUTH_ANONYMOUS", "true"),
            ],
        );
        Server::from(p)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Panics (with the log's path) unless it is still running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited with {status}; {}", self.name, self.describe());
        }
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", self.name);
        let limit = deadline();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < limit,
                "{} still running {WAIT:?} after SIGTERM; {}",
                self.name,
                self.describe()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`kill -SIG`: `"TERM"`, `"INT"`) without waiting.
    pub fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{sig} {}", self.name);
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// The process's name and where its log is.
    pub fn describe(&self) -> String {
        format!("{} log: {}", self.name, self.log.display())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process serving HTTP and WebSocket (`gateway` or `run`).
pub struct Server {
    pub proc: Proc,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl From<Proc> for Server {
    fn from(proc: Proc) -> Self {
        // "tickwire serving on http://127.0.0.1:PORT (ws://127.0.0.1:PORT/v1/ws)"
        let addr = proc
            .banner
            .strip_prefix("tickwire serving on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{}: no URL in {:?}", proc.name, proc.banner))
            .to_string();
        Server { proc, addr }
    }
}

impl Server {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Polls `GET path` until it answers `status`, within [`WAIT`].
    pub async fn until_status(&self, path: &str, status: u16) {
        until_http_status(&self.addr, path, status, &self.proc.describe()).await;
    }
}

/// Polls `GET path` on `addr` until it answers `status`, within [`WAIT`];
/// `who` says whose log to read when it does not.
pub async fn until_http_status(addr: &str, path: &str, status: u16, who: &str) {
    if let Err(last) = poll_http_status(addr, path, status).await {
        panic!("{addr} {path}: {last:?}, never {status} within {WAIT:?}; {who}");
    }
}

/// Polls `GET path` on `addr` until it answers `status`, within [`WAIT`];
/// the last answer when it never does.
pub async fn poll_http_status(addr: &str, path: &str, status: u16) -> Result<(), Option<u16>> {
    let limit = deadline();
    loop {
        let now = http_status(addr, path).await;
        if now == Some(status) {
            return Ok(());
        }
        if Instant::now() >= limit {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` over a fresh HTTP/1.1 connection: the status code, or `None`
/// when nothing answers within a few seconds.
pub async fn http_status(addr: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.ok()?;
        let head = String::from_utf8_lossy(&resp);
        head.strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

/// `redis-cli -p PORT ARGS...`: the reply's lines.
pub fn redis_cli(port: u16, args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}); install it: apt-get install redis-tools")
        });
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The pub/sub channels of topics (they name a demo venue's instrument)
/// that the Redis on `port` has subscribers for; `shard` asks for sharded
/// channels (`PUBSUB SHARDCHANNELS`, Redis Cluster).
pub fn topic_channels(port: u16, shard: bool) -> BTreeSet<String> {
    let command = if shard { "SHARDCHANNELS" } else { "CHANNELS" };
    redis_cli(port, &["PUBSUB", command])
        .into_iter()
        .filter(|c| VENUES.iter().any(|v| c.contains(v)))
        .collect()
}

/// Polls [`topic_channels`] until `pred` holds of them (within [`WAIT`]);
/// the channels then.
pub async fn until_channels(
    port: u16,
    shard: bool,
    what: &str,
    mut pred: impl FnMut(&BTreeSet<String>) -> bool,
) -> BTreeSet<String> {
    let limit = deadline();
    loop {
        let now = topic_channels(port, shard);
        if pred(&now) {
            return now;
        }
        assert!(
            Instant::now() < limit,
            "Redis on port {port}: never {what} within {WAIT:?}; topic channels: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a topic channel names this instrument and channel.
pub fn names_topic(channel: &str, symbol: &str, kind: &str) -> bool {
    channel.contains(symbol) && channel.contains(kind)
}

/// A WebSocket client of a gateway. Every object it reads is kept in
/// `seen`, in order; a close or an error fails the test.
pub struct Client {
    pub name: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub seen: Vec<Value>,
    next_id: u64,
}

impl Client {
    /// Connects and reads the server's `hello`.
    pub async fn connect(name: &str, server: &Server) -> Client {
        let url = server.ws_url();
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("{name}: connect to {url} timed out"))
            .unwrap_or_else(|e| panic!("{name}: connect to {url}: {e}"));
        let mut client = Client {
            name: name.to_string(),
            ws,
            seen: Vec::new(),
            next_id: 1,
        };
        let hello = client
            .until("hello", deadline(), |v| v["type"] == "hello")
            .await;
        assert_eq!(hello["version"], 1, "{hello}");
        client
    }

    /// Sends one request (an `id` is added) and waits for its reply of
    /// type `reply`; the reply.
    pub async fn request(&mut self, request: Value, reply: &str) -> Value {
        let shown = request.to_string();
        let answer = self.reply(request, reply).await;
        assert_eq!(answer["type"], reply, "{}: {shown} -> {answer}", self.name);
        answer
    }

    /// Sends one request (an `id` is added) and waits for its reply: of
    /// type `reply`, or an `error`.
    pub async fn reply(&mut self, mut request: Value, reply: &str) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{}: send {request}: {e}", self.name));
        let what = format!("{reply} for {request}");
        self.until(&what, deadline(), |v| {
            v["id"] == json!(id) && (v["type"] == reply || v["type"] == "error")
        })
        .await
    }

    /// Subscribes `symbols` on `channel` with extra options
    /// (`{"snapshot":false}`, `{"from_seq":{...}}`); the `subscribed` ack.
    pub async fn subscribe(&mut self, channel: &str, symbols: &[&str], options: Value) -> Value {
        let mut request = json!({"op": "subscribe", "channel": channel, "symbols": symbols});
        if let Value::Object(extra) = options {
            for (k, v) in extra {
                request[k] = v;
            }
        }
        let ack = self.request(request, "subscribed").await;
        assert_eq!(
            ack["symbols"],
            json!(symbols),
            "{}: all served: {ack}",
            self.name
        );
        ack
    }

    /// Unsubscribes; the `unsubscribed` ack.
    pub async fn unsubscribe(&mut self, channel: &str, symbols: &[&str]) -> Value {
        let request = json!({"op": "unsubscribe", "channel": channel, "symbols": symbols});
        self.request(request, "unsubscribed").await
    }

    /// Reads until an object satisfies `pred` (before `limit`); that
    /// object. Everything read is also kept in `seen`.
    pub async fn until(
        &mut self,
        what: &str,
        limit: Instant,
        pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        match self.try_until(what, limit, pred).await {
            Some(v) => v,
            None => panic!(
                "{}: no {what} in time; last seen: {}",
                self.name,
                self.tail()
            ),
        }
    }

    /// As [`Client::until`], but `None` when `limit` passes first (the
    /// socket closing still fails the test).
    pub async fn try_until(
        &mut self,
        what: &str,
        limit: Instant,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            let frame = match tokio::time::timeout(left, self.ws.next()).await {
                Ok(f) => f,
                Err(_) => return None,
            };
            let text = match frame {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => panic!(
                    "{}: server closed the socket ({frame:?}) while waiting for {what}; last seen: {}",
                    self.name,
                    self.tail()
                ),
                Some(Ok(other)) => panic!("{}: unexpected frame {other:?}", self.name),
                Some(Err(e)) => panic!(
                    "{}: socket error while waiting for {what}: {e}; last seen: {}",
                    self.name,
                    self.tail()
                ),
                None => panic!(
                    "{}: socket ended while waiting for {what}; last seen: {}",
                    self.name,
                    self.tail()
                ),
            };
            let value: Value = serde_json::from_str(text.as_str())
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", self.name));
            self.seen.push(value.clone());
            if pred(&value) {
                return Some(value);
            }
        }
    }

    /// Reads whatever arrives for `period` (the socket must stay open).
    pub async fn read_for(&mut self, period: Duration) {
        let until = Instant::now() + period;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let value: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {t}", self.name));
                    self.seen.push(value);
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!(
                    "{}: socket closed or failed: {other:?}; last seen: {}",
                    self.name,
                    self.tail()
                ),
            }
        }
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.ws.close(None)).await;
    }

    /// The last few objects seen, for failure messages.
    pub fn tail(&self) -> String {
        let from = self.seen.len().saturating_sub(5);
        self.seen[from..]
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    /// Updates of one topic seen so far (snapshots included), in order.
    pub fn updates(&self, kind: &str, symbol: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|v| v["type"] == kind && v["symbol"] == symbol)
            .collect()
    }

    /// `gap` notices seen so far.
    pub fn gaps(&self) -> Vec<&Value> {
        self.seen.iter().filter(|v| v["type"] == "gap").collect()
    }
}

/// An update's `seq`.
pub fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

/// An update's `(epoch, seq)`.
pub fn epoch_seq(v: &Value) -> (String, u64) {
    let epoch = v["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("no epoch in {v}"));
    (epoch.to_string(), seq(v))
}

/// Whether an object is an update of this topic (live or snapshot).
pub fn is_update(v: &Value, kind: &str, symbol: &str) -> bool {
    v["type"] == kind && v["symbol"] == symbol
}

/// Whether an object is a `status` notice of `state` for `symbol`.
pub fn is_status(v: &Value, symbol: &str, state: &str) -> bool {
    v["type"] == "status" && v["symbol"] == symbol && v["state"] == state
}

/// Whether an object is a live (not snapshot) update of this topic.
pub fn is_live_update(v: &Value, kind: &str, symbol: &str) -> bool {
    is_update(v, kind, symbol) && v.get("snapshot").is_none_or(|s| s != true)
}

/// Asserts that `seqs` rise by exactly one each step.
pub fn assert_contiguous(what: &str, seqs: &[u64]) {
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "{what}: a hole or a duplicate between {} and {}: {seqs:?}",
            w[0],
            w[1]
        );
    }
}
