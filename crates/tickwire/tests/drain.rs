//! The graceful drain end to end: `tickwire run` (the real binary, the
//! synthetic demo market) with real WebSocket clients, stopped by a real
//! SIGTERM. Clients must get everything they were sent and then a 1012
//! close, at times spread over the drain window; `/readyz` must turn 503
//! and upgrades be refused meanwhile; the process must exit 0 within its
//! bound, even with a client that reads nothing.
//!
//! Every wait is bounded; the time bounds are generous upper limits (or,
//! for the spread, fractions of the window), never performance targets.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{DEMO_SYMBOLS, Proc, Server, WAIT, serial};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The synthetic market: every instrument quotes several times a second.
const DEMO_FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/demo.toml");
/// Time past a drain's bound still accepted for the process to be gone
/// (a loaded machine, the exit itself).
const SLACK: Duration = Duration::from_secs(5);
/// The `id` of the subscription made during the drain.
const LATE_ID: u64 = 99;

/// `tickwire run` on a free port with the demo market and `envs`, once
/// `/readyz` says a feed is live.
async fn start(name: &str, envs: &[(&str, &str)]) -> Server {
    let server = Server::from(Proc::start(
        name,
        &["run", "--listen", "127.0.0.1:0", "--feeds", DEMO_FEEDS],
        envs,
    ));
    server.until_status("/readyz", 200).await;
    server
}

/// `GET path` over a fresh connection: status and body, or `None` when
/// nothing answers within a few seconds (the listener is closed).
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.ok()?;
        let text = String::from_utf8_lossy(&resp);
        let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

