//! Each connection limit end to end: `tickwire run` (the real binary, the
//! demo market) with raw WebSocket clients that cross one limit, checking
//! its documented status or close code, while a well-behaved client on
//! the same server (from another loopback address) keeps receiving quotes
//! with no close and no error.
//!
//! Every wait is bounded; the time bounds are generous upper limits.

mod common;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/watch.rs"]
mod watch;

use std::time::{Duration, Instant};

use common::{Proc, Server, serial};
use raw::{BINARY, CONT, End, PING, Raw, TEXT};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use watch::Watcher;

const DEMO_FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/demo.toml");
const WAIT: Duration = Duration::from_secs(20);
/// The watcher's address: not the abusers' (127.0.0.1), so per-IP
/// limits do not count it.
const WATCHER_IP: &str = "127.0.0.2";

async fn start(name: &str, envs: &[(&str, &str)]) -> Server {
    let server = Server::from(Proc::start(
        name,
        &["run", "--listen", "127.0.0.1:0", "--feeds", DEMO_FEEDS],
        envs,
    ));
    server.until_status("/readyz", 200).await;
    server
}

async fn watcher(server: &Server) -> Watcher {
    Watcher::start(&server.addr, WATCHER_IP, &["coinbase:BTC-USD"]).await
}

/// The value of a metric series (`name{labels}`) on `/metrics`.
async fn metric(addr: &str, series: &str) -> Option<f64> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut body))
        .await
        .ok()?
        .ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Connects until admitted, for a slot given back asynchronously.
