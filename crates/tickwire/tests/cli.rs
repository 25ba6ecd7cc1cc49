//! End-to-end tests of the built `tickwire` binary: `run` serves the demo
//! market on a free port, `sub` prints what it streams, and bad input ends
//! with a clear message and the documented exit status.
//!
//! Every child process is killed when its guard drops; every wait is
//! bounded by [`WAIT`].

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tickwire");
const WAIT: Duration = Duration::from_secs(20);

/// A child process that is killed and reaped when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// Waits for the process to exit, at most [`WAIT`].
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.0.try_wait().expect("try_wait") {
                Some(status) => return status,
                None if Instant::now() > deadline => panic!("process still running after {WAIT:?}"),
                None => thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A `tickwire` command with no `TICKWIRE_*` variable from the test's own
/// environment, and quiet logs.
fn tickwire(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TICKWIRE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running `tickwire run --listen 127.0.0.1:0`.
struct Server {
    child: Guard,
    pid: u32,
    /// `127.0.0.1:PORT`
    addr: String,
    /// `ws://127.0.0.1:PORT/v1/ws`
    ws_url: String,
}

fn start_server() -> Server {
    let mut child = tickwire(&["run", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tickwire run");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    let line = first_line(stdout);
    // "tickwire serving on http://127.0.0.1:PORT (ws://127.0.0.1:PORT/v1/ws)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no http URL in {line:?}"))
        .to_string();
    let ws_url = line
        .split('(')
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no ws URL in {line:?}"))
        .to_string();
    assert!(
        !addr.ends_with(":0"),
        "the real port is printed, not 0: {line}"
    );
    assert_eq!(ws_url, format!("ws://{addr}/v1/ws"));
    Server {
        child: guard,
        pid,
        addr,
        ws_url,
    }
}

/// The first line of `stdout` (the server's URL), within [`WAIT`].
fn first_line(stdout: ChildStdout) -> String {
    common::first_line(stdout, WAIT).expect("the server prints its URL in time")
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command to its end (at most [`WAIT`]), collecting its output.
fn run_to_end(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire");
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let status = Guard(child).wait();
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The update lines of `sub`'s output. `status` lines (a feed going live
/// as the test connects) are printed too but not counted by --count.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &Value| v["type"] != "status")
        .collect()
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect()
}

/// `GET path` over a raw HTTP/1.1 connection; the status code.
fn http_get_status(addr: &str, path: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let fetch = async {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.expect("write");
            let mut resp = Vec::new();
            s.read_to_end(&mut resp).await.expect("read");
            resp
        };
        let resp = tokio::time::timeout(WAIT, fetch)
            .await
            .expect("HTTP answer in time");
        let head = String::from_utf8_lossy(&resp);
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        status.unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head:?}"))
    })
}

/// A fresh folder for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tickwire-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn run_serves_health_and_sub_prints_quotes() {
    let server = start_server();
    assert_eq!(http_get_status(&server.addr, "/healthz"), 200);

    let out = run_to_end(tickwire(&[
        "sub",
        "coinbase:BTC-USD",
        "--url",
        &server.ws_url,
        "--count",
        "3",
    ]));
    assert!(out.status.success(), "sub failed: {}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for v in &lines {
        assert_eq!(v["type"], "quote", "{v}");
        assert_eq!(v["symbol"], "coinbase:BTC-USD", "{v}");
    }
    let s = seqs(&lines);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "rising seq: {s:?}");
}

#[test]
fn sub_unknown_symbol_exits_2_with_the_error() {
    let server = start_server();
    let out = run_to_end(tickwire(&["sub", "nope:FOO-BAR", "--url", &server.ws_url]));
    assert_eq!(out.status.code(), Some(2), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout);
    assert!(
        out.stderr.contains("unknown_symbol") && out.stderr.contains("nope:FOO-BAR"),
        "{}",
        out.stderr
    );
}