/// Polls `path` until `pred` holds of the answer, before `limit`; the
/// answer then.
async fn until_get(
    server: &Server,
    path: &str,
    limit: Instant,
    what: &str,
    pred: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let mut last = None;
    while Instant::now() < limit {
        if let Some((status, body)) = get(&server.addr, path).await {
            if pred(status, &body) {
                return (status, body);
            }
            last = Some((status, body));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{path}: never {what} in time; last answer {last:?}; {}",
        server.proc.describe()
    );
}

/// Waits (bounded by `limit`) for the process to exit; its exit code and
/// when it was seen gone.
async fn exit_by(server: &mut Server, limit: Instant) -> (Option<i32>, Instant) {
    loop {
        if let Some(status) = server.proc.try_exit() {
            return (status.code(), Instant::now());
        }
        assert!(
            Instant::now() < limit,
            "still running past the drain's bound; {}",
            server.proc.describe()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The process's log so far.
fn log_of(server: &Server) -> String {
    std::fs::read_to_string(&server.proc.log).unwrap_or_default()
}

/// Reads text frames until one satisfies `pred`; anything else than text,
/// ping or pong fails the test.
async fn until(ws: &mut Ws, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let limit = Instant::now() + WAIT;
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{name}: no {what} within {WAIT:?}"));
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {t}"));
                if pred(&v) {
                    return v;
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("{name}: {other:?} while waiting for {what}"),
        }
    }
}

/// A connected client subscribed to `quote` on three instruments, with
/// its first live update read.
async fn subscribed_client(server: &Server, i: usize) -> Ws {
    let name = format!("client {i}");
    let url = server.ws_url();
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
        .await
        .unwrap_or_else(|_| panic!("{name}: connect timed out"))
        .unwrap_or_else(|e| panic!("{name}: connect: {e}"));
    until(&mut ws, &name, "hello", |v| v["type"] == "hello").await;
    let n = DEMO_SYMBOLS.len();
    let symbols = [
        DEMO_SYMBOLS[i % n],
        DEMO_SYMBOLS[(i + 3) % n],
        DEMO_SYMBOLS[(i + 5) % n],
    ];
    let request =
        json!({"op":"subscribe","id":1,"channel":"quote","symbols":symbols,"snapshot":false});
    ws.send(Message::text(request.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{name}: send: {e}"));
    until(&mut ws, &name, "subscribed", |v| {
        v["type"] == "subscribed" && v["id"] == 1
    })
    .await;
    until(&mut ws, &name, "a live quote", |v| v["type"] == "quote").await;
    ws
}

/// What one client saw from the signal on.
#[derive(Debug, Default)]
struct Seen {
    /// Arrival of every live update (not snapshots).
    updates: Vec<Instant>,
    /// The close frame's code and reason, and when it arrived.
    close: Option<(u16, String, Instant)>,
    /// Anything wrong: a frame that is not JSON, an end without a close
    /// frame, a socket error.
    trouble: Vec<String>,
    /// For the client that subscribes during the drain: when its ack
    /// came, and the live ticker updates after it.
    late_ack: Option<Instant>,
    late_updates: usize,
}

/// Reads until the server's close frame (or `limit`). With `late`, sends a
/// `ticker` subscription once it changes (the drain has begun).
async fn follow(mut ws: Ws, mut late: Option<watch::Receiver<bool>>, limit: Instant) -> Seen {
    let mut seen = Seen::default();
    let limit = tokio::time::Instant::from_std(limit);
    loop {
        let frame = tokio::select! {
            changed = async {
                match late.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                late = None;
                if changed {
                    let request = json!({"op":"subscribe","id":LATE_ID,"channel":"ticker",
                        "symbols":["binance:*"],"snapshot":false});
                    if let Err(e) = ws.send(Message::text(request.to_string())).await {
                        seen.trouble.push(format!("late subscribe: {e}"));
                    }
                }
                continue;
            }
            f = tokio::time::timeout_at(limit, ws.next()) => f,
        };
        let Ok(frame) = frame else {
            seen.trouble
                .push("no close frame before the test's limit".into());
            break;
        };
        let now = Instant::now();
        match frame {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(t.as_str()) {
                Ok(v) => {
                    if v["type"] == "subscribed" && v["id"] == LATE_ID {
                        seen.late_ack = Some(now);
                    }
                    if v.get("seq").is_some() && v["snapshot"] != true {
                        seen.updates.push(now);
                        if v["type"] == "ticker" && seen.late_ack.is_some() {
                            seen.late_updates += 1;
                        }
                    }
                }
                Err(e) => seen.trouble.push(format!("not JSON ({e}): {t}")),
            },
            Some(Ok(Message::Close(frame))) => {
                seen.close = Some(match frame {
                    Some(f) => (u16::from(f.code), f.reason.to_string(), now),
                    None => (0, String::new(), now),
                });
                break;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => seen.trouble.push(format!("unexpected frame {other:?}")),
            Some(Err(e)) => {
                seen.trouble.push(format!("socket error: {e}"));
                break;
            }
            None => {
                seen.trouble.push("ended without a close frame".into());
                break;
            }
        }
    }
    seen
}

/// `tickwire_gateway_connections_closed_total{reason="service_restart"}`
/// in a /metrics text, 0 when absent.
fn restart_closes(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("tickwire_gateway_connections_closed_total")
                && l.contains("reason=\"service_restart\"")
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1012_spread_over_the_window() {
    let _one = serial().await;
    const CLIENTS: usize = 30;
    let window = Duration::from_millis(3000);
    let timeout = Duration::from_millis(5000);
    // Several shards: the spread is over the whole gateway, not per shard.
    let mut server = start(
        "drain-spread",
        &[
            ("TICKWIRE_GATEWAY_DRAIN_WINDOW_MS", "3000"),
            ("TICKWIRE_GATEWAY_SHUTDOWN_TIMEOUT_MS", "5000"),
            ("TICKWIRE_GATEWAY_SHARDS", "3"),
        ],
    )
    .await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(subscribed_client(&server, i).await);
    }
    let (late_tx, late_rx) = watch::channel(false);
    let follow_limit = Instant::now() + window + timeout + SLACK + WAIT;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            // The last to connect is the last to be closed: it subscribes
            // once the drain has begun.
            let late = (i == CLIENTS - 1).then(|| late_rx.clone());
            tokio::spawn(follow(ws, late, follow_limit))
        })
        .collect();

    let signalled = Instant::now();
    server.proc.signal("TERM");

    // At once: not ready, and new clients are turned away.
    let (_, body) = until_get(
        &server,
        "/readyz",
        signalled + Duration::from_secs(2),
        "503 draining",
        |status, _| status == 503,
    )
    .await;
    assert!(body.contains("\"status\":\"draining\""), "{body}");
    late_tx.send(true).expect("the late client listens");
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503, "{response:?}");
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            assert!(
                retry.is_some_and(|s| (1..=5).contains(&s)),
                "Retry-After of 1 to 5 s: {response:?}"
            );
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("\"code\":\"draining\""), "{body}");
        }
        Err(other) => panic!("upgrade during the drain: {other}"),
        Ok(_) => panic!("an upgrade was accepted during the drain"),
    }
    // Plain HTTP still answers, and the closes are counted by reason.
    until_get(
        &server,
        "/metrics",
        signalled + Duration::from_secs(2),
        "a service_restart close counted",
        |status, body| status == 200 && restart_closes(body) >= 1.0,
    )
    .await;

    let (code, exited) = exit_by(&mut server, signalled + window + timeout + SLACK).await;
    assert_eq!(code, Some(0), "graceful exit; {}", server.proc.describe());

    let mut seen = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let s = task.await.expect("client task");
        assert!(s.trouble.is_empty(), "client {i}: {:?}", s.trouble);
        seen.push(s);
    }
    let mut closes = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        let (code, reason, at) = s.close.clone().expect("a close frame");
        assert_eq!(code, 1012, "client {i}: {reason}");
        assert_eq!(reason, "service restart", "client {i}");
        assert!(at <= exited, "client {i} closed before the exit");
        let since = at.duration_since(signalled);
        closes.push(since);
        // Live data up to its turn: a quote comes several times a second
        // on each of its three instruments.
        if since >= Duration::from_secs(1) {
            let recent = s
                .updates
                .iter()
                .filter(|u| at.duration_since(**u) <= Duration::from_secs(1))
                .count();
            assert!(
                recent > 0,
                "client {i} closed at {since:?} got no update in the second before"
            );
        }
    }
    closes.sort();
    let (first, last) = (closes[0], closes[CLIENTS - 1]);
    // Evenly over the window, the span is 29/30 of it; everything at once
    // would be a few milliseconds.
    assert!(
        last - first >= window * 6 / 10,
        "closes from {first:?} to {last:?} after the signal: not spread over {window:?}"
    );
    let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for c in &closes {
        *per_second.entry((*c - first).as_secs()).or_default() += 1;
    }
    assert!(
        per_second.values().all(|&n| n <= CLIENTS / 2),
        "closes per second after the first: {per_second:?}"
    );
    eprintln!(
        "drain: {CLIENTS} closes from {first:?} to {last:?} after the signal \
         (window {window:?}), per second {per_second:?}, exit {:?} after the signal",
        exited.duration_since(signalled)
    );

    let late = &seen[CLIENTS - 1];
    assert!(
        late.late_ack.is_some() && late.late_updates > 0,
        "a subscription made during the drain is served until the close: {late:?}"
    );

    let log = log_of(&server);
    let drain_lines: Vec<&str> = log.lines().filter(|l| l.contains("drain")).collect();
    assert!(
        log.contains("connections=30") && log.contains("window_ms=3000"),
        "a drain start line: {drain_lines:?}"
    );
    assert!(
        log.contains("drain finished")
            && log.contains("closed=30")
            && log.contains("left_behind=0"),
        "a drain end line: {drain_lines:?}"
    );
}

