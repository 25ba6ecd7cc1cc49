//! Hostile clients against one `tickwire run` (the real binary, the demo
//! market): rounds of generated malformed and abusive inputs (invalid
//! JSON, wrong types, huge numbers, deep nesting, 10 000-symbol
//! subscribes, invalid UTF-8, binary frames, good and broken
//! fragmentation, oversized messages, request floods, ping floods,
//! slowloris handshakes, clients that never read), each checked for its
//! coded answer, while a well-behaved client keeps receiving quotes. The
//! server must stay up and its resident memory bounded and not growing
//! from round to round.
//!
//! The generator is seeded (`HOSTILE_SEED` overrides the default), so a
//! failure reproduces; every loop and wait is bounded.

mod common;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/watch.rs"]
mod watch;

use std::time::{Duration, Instant};

use common::{Proc, Server, serial};
use raw::{BINARY, CONT, End, PING, PONG, Raw, TEXT};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpSocket;
use watch::Watcher;

const DEMO_FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/demo.toml");
const WAIT: Duration = Duration::from_secs(20);
const ROUNDS: usize = 4;
/// Message-level inputs per round, over several connections.
const MESSAGES_PER_ROUND: usize = 220;
/// Inputs sent on one connection before the next (under the request
/// bucket's burst of 20).
const PER_CONNECTION: usize = 12;
/// Resident memory the server may never exceed.
const RSS_CAP_KB: u64 = 1024 * 1024;
/// Growth allowed from the first round to the last (allocator slack).
const RSS_GROWTH_KB: u64 = 64 * 1024;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// What an input must get back.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// An `error` with this code; the connection stays.
    Error(&'static str),
    /// A reply of this `type`; the connection stays.
    Reply(&'static str),
}

/// One message-level input: frames to send and the answer due.
struct Input {
    class: &'static str,
    /// (fin, opcode, payload) frames.
    frames: Vec<(bool, u8, Vec<u8>)>,
    expect: Expect,
    /// WebSocket pongs due before the answer (ping floods).
    pongs: usize,
}

fn text(class: &'static str, payload: impl Into<Vec<u8>>, expect: Expect) -> Input {
    Input {
        class,
        frames: vec![(true, TEXT, payload.into())],
        expect,
        pongs: 0,
    }
}

/// A generated message-level input of a random class.
fn generate(rng: &mut Rng) -> Input {
    use Expect::{Error, Reply};
    match rng.below(11) {
        0 => {
            // Invalid JSON: JSON-ish text, truncated or garbled.
            let bases = [
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[\"coinbase:BTC-USD\"]}",
                "{\"op\":\"ping\",\"id\":1}",
                "[1,2,{\"a\":",
            ];
            let base = rng.pick(&bases).as_bytes().to_vec();
            let cut = 1 + rng.below(base.len() - 1);
            let mut payload = base[..cut].to_vec();
            let junk = b"{}[]:,\"\\ \t\nxyz0-";
            for _ in 0..rng.below(5) {
                payload.push(junk[rng.below(junk.len())]);
            }
            // A cut that still parses (`[` + `]` cannot happen: cuts end
            // before the closing bracket) is made invalid for sure.
            payload.extend_from_slice(b"}}{");
            text("invalid json", payload, Error("bad_request"))
        }
        1 => {
            let cases = [
                "{\"op\":5}",
                "{\"op\":null}",
                "{\"op\":[\"ping\"]}",
                "{\"op\":\"ping\",\"id\":{\"x\":1}}",
                "{\"op\":\"ping\",\"id\":[1]}",
                "{\"op\":\"subscribe\",\"channel\":7,\"symbols\":[\"coinbase:BTC-USD\"]}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":\"coinbase:BTC-USD\"}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[]}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[\"coinbase:BTC-USD\"],\"snapshot\":\"yes\"}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[\"coinbase:BTC-USD\"],\"throttle_ms\":-1}",
                "{\"op\":\"unsubscribe\",\"channel\":\"quote\"}",
                "{\"op\":\"list\",\"extra\":true}",
                "[]",
                "\"ping\"",
                "42",
                "null",
            ];
            text("wrong types", rng.pick(&cases), Error("bad_request"))
        }
        2 => {
            let cases = [
                "{\"op\":\"ping\",\"id\":1e400}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[\"coinbase:BTC-USD\"],\"throttle_ms\":99999999999999999999999999}",
                "{\"op\":\"subscribe\",\"channel\":\"quote\",\"symbols\":[\"coinbase:BTC-USD\"],\"throttle_ms\":1e30}",
                "{\"op\":\"subscribe\",\"channel\":\"trade\",\"symbols\":[\"coinbase:BTC-USD\"],\"from_seq\":{\"coinbase:BTC-USD\":1e999}}",
            ];
            text("huge numbers", rng.pick(&cases), Error("bad_request"))
        }
        3 => {
            // Deep nesting: far past the parser's recursion limit.
            let depth = 200 + rng.below(20_000);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let payload = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            text("deep nesting", payload, Error("bad_request"))
        }
        4 => {
            let n = 10_000;
            let symbols: Vec<String> = (0..n).map(|i| format!("coinbase:X{i}-USD")).collect();
            let req = json!({"op":"subscribe","channel":"quote","symbols":symbols});
            text(
                "10000-symbol subscribe",
                req.to_string(),
                Error("bad_request"),
            )
        }
        5 => Input {
            class: "binary frame",
            frames: vec![(true, BINARY, (0..rng.below(300)).map(|i| i as u8).collect())],
            expect: Error("bad_request"),
            pongs: 0,
        },
        6 => {
            // A valid request split into 2 to 6 fragments.
            let req = if rng.below(2) == 0 {
                "{\"op\":\"ping\",\"id\":\"frag\"}"
            } else {
                "{\"op\":\"list\",\"id\":\"frag\"}"
            };
            let expect = if req.contains("ping") {
                Reply("pong")
            } else {
                Reply("symbols")
            };
            let bytes = req.as_bytes();
            let parts = 2 + rng.below(5);
            let step = bytes.len().div_ceil(parts);
            let chunks: Vec<&[u8]> = bytes.chunks(step).collect();
            let last = chunks.len() - 1;
            let frames = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| (i == last, if i == 0 { TEXT } else { CONT }, c.to_vec()))
                .collect();
            Input {
                class: "fragmented request",
                frames,
                expect,
                pongs: 0,
            }
        }
        7 => {
            // A ping flood, then a request: every ping answered, in order.
            let n = 50 + rng.below(500);
            let mut frames: Vec<(bool, u8, Vec<u8>)> = (0..n)
                .map(|i| (true, PING, (i as u32).to_be_bytes().to_vec()))
                .collect();
            frames.push((true, TEXT, b"{\"op\":\"ping\",\"id\":\"after\"}".to_vec()));
            Input {
                class: "ping flood",
                frames,
                expect: Reply("pong"),
                pongs: n,
            }
        }
        8 => {
            let ops = ["hack", "SUBSCRIBE", "", "auth2", "\u{0}"];
            let req = json!({"op": rng.pick(&ops)});
            text("unknown op", req.to_string(), Error("unknown_op"))
        }
        9 => {
            let channels = ["quotes", "", "orders", "BOOK", "trade "];
            let req = json!({"op":"subscribe","channel":rng.pick(&channels),"symbols":["coinbase:BTC-USD"]});
            text("unknown channel", req.to_string(), Error("unknown_channel"))
        }
        _ => {
            let symbols = ["nope:BTC-USD", "coinbase:NOPE-USD", "kraken:ZZZ-EUR"];
            let req = json!({"op":"subscribe","channel":"quote","symbols":[rng.pick(&symbols)]});
            text("unknown symbol", req.to_string(), Error("unknown_symbol"))
        }
    }
}

/// Sends one input and checks its answer; a description of what went
/// wrong otherwise.
async fn probe(raw: &mut Raw, input: &Input) -> Result<(), String> {
    let mut bytes = Vec::new();
    for (fin, opcode, payload) in &input.frames {
        bytes.extend(raw.encode(*fin, *opcode, payload));
    }
    let _ = raw.stream.write_all(&bytes).await;
    let limit = Instant::now() + WAIT;
    let mut pongs = 0;
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        let frame = raw
            .next(left)
            .await
            .map_err(|e| format!("no answer: {e:?} after {pongs} pongs"))?;
        if let Some(code) = frame.close_code() {
            return Err(format!("closed with {code}"));
        }
        if frame.opcode == PONG {
            pongs += 1;
            continue;
        }
        let Some(v) = frame.json() else {
            return Err(format!("unexpected frame {frame:?}"));
        };
        let ok = match &input.expect {
            Expect::Error(code) => v["type"] == "error" && v["code"] == *code,
            Expect::Reply(kind) => v["type"] == *kind,
        };
        if !ok {
            return Err(format!("expected {:?}, got {v}", input.expect));
        }
        if pongs != input.pongs {
            return Err(format!("{pongs} pongs for {} pings", input.pongs));
        }
        return Ok(());
    }
}

