//! End-to-end tests of `tickwire loadgen` against `tickwire run` (on a
//! free port): it connects, measures, stops by itself and prints one JSON
//! line. No timing assertion: the figures are benchmarks.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{BIN, Proc, Server, WAIT, first_line};
use serde_json::Value;

/// One test at a time: each runs a server and tens of clients, and two
/// cores shared by parallel tests would starve the feeds these tests
/// count on. (A failed test must not poison the others.)
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `tickwire run --listen 127.0.0.1:0 EXTRA...` whose pid the test needs
/// (for --server-pid); killed and reaped when dropped.
struct Measured {
    child: Child,
    url: String,
}

impl Measured {
    fn start(extra: &[&str]) -> Measured {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The test's own TICKWIRE_* settings must not reach the server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TICKWIRE_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().expect("spawn tickwire run");
        let stdout = child.stdout.take().expect("stdout");
        let mut measured = Measured {
            child,
            url: String::new(),
        };
        let banner = first_line(stdout, WAIT).expect("tickwire run printed its URL");
        measured.url = banner
            .split_whitespace()
            .map(|w| w.trim_matches(['(', ')', ',']))
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no ws:// URL in {banner:?}"))
            .to_string();
        measured
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tickwire loadgen ARGS...` to its end (bounded by [`WAIT`]) and
/// returns its JSON line and its stderr summary.
fn loadgen(args: &[&str]) -> (Value, String) {
    let mut child = Command::new(BIN)
        .arg("loadgen")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen still running after {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    assert!(status.success(), "loadgen failed: {status}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout: {stdout:?}");
    let report = serde_json::from_str(lines[0]).expect("JSON report");
    (report, stderr)
}

/// A feeds file of two instruments publishing only big book updates
/// (200 levels a side, about 8.5 KB a frame) at 400/s: a client that
/// stops reading fills the kernel's socket buffers (on loopback the
/// server's send buffer grows to about 4 MiB) within a second or two, so
/// the gateway's outbox has to conflate for it.
fn fast_book_feeds() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("loadgen-book-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        r#"[synthetic]
rate = 400
book_depth = 200
volatility_bp = "1"
mix = { trade = 0, quote = 0, ticker = 0, book = 1 }
instruments = [
  { symbol = "sim:B0-USD", price = "100.00", tick = "0.01", size_scale = 4, typical_size = "1" },
  { symbol = "sim:B1-USD", price = "200.00", tick = "0.01", size_scale = 4, typical_size = "1" },
]
"#,
    )
    .expect("write feeds file");
    path
}

#[test]
fn loadgen_measures_a_running_server() {
    let _serial = serial();
    let server = Server::from(Proc::start(
        "loadgen-run",
        &["run", "--listen", "127.0.0.1:0"],
        &[],
    ));
    let url = server.ws_url();
    let (report, stderr) = loadgen(&[
        "--url",
        &url,
        "--clients",
        "5",
        "--symbols-per-client",
        "2",
        "--duration-secs",
        "2",
        "--warmup-secs",
        "0",
        "--expected-rate",
        "1",
        "--source-addrs",
        "2",
    ]);

    assert_eq!(report["connect"]["ok"], 5, "{report}");
    assert_eq!(report["connect"]["failed"], 0, "{report}");
    assert_eq!(report["disconnected"], 0, "{report}");
    assert_eq!(report["symbols_per_client"], 2, "{report}");
    assert!(
        report["delivered"].as_u64().expect("delivered") > 0,
        "{report}"
    );
    let latency = &report["latency_us"];
    assert_eq!(latency["count"], report["delivered"], "{report}");
    assert!(
        latency["p50"].as_u64() <= latency["max"].as_u64(),
        "{report}"
    );
    assert!(report["ideal_per_sec"].as_f64().expect("ideal") > 0.0);
    // No slow clients asked for: no `slow` object, and no server figures
    // without --server-pid.
    assert_eq!(report["slow_clients"], 0, "{report}");
    assert!(report["slow"].is_null(), "{report}");
    assert!(report["server_rss_before_kib"].is_null(), "{report}");
    assert!(report["rss_per_conn_kib"].is_null(), "{report}");
    assert!(stderr.contains("loadgen: 5 clients"), "summary: {stderr}");
    drop(server);
}

#[test]
fn slow_consumers_are_reported_apart_and_see_conflation() {
    let _serial = serial();
    let feeds = fast_book_feeds();
    let server = Measured::start(&["--feeds", feeds.to_str().expect("utf-8 path")]);
    let (url, pid) = (server.url.clone(), server.pid());
    // A slow client pauses 2.5 s right after subscribing: about 8 MB are
    // published for it meanwhile, more than the kernel buffers hold.
    let (report, stderr) = loadgen(&[
        "--url",
        &url,
        "--clients",
        "20",
        "--all-symbols",
        "--channel",
        "book",
        "--duration-secs",
        "4",
        "--warmup-secs",
        "0",
        "--server-pid",
        &pid,
        "--slow-fraction",
        "0.25",
        "--slow-pause-ms",
        "2500",
        "--slow-read-ms",
        "300",
    ]);
    let _ = std::fs::remove_file(&feeds);

    assert_eq!(report["connect"]["ok"], 20, "{report}");
    assert_eq!(report["slow_clients"], 5, "{report}");
    assert_eq!(report["normal_clients"], 15, "{report}");
    let slow = &report["slow"];
    assert_eq!(slow["clients"], 5, "{report}");
    assert_eq!(slow["connected"], 5, "{report}");
    assert_eq!(slow["pause_ms"], 2500, "{report}");
    assert_eq!(slow["rcvbuf"], 4096, "{report}");
    // Each group's latency histogram holds exactly its own deliveries.
    assert_eq!(
        report["latency_us"]["count"], report["delivered"],
        "{report}"
    );
    assert_eq!(slow["latency_us"]["count"], slow["delivered"], "{report}");
    assert!(report["delivered"].as_u64().expect("delivered") > 0);
    assert!(slow["delivered"].as_u64().expect("slow delivered") > 0);
    // The normal clients read everything the server sent them as it came;
    // the slow ones got far fewer updates per client, with seq jumps.
    let normal_mean = report["per_client_per_sec"]["mean"].as_f64().expect("mean");
    let slow_mean = slow["per_client_per_sec"]["mean"].as_f64().expect("mean");
    assert!(slow_mean < normal_mean, "{report}");
    assert!(
        slow["conflated"].as_u64().expect("conflated") > 0,
        "{report}"
    );
    let fraction = slow["conflated_fraction"].as_f64().expect("fraction");
    assert!(fraction > 0.0 && fraction < 1.0, "{report}");
    assert!(stderr.contains("slow clients: 5 of 5"), "summary: {stderr}");
    drop(server);
}

#[test]
fn server_memory_before_the_first_connect_and_per_connection() {
    let _serial = serial();
    let server = Measured::start(&[]);
    let (url, pid) = (server.url.clone(), server.pid());
    let (report, stderr) = loadgen(&[
        "--url",
        &url,
        "--clients",
        "50",
        "--symbols-per-client",
        "1",
        "--duration-secs",
        "1",
        "--warmup-secs",
        "0",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(report["connect"]["ok"], 50, "{report}");
    let before = report["server_rss_before_kib"]
        .as_u64()
        .expect("server_rss_before_kib");
    let start = report["server"]["rss_kib_start"]
        .as_u64()
        .expect("rss at the window's start");
    assert!(before > 0, "{report}");
    // Sane: the growth per connection is what (start - before) / 50 says,
    // and well under a MiB (a connection that cost more would be a bug
    // worth its own test).
    let per_conn = report["rss_per_conn_kib"]
        .as_f64()
        .expect("rss_per_conn_kib");
    let expected = (start as f64 - before as f64) / 50.0;
    assert!((per_conn - expected).abs() < 0.01, "{report}");
    assert!(per_conn.abs() < 1024.0, "{report}");
    // tickwire counts its slow-consumer closes; none here.
    assert_eq!(report["server_slow_consumer_closes"], 0, "{report}");
    assert!(stderr.contains("per connection"), "summary: {stderr}");
    drop(server);
}