async fn until_admitted(addr: &str, bind: Option<&str>) -> Raw {
    let limit = Instant::now() + WAIT;
    loop {
        match Raw::connect(addr, bind, "").await {
            Ok(raw) => return raw,
            Err(e) => assert!(Instant::now() < limit, "never admitted again: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connections_over_the_global_limit_get_503() {
    let _serial = serial().await;
    let mut server = start(
        "limits-global",
        &[("TICKWIRE_GATEWAY_MAX_CONNECTIONS", "3")],
    )
    .await;
    let watcher = watcher(&server).await;
    let a = Raw::connect(&server.addr, None, "").await.expect("second");
    let _b = Raw::connect(&server.addr, Some("127.0.0.3"), "")
        .await
        .expect("third");
    for bind in [None, Some("127.0.0.4")] {
        let refused = Raw::connect(&server.addr, bind, "")
            .await
            .err()
            .expect("fourth is refused");
        assert_eq!(refused.status, 503, "{refused:?}");
        assert!(refused.body.contains("too_many_connections"), "{refused:?}");
    }
    // Plain HTTP is not a WebSocket connection and is still served.
    assert_eq!(
        common::http_status(&server.addr, "/healthz").await,
        Some(200)
    );
    let series = "tickwire_gateway_upgrades_refused_total{reason=\"max_connections\"}";
    assert_eq!(metric(&server.addr, series).await, Some(2.0), "{series}");
    drop(a);
    let _again = until_admitted(&server.addr, None).await;
    watcher.assert_flowing("after the global limit").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_429() {
    let _serial = serial().await;
    let mut server = start(
        "limits-per-ip",
        &[("TICKWIRE_GATEWAY_MAX_CONNECTIONS_PER_IP", "2")],
    )
    .await;
    let watcher = watcher(&server).await;
    let a = Raw::connect(&server.addr, None, "").await.expect("first");
    let _b = Raw::connect(&server.addr, None, "").await.expect("second");
    let refused = Raw::connect(&server.addr, None, "")
        .await
        .err()
        .expect("third from one IP is refused");
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.body.contains("too_many_connections"), "{refused:?}");
    // Another address has its own count.
    let _other = Raw::connect(&server.addr, Some("127.0.0.3"), "")
        .await
        .expect("another address");
    drop(a);
    let _again = until_admitted(&server.addr, None).await;
    watcher.assert_flowing("after the per-IP limit").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn a_sustained_request_flood_gets_rate_limited_then_4029() {
    let _serial = serial().await;
    let mut server = start(
        "limits-rate",
        &[("TICKWIRE_GATEWAY_MAX_REQUESTS_PER_SEC", "5")],
    )
    .await;
    let watcher = watcher(&server).await;
    let mut raw = Raw::connect(&server.addr, None, "").await.expect("connect");
    let mut flood = Vec::new();
    for i in 0..200 {
        flood.extend(raw.encode(
            true,
            TEXT,
            format!("{{\"op\":\"ping\",\"id\":{i}}}").as_bytes(),
        ));
    }
    let _ = raw.stream.write_all(&flood).await;
    let (seen, end) = raw.until_end(WAIT).await;
    let codes: Vec<String> = seen
        .iter()
        .filter_map(|f| f.json())
        .filter(|v| v["type"] == "error")
        .map(|v| v["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == "rate_limited"),
        "{codes:?}"
    );
    assert_eq!(end, End::Close(4029));
    watcher.assert_flowing("after the flood").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn oversized_messages_whole_or_fragmented_close_1009() {
    let _serial = serial().await;
    let mut server = start(
        "limits-size",
        &[("TICKWIRE_GATEWAY_MAX_MESSAGE_BYTES", "4096")],
    )
    .await;
    let watcher = watcher(&server).await;
    // One frame over the limit.
    let mut raw = Raw::connect(&server.addr, None, "").await.expect("connect");
    raw.text(vec![b' '; 5000]).await;
    assert_eq!(raw.until_end(WAIT).await.1, End::Close(1009));
    // Fragments, each small, that add up past the limit.
    let mut raw = Raw::connect(&server.addr, None, "").await.expect("connect");
    raw.send(false, TEXT, &[b' '; 1000]).await;
    for _ in 0..5 {
        raw.send(false, CONT, &[b' '; 1000]).await;
    }
    assert_eq!(raw.until_end(WAIT).await.1, End::Close(1009));
    // A binary one too.
    let mut raw = Raw::connect(&server.addr, None, "").await.expect("connect");
    raw.send(true, BINARY, &[0u8; 8000]).await;
    assert_eq!(raw.until_end(WAIT).await.1, End::Close(1009));
    // Under the limit, fragmented, is a request like any other.
    let mut raw = Raw::connect(&server.addr, None, "").await.expect("connect");
    raw.send(false, TEXT, b"{\"op\":\"pi").await;
    raw.send(true, CONT, b"ng\",\"id\":7}").await;
    let pong = raw
        .until_json(WAIT, |v| v["type"] == "pong")
        .await
        .expect("pong");
    assert_eq!(pong["id"], 7);
    watcher.assert_flowing("after oversized messages").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn a_slow_or_silent_handshake_is_dropped() {
    let _serial = serial().await;
    let mut server = start(
        "limits-handshake",
        &[("TICKWIRE_GATEWAY_HANDSHAKE_TIMEOUT_MS", "500")],
    )
    .await;
    let watcher = watcher(&server).await;
    // Connects and says nothing.
    let mut silent = raw::tcp(&server.addr, None).await.expect("connect");
    // Sends its request a byte at a time, never finishing.
    let mut slow = raw::tcp(&server.addr, None).await.expect("connect");
    let started = Instant::now();
    let request = b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut slow_dropped = false;
    for byte in request.iter() {
        if slow.write_all(&[*byte]).await.is_err() {
            slow_dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut buf = [0u8; 256];
    for (name, stream) in [("silent", &mut silent), ("slow", &mut slow)] {
        // Dropped: EOF or a reset, not a wait for the whole bound.
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "{name} client not dropped: {read:?}"
        );
    }
    assert!(slow_dropped || started.elapsed() < WAIT);
    watcher.assert_flowing("after slow handshakes").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn a_foreign_browser_origin_gets_403() {
    let _serial = serial().await;
    let mut server = start(
        "limits-origin",
        &[(
            "TICKWIRE_GATEWAY_ALLOWED_ORIGINS",
            "[\"https://board.example\"]",
        )],
    )
    .await;
    let watcher = watcher(&server).await;
    let refused = Raw::connect(&server.addr, None, "Origin: https://evil.example\r\n")
        .await
        .err()
        .expect("foreign origin refused");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("forbidden_origin"), "{refused:?}");
    let series = "tickwire_gateway_upgrades_refused_total{reason=\"origin\"}";
    assert_eq!(metric(&server.addr, series).await, Some(1.0), "{series}");
    Raw::connect(&server.addr, None, "Origin: https://board.example\r\n")
        .await
        .expect("listed origin");
    Raw::connect(&server.addr, None, "")
        .await
        .expect("no origin: not a browser");
    watcher.assert_flowing("after origins").await;
    server.proc.assert_running();
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_1008() {
    let _serial = serial().await;
    let mut server = start(
        "limits-pong",
        &[
            ("TICKWIRE_GATEWAY_HEARTBEAT_MS", "300"),
            ("TICKWIRE_GATEWAY_PONG_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    // The watcher answers pings, so it stays.
    let watcher = watcher(&server).await;
    let mut mute = Raw::connect(&server.addr, None, "").await.expect("connect");
    let req = r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:ETH-USD"]}"#;
    mute.text(req).await;
    let (seen, end) = mute.until_end(WAIT).await;
    assert!(seen.iter().any(|f| f.opcode == PING), "was never pinged");
    assert_eq!(end, End::Close(1008));
    // Longer than a few heartbeats: the pinged watcher is still there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watcher.assert_flowing("after the pong timeout").await;
    server.proc.assert_running();
}
