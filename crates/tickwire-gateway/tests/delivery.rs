//! Delivery under pressure, end to end through a real socket: conflation
//! for a client that stops reading, exact trade gaps, `from_seq` resume
//! across the history/live seam, throttle, and the slow-consumer close.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server, WAIT};
use serde_json::{Value, json};
use tickwire_bus::MemoryBusConfig;
use tickwire_gateway::GatewayConfig;

const BTC: &str = "coinbase:BTC-USD";

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

/// Reads trade and gap messages until `last` is covered; returns them.
async fn read_trades_until(c: &mut Client, last: u64) -> Vec<Value> {
    c.recv_until(|v| {
        (v["type"] == "trade" && seq(v) == last) || (v["type"] == "gap" && v["to_seq"] == last)
    })
    .await
}

/// Checks that trades and gaps cover `from..=to` exactly once, in order.
fn assert_exact_cover(msgs: &[Value], from: u64, to: u64) -> usize {
    let mut next = from;
    let mut gaps = 0;
    let mut prev_gap = false;
    for v in msgs {
        match v["type"].as_str() {
            Some("trade") => {
                assert_eq!(seq(v), next, "trades contiguous: {v}");
                next += 1;
                prev_gap = false;
            }
            Some("gap") => {
                assert!(!prev_gap, "two gaps in a row: one episode split in two");
                assert_eq!(
                    v["from_seq"].as_u64(),
                    Some(next),
                    "gap starts where trades stopped: {v}"
                );
                next = v["to_seq"].as_u64().expect("to_seq") + 1;
                gaps += 1;
                prev_gap = true;
            }
            _ => {}
        }
    }
    assert_eq!(next, to + 1, "everything up to {to} covered");
    gaps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_quote_client_is_conflated_while_fast_client_gets_everything() {
    // Lockstep (publish one, read one) 100 000 times: no write coalescing,
    // or every round trip would wait out the interval.
    let server = Server::start(GatewayConfig {
        coalesce_us: 0,
        ..GatewayConfig::default()
    })
    .await;
    server.quote(BTC, 1);
    let mut fast = Client::connect(&server).await;
    let mut slow = Client::connect_raw(&server, "/v1/ws", Some(4096)).await;
    let sub = json!({"op":"subscribe","channel":"quote","symbols":[BTC],"snapshot":false});
    fast.subscribe(sub.clone()).await;
    slow.send(sub).await;
    server
        .until("both subscribed", |g| {
            g.bus_topics() == 1 && g.connection_depths().len() == 2
        })
        .await;
    // Let the slow client's subscribe be processed before it stops reading.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = 100_000u64;
    let mut max_depth = 0;
    for n in 2..=total + 1 {
        server.quote(BTC, n);
        // Lockstep with the fast client: it must see every single update.
        let v = fast.recv().await;
        assert_eq!(
            (v["type"].as_str(), seq(&v)),
            (Some("quote"), n),
            "fast client gets every update"
        );
        if n % 1000 == 0 {
            let depths = server.gateway().connection_depths();
            max_depth = max_depth.max(depths.iter().map(|(_, d)| *d).max().unwrap_or(0));
        }
    }
    assert!(
        max_depth <= 1,
        "outbox held {max_depth} frames for one subscription"
    );
    // The slow client now reads: old frames still in its socket, then the
    // newest value, with jumps in seq where conflation replaced values.
    let got = slow
        .recv_until(|v| v["type"] == "quote" && seq(v) == total + 1)
        .await;
    let seqs: Vec<u64> = got
        .iter()
        .filter(|v| v["type"] == "quote")
        .map(seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq only rises");
    assert!(
        seqs.windows(2).any(|w| w[1] > w[0] + 1),
        "conflation shows as a jump in seq"
    );
    assert!(
        (seqs.len() as u64) < total,
        "the slow client got fewer frames than updates: {}",
        seqs.len()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trade_overflow_gives_exact_gaps_and_intact_trades() {
    let config = GatewayConfig {
        trade_queue_len: 200,
        ..GatewayConfig::default()
    };
    let server = Server::start(config).await;
    let mut slow = Client::connect_raw(&server, "/v1/ws", Some(4096)).await;
    slow.send(json!({"op":"subscribe","channel":"trade","symbols":[BTC],"snapshot":false}))
        .await;
    server.until("subscribed", |g| g.bus_topics() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = 60_000u64;
    for n in 1..=total {
        server.trade(BTC, n);
        if n % 5_000 == 0 {
            // Give the hub's pump time to keep up with the bus.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server
        .until("queue full", |g| {
            g.connection_depths().iter().any(|(_, d)| *d >= 200)
        })
        .await;
    let depth = server
        .gateway()
        .connection_depths()
        .iter()
        .map(|(_, d)| *d)
        .max()
        .unwrap_or(0);
    assert!(depth <= 201, "trade queue bounded: {depth}");
    let msgs = read_trades_until(&mut slow, total).await;
    let gaps = assert_exact_cover(&msgs[2..], 1, total);
    assert!(gaps >= 1, "a client this slow must have been told of a gap");
    assert!(
        msgs.iter()
            .filter(|v| v["type"] == "gap")
            .all(|v| v["reason"] == "slow_consumer"
                && v["channel"] == "trade"
                && v["symbol"] == BTC)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_seq_inside_history_is_contiguous_across_the_seam() {
    let server = Server::start(GatewayConfig::default()).await;
    for n in 1..=500 {
        server.trade(BTC, n);
    }
    let mut c = Client::connect(&server).await;
    // A publisher keeps going while the client resumes: the seam between
    // history and live must show no hole and no duplicate.
    let bus = server.bus.clone();
    let epoch = server.epoch.clone();
    let publisher = tokio::spawn(async move {
        for n in 501..=3000u64 {
            let u = tickwire_bus::conformance::trade(&common::inst(BTC), n, &epoch);
            tickwire_bus::Bus::publish(&*bus, u).expect("publish");
            if n % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let ack = c.subscribe(json!({"op":"subscribe","id":7,"channel":"trade","symbols":[BTC],"from_seq":{BTC: 123}})).await;
    assert_eq!(ack["type"], "subscribed");
    publisher.await.expect("publisher");
    let msgs = read_trades_until(&mut c, 3000).await;
    assert!(
        msgs.iter().all(|v| v.get("snapshot").is_none()),
        "from_seq replaces the snapshot"
    );
    assert_eq!(
        assert_exact_cover(&msgs, 123, 3000),
        0,
        "no gap inside history"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_seq_outside_history_gives_a_gap() {
    let bus = MemoryBusConfig {
        history_len: 100,
        ..MemoryBusConfig::default()
    };
    let server = Server::start_with(GatewayConfig::default(), bus, true).await;
    for n in 1..=300 {
        server.trade(BTC, n);
    }
    let mut c = Client::connect(&server).await;
    c.subscribe(json!({"op":"subscribe","channel":"trade","symbols":[BTC],"from_seq":{BTC: 5}}))
        .await;
    let first = c.recv().await;
    assert_eq!(first["type"], "gap");
    assert_eq!(
        (first["from_seq"].as_u64(), first["to_seq"].as_u64()),
        (Some(5), Some(200))
    );
    assert_eq!(first["reason"], "history_expired");
    let rest = read_trades_until(&mut c, 300).await;
    assert_exact_cover(&rest, 201, 300);
    server.trade(BTC, 301);
    assert_eq!(seq(&c.recv().await), 301, "then live");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_caps_rate_and_ends_on_the_newest_value() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let throttle_ms = 200u64;
    c.subscribe(json!({"op":"subscribe","channel":"quote","symbols":[BTC],"snapshot":false,"throttle_ms":throttle_ms})).await;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(1000) {
        n += 1;
        server.quote(BTC, n);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    let got = c.recv_until(|v| v["type"] == "quote" && seq(v) == n).await;
    let window = Instant::now().duration_since(start);
    let quotes: Vec<&Value> = got.iter().filter(|v| v["type"] == "quote").collect();
    // At most one per interval over the time the updates were flowing and
    // read (plus the first, unthrottled one).
    let bound = window.as_millis() as u64 / throttle_ms + 1;
    assert!(
        quotes.len() as u64 <= bound,
        "{} quotes in {:?} with throttle {throttle_ms} ms (bound {bound})",
        quotes.len(),
        elapsed
    );
    assert!(quotes.len() >= 2, "some updates arrive");
    assert_eq!(
        seq(quotes.last().expect("some")),
        n,
        "the last update is the newest value"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_closed_with_4008() {
    let config = GatewayConfig {
        slow_consumer_timeout_ms: 500,
        close_grace_ms: 15_000,
        trade_queue_len: 100,
        ..GatewayConfig::default()
    };
    let server = Server::start(config).await;
    let mut slow = Client::connect_raw(&server, "/v1/ws", Some(4096)).await;
    slow.send(json!({"op":"subscribe","channel":"trade","symbols":[BTC, "coinbase:ETH-USD", "kraken:BTC-USD"]})).await;
    server.until("subscribed", |g| g.bus_topics() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Publish until the client's socket is full and its queues back up
    // (bounded in count and time), then stay silent past the timeout.
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    while !server
        .gateway()
        .connection_depths()
        .iter()
        .any(|(_, d)| *d >= 100)
    {
        assert!(
            Instant::now() < deadline && n < 1_000_000,
            "socket never filled"
        );
        for _ in 0..500 {
            n += 1;
            for s in [BTC, "coinbase:ETH-USD", "kraken:BTC-USD"] {
                server.trade(s, n);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Reading again drains what was buffered, then the close frame.
    assert_eq!(slow.closed_with().await, 4008);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_interest_follows_local_subscribers() {
    let server = Server::start(GatewayConfig::default()).await;
    assert_eq!(server.gateway().bus_topics(), 0);
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    let sub = json!({"op":"subscribe","channel":"quote","symbols":[BTC]});
    a.subscribe(sub.clone()).await;
    b.subscribe(sub).await;
    assert_eq!(
        server.gateway().bus_topics(),
        1,
        "one bus subscription for two clients"
    );
    a.subscribe(json!({"op":"unsubscribe","channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(server.gateway().bus_topics(), 1);
    drop(b);
    server
        .until("last subscriber gone", |g| g.bus_topics() == 0)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_share_the_load_and_every_client_gets_the_same_stream() {
    let server = Server::start(GatewayConfig {
        shards: 2,
        ..GatewayConfig::default()
    })
    .await;
    server.trade(BTC, 1);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(&server).await;
        let ack = c
            .subscribe(json!({"op":"subscribe","channel":"trade","symbols":[BTC]}))
            .await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        clients.push(c);
    }
    assert_eq!(
        server.gateway().shard_loads(),
        vec![2, 2],
        "connections spread over the shards"
    );
    // One bus subscription per shard that has a subscriber, not per client.
    server
        .until("both shards subscribed", |g| g.bus_topics() == 2)
        .await;
    // Trades, not quotes: a burst of quotes is conflated (rightly), a
    // burst of trades must arrive whole on every shard.
    for n in 2..=200 {
        server.trade(BTC, n);
    }
    for c in &mut clients {
        let got = c
            .recv_until(|v| v["type"] == "trade" && seq(v) == 200)
            .await;
        let seqs: Vec<u64> = got
            .iter()
            .filter(|v| v["type"] == "trade" && v["snapshot"] != true)
            .map(seq)
            .collect();
        assert_eq!(
            seqs,
            (2..=200).collect::<Vec<_>>(),
            "every update, in order"
        );
    }
    drop(clients);
    server
        .until("shards let go of the topic", |g| {
            g.bus_topics() == 0 && g.shard_loads() == vec![0, 0]
        })
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_gets_its_updates_coalesced_and_a_quiet_one_at_once() {
    let server = Server::start(GatewayConfig {
        coalesce_us: 200_000,
        ..GatewayConfig::default()
    })
    .await;
    server.trade(BTC, 1);
    let mut c = Client::connect_raw(&server, "/v1/ws?batch=1", None).await;
    c.send(json!({"op":"subscribe","channel":"trade","symbols":[BTC],"snapshot":false}))
        .await;
    while !c.recv_frame().await.contains("\"type\":\"subscribed\"") {}
    // Quiet for longer than the interval: the next update leaves at once,
    // alone in its frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.trade(BTC, 2);
    let first = c.recv_frame().await;
    assert_eq!(
        first.lines().count(),
        1,
        "a quiet client's update alone: {first}"
    );
    assert!(first.contains("\"seq\":2,"), "trade 2 first: {first}");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "not held for the coalescing interval"
    );
    // Now busy: everything offered within the interval shares a frame.
    for n in 3..=40 {
        server.trade(BTC, n);
    }
    let mut seqs = Vec::new();
    let mut frames = 0;
    while seqs.last() != Some(&40) {
        let frame = c.recv_frame().await;
        frames += 1;
        for line in frame.lines() {
            let v: Value = serde_json::from_str(line).expect("json line");
            seqs.push(seq(&v));
        }
    }
    assert_eq!(seqs, (3..=40).collect::<Vec<_>>(), "every trade, in order");
    assert!(frames <= 2, "38 trades in {frames} frames: not coalesced");
    server.stop().await;
}
