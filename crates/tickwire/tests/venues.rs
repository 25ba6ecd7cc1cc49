//! The venue adapters end to end: a fake venue (the real WebSocket and
//! REST server of `tickwire replay --serve`) plays each venue's capture,
//! a live feed connects to it, and a WebSocket client of the gateway sees
//! the canonical updates; then the faults (a dropped connection, a garbage
//! frame, a sequence gap, a bad checksum, silence, a forced cutoff with
//! rotation), each asserting what the client sees and what is counted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tickwire_bus::{Bus, MemoryBus};
use tickwire_gateway::{Gateway, GatewayConfig};
use tickwire_ingest::capture::{Capture, CaptureFrame, Source};
use tickwire_ingest::feed::{VenueFeed, VenueKind};
use tickwire_ingest::serve::{FakeOptions, FakeServer};
use tickwire_ingest::{FeedsConfig, Speed, venue};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something it expects.
const PATIENCE: Duration = Duration::from_secs(30);
/// Tape pace in these tests: fast enough to see many books and trades in
/// seconds, slow enough for a loaded machine to keep up.
const TAPE_SPEED: f64 = 4.0;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A fake venue, a live feed to it, and a gateway serving the feed.
struct Stack {
    fake: FakeServer,
    gateway: Option<Gateway>,
    feed_task: Option<tokio::task::JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl Stack {
    async fn start(
        capture: Capture,
        options: FakeOptions,
        tune: impl FnOnce(&mut VenueFeed),
    ) -> Self {
        // RUST_LOG=tickwire_ingest=debug shows the feed's side of a failure.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let metrics = tickwire_gateway::install_metrics();
        assert!(metrics.is_some(), "the test's metrics recorder");
        let shutdown = CancellationToken::new();
        let venue = capture.header.venue;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake = tickwire_ingest::serve::serve(listener, capture, options, shutdown.clone())
            .expect("fake venue");
        let mut feed = venue::default_feed(venue);
        feed.url = format!("ws://{}/ws", fake.local_addr());
        if feed.rest_url.is_some() {
            feed.rest_url = Some(format!("http://{}", fake.local_addr()));
        }
        feed.backoff_min = Duration::from_millis(50);
        feed.backoff_max = Duration::from_millis(500);
        tune(&mut feed);
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
        let feed_task =
            tickwire_ingest::spawn_feeds(&FeedsConfig::Venue(feed), bus.clone(), shutdown.clone())
                .expect("feed");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        // `stop` closes every client at once (tests/drain.rs tests the spread).
        let config = GatewayConfig {
            drain_window_ms: 0,
            ..GatewayConfig::default()
        };
        let gateway = Gateway::start(listener, bus, config, shutdown.clone())
            .await
            .expect("gateway");
        Self {
            fake,
            gateway: Some(gateway),
            feed_task: Some(feed_task),
            shutdown,
        }
    }

    async fn client(&self, venue: VenueKind, channels: &[&str]) -> Client {
        let addr = self.gateway.as_ref().expect("running").local_addr();
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws"))
            .await
            .expect("connect to the gateway");
        let mut client = Client {
            ws,
            seen: Vec::new(),
        };
        client.recv_until(|v| v["type"] == "hello").await;
        for channel in channels {
            client
                .send(json!({"op":"subscribe","channel":channel,"symbols":[format!("{venue}:*")]}))
                .await;
        }
        client
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(g) = self.gateway.take() {
            g.wait().await;
        }
        if let Some(t) = self.feed_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

struct Client {
    ws: Ws,
    seen: Vec<Value>,
}

impl Client {
    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                self.seen.push(v.clone());
                return v;
            }
        }
    }

    /// Reads until `f` holds for a message; returns it.
    async fn recv_until(&mut self, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting; last seen: {:?}",
                self.seen.iter().rev().take(5).collect::<Vec<_>>()
            );
            let v = self.recv().await;
            if f(&v) {
                return v;
            }
        }
    }
}

fn generated(venue: VenueKind) -> Capture {
    Capture::parse(&venue::generate_capture(venue)).expect("the generated capture parses")
}

fn fast() -> FakeOptions {
    FakeOptions {
        speed: Speed::new(TAPE_SPEED).expect("speed"),
        rest_delay: Some(Duration::from_millis(200)),
        ..FakeOptions::default()
    }
}

