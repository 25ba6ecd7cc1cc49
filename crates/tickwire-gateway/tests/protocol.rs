//! The client protocol (v1) end to end over a real socket: every request of the protocol table, the details clients rely on, every error code a request can trigger today, close codes for abuse, status notices, and batching.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Client, SYMBOLS, Server, WAIT, inst};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tickwire_bus::{Bus, Status};
use tickwire_gateway::GatewayConfig;
use tickwire_model::Update;
use tickwire_model::protocol::FeedState;
use tokio_tungstenite::tungstenite::Message;

// `unauthorized` and `forbidden` cannot be triggered until auth exists (a later issue); no test pretends to.

const BTC: &str = "coinbase:BTC-USD";
const ETH: &str = "coinbase:ETH-USD";
const BN_BTC: &str = "binance:BTC-USDT";
const BN_ETH: &str = "binance:ETH-USDT";
const KR_BTC: &str = "kraken:BTC-USD";
const CHANNELS: [&str; 4] = ["trade", "quote", "ticker", "book"];

/// How long to give the gateway to (wrongly) send something before a ping
/// round trip proves nothing more is on its way. Only ever used to show
/// that something does NOT arrive.
const SETTLE: Duration = Duration::from_millis(250);

/// A configuration whose request rate does not get in the way of tests
/// that send many requests on one connection.
fn roomy() -> GatewayConfig {
    GatewayConfig {
        max_requests_per_sec: 10_000,
        ..GatewayConfig::default()
    }
}

/// An update's wire JSON, as a live update carries it.
fn obj(u: &Update) -> Value {
    serde_json::from_slice(u.bytes()).expect("update JSON")
}

/// An update's wire JSON flagged as a snapshot.
fn snap(u: &Update) -> Value {
    let mut v = obj(u);
    v["snapshot"] = json!(true);
    v
}

fn is_data(v: &Value) -> bool {
    matches!(
        v["type"].as_str(),
        Some("trade" | "quote" | "ticker" | "book")
    )
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect();
    out.sort();
    out
}

fn strings(list: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    out.sort();
    out
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

/// Asserts an error notice: its code, its id (or that it has none), and a
/// human-readable message.
#[track_caller]
fn assert_error(v: &Value, code: &str, id: Option<Value>) {
    assert_eq!(v["type"], "error", "expected an error, got {v}");
    assert_eq!(v["code"], code, "error code of {v}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error has a message: {v}"
    );
    match id {
        Some(id) => assert_eq!(v["id"], id, "error echoes the id: {v}"),
        None => assert!(v.get("id").is_none(), "error without an id: {v}"),
    }
}

/// Waits a little, then makes a ping round trip: what arrived meanwhile.
async fn quiet(c: &mut Client) -> Vec<Value> {
    tokio::time::sleep(SETTLE).await;
    c.sync().await
}

async fn send_text(c: &mut Client, text: &str) {
    c.send_raw(Message::Text(text.to_owned().into())).await;
}

/// Splits a frame into its newline-separated objects, checking each is one
/// JSON object.
fn objects(frame: &str) -> Vec<Value> {
    frame
        .split('\n')
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line is not JSON ({e}): {line:?} in {frame:?}"));
            assert!(v.is_object(), "line is not an object: {line:?}");
            v
        })
        .collect()
}