async fn connect(server: &Server) -> Raw {
    let mut raw = Raw::connect(&server.addr, None, "")
        .await
        .unwrap_or_else(|e| panic!("connect: {e:?}"));
    let hello = raw
        .until_json(WAIT, |v| v["type"] == "hello")
        .await
        .unwrap_or_else(|e| panic!("no hello: {e:?}"));
    assert_eq!(hello["version"], 1);
    raw
}

/// A connection-level input: it must end the connection with `code`.
async fn must_close(server: &Server, class: &str, frames: &[(bool, u8, Vec<u8>)], code: u16) {
    let mut raw = connect(server).await;
    let mut bytes = Vec::new();
    for (fin, opcode, payload) in frames {
        bytes.extend(raw.encode(*fin, *opcode, payload));
    }
    let _ = raw.stream.write_all(&bytes).await;
    let (_, end) = raw.until_end(WAIT).await;
    assert_eq!(end, End::Close(code), "{class}");
}

/// Dribbles a request head a byte at a time; true once the server has
/// dropped the connection (bounded by `WAIT`).
async fn slowloris(addr: String) -> bool {
    let Ok(mut stream) = raw::tcp(&addr, None).await else {
        return false;
    };
    let head =
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ";
    let limit = Instant::now() + WAIT;
    let mut i = 0usize;
    while Instant::now() < limit {
        let byte = head.get(i).copied().unwrap_or(b'a');
        i += 1;
        if stream.write_all(&[byte]).await.is_err() {
            return true;
        }
        let mut buf = [0u8; 64];
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return true,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Subscribes to everything with a tiny receive buffer and never reads;
/// how the server ended it, read once the slow-consumer timeout passed.
async fn never_reader(addr: String) -> End {
    let Ok(socket) = TcpSocket::new_v4() else {
        return End::Timeout;
    };
    let _ = socket.set_recv_buffer_size(4096);
    let Ok(stream) = socket.connect(addr.parse().expect("addr")).await else {
        return End::Timeout;
    };
    let Ok(mut raw) = Raw::upgrade(stream, &addr, "").await else {
        return End::Timeout;
    };
    for channel in ["quote", "book", "trade", "ticker"] {
        let req = json!({"op":"subscribe","channel":channel,"symbols":["coinbase:*","binance:*","kraken:*"]});
        raw.text(req.to_string()).await;
    }
    // Not reading: the server's socket fills, and it gives up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let limit = Instant::now() + WAIT;
    // Reads what was buffered until the end (bounded by the wait).
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        match raw.next(left).await {
            Ok(frame) => {
                if let Some(code) = frame.close_code() {
                    return End::Close(code);
                }
            }
            Err(end) => return end,
        }
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn hostile_inputs_get_coded_answers_and_leave_others_untouched() {
    let _serial = serial().await;
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7ac3_1d5e_u64);
    println!("hostile seed {seed} (HOSTILE_SEED={seed} reproduces)");
    let mut rng = Rng(seed | 1);
    let mut server = Server::from(Proc::start(
        "hostile",
        &["run", "--listen", "127.0.0.1:0", "--feeds", DEMO_FEEDS],
        &[
            ("TICKWIRE_GATEWAY_HANDSHAKE_TIMEOUT_MS", "1000"),
            ("TICKWIRE_GATEWAY_SLOW_CONSUMER_TIMEOUT_MS", "2000"),
            ("TICKWIRE_GATEWAY_SEND_BUFFER_BYTES", "4096"),
        ],
    ));
    server.until_status("/readyz", 200).await;
    let pid = server.proc.pid();
    let watcher = Watcher::start(&server.addr, "127.0.0.2", &["coinbase:BTC-USD"]).await;
    let mut inputs = 0usize;
    let mut rss = Vec::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        // The slow ones run alongside the rest of the round.
        let slow: Vec<_> = (0..5)
            .map(|_| tokio::spawn(slowloris(server.addr.clone())))
            .collect();
        let deaf: Vec<_> = (0..5)
            .map(|_| tokio::spawn(never_reader(server.addr.clone())))
            .collect();
        let mut raw = connect(&server).await;
        for k in 0..MESSAGES_PER_ROUND {
            if k > 0 && k % PER_CONNECTION == 0 {
                raw = connect(&server).await;
            }
            let input = generate(&mut rng);
            if let Err(e) = probe(&mut raw, &input).await {
                panic!("round {round} input {k} ({}): {e}", input.class);
            }
            inputs += 1;
        }
        drop(raw);
        for _ in 0..10 {
            // Invalid UTF-8 in a text frame, whole or across fragments.
            let mut bad = b"{\"op\":\"ping\",\"id\":\"".to_vec();
            bad.extend([0xff, 0xfe, 0xc0 + rng.below(2) as u8]);
            bad.extend(b"\"}");
            let frames = if rng.below(2) == 0 {
                vec![(true, TEXT, bad)]
            } else {
                vec![
                    (false, TEXT, vec![b'"', 0xce]),
                    (true, CONT, vec![0x41, b'"']),
                ]
            };
            must_close(&server, "invalid utf-8", &frames, 1007).await;
            inputs += 1;
        }
        for case in 0..5 {
            // Broken fragmentation or framing.
            let frames = match case % 3 {
                0 => vec![(true, CONT, b"x".to_vec())],
                1 => vec![(false, TEXT, b"{".to_vec()), (true, TEXT, b"{}".to_vec())],
                _ => vec![(false, PING, b"".to_vec())],
            };
            must_close(&server, "broken fragmentation", &frames, 1002).await;
            inputs += 1;
        }
        for _ in 0..3 {
            let big = vec![b' '; (1 << 20) + 1 + rng.below(4096)];
            must_close(&server, "oversized", &[(true, TEXT, big)], 1009).await;
            inputs += 1;
        }
        for _ in 0..3 {
            // Far more requests than the bucket allows.
            let flood: Vec<_> = (0..100)
                .map(|i| {
                    (
                        true,
                        TEXT,
                        format!("{{\"op\":\"ping\",\"id\":{i}}}").into_bytes(),
                    )
                })
                .collect();
            must_close(&server, "request flood", &flood, 4029).await;
            inputs += 1;
        }
        for task in slow {
            assert!(task.await.expect("slowloris task"), "slowloris not dropped");
            inputs += 1;
        }
        for task in deaf {
            let end = task.await.expect("never-reader task");
            assert!(
                matches!(end, End::Close(4008) | End::Eof),
                "never-reading client: {end:?}"
            );
            inputs += 1;
        }
        watcher
            .assert_flowing(&format!("after round {round}"))
            .await;
        server.proc.assert_running();
        let kb = rss_kb(pid);
        println!("round {round}: {inputs} inputs so far, server RSS {kb} kB");
        assert!(kb < RSS_CAP_KB, "server RSS {kb} kB");
        rss.push(kb);
    }
    assert!(inputs >= 1000, "only {inputs} inputs");
    let (first, last) = (rss[0], rss[rss.len() - 1]);
    assert!(
        last <= first + RSS_GROWTH_KB,
        "server RSS grew from {first} kB to {last} kB over the rounds: {rss:?}"
    );
    assert_eq!(
        common::http_status(&server.addr, "/healthz").await,
        Some(200)
    );
    println!(
        "{inputs} hostile inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