/// The value of a Prometheus sample (`name{labels}`), 0 if absent.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = tickwire_gateway::install_metrics()
        .expect("recorder")
        .render();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn is_decimal_text(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| tickwire_model::parse_decimal(s).is_ok())
}

/// Every channel of every instrument of the venue reaches the client, with
/// exact decimals, and the instruments are live.
async fn end_to_end(venue: VenueKind) {
    let capture = generated(venue);
    let symbols: Vec<String> = capture
        .header
        .instruments
        .iter()
        .map(|i| i.instrument.to_string())
        .collect();
    let stack = Stack::start(capture, fast(), |_| {}).await;
    let mut client = stack
        .client(venue, &["trade", "quote", "ticker", "book"])
        .await;
    let mut missing: HashSet<(String, String)> = symbols
        .iter()
        .flat_map(|s| {
            ["trade", "quote", "ticker", "book"]
                .into_iter()
                .map(move |c| (s.clone(), c.to_owned()))
        })
        .collect();
    let mut live: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !missing.is_empty() || live.len() < symbols.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{venue}: still missing {missing:?}, live {live:?}"
        );
        let v = client.recv().await;
        let kind = v["type"].as_str().unwrap_or_default().to_owned();
        let symbol = v["symbol"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "status" if v["state"] == "live" => {
                live.insert(symbol);
            }
            "trade" => {
                assert!(
                    is_decimal_text(&v["price"]) && is_decimal_text(&v["size"]),
                    "{v}"
                );
                assert!(v["side"] == "buy" || v["side"] == "sell", "{v}");
                assert!(v["trade_id"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
                missing.remove(&(symbol, kind));
            }
            "quote" => {
                for f in ["bid", "bid_size", "ask", "ask_size"] {
                    assert!(is_decimal_text(&v[f]), "{f}: {v}");
                }
                let bid = tickwire_model::parse_decimal(v["bid"].as_str().unwrap_or_default())
                    .expect("bid");
                let ask = tickwire_model::parse_decimal(v["ask"].as_str().unwrap_or_default())
                    .expect("ask");
                assert!(bid < ask, "a crossed quote: {v}");
                missing.remove(&(symbol, kind));
            }
            "ticker" => {
                for f in ["last", "open_24h", "high_24h", "low_24h", "volume_24h"] {
                    assert!(is_decimal_text(&v[f]), "{f}: {v}");
                }
                missing.remove(&(symbol, kind));
            }
            "book" => {
                let bids = v["bids"].as_array().expect("bids");
                let asks = v["asks"].as_array().expect("asks");
                assert!(!bids.is_empty() && !asks.is_empty(), "{v}");
                assert!(bids.len() <= 10 && asks.len() <= 10, "top 10: {v}");
                let best = |side: &Vec<Value>| {
                    tickwire_model::parse_decimal(side[0][0].as_str().unwrap_or_default())
                        .expect("price")
                };
                assert!(
                    best(bids) < best(asks),
                    "a crossed book reached a client: {v}"
                );
                missing.remove(&(symbol, kind));
            }
            _ => {}
        }
    }
    assert_eq!(
        stack.fake.connections(),
        1,
        "{venue}: one connection, no reconnect"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_end_to_end() {
    end_to_end(VenueKind::Coinbase).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_end_to_end() {
    end_to_end(VenueKind::Binance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_end_to_end() {
    end_to_end(VenueKind::Kraken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_end_to_end() {
    end_to_end(VenueKind::Okx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_end_to_end() {
    end_to_end(VenueKind::Bybit).await;
}

/// Waits for `symbol` to go stale (with `reason`, if given), then live
/// again, then for a book of it: the fresh snapshot after recovery.
async fn stale_then_live(client: &mut Client, symbol: &str, reason: Option<&str>) -> String {
    let stale = client
        .recv_until(|v| {
            v["type"] == "status"
                && v["symbol"] == symbol
                && v["state"] == "stale"
                && reason.is_none_or(|r| v["reason"] == r)
        })
        .await;
    client
        .recv_until(|v| v["type"] == "status" && v["symbol"] == symbol && v["state"] == "live")
        .await;
    client
        .recv_until(|v| v["type"] == "book" && v["symbol"] == symbol)
        .await;
    stale["reason"].as_str().unwrap_or_default().to_owned()
}

/// Waits until every instrument of the capture is live.
async fn all_live(client: &mut Client, capture_symbols: &[String]) {
    let mut live = HashSet::new();
    while live.len() < capture_symbols.len() {
        let v = client
            .recv_until(|v| v["type"] == "status" && v["state"] == "live")
            .await;
        live.insert(v["symbol"].as_str().unwrap_or_default().to_owned());
    }
}

fn symbols_of(capture: &Capture) -> Vec<String> {
    capture
        .header
        .instruments
        .iter()
        .map(|i| i.instrument.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_reconnects_and_resyncs() {
    let capture = generated(VenueKind::Binance);
    let symbols = symbols_of(&capture);
    let before = metric("tickwire_ingest_reconnects_total", &[("venue", "binance")]);
    let options = FakeOptions {
        drop_after: Some(60),
        ..fast()
    };
    let stack = Stack::start(capture, options, |_| {}).await;
    let mut client = stack.client(VenueKind::Binance, &["book", "trade"]).await;
    all_live(&mut client, &symbols).await;
    let reason = stale_then_live(&mut client, &symbols[0], Some("feed_disconnected")).await;
    assert_eq!(reason, "feed_disconnected");
    assert!(stack.fake.connections() >= 2);
    assert!(metric("tickwire_ingest_reconnects_total", &[("venue", "binance")]) > before);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_frame_is_counted_and_skipped() {
    let capture = generated(VenueKind::Okx);
    let before = metric(
        "tickwire_ingest_parse_errors_total",
        &[("venue", "okx"), ("kind", "malformed")],
    );
    let options = FakeOptions {
        garbage_after: Some(10),
        ..fast()
    };
    let stack = Stack::start(capture, options, |_| {}).await;
    let mut client = stack.client(VenueKind::Okx, &["trade", "book"]).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metric(
        "tickwire_ingest_parse_errors_total",
        &[("venue", "okx"), ("kind", "malformed")],
    ) <= before
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the garbage frame was not counted"
        );
        client.recv().await;
    }
    // Data keeps flowing on the same connection, and nothing went stale.
    let mut after = 0;
    while after < 20 {
        let v = client.recv().await;
        assert!(
            !(v["type"] == "status" && v["state"] == "stale" && v["reason"] == "feed_disconnected"),
            "{v}"
        );
        if v["type"] == "book" || v["type"] == "trade" {
            after += 1;
        }
    }
    assert_eq!(stack.fake.connections(), 1);
    stack.stop().await;
}

/// A capture with the `n`th frame matching `pick` edited by `edit` (or
/// removed when `edit` returns `None`).
fn edited(
    mut capture: Capture,
    n: usize,
    pick: impl Fn(&CaptureFrame) -> bool,
    edit: impl Fn(&str) -> Option<String>,
) -> Capture {
    let index = capture
        .frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.source == Source::Ws && pick(f))
        .nth(n)
        .map(|(i, _)| i)
        .expect("a frame to edit");
    match edit(&capture.frames[index].text) {
        Some(text) => capture.frames[index].text = text,
        None => {
            capture.frames.remove(index);
        }
    }
    capture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_goes_stale_and_resyncs_from_rest() {
    let capture = generated(VenueKind::Binance);
    let native = capture.header.instruments[0].native.clone();
    let symbol = capture.header.instruments[0].instrument.to_string();
    // Drop a diff of the first instrument (about 20 s into the tape, long
    // after the book synced): its U/u chain breaks.
    let capture = edited(
        capture,
        200,
        |f| f.text.contains("\"depthUpdate\"") && f.text.contains(&format!("\"s\":\"{native}\"")),
        |_| None,
    );
    let before = metric(
        "tickwire_ingest_resyncs_total",
        &[("venue", "binance"), ("reason", "sequence_gap")],
    );
    let stack = Stack::start(capture, fast(), |_| {}).await;
    let mut client = stack.client(VenueKind::Binance, &["book"]).await;
    let reason = stale_then_live(&mut client, &symbol, Some("sequence_gap")).await;
    assert_eq!(reason, "sequence_gap");
    assert!(
        metric(
            "tickwire_ingest_resyncs_total",
            &[("venue", "binance"), ("reason", "sequence_gap")]
        ) > before
    );
    assert_eq!(
        stack.fake.connections(),
        1,
        "a gap resyncs the book, not the connection"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_checksum_goes_stale_and_resubscribes() {
    let capture = generated(VenueKind::Kraken);
    let native = capture.header.instruments[0].native.clone();
    let symbol = capture.header.instruments[0].instrument.to_string();
    let capture = edited(
        capture,
        150,
        |f| {
            f.text.contains("\"channel\":\"book\"")
                && f.text.contains("\"type\":\"update\"")
                && f.text.contains(&format!("\"symbol\":\"{native}\""))
        },
        |text| {
            let at = text.find("\"checksum\":")? + "\"checksum\":".len();
            let end = at + text[at..].find(|c: char| !c.is_ascii_digit())?;
            let sum: u64 = text[at..end].parse().ok()?;
            Some(format!(
                "{}{}{}",
                &text[..at],
                (sum + 1) % (1 << 32),
                &text[end..]
            ))
        },
    );
    let before = metric(
        "tickwire_ingest_resyncs_total",
        &[("venue", "kraken"), ("reason", "checksum_mismatch")],
    );
    let stack = Stack::start(capture, fast(), |_| {}).await;
    let mut client = stack.client(VenueKind::Kraken, &["book"]).await;
    let reason = stale_then_live(&mut client, &symbol, Some("checksum_mismatch")).await;
    assert_eq!(reason, "checksum_mismatch");
    assert!(
        metric(
            "tickwire_ingest_resyncs_total",
            &[("venue", "kraken"), ("reason", "checksum_mismatch")]
        ) > before
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_feed_is_dead_and_replaced() {
    let capture = generated(VenueKind::Bybit);
    let symbols = symbols_of(&capture);
    let before = metric(
        "tickwire_ingest_reconnects_total",
        &[("venue", "bybit"), ("reason", "silent")],
    );
    let options = FakeOptions {
        silence_after: Some(40),
        ..fast()
    };
    let stack = Stack::start(capture, options, |f| {
        f.silence = Some(Duration::from_millis(1500))
    })
    .await;
    let mut client = stack.client(VenueKind::Bybit, &["book", "trade"]).await;
    all_live(&mut client, &symbols).await;
    let reason = stale_then_live(&mut client, &symbols[0], None).await;
    assert_eq!(reason, "feed_disconnected");
    assert!(
        metric(
            "tickwire_ingest_reconnects_total",
            &[("venue", "bybit"), ("reason", "silent")]
        ) > before
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_cutoff_rotates_without_gap_or_duplicate() {
    let capture = generated(VenueKind::Binance);
    let symbols = symbols_of(&capture);
    let before = metric("tickwire_ingest_rotations_total", &[("venue", "binance")]);
    // The venue cuts every connection after 6 s and says so 3 s before.
    let options = FakeOptions {
        max_lifetime: Some(Duration::from_secs(6)),
        notice_before: Some(Duration::from_secs(3)),
        ping_every: Some(Duration::from_secs(1)),
        ..fast()
    };
    let stack = Stack::start(capture, options, |_| {}).await;
    let mut client = stack.client(VenueKind::Binance, &["trade", "book"]).await;
    all_live(&mut client, &symbols).await;
    let mut trade_ids: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(11);
    while tokio::time::Instant::now() < deadline {
        let v = client.recv().await;
        let symbol = v["symbol"].as_str().unwrap_or_default().to_owned();
        if v["type"] == "status" {
            assert_ne!(
                v["state"], "stale",
                "a rotation must not make anything stale: {v}"
            );
        }
        if v["type"] == "gap" {
            panic!("a gap during rotation: {v}");
        }
        if v["type"] == "trade" && v["snapshot"] != true {
            let id: u64 = v["trade_id"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("numeric trade id");
            trade_ids.entry(symbol.clone()).or_default().push(id);
            seqs.entry(symbol)
                .or_default()
                .push(v["seq"].as_u64().expect("seq"));
        }
    }
    assert!(
        stack.fake.connections() >= 2,
        "the rotation opened a replacement"
    );
    assert!(metric("tickwire_ingest_rotations_total", &[("venue", "binance")]) > before);
    for (symbol, ids) in &trade_ids {
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{symbol}: a duplicate trade reached the client"
        );
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{symbol}: trades out of order: {ids:?}"
        );
        let s = &seqs[symbol];
        assert!(
            s.windows(2).all(|w| w[1] == w[0] + 1),
            "{symbol}: seq jumped: {s:?}"
        );
    }
    assert!(!trade_ids.is_empty());
    stack.stop().await;
}