#[test]
fn sub_partial_unknown_symbol_warns_and_streams() {
    let server = start_server();
    let out = run_to_end(tickwire(&[
        "sub",
        "coinbase:BTC-USD",
        "nope:FOO-BAR",
        "--url",
        &server.ws_url,
        "--count",
        "2",
    ]));
    assert!(out.status.success(), "sub failed: {}", out.stderr);
    assert_eq!(json_lines(&out.stdout).len(), 2);
    assert!(out.stderr.contains("nope:FOO-BAR"), "{}", out.stderr);

    let strict = run_to_end(tickwire(&[
        "sub",
        "coinbase:BTC-USD",
        "nope:FOO-BAR",
        "--url",
        &server.ws_url,
        "--strict",
    ]));
    assert_eq!(strict.status.code(), Some(2), "{}", strict.stderr);
}

#[test]
fn sub_trades_from_seq_1() {
    let server = start_server();
    let out = run_to_end(tickwire(&[
        "sub",
        "coinbase:BTC-USD",
        "--channel",
        "trade",
        "--from-seq",
        "1",
        "--url",
        &server.ws_url,
        "--count",
        "3",
    ]));
    assert!(out.status.success(), "sub failed: {}", out.stderr);
    let trades: Vec<Value> = json_lines(&out.stdout)
        .into_iter()
        .filter(|v| v["type"] == "trade")
        .collect();
    assert!(
        trades.iter().all(|v| v["symbol"] == "coinbase:BTC-USD"),
        "{}",
        out.stdout
    );
    assert_eq!(seqs(&trades), vec![1, 2, 3], "history from seq 1, in order");
}