// ---------------------------------------------------------------- hello

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_announces_version_server_heartbeat_and_configured_limits() {
    let cfg = GatewayConfig {
        max_subscriptions: 77,
        max_requests_per_sec: 33,
        max_message_bytes: 65_536,
        heartbeat_ms: 12_345,
        ..GatewayConfig::default()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect_raw(&server, "/v1/ws", None).await;
    let hello = c.recv().await;
    let name = hello["server"]
        .as_str()
        .unwrap_or_else(|| panic!("server is a string: {hello}"))
        .to_owned();
    assert!(
        name.starts_with("tickwire/") && name.len() > "tickwire/".len(),
        "server names tickwire and a version: {name}"
    );
    assert_eq!(name, concat!("tickwire/", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        hello,
        json!({
            "type": "hello",
            "version": 1,
            "server": name,
            "heartbeat_ms": 12_345,
            "limits": {"max_subscriptions": 77, "max_requests_per_sec": 33, "max_message_bytes": 65_536}
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_with_default_config_announces_the_documented_defaults() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect_raw(&server, "/v1/ws", None).await;
    let hello = c.recv().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["version"], 1);
    assert!(
        hello["server"]
            .as_str()
            .is_some_and(|s| s.starts_with("tickwire/")),
        "{hello}"
    );
    assert_eq!(hello["heartbeat_ms"], 15_000);
    assert_eq!(
        hello["limits"],
        json!({"max_subscriptions": 1024, "max_requests_per_sec": 20, "max_message_bytes": 1_048_576})
    );
}

// ------------------------------------------------------------ subscribe

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_quote_acks_then_sends_latest_as_snapshot_then_live_updates() {
    let server = Server::start(GatewayConfig::default()).await;
    let published: Vec<Update> = (1..=3).map(|s| server.quote(BTC, s)).collect();
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC],"snapshot":true,"throttle_ms":250}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":1,"channel":"quote","symbols":[BTC]})
    );
    let first = c.recv().await;
    assert_eq!(
        first,
        snap(&published[2]),
        "the snapshot is the latest update, flagged"
    );
    assert_eq!(seq(&first), 3);

    let live: Vec<Update> = (4..=6).map(|s| server.quote(BTC, s)).collect();
    let got = c.recv_until(|v| v["type"] == "quote" && seq(v) == 6).await;
    let mut last = seq(&first);
    for v in &got {
        assert!(is_data(v), "only updates follow: {v}");
        assert!(
            v.get("snapshot").is_none(),
            "a live update carries no snapshot field: {v}"
        );
        assert!(seq(v) > last, "seq rises after the snapshot: {v}");
        last = seq(v);
        assert_eq!(
            *v,
            obj(&live[(seq(v) - 4) as usize]),
            "live update is the published bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_lists_canonical_symbols_once() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":2,"channel":"quote","symbols":["Coinbase:btc-usd", BTC]}),
        )
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":2,"channel":"quote","symbols":[BTC]})
    );
    assert!(
        quiet(&mut c).await.is_empty(),
        "no snapshot without a value, no error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_snapshot_false_gets_no_snapshot_only_live() {
    let server = Server::start(GatewayConfig::default()).await;
    server.quote(BTC, 1);
    server.quote(BTC, 2);
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":"s","channel":"quote","symbols":[BTC],"snapshot":false}),
        )
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":"s","channel":"quote","symbols":[BTC]})
    );
    assert!(
        quiet(&mut c).await.is_empty(),
        "no snapshot with snapshot:false"
    );
    let u3 = server.quote(BTC, 3);
    let v = c.recv().await;
    assert_eq!(v, obj(&u3), "the next live update, without a snapshot flag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_defaults_to_true() {
    let server = Server::start(GatewayConfig::default()).await;
    let u = server.quote(ETH, 9);
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","channel":"quote","symbols":[ETH]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","channel":"quote","symbols":[ETH]}),
        "no id in, no id out"
    );
    assert_eq!(c.recv().await, snap(&u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_a_topic_without_a_value_gets_only_the_ack() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":5,"channel":"ticker","symbols":[KR_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":5,"channel":"ticker","symbols":[KR_BTC]})
    );
    assert!(quiet(&mut c).await.is_empty(), "nothing to snapshot yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trade_snapshot_is_the_latest_trade_flagged_then_every_trade() {
    let server = Server::start(GatewayConfig::default()).await;
    let trades: Vec<Update> = (1..=3).map(|s| server.trade(BN_BTC, s)).collect();
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"trade","symbols":[BN_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":1,"channel":"trade","symbols":[BN_BTC]})
    );
    assert_eq!(c.recv().await, snap(&trades[2]));
    let live: Vec<Update> = (4..=8).map(|s| server.trade(BN_BTC, s)).collect();
    for u in &live {
        assert_eq!(c.recv().await, obj(u), "every trade, in order, unflagged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_live_never_repeat_a_seq_while_publishing_concurrently() {
    const N: u64 = 2_000;
    let server = Server::start(GatewayConfig::default()).await;
    server.quote(BTC, 1);
    server.trade(BN_BTC, 1);
    let (bus, epoch) = (server.bus.clone(), server.epoch.clone());
    let publisher = tokio::spawn(async move {
        for s in 2..=N {
            bus.publish(tickwire_bus::conformance::quote(&inst(BTC), s, &epoch))
                .expect("publish quote");
            bus.publish(tickwire_bus::conformance::trade(&inst(BN_BTC), s, &epoch))
                .expect("publish trade");
            if s % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut c = Client::connect(&server).await;
    c.send(json!({"op":"subscribe","id":"q","channel":"quote","symbols":[BTC]}))
        .await;
    c.send(json!({"op":"subscribe","id":"t","channel":"trade","symbols":[BN_BTC]}))
        .await;
    let mut quote_last: Option<u64> = None;
    let mut trade_last: Option<u64> = None;
    let mut acks = 0;
    while quote_last != Some(N) || trade_last != Some(N) {
        let v = c.recv().await;
        match v["type"].as_str() {
            Some("subscribed") => acks += 1,
            Some("quote") => {
                if let Some(prev) = quote_last {
                    assert!(
                        seq(&v) > prev,
                        "quote seq never repeats or goes back: {prev} then {v}"
                    );
                    assert!(
                        v.get("snapshot").is_none(),
                        "only the first quote is a snapshot: {v}"
                    );
                }
                quote_last = Some(seq(&v));
            }
            Some("trade") => {
                match trade_last {
                    Some(prev) => {
                        assert_eq!(
                            seq(&v),
                            prev + 1,
                            "trades after the snapshot: no duplicate, no hole: {v}"
                        );
                        assert!(
                            v.get("snapshot").is_none(),
                            "only the first trade is a snapshot: {v}"
                        );
                    }
                    None => assert_eq!(v["snapshot"], true, "the first trade is the snapshot: {v}"),
                }
                trade_last = Some(seq(&v));
            }
            _ => panic!("unexpected message {v}"),
        }
    }
    assert_eq!(acks, 2);
    publisher.await.expect("publisher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_wildcard_expands_to_every_instrument_of_that_venue_only() {
    let server = Server::start(GatewayConfig::default()).await;
    let first: Vec<Update> = SYMBOLS.iter().map(|s| server.quote(s, 1)).collect();
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":"v","channel":"quote","symbols":["binance:*"]}))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["id"], "v");
    assert_eq!(ack["channel"], "quote");
    assert_eq!(
        sorted(&ack["symbols"]),
        strings(&[BN_BTC, BN_ETH]),
        "binance:* lists the binance instruments"
    );

    let mut snaps = vec![c.recv().await, c.recv().await];
    snaps.sort_by_key(|v| v["symbol"].as_str().map(str::to_owned));
    assert_eq!(
        snaps,
        vec![snap(&first[2]), snap(&first[3])],
        "a snapshot per binance instrument"
    );

    let second: Vec<Update> = SYMBOLS.iter().map(|s| server.quote(s, 2)).collect();
    let mut want: BTreeSet<&str> = [BN_BTC, BN_ETH].into();
    while !want.is_empty() {
        let v = c.recv().await;
        let sym = v["symbol"].as_str().unwrap_or_default().to_owned();
        assert!(
            want.remove(sym.as_str()),
            "only binance instruments, once each: {v}"
        );
        let i = SYMBOLS
            .iter()
            .position(|s| *s == sym)
            .expect("known symbol");
        assert_eq!(v, obj(&second[i]));
    }
    assert!(quiet(&mut c).await.is_empty(), "no other venue's quotes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_wildcard_and_explicit_symbol_are_listed_once() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c.subscribe(json!({"op":"subscribe","id":3,"channel":"book","symbols":[BTC, "coinbase:*", "kraken:*"]})).await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["id"], 3);
    assert_eq!(ack["channel"], "book");
    assert_eq!(sorted(&ack["symbols"]), strings(&[BTC, ETH, KR_BTC]));
    assert!(quiet(&mut c).await.is_empty());
}

// ------------------------------------------------------------------ ids

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_and_numeric_ids_are_echoed_exactly() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    for id in [
        json!("abc"),
        json!(""),
        json!(42),
        json!(0),
        json!(-7),
        json!(12_345_678_901_u64),
        json!(1.5),
    ] {
        c.send(json!({"op":"ping","id":id})).await;
        let v = c.recv().await;
        assert_eq!(v["type"], "pong");
        assert_eq!(v["id"], id, "ping id echoed: {v}");
    }
    c.send(json!({"op":"ping"})).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "pong");
    assert!(v.get("id").is_none(), "no id in, no id out: {v}");

    let ack = c
        .subscribe(json!({"op":"subscribe","id":"sub-1","channel":"trade","symbols":[BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":"sub-1","channel":"trade","symbols":[BTC]})
    );
    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":99,"channel":"trade","symbols":[BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"unsubscribed","id":99,"channel":"trade","symbols":[BTC]})
    );
    let list = c.subscribe(json!({"op":"list","id":"L"})).await;
    assert_eq!(list["type"], "symbols");
    assert_eq!(list["id"], "L");
    let err = c.subscribe(json!({"op":"nope","id":"e-1"})).await;
    assert_error(&err, "unknown_op", Some(json!("e-1")));
}

// ------------------------------------------------------ partial success

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_subscribes_the_valid_and_names_the_invalid_in_one_error() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({
            "op":"subscribe","id":7,"channel":"quote",
            "symbols":[BTC, "nasdaq:AAPL-USD", "not a symbol", KR_BTC, "nasdaq:*"]
        }))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["id"], 7);
    assert_eq!(ack["channel"], "quote");
    assert_eq!(sorted(&ack["symbols"]), strings(&[BTC, KR_BTC]));
    let err = c.recv().await;
    assert_error(&err, "unknown_symbol", Some(json!(7)));
    assert_eq!(
        sorted(&err["symbols"]),
        strings(&["nasdaq:AAPL-USD", "not a symbol", "nasdaq:*"])
    );
    assert!(quiet(&mut c).await.is_empty(), "exactly one error");

    let u = server.quote(KR_BTC, 1);
    assert_eq!(c.recv().await, obj(&u), "the valid symbols are subscribed");
    let u = server.quote(BTC, 1);
    assert_eq!(c.recv().await, obj(&u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_valid_symbol_gets_only_the_error_and_subscribes_nothing() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let err = c
        .subscribe(json!({"op":"subscribe","id":"none","channel":"quote","symbols":["nasdaq:AAPL-USD", "nasdaq:*", "bogus"]}))
        .await;
    assert_error(&err, "unknown_symbol", Some(json!("none")));
    assert_eq!(
        sorted(&err["symbols"]),
        strings(&["nasdaq:AAPL-USD", "nasdaq:*", "bogus"])
    );
    assert!(
        quiet(&mut c).await.is_empty(),
        "no subscribed, no second error"
    );
    assert_eq!(server.gateway().bus_topics(), 0, "nothing subscribed");
}

// -------------------------------------------------------- resubscribe

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_is_not_an_error_and_updates_the_throttle() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":1,"channel":"quote","symbols":[BTC]})
    );
    // The subscription is registered before its ack is sent, so what
    // follows the ack is live.
    assert!(c.sync().await.is_empty());
    let u1 = server.quote(BTC, 1);
    assert_eq!(c.recv().await, obj(&u1), "unthrottled: sent at once");

    // Same topic again, now capped at one update a minute.
    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":2,"channel":"quote","symbols":[BTC],"throttle_ms":60_000}),
        )
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":2,"channel":"quote","symbols":[BTC]})
    );
    assert!(
        quiet(&mut c).await.is_empty(),
        "no error, and no repeated seq"
    );

    // The cap counts from the last send (seq 1, just now), so nothing
    // more goes out within the minute.
    server.quote(BTC, 2);
    server.quote(BTC, 3);
    assert!(
        quiet(&mut c).await.is_empty(),
        "the new 60 s throttle holds further updates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_lifting_the_throttle_releases_held_updates() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC],"throttle_ms":60_000}),
        )
        .await;
    assert_eq!(ack["type"], "subscribed");
    // The subscription is registered before its ack is sent, so what
    // follows the ack is live.
    assert!(c.sync().await.is_empty());
    let u1 = server.quote(BTC, 1);
    assert_eq!(c.recv().await, obj(&u1));
    server.quote(BTC, 2);
    assert!(quiet(&mut c).await.is_empty(), "held by the 60 s throttle");

    // throttle_ms 0 means no cap: what is held, and what comes next, flows
    // now, not when the old 60 s interval ends.
    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":2,"channel":"quote","symbols":[BTC],"throttle_ms":0}),
        )
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":2,"channel":"quote","symbols":[BTC]})
    );
    let u3 = server.quote(BTC, 3);
    // Bounded as a whole: the harness's per-message timeout restarts at
    // every heartbeat ping, so on its own it would wait out the old minute.
    let got = tokio::time::timeout(WAIT, c.recv_until(|v| v["type"] == "quote" && seq(v) == 3))
        .await
        .expect(
            "after throttle_ms 0, updates flow without waiting for the old 60 s interval to end",
        );
    assert_eq!(got.last(), Some(&obj(&u3)));
}

