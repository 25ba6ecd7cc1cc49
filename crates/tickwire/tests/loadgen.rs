//! End-to-end test of `tickwire loadgen` against `tickwire run` (the demo
//! market on a free port): it connects, measures, stops by itself and
//! prints one JSON line. No timing assertion: the figures are benchmarks.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{BIN, Proc, Server, WAIT};
use serde_json::Value;

#[test]
fn loadgen_measures_a_running_server() {
    let server = Server::from(Proc::start(
        "loadgen-run",
        &["run", "--listen", "127.0.0.1:0"],
        &[],
    ));
    let url = server.ws_url();
    let mut child = Command::new(BIN)
        .args([
            "loadgen",
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
        ])
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
    let report: Value = serde_json::from_str(lines[0]).expect("JSON report");

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
    assert!(stderr.contains("loadgen: 5 clients"), "summary: {stderr}");
    drop(server);
}