#[test]
fn sub_usage_and_connection_errors() {
    let out = run_to_end(tickwire(&["sub", "coinbase:BTC-USD", "--from-seq", "1"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("--channel trade"), "{}", out.stderr);

    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/v1/ws");
    let out = run_to_end(tickwire(&["sub", "coinbase:BTC-USD", "--url", &url]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("cannot connect") && out.stderr.contains(&url),
        "{}",
        out.stderr
    );
}

#[test]
fn sub_exits_quietly_when_stdout_closes() {
    let server = start_server();
    let mut child = tickwire(&["sub", "coinbase:BTC-USD", "--url", &server.ws_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sub");
    let stdout = child.stdout.take().expect("stdout");
    let err = reader(child.stderr.take().expect("stderr"));
    let mut guard = Guard(child);
    // Read one line, then close the pipe as `head -n 1` would.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("a first line in time");
    assert!(line.contains("coinbase:BTC-USD"), "{line}");
    let status = guard.wait();
    drop(guard);
    let stderr = err.join().expect("stderr");
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(!stderr.contains("error"), "quiet: {stderr}");
}

#[test]
fn sigterm_drains_and_clients_see_service_restart() {
    let server = start_server();
    let mut sub = tickwire(&["sub", "coinbase:BTC-USD", "--url", &server.ws_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sub");
    let mut lines = BufReader::new(sub.stdout.take().expect("stdout")).lines();
    let first = loop {
        let line = lines.next().expect("a line").expect("readable");
        if !line.contains("\"status\"") {
            break line;
        }
    };
    assert!(first.contains("\"quote\""), "{first}");
    let err = reader(sub.stderr.take().expect("stderr"));
    let mut sub = Guard(sub);

    let killed = Command::new("kill")
        .args(["-TERM", &server.pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let mut server = server;
    let status = server.child.wait();
    assert!(status.success(), "graceful exit: {status:?}");

    let sub_status = sub.wait();
    let stderr = err.join().expect("stderr");
    assert_eq!(sub_status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1012 (service restart: reconnect)"),
        "close code shown: {stderr}"
    );
}

#[test]
fn bad_config_stops_start_up_naming_the_key() {
    let dir = scratch("badcfg");
    let file = dir.join("tickwire.toml");
    let mut f = std::fs::File::create(&file).expect("create config");
    f.write_all(b"[gateway]\nmax_subs = 10\n")
        .expect("write config");
    drop(f);
    let path = file.to_str().expect("utf-8 path");

    let out = run_to_end(tickwire(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--config",
        path,
    ]));
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "never started serving: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains(path) && out.stderr.contains("max_subs"),
        "{}",
        out.stderr
    );

    let mut cmd = tickwire(&["run", "--listen", "127.0.0.1:0"]);
    cmd.env("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS", "lots");
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS"),
        "{}",
        out.stderr
    );
}

/// A port that was free a moment ago: nothing listens there.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Starts a serving command and returns it with its first stdout line.
/// Only errors are logged: the warnings about an absent Redis are expected.
fn start_serving(args: &[&str]) -> (Guard, u32, String) {
    let mut child = tickwire(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tickwire");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    let line = first_line(stdout);
    (guard, pid, line)
}

/// `ADDR` of the first `http://ADDR` in a line.
fn http_addr(line: &str) -> String {
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ' ']).next())
        .unwrap_or_else(|| panic!("no http address in {line:?}"))
        .to_string()
}

fn terminate(pid: u32, child: &mut Guard) -> ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    child.wait()
}

#[test]
fn every_command_says_what_it_does() {
    for (command, says) in [
        ("run", "in one process"),
        ("ingest", "onto a Redis bus"),
        ("gateway", "from a Redis bus"),
    ] {
        let out = run_to_end(tickwire(&[command, "--help"]));
        assert!(out.status.success(), "{command} --help: {}", out.stderr);
        for text in [says, "--bus", "redis-cluster://", "--config"] {
            assert!(
                out.stdout.contains(text),
                "`{command} --help` mentions {text:?}: {}",
                out.stdout
            );
        }
    }
}

#[test]
fn malformed_bus_url_stops_start_up_naming_the_flag_or_key() {
    for command in ["run", "ingest", "gateway"] {
        let out = run_to_end(tickwire(&[
            command,
            "--bus",
            "http://127.0.0.1:6379",
            "--listen",
            "127.0.0.1:0",
        ]));
        assert_eq!(out.status.code(), Some(1), "{command}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{command}: {}", out.stdout);
        assert!(
            out.stderr.contains("--bus: `bus.url`") && out.stderr.contains("redis://HOST:PORT"),
            "{command}: {}",
            out.stderr
        );
    }
    let mut cmd = tickwire(&["gateway", "--listen", "127.0.0.1:0"]);
    cmd.env("TICKWIRE_BUS_KIND", "redis")
        .env("TICKWIRE_BUS_URL", "redis-cluster://");
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("TICKWIRE_BUS_URL: `bus.url`"),
        "{}",
        out.stderr
    );
}

#[test]
fn ingest_and_gateway_need_a_redis_bus() {
    for command in ["ingest", "gateway"] {
        let out = run_to_end(tickwire(&[command, "--listen", "127.0.0.1:0"]));
        assert_eq!(out.status.code(), Some(1), "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains("--bus redis://HOST:PORT"),
            "{command}: {}",
            out.stderr
        );
    }
}

/// Redis down at start-up (nothing listens on the port): both commands
/// start, wait for it, are not ready, and still stop cleanly on SIGTERM.
#[test]
fn unreachable_redis_is_waited_for_never_fatal() {
    let bus = format!("redis://127.0.0.1:{}", free_port());
    let (mut gateway, gateway_pid, line) =
        start_serving(&["gateway", "--bus", &bus, "--listen", "127.0.0.1:0"]);
    assert!(line.starts_with("tickwire serving on http://"), "{line}");
    let gateway_addr = http_addr(&line);
    let (mut ingest, ingest_pid, line) =
        start_serving(&["ingest", "--bus", &bus, "--listen", "127.0.0.1:0"]);
    assert!(line.starts_with("tickwire ingest publishing to"), "{line}");
    let ingest_addr = http_addr(&line);

    thread::sleep(Duration::from_secs(2));
    for (name, child) in [("gateway", &mut gateway), ("ingest", &mut ingest)] {
        assert!(
            child.0.try_wait().expect("try_wait").is_none(),
            "{name} keeps running without Redis"
        );
    }
    for addr in [&gateway_addr, &ingest_addr] {
        assert_eq!(http_get_status(addr, "/healthz"), 200, "{addr}");
        assert_eq!(http_get_status(addr, "/readyz"), 503, "{addr}");
    }
    assert_eq!(http_get_status(&ingest_addr, "/metrics"), 200);

    for (name, pid, child) in [
        ("gateway", gateway_pid, &mut gateway),
        ("ingest", ingest_pid, &mut ingest),
    ] {
        let status = terminate(pid, child);
        assert!(status.success(), "{name}: graceful exit: {status:?}");
    }
}