// -------------------------------------------------------- unsubscribe

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_lists_what_was_removed_and_no_update_of_it_follows() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC, KR_BTC],"snapshot":false}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    // Updates in flight right up to the unsubscribe.
    for s in 1..=20 {
        server.quote(BTC, s);
    }
    c.send(json!({"op":"unsubscribe","id":2,"channel":"quote","symbols":[BTC, BN_BTC]}))
        .await;
    let before = c.recv_until(|v| v["type"] == "unsubscribed").await;
    assert_eq!(
        before.last(),
        Some(&json!({"type":"unsubscribed","id":2,"channel":"quote","symbols":[BTC]})),
        "lists only what was removed"
    );
    for v in &before[..before.len() - 1] {
        assert!(
            v["type"] == "quote" && v["symbol"] == BTC,
            "only BTC quotes before the ack: {v}"
        );
    }
    for s in 21..=40 {
        server.quote(BTC, s);
    }
    let k = server.quote(KR_BTC, 1);
    let after = c.recv_until(|v| v["symbol"] == KR_BTC).await;
    assert_eq!(
        after,
        vec![obj(&k)],
        "the other topic still flows, the removed one does not"
    );
    assert!(
        quiet(&mut c).await.is_empty(),
        "no update of an unsubscribed topic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_of_a_topic_not_subscribed_is_an_empty_list_not_an_error() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":"u1","channel":"quote","symbols":[ETH]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"unsubscribed","id":"u1","channel":"quote","symbols":[]})
    );

    let ack = c
        .subscribe(
            json!({"op":"subscribe","id":1,"channel":"quote","symbols":[KR_BTC],"snapshot":false}),
        )
        .await;
    assert_eq!(ack["type"], "subscribed");
    // Same instrument, other channel: not subscribed there.
    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":"u2","channel":"trade","symbols":[KR_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"unsubscribed","id":"u2","channel":"trade","symbols":[]})
    );
    let u = server.quote(KR_BTC, 1);
    assert_eq!(
        c.recv().await,
        obj(&u),
        "the quote subscription is untouched"
    );

    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":"u3","channel":"quote","symbols":["kraken:*"]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"unsubscribed","id":"u3","channel":"quote","symbols":[KR_BTC]}),
        "venue:* removes"
    );
    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":"u4","channel":"quote","symbols":[KR_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"unsubscribed","id":"u4","channel":"quote","symbols":[]}),
        "twice is not an error"
    );
    server.quote(KR_BTC, 2);
    assert!(quiet(&mut c).await.is_empty());
}