/// A masked client frame (mask 0: the payload goes as is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Ping bytes after which a client that reads nothing is stuck for good:
/// their pongs are several times what the kernel buffers between the
/// server and it hold (4 KiB each way asked, at most doubled), so the
/// server keeps unsent bytes forever and nothing queued after them (no
/// close frame) gets through. (The server stops reading such a client
/// once 64 KiB wait, so the pinging itself stalls soon after.)
const STUCK_AFTER: usize = 96 * 1024;

/// A client with tiny socket buffers that subscribes to books, then sends
/// pings and never reads again; returned once it is stuck for good (see
/// [`STUCK_AFTER`]) and the server has stopped taking its bytes.
async fn stuck_client(addr: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.set_send_buffer_size(4096).expect("SO_SNDBUF");
    let mut stream = socket
        .connect(addr.parse().expect("address"))
        .await
        .expect("connect");
    let req = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "handshake answer too long");
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("handshake answer in time")
            .expect("read");
        assert_eq!(n, 1, "socket ended during the handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let subscribe = r#"{"op":"subscribe","id":1,"channel":"book","symbols":["coinbase:*","binance:*","kraken:*"]}"#;
    stream
        .write_all(&client_frame(0x1, subscribe.as_bytes()))
        .await
        .expect("subscribe");
    // Written piecemeal with try_write, so that a wait that times out
    // never leaves half a frame behind.
    let pings: Vec<u8> = (0..64)
        .flat_map(|_| client_frame(0x9, &[b'p'; 125]))
        .collect();
    let (mut sent, mut at) = (0usize, 0usize);
    let limit = Instant::now() + WAIT;
    while Instant::now() < limit {
        let ready = tokio::time::timeout(Duration::from_millis(500), stream.writable()).await;
        match ready {
            Ok(Ok(())) => match stream.try_write(&pings[at..]) {
                Ok(n) => {
                    sent += n;
                    at = (at + n) % pings.len();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("the server dropped the pinging client: {e}"),
            },
            Ok(Err(e)) => panic!("the pinging client's socket failed: {e}"),
            // The server takes no more; enough was sent to be stuck.
            Err(_) if sent >= STUCK_AFTER => return stream,
            Err(_) => {}
        }
    }
    panic!("the server took {sent} bytes of pings and kept reading within {WAIT:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_the_exit() {
    let _one = serial().await;
    let window = Duration::from_millis(1000);
    let timeout = Duration::from_millis(2000);
    // Neither the close grace nor the slow-consumer timeout may end the
    // stuck client first: only the drain's bound does.
    let mut server = start(
        "drain-stuck",
        &[
            ("TICKWIRE_GATEWAY_DRAIN_WINDOW_MS", "1000"),
            ("TICKWIRE_GATEWAY_SHUTDOWN_TIMEOUT_MS", "2000"),
            ("TICKWIRE_GATEWAY_CLOSE_GRACE_MS", "60000"),
            ("TICKWIRE_GATEWAY_SLOW_CONSUMER_TIMEOUT_MS", "60000"),
            ("TICKWIRE_GATEWAY_SEND_BUFFER_BYTES", "4096"),
        ],
    )
    .await;
    let reader = subscribed_client(&server, 0).await;
    let stuck = stuck_client(&server.addr).await;
    let follower = tokio::spawn(follow(reader, None, Instant::now() + SLACK + WAIT));

    let signalled = Instant::now();
    server.proc.signal("TERM");
    let (code, exited) = exit_by(&mut server, signalled + window + timeout + SLACK).await;
    assert_eq!(code, Some(0), "graceful exit; {}", server.proc.describe());
    // It was the bound that ended the drain (the client really was stuck).
    assert!(
        exited.duration_since(signalled) >= window + timeout / 2,
        "exited {:?} after the signal, before the bound",
        exited.duration_since(signalled)
    );
    let log = log_of(&server);
    assert!(
        log.contains("left_behind=1"),
        "the stuck client is named as left behind; {}",
        server.proc.describe()
    );
    let seen = follower.await.expect("reader task");
    assert!(seen.trouble.is_empty(), "{:?}", seen.trouble);
    assert_eq!(seen.close.map(|c| c.0), Some(1012));
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_exits_at_once() {
    let _one = serial().await;
    let mut server = start(
        "drain-twice",
        &[("TICKWIRE_GATEWAY_DRAIN_WINDOW_MS", "60000")],
    )
    .await;
    // Two clients: the second's turn is half a minute away.
    let _a = subscribed_client(&server, 0).await;
    let _b = subscribed_client(&server, 1).await;
    let signalled = Instant::now();
    server.proc.signal("TERM");
    until_get(
        &server,
        "/readyz",
        signalled + WAIT,
        "503 draining",
        |status, _| status == 503,
    )
    .await;
    server.proc.signal("TERM");
    let (code, _) = exit_by(&mut server, Instant::now() + SLACK).await;
    assert_eq!(code, Some(130), "{}", server.proc.describe());
}