// ----------------------------------------------------------- list, ping

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_replies_with_every_symbol_and_its_channels() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let v = c.subscribe(json!({"op":"list","id":3})).await;
    assert_eq!(v["type"], "symbols");
    assert_eq!(v["id"], 3);
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 3, "type, id, symbols: {v}");
    let list = v["symbols"].as_array().expect("symbols array");
    assert_eq!(list.len(), SYMBOLS.len());
    let mut names = Vec::new();
    for e in list {
        assert_eq!(
            e.as_object().map(|o| o.len()),
            Some(2),
            "symbol and channels only: {e}"
        );
        assert_eq!(e["channels"], json!(CHANNELS), "{e}");
        names.push(e["symbol"].as_str().expect("symbol").to_owned());
    }
    names.sort();
    assert_eq!(names, strings(&SYMBOLS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_pong_with_id_and_current_time_in_microseconds() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let before = now_us();
    let v = c.subscribe(json!({"op":"ping","id":4})).await;
    let after = now_us();
    assert_eq!(v["type"], "pong");
    assert_eq!(v["id"], 4);
    let ts = v["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("ts is an integer: {v}"));
    let window = 60_000_000;
    assert!(
        ts + window >= before && ts <= after + window,
        "ts {ts} µs is close to now ({before}..{after})"
    );
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "type, id, ts: {v}");
}

// --------------------------------------------------------------- errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_bad_request_and_the_connection_lives() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    let cases: &[(&str, Option<Value>)] = &[
        ("{not json", None),
        ("", None),
        ("[1,2,3]", None),
        ("\"ping\"", None),
        ("42", None),
        ("null", None),
        (r#"{"id":5}"#, Some(json!(5))),
        (r#"{"op":7,"id":6}"#, Some(json!(6))),
        (r#"{"op":"ping","id":{"a":1}}"#, None),
        (r#"{"op":"ping","id":[1]}"#, None),
        (
            r#"{"op":"subscribe","id":7,"channel":"quote","symbols":"coinbase:BTC-USD"}"#,
            Some(json!(7)),
        ),
        (
            r#"{"op":"subscribe","id":8,"channel":"quote","symbols":[1]}"#,
            Some(json!(8)),
        ),
        (
            r#"{"op":"subscribe","id":9,"channel":"quote","symbols":[]}"#,
            Some(json!(9)),
        ),
        (
            r#"{"op":"subscribe","id":10,"channel":"quote"}"#,
            Some(json!(10)),
        ),
        (
            r#"{"op":"subscribe","id":11,"symbols":["coinbase:BTC-USD"]}"#,
            Some(json!(11)),
        ),
        (
            r#"{"op":"subscribe","id":12,"channel":5,"symbols":["coinbase:BTC-USD"]}"#,
            Some(json!(12)),
        ),
        (
            r#"{"op":"subscribe","id":13,"channel":"quote","symbols":["coinbase:BTC-USD"],"snapshot":"yes"}"#,
            Some(json!(13)),
        ),
        (
            r#"{"op":"subscribe","id":14,"channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":-5}"#,
            Some(json!(14)),
        ),
        (
            r#"{"op":"subscribe","id":15,"channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":"250"}"#,
            Some(json!(15)),
        ),
        (
            r#"{"op":"subscribe","id":16,"channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":60001}"#,
            Some(json!(16)),
        ),
        (
            r#"{"op":"subscribe","id":17,"channel":"quote","symbols":["coinbase:BTC-USD"],"from_seq":{"coinbase:BTC-USD":1}}"#,
            Some(json!(17)),
        ),
        (
            r#"{"op":"subscribe","id":18,"channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":{"coinbase:BTC-USD":"x"}}"#,
            Some(json!(18)),
        ),
        (
            r#"{"op":"subscribe","id":19,"channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":{"kraken:BTC-USD":1}}"#,
            Some(json!(19)),
        ),
        (
            r#"{"op":"unsubscribe","id":20,"channel":"quote","symbols":7}"#,
            Some(json!(20)),
        ),
        // Unknown fields: a typo is reported, not ignored.
        (
            r#"{"op":"subscribe","id":21,"channel":"quote","symbols":["coinbase:BTC-USD"],"throtle_ms":250}"#,
            Some(json!(21)),
        ),
        (r#"{"op":"ping","id":22,"extra":true}"#, Some(json!(22))),
        (
            r#"{"op":"list","id":"l","channel":"quote"}"#,
            Some(json!("l")),
        ),
        (
            r#"{"op":"unsubscribe","id":24,"channel":"quote","symbols":["coinbase:BTC-USD"],"snapshot":true}"#,
            Some(json!(24)),
        ),
    ];
    for (text, id) in cases {
        send_text(&mut c, text).await;
        let v = c.recv().await;
        assert_eq!(v["code"], "bad_request", "request {text:?} got {v}");
        assert_error(&v, "bad_request", id.clone());
        assert!(
            c.sync().await.is_empty(),
            "one error per request, and a ping still answers after {text:?}"
        );
    }
    assert_eq!(
        server.gateway().bus_topics(),
        0,
        "no malformed subscribe subscribed anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frame_gets_bad_request_and_the_connection_lives() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    c.send_raw(Message::Binary(br#"{"op":"ping","id":1}"#.to_vec().into()))
        .await;
    let v = c.recv().await;
    assert_error(&v, "bad_request", None);
    assert!(c.sync().await.is_empty(), "a ping still answers");
    // And the connection still serves data.
    let ack = c
        .subscribe(json!({"op":"subscribe","id":2,"channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    // The subscription is registered before its ack is sent, so what
    // follows the ack is live.
    assert!(c.sync().await.is_empty());
    let u = server.quote(BTC, 1);
    assert_eq!(c.recv().await, obj(&u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_op_is_named_and_the_connection_lives() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    for (req, id) in [
        (json!({"op":"subscribe_all","id":"u1"}), Some(json!("u1"))),
        (json!({"op":"PING","id":2}), Some(json!(2))),
        (json!({"op":""}), None),
    ] {
        let v = c.subscribe(req.clone()).await;
        assert_error(&v, "unknown_op", id);
        assert!(
            c.sync().await.is_empty(),
            "a ping still answers after {req}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_is_named_and_the_connection_lives() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    let v = c
        .subscribe(json!({"op":"subscribe","id":3,"channel":"candles","symbols":[BTC]}))
        .await;
    assert_error(&v, "unknown_channel", Some(json!(3)));
    assert!(c.sync().await.is_empty());
    let v = c
        .subscribe(json!({"op":"subscribe","id":"Q","channel":"Quote","symbols":[BTC]}))
        .await;
    assert_error(&v, "unknown_channel", Some(json!("Q")));
    assert!(c.sync().await.is_empty());
    let v = c
        .subscribe(json!({"op":"unsubscribe","id":4,"channel":"candles","symbols":[BTC]}))
        .await;
    assert_error(&v, "unknown_channel", Some(json!(4)));
    assert!(c.sync().await.is_empty());
    assert_eq!(server.gateway().bus_topics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbol_is_named_and_the_connection_lives() {
    let server = Server::start(roomy()).await;
    let mut c = Client::connect(&server).await;
    let v = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"trade","symbols":["kraken:DOGE-USD"]}))
        .await;
    assert_error(&v, "unknown_symbol", Some(json!(1)));
    assert_eq!(v["symbols"], json!(["kraken:DOGE-USD"]));
    assert!(c.sync().await.is_empty(), "a ping still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_subscriptions_refuses_the_whole_request() {
    let cfg = GatewayConfig {
        max_subscriptions: 3,
        ..roomy()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC, ETH]}))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");

    // binance:* would add two: 4 > 3. Nothing of it is subscribed.
    let v = c
        .subscribe(json!({"op":"subscribe","id":2,"channel":"trade","symbols":["binance:*"]}))
        .await;
    assert_error(&v, "too_many_subscriptions", Some(json!(2)));
    assert!(
        c.sync().await.is_empty(),
        "a ping still answers; no subscribed"
    );
    server.trade(BN_BTC, 1);
    server.trade(BN_ETH, 1);
    assert!(
        quiet(&mut c).await.is_empty(),
        "the refused request subscribed nothing"
    );

    // Repeating held topics adds nothing and is fine at the limit.
    let ack = c
        .subscribe(json!({"op":"subscribe","id":3,"channel":"quote","symbols":[BTC, ETH]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":3,"channel":"quote","symbols":[BTC, ETH]})
    );
    let ack = c
        .subscribe(json!({"op":"subscribe","id":4,"channel":"quote","symbols":[KR_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":4,"channel":"quote","symbols":[KR_BTC]})
    );
    let v = c
        .subscribe(json!({"op":"subscribe","id":5,"channel":"quote","symbols":[BN_BTC]}))
        .await;
    assert_error(&v, "too_many_subscriptions", Some(json!(5)));
    assert!(c.sync().await.is_empty());

    // Room again after an unsubscribe.
    let ack = c
        .subscribe(json!({"op":"unsubscribe","id":6,"channel":"quote","symbols":[KR_BTC]}))
        .await;
    assert_eq!(ack["symbols"], json!([KR_BTC]));
    let ack = c
        .subscribe(json!({"op":"subscribe","id":7,"channel":"quote","symbols":[BN_BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":7,"channel":"quote","symbols":[BN_BTC]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_subscriptions_counts_venue_wildcard_expansion() {
    let cfg = GatewayConfig {
        max_subscriptions: 1,
        ..roomy()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    let v = c
        .subscribe(json!({"op":"subscribe","id":"w","channel":"quote","symbols":["coinbase:*"]}))
        .await;
    assert_error(&v, "too_many_subscriptions", Some(json!("w")));
    assert!(c.sync().await.is_empty(), "a ping still answers");
    assert_eq!(server.gateway().bus_topics(), 0, "nothing subscribed");
    let ack = c
        .subscribe(json!({"op":"subscribe","id":"k","channel":"quote","symbols":["kraken:*"]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":"k","channel":"quote","symbols":[KR_BTC]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_rate_gets_rate_limited_and_the_connection_lives() {
    const RATE: u32 = 5;
    const BURST: u64 = 15; // 5 allowed, 10 refused: at the edge of, not past, the close threshold (2 × rate)
    let cfg = GatewayConfig {
        max_requests_per_sec: RATE,
        ..GatewayConfig::default()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    for id in 0..BURST {
        c.ws.feed(Message::Text(
            json!({"op":"ping","id":id}).to_string().into(),
        ))
        .await
        .expect("feed");
    }
    c.ws.flush().await.expect("flush");
    let mut replies = Vec::new();
    for _ in 0..BURST {
        replies.push(c.recv().await);
    }
    for (i, v) in replies.iter().take(RATE as usize).enumerate() {
        assert_eq!(
            *v,
            json!({"type":"pong","id":i,"ts":v["ts"]}),
            "the burst allowance is answered"
        );
    }
    let mut limited = 0;
    for v in &replies[RATE as usize..] {
        if v["type"] == "pong" {
            continue; // a token refilled during the burst
        }
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], "rate_limited", "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(v.get("symbols").is_none(), "{v}");
        limited += 1;
    }
    assert!(
        limited >= 1,
        "requests past the burst are refused with rate_limited: {replies:?}"
    );

    // The bucket refills at RATE per second: after a pause the connection serves again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(c.sync().await.is_empty(), "a ping answers after the pause");
    let ack = c
        .subscribe(json!({"op":"subscribe","id":"after","channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_abuse_past_the_rate_closes_with_4029() {
    let cfg = GatewayConfig {
        max_requests_per_sec: 2,
        ..GatewayConfig::default()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    for id in 0..40 {
        c.ws.feed(Message::Text(
            json!({"op":"ping","id":id}).to_string().into(),
        ))
        .await
        .expect("feed");
    }
    c.ws.flush().await.expect("flush");
    assert_eq!(c.closed_with().await, 4029);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_count_against_the_rate_too() {
    let cfg = GatewayConfig {
        max_requests_per_sec: 2,
        ..GatewayConfig::default()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    for _ in 0..40 {
        c.ws.feed(Message::Binary(vec![1u8, 2, 3].into()))
            .await
            .expect("feed");
    }
    c.ws.flush().await.expect("flush");
    assert_eq!(c.closed_with().await, 4029);
}

/// Sends one message that may be refused mid-way (the server closes while
/// it is still being written); the outcome is judged by the close frame.
async fn send_oversized(c: &mut Client, text: String) {
    let _ = tokio::time::timeout(WAIT, c.ws.send(Message::Text(text.into()))).await;
}

fn padded_ping(id: u64, len: usize) -> String {
    let mut text = json!({"op":"ping","id":id}).to_string();
    while text.len() < len {
        text.push(' ');
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_message_bytes_closes_with_1009() {
    let cfg = GatewayConfig {
        max_message_bytes: 4096,
        ..GatewayConfig::default()
    };
    let server = Server::start(cfg).await;
    let mut c = Client::connect(&server).await;
    // Under the limit is served.
    send_text(&mut c, &padded_ping(1, 4000)).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "pong", "{v}");
    assert_eq!(v["id"], 1);
    // Over it closes.
    send_oversized(&mut c, padded_ping(2, 5000)).await;
    assert_eq!(c.closed_with().await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_default_1_mib_closes_with_1009() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    send_oversized(&mut c, padded_ping(1, 1_153_434)).await; // ~1.1 MiB
    assert_eq!(c.closed_with().await, 1009);
}

// --------------------------------------------------------------- status

fn stale(symbol: &str) -> Status {
    Status {
        instrument: inst(symbol),
        state: FeedState::Stale,
        reason: "feed_disconnected".into(),
    }
}

fn live(symbol: &str) -> Status {
    Status {
        instrument: inst(symbol),
        state: FeedState::Live,
        reason: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_stale_then_live_reaches_subscribed_clients_once_each() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut a = Client::connect(&server).await;
    for channel in ["quote", "trade", "book"] {
        let ack = a
            .subscribe(json!({"op":"subscribe","channel":channel,"symbols":[BTC]}))
            .await;
        assert_eq!(ack["type"], "subscribed");
    }
    assert!(a.sync().await.is_empty());
    let mut b = Client::connect(&server).await;
    let ack = b
        .subscribe(json!({"op":"subscribe","channel":"quote","symbols":[KR_BTC, ETH]}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    assert!(b.sync().await.is_empty());

    server.bus.publish_status(stale(BTC)).expect("status");
    assert_eq!(
        a.recv().await,
        json!({"type":"status","symbol":BTC,"state":"stale","reason":"feed_disconnected"})
    );
    assert!(
        quiet(&mut a).await.is_empty(),
        "once per client, though it holds three channels of the instrument"
    );
    assert!(
        quiet(&mut b).await.is_empty(),
        "a client not subscribed to the instrument hears nothing"
    );

    server.bus.publish_status(live(BTC)).expect("status");
    assert_eq!(
        a.recv().await,
        json!({"type":"status","symbol":BTC,"state":"live"})
    );
    assert!(quiet(&mut a).await.is_empty(), "once per client");
    assert!(quiet(&mut b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_a_stale_instrument_gets_the_status_after_subscribed() {
    let server = Server::start(GatewayConfig::default()).await;
    server.quote(BTC, 1);
    // A first client shows when the gateway has taken the status in.
    let mut a = Client::connect(&server).await;
    let ack = a
        .subscribe(json!({"op":"subscribe","channel":"quote","symbols":[BTC],"snapshot":false}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    assert!(a.sync().await.is_empty());
    server.bus.publish_status(stale(BTC)).expect("status");
    let stale_msg =
        json!({"type":"status","symbol":BTC,"state":"stale","reason":"feed_disconnected"});
    assert_eq!(a.recv().await, stale_msg);

    let mut b = Client::connect(&server).await;
    let ack = b
        .subscribe(json!({"op":"subscribe","id":"k","channel":"quote","symbols":[KR_BTC]}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    assert!(
        quiet(&mut b).await.is_empty(),
        "a live instrument brings no status"
    );

    let ack = b
        .subscribe(json!({"op":"subscribe","id":5,"channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(
        ack,
        json!({"type":"subscribed","id":5,"channel":"quote","symbols":[BTC]}),
        "subscribed comes first"
    );
    let rest = b.recv_until(|v| v["type"] == "status").await;
    assert_eq!(rest.last(), Some(&stale_msg));
    for v in &rest[..rest.len() - 1] {
        assert_eq!(
            v["snapshot"], true,
            "only the snapshot may precede the status: {v}"
        );
    }
    for v in quiet(&mut b).await {
        assert_eq!(
            v["snapshot"], true,
            "nothing but the snapshot besides the one status: {v}"
        );
    }

    server.bus.publish_status(live(BTC)).expect("status");
    let live_msg = json!({"type":"status","symbol":BTC,"state":"live"});
    assert_eq!(a.recv().await, live_msg);
    assert_eq!(b.recv().await, live_msg);
}

// -------------------------------------------------------------- batching

/// Subscribes to every quote (topics already followed, so the whole reply
/// is ready at once), reads until the ack and five snapshots have arrived,
/// then unsubscribes. Returns the frames read.
async fn subscribe_round(c: &mut Client, round: u64) -> Vec<String> {
    c.send(json!({"op":"subscribe","id":round,"channel":"quote","symbols":SYMBOLS}))
        .await;
    let mut frames = Vec::new();
    let (mut acked, mut snapshots) = (false, 0);
    while !acked || snapshots < SYMBOLS.len() {
        let frame = c.recv_frame().await;
        for v in objects(&frame) {
            if v["type"] == "subscribed" {
                assert_eq!(v["id"], round, "{v}");
                acked = true;
            } else {
                assert_eq!(v["snapshot"], true, "{v}");
                assert!(acked, "subscribed comes before the snapshots: {v}");
                snapshots += 1;
            }
        }
        frames.push(frame);
    }
    c.send(json!({"op":"unsubscribe","id":round,"channel":"quote","symbols":SYMBOLS}))
        .await;
    loop {
        let frame = c.recv_frame().await;
        let done = objects(&frame).iter().any(|v| v["type"] == "unsubscribed");
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

async fn server_with_followed_quotes() -> (Server, Client) {
    let server = Server::start(roomy()).await;
    for s in SYMBOLS {
        server.quote(s, 1);
    }
    // Another client keeps every quote topic followed by the hub.
    let mut follower = Client::connect(&server).await;
    let ack = follower
        .subscribe(json!({"op":"subscribe","channel":"quote","symbols":SYMBOLS,"snapshot":false}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    assert!(follower.sync().await.is_empty());
    (server, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_connection_may_carry_several_newline_separated_objects_per_frame() {
    let (server, _follower) = server_with_followed_quotes().await;
    let mut c = Client::connect_raw(&server, "/v1/ws?batch=1", None).await;
    let hello = objects(&c.recv_frame().await);
    assert_eq!(hello[0]["type"], "hello");
    let mut most = hello.len();
    for round in 0..20 {
        for frame in subscribe_round(&mut c, round).await {
            assert!(
                !frame.is_empty() && !frame.ends_with('\n'),
                "no empty object: {frame:?}"
            );
            most = most.max(objects(&frame).len());
        }
        if most > 1 {
            break;
        }
    }
    assert!(
        most > 1,
        "a batching client gets several objects in one frame when several are ready at once"
    );
    // Pings in a burst: every pong arrives, in order, whatever the framing.
    for id in 0..10 {
        c.send(json!({"op":"ping","id":id})).await;
    }
    let mut ids = Vec::new();
    while ids.len() < 10 {
        for v in objects(&c.recv_frame().await) {
            assert_eq!(v["type"], "pong", "{v}");
            ids.push(v["id"].as_u64().expect("id"));
        }
    }
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_connection_sends_exactly_one_object_per_frame() {
    let (server, _follower) = server_with_followed_quotes().await;
    let mut c = Client::connect_raw(&server, "/v1/ws", None).await;
    let mut frames = vec![c.recv_frame().await];
    for round in 0..5 {
        frames.extend(subscribe_round(&mut c, round).await);
    }
    for id in 0..10 {
        c.send(json!({"op":"ping","id":id})).await;
    }
    for _ in 0..10 {
        frames.push(c.recv_frame().await);
    }
    for frame in &frames {
        let v: Value = serde_json::from_str(frame)
            .unwrap_or_else(|e| panic!("frame is not one JSON value ({e}): {frame:?}"));
        assert!(v.is_object(), "frame is one object: {frame:?}");
        assert!(
            !frame.contains('\n'),
            "no newline-separated batch: {frame:?}"
        );
    }
}
