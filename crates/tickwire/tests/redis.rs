//! End-to-end over a real Redis: `tickwire ingest`, `tickwire gateway` and
//! `tickwire run --bus` as separate processes of the built binary, a
//! private `redis-server` per test, and real WebSocket clients.
//!
//! Acceptance of the Redis deployment shape: identical streams on two
//! gateways and resume across them, interest-based Redis subscriptions, a
//! Redis outage survived by every client and process, and an ingest
//! restart that continues the sequence.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tickwire_bus::testkit::RedisServer;

use common::{
    Client, Proc, Server, WAIT, assert_contiguous, deadline, epoch_seq, is_live_update, is_status,
    is_update, names_topic, poll_http_status, seq, serial, topic_channels, until_channels,
    until_http_status,
};

const BTC: &str = "coinbase:BTC-USD";
const ETH: &str = "coinbase:ETH-USD";
const BINANCE_BTC: &str = "binance:BTC-USDT";

/// Reads until the client has `trades` more trades and `quotes` more
/// quotes of `symbol`.
async fn collect(client: &mut Client, symbol: &str, trades: usize, quotes: usize) {
    let (mut t, mut q) = (0, 0);
    let what = format!("{trades} trades and {quotes} quotes of {symbol}");
    client
        .until(&what, deadline(), |v| {
            t += usize::from(is_update(v, "trade", symbol));
            q += usize::from(is_update(v, "quote", symbol));
            t >= trades && q >= quotes
        })
        .await;
}

/// `(epoch, seq)` of every update of a topic the client saw.
fn stream(client: &Client, kind: &str, symbol: &str) -> Vec<(String, u64)> {
    client
        .updates(kind, symbol)
        .into_iter()
        .map(epoch_seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_serve_identical_streams_and_resume_across_them() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = "e2e-two";
    let mut ingest = Proc::ingest("two-ingest", &url, prefix, &[]);
    let mut a = Proc::gateway("two-gateway-a", &url, prefix);
    let mut b = Proc::gateway("two-gateway-b", &url, prefix);
    a.until_status("/readyz", 200).await;
    b.until_status("/readyz", 200).await;

    let mut ca = Client::connect("client-a", &a).await;
    let mut cb = Client::connect("client-b", &b).await;
    for c in [&mut ca, &mut cb] {
        c.subscribe("trade", &[BTC], json!({"snapshot": false}))
            .await;
        c.subscribe("quote", &[BTC], json!({"snapshot": false}))
            .await;
    }
    tokio::join!(collect(&mut ca, BTC, 12, 30), collect(&mut cb, BTC, 12, 30));

    for kind in ["trade", "quote"] {
        let (sa, sb) = (stream(&ca, kind, BTC), stream(&cb, kind, BTC));
        let lo = sa[0].1.max(sb[0].1);
        let hi = sa[sa.len() - 1].1.min(sb[sb.len() - 1].1);
        let overlap = |s: &[(String, u64)]| -> Vec<(String, u64)> {
            s.iter()
                .filter(|(_, seq)| (lo..=hi).contains(seq))
                .cloned()
                .collect()
        };
        let (oa, ob) = (overlap(&sa), overlap(&sb));
        assert!(
            oa.len() >= 5,
            "{kind}: the two clients' streams overlap on seq {lo}..={hi} only: {sa:?} / {sb:?}"
        );
        assert_eq!(
            oa, ob,
            "{kind}: gateways A and B serve the same (epoch, seq) stream"
        );
    }
    let trades: Vec<u64> = stream(&ca, "trade", BTC).iter().map(|s| s.1).collect();
    assert_contiguous("trades on gateway A", &trades);
    assert!(
        ca.gaps().is_empty() && cb.gaps().is_empty(),
        "no gap: {:?} {:?}",
        ca.gaps(),
        cb.gaps()
    );

    // Read trades up to N on A, leave, resume on B from N + 1.
    let mut on_a = Client::connect("resumer-on-a", &a).await;
    on_a.subscribe("trade", &[BTC], json!({"snapshot": false}))
        .await;
    let mut n_trades = 0;
    let last = on_a
        .until("3 trades", deadline(), |v| {
            n_trades += usize::from(is_update(v, "trade", BTC));
            n_trades >= 3
        })
        .await;
    let (epoch, n) = epoch_seq(&last);
    on_a.close().await;
    // Trades go on while the client is away.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut on_b = Client::connect("resumer-on-b", &b).await;
    on_b.subscribe("trade", &[BTC], json!({"from_seq": {BTC: n + 1}}))
        .await;
    let target = n + 10;
    on_b.until(&format!("trade seq {target}"), deadline(), |v| {
        is_update(v, "trade", BTC) && seq(v) >= target
    })
    .await;
    let resumed = stream(&on_b, "trade", BTC);
    assert!(
        resumed.iter().all(|(e, _)| *e == epoch),
        "same epoch on both gateways ({epoch}): {resumed:?}"
    );
    let seqs: Vec<u64> = resumed.iter().map(|s| s.1).collect();
    assert_eq!(
        seqs[0],
        n + 1,
        "resume starts at N + 1 = {}: {seqs:?}",
        n + 1
    );
    assert_contiguous("resumed trades", &seqs);
    assert!(on_b.gaps().is_empty(), "no gap: {:?}", on_b.gaps());

    // SIGTERM stops every process cleanly.
    for p in [&mut b.proc, &mut a.proc, &mut ingest] {
        let status = p.terminate();
        assert!(status.success(), "{}: {status}; {}", p.name, p.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_subscribes_in_redis_only_to_topics_its_clients_want() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (url, port) = (redis.url(), redis.port());
    let prefix = "e2e-interest";
    let _ingest = Proc::ingest("interest-ingest", &url, prefix, &[]);
    let gateway = Proc::gateway("interest-gateway", &url, prefix);
    gateway.until_status("/readyz", 200).await;

    assert_eq!(
        topic_channels(port, false),
        Default::default(),
        "no client: no topic channel in Redis"
    );

    let mut c1 = Client::connect("interest-1", &gateway).await;
    c1.subscribe("quote", &[BTC], json!({})).await;
    c1.until("a quote", deadline(), |v| is_update(v, "quote", BTC))
        .await;
    let only_btc_quote = |set: &std::collections::BTreeSet<String>| {
        set.len() == 1 && set.iter().all(|c| names_topic(c, BTC, "quote"))
    };
    until_channels(
        port,
        false,
        "subscribed to the BTC quote only",
        only_btc_quote,
    )
    .await;

    // A second client of the same topic shares the one subscription.
    let mut c2 = Client::connect("interest-2", &gateway).await;
    c2.subscribe("quote", &[BTC], json!({})).await;
    until_channels(port, false, "one channel for two clients", only_btc_quote).await;

    // The first leaves the topic: the second still wants it.
    c1.unsubscribe("quote", &[BTC]).await;
    c2.read_for(Duration::from_millis(500)).await;
    assert!(
        only_btc_quote(&topic_channels(port, false)),
        "still wanted by interest-2: {:?}",
        topic_channels(port, false)
    );

    // A topic subscribed and unsubscribed by its only client comes and goes.
    c1.subscribe("trade", &[ETH], json!({})).await;
    until_channels(port, false, "subscribed to the ETH trade", |set| {
        set.len() == 2 && set.iter().any(|c| names_topic(c, ETH, "trade"))
    })
    .await;
    c1.unsubscribe("trade", &[ETH]).await;
    until_channels(
        port,
        false,
        "unsubscribed from the ETH trade",
        only_btc_quote,
    )
    .await;

    // The last client of the BTC quote leaves by closing its socket.
    c2.close().await;
    until_channels(port, false, "without topic channels", |set| set.is_empty()).await;
    c1.request(json!({"op": "ping"}), "pong").await;
}

/// Reads until the client has seen, for `symbol` and since `mark` (when
/// Redis went down): `status` stale; then both `status` live and a quote
/// snapshot (the gateway sends them as Redis comes back, in either order);
/// then a live quote newer than that snapshot. Panics naming what did not
/// come, with the statuses, snapshots and gaps it saw.
async fn rides_out_the_outage(client: &mut Client, symbol: &str, mark: usize) {
    #[derive(Default)]
    struct Seen {
        stale: bool,
        live: bool,
        snapshot: Option<u64>,
        updated: bool,
    }
    let mut seen = Seen::default();
    let mut advance = |v: &Value| {
        if !seen.stale {
            seen.stale = is_status(v, symbol, "stale");
        } else if is_status(v, symbol, "live") {
            seen.live = true;
        } else if is_update(v, "quote", symbol) && v["snapshot"] == true {
            seen.snapshot = Some(seq(v));
        } else if seen.live
            && seen
                .snapshot
                .is_some_and(|s| is_live_update(v, "quote", symbol) && seq(v) > s)
        {
            seen.updated = true;
        }
        seen.updated
    };
    // What was already read since the outage began counts too.
    let mut done = client.seen[mark..].iter().any(&mut advance);
    if !done {
        done = client
            .try_until("the outage sequence", deadline(), &mut advance)
            .await
            .is_some();
    }
    if !done {
        let missing = if !seen.stale {
            "status stale"
        } else if !seen.live {
            "status live after stale"
        } else if seen.snapshot.is_none() {
            "a quote snapshot after stale"
        } else {
            "a live quote after status live and the snapshot"
        };
        let notable: Vec<String> = client.seen[mark..]
            .iter()
            .filter(|v| v["type"] == "status" || v["snapshot"] == true || v["type"] == "gap")
            .map(Value::to_string)
            .collect();
        panic!(
            "{}: after the outage, never saw {missing}; statuses, snapshots and gaps since the outage:\n  {}\nlast seen:\n  {}",
            client.name,
            notable.join("\n  "),
            client.tail()
        );
    }
}

/// The address of `tickwire ingest --listen`'s probes, from its banner.
fn probes_addr(ingest: &Proc) -> String {
    ingest
        .banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no probes address in {:?}", ingest.banner))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_keeps_every_client_and_process() {
    let _serial = serial().await;
    let mut redis = RedisServer::start();
    let url = redis.url();
    let prefix = "e2e-outage";
    let mut ingest = Proc::ingest("outage-ingest", &url, prefix, &["--listen", "127.0.0.1:0"]);
    let (probes, ingest_log) = (probes_addr(&ingest), ingest.describe());
    let ingest_ready = |status| until_http_status(&probes, "/readyz", status, &ingest_log);
    let mut gateway = Proc::gateway("outage-gateway", &url, prefix);
    gateway.until_status("/readyz", 200).await;
    ingest_ready(200).await;

    let mut c1 = Client::connect("outage-1", &gateway).await;
    c1.subscribe("quote", &[BTC], json!({})).await;
    c1.subscribe("trade", &[BTC], json!({})).await;
    let mut c2 = Client::connect("outage-2", &gateway).await;
    c2.subscribe("quote", &[BINANCE_BTC], json!({})).await;
    c1.until("a live quote", deadline(), |v| {
        is_live_update(v, "quote", BTC)
    })
    .await;
    c2.until("a live quote", deadline(), |v| {
        is_live_update(v, "quote", BINANCE_BTC)
    })
    .await;

    let (mark1, mark2) = (c1.seen.len(), c2.seen.len());
    redis.stop();
    let stopped = Instant::now();
    gateway.until_status("/readyz", 503).await;
    ingest_ready(503).await;
    c1.until("status stale", deadline(), |v| is_status(v, BTC, "stale"))
        .await;
    c2.until("status stale", deadline(), |v| {
        is_status(v, BINANCE_BTC, "stale")
    })
    .await;
    // Keep reading through the rest of the ~2 s outage.
    let left = Duration::from_secs(2).saturating_sub(stopped.elapsed());
    tokio::join!(c1.read_for(left), c2.read_for(left));
    redis.restart();

    rides_out_the_outage(&mut c1, BTC, mark1).await;
    rides_out_the_outage(&mut c2, BINANCE_BTC, mark2).await;
    let live_after = c1.seen.len();
    c1.until("a trade after the outage", deadline(), |v| {
        is_update(v, "trade", BTC)
    })
    .await;
    assert!(c1.seen.len() > live_after);
    ingest_ready(200).await;

    // What Redis lost with its restart must not stop the service: both are
    // checked, and reported together.
    let mut problems = Vec::new();
    let mut c3 = Client::connect("outage-3", &gateway).await;
    let subscribe = json!({"op": "subscribe", "channel": "quote", "symbols": [ETH]});
    let reply = c3.reply(subscribe, "subscribed").await;
    if reply["type"] == "subscribed" {
        c3.until("a live quote", deadline(), |v| {
            is_live_update(v, "quote", ETH)
        })
        .await;
    } else {
        problems.push(format!(
            "a client arriving after the outage cannot subscribe {ETH}: {reply}"
        ));
    }
    if let Err(last) = poll_http_status(&gateway.addr, "/readyz", 200).await {
        problems.push(format!(
            "gateway /readyz answers {last:?}, not 200, {WAIT:?} after Redis came back"
        ));
    }

    // Every socket is still open and answering; both processes still run.
    c1.request(json!({"op": "ping"}), "pong").await;
    c2.request(json!({"op": "ping"}), "pong").await;
    c3.request(json!({"op": "ping"}), "pong").await;
    gateway.proc.assert_running();
    ingest.assert_running();
    assert!(
        problems.is_empty(),
        "after the Redis outage:\n  {}\n{}; {}",
        problems.join("\n  "),
        gateway.proc.describe(),
        ingest.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_restart_continues_the_sequence() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = "e2e-restart";
    let mut first = Proc::ingest("restart-ingest-1", &url, prefix, &[]);
    let gateway = Proc::gateway("restart-gateway", &url, prefix);
    gateway.until_status("/readyz", 200).await;

    let mut c = Client::connect("restart-stream", &gateway).await;
    c.subscribe("trade", &[BTC], json!({"snapshot": false}))
        .await;
    c.subscribe("quote", &[BTC], json!({"snapshot": false}))
        .await;
    collect(&mut c, BTC, 4, 4).await;

    let mut r = Client::connect("restart-resumer", &gateway).await;
    r.subscribe("trade", &[BTC], json!({"snapshot": false}))
        .await;
    let first_trade = r
        .until("a trade", deadline(), |v| is_update(v, "trade", BTC))
        .await;
    let (epoch, n) = epoch_seq(&first_trade);
    r.close().await;

    first.kill();
    // What was in flight before the kill arrives; nothing more after it.
    c.read_for(Duration::from_millis(500)).await;
    let before_trade = stream(&c, "trade", BTC).last().map_or(0, |s| s.1);
    let before_quote = stream(&c, "quote", BTC).last().map_or(0, |s| s.1);
    let mark = c.seen.len();

    let _second = Proc::ingest("restart-ingest-2", &url, prefix, &[]);
    let (mut t, mut q) = (false, false);
    c.until("trades and quotes from the new ingest", deadline(), |v| {
        t |= is_update(v, "trade", BTC) && v["seq"].as_u64() >= Some(before_trade + 3);
        q |= is_update(v, "quote", BTC) && v["seq"].as_u64() >= Some(before_quote + 3);
        t && q
    })
    .await;

    for kind in ["trade", "quote"] {
        let all = stream(&c, kind, BTC);
        assert!(
            all.iter().all(|(e, _)| *e == epoch),
            "{kind}: the epoch stays {epoch} across the restart: {all:?}"
        );
        let seqs: Vec<u64> = all.iter().map(|s| s.1).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{kind}: seq keeps rising across the restart: {seqs:?}"
        );
    }
    let trades: Vec<u64> = stream(&c, "trade", BTC).iter().map(|s| s.1).collect();
    assert_contiguous("trades across the ingest restart", &trades);
    assert!(
        c.gaps().is_empty(),
        "no gap across the restart: {:?}",
        c.gaps()
    );
    assert!(
        c.seen[mark..]
            .iter()
            .any(|v| is_update(v, "trade", BTC) && seq(v) > before_trade),
        "trades continue above {before_trade}"
    );

    // Resuming from before the restart loses nothing.
    let last_trade = *trades.last().expect("trades");
    let mut r2 = Client::connect("restart-resumer-2", &gateway).await;
    r2.subscribe("trade", &[BTC], json!({"from_seq": {BTC: n + 1}}))
        .await;
    r2.until(&format!("trade seq {last_trade}"), deadline(), |v| {
        is_update(v, "trade", BTC) && seq(v) >= last_trade
    })
    .await;
    let resumed = stream(&r2, "trade", BTC);
    assert!(resumed.iter().all(|(e, _)| *e == epoch), "{resumed:?}");
    let seqs: Vec<u64> = resumed.iter().map(|s| s.1).collect();
    assert_eq!(seqs[0], n + 1, "{seqs:?}");
    assert_contiguous("trades resumed across the restart", &seqs);
    assert!(r2.gaps().is_empty(), "no gap: {:?}", r2.gaps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_a_redis_bus_serves_through_redis() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (url, port) = (redis.url(), redis.port());
    let mut run = Server::from(Proc::start(
        "run-redis",
        &["run", "--bus", &url, "--listen", "127.0.0.1:0"],
        &[("TICKWIRE_BUS_PREFIX", "e2e-run")],
    ));
    run.until_status("/readyz", 200).await;
    let mut c = Client::connect("run-redis-client", &run).await;
    c.subscribe("quote", &[BTC], json!({})).await;
    c.until("a live quote", deadline(), |v| {
        is_live_update(v, "quote", BTC)
    })
    .await;
    until_channels(port, false, "the BTC quote channel", |set| {
        set.iter().any(|ch| names_topic(ch, BTC, "quote"))
    })
    .await;
    c.close().await;
    let status = run.proc.terminate();
    assert!(status.success(), "{status}; {}", run.proc.describe());
}

/// A feeds file with one synthetic instrument, written for this test.
fn feeds_file(name: &str, symbol: &str) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tickwire-e2e");
    std::fs::create_dir_all(&dir).expect("feeds dir");
    let path = dir.join(format!("{name}-{}.toml", std::process::id()));
    let text = format!(
        "[synthetic]\nrate = 50\ninstruments = [\n  {{ symbol = \"{symbol}\", price = \"100.00\", \
         tick = \"0.01\", size_scale = 4, typical_size = \"1\" }},\n]\n"
    );
    std::fs::write(&path, text).expect("write feeds file");
    path.to_str().expect("utf-8 path").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_plays_several_feeds_files_side_by_side() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = "e2e-feeds";
    let (one, two) = ("test:ONE-USD", "test:TWO-USD");
    let (a, b) = (feeds_file("feeds-a", one), feeds_file("feeds-b", two));
    let _ingest = Proc::ingest("feeds-ingest", &url, prefix, &["--feeds", &a, &b]);
    let gateway = Proc::gateway("feeds-gateway", &url, prefix);
    gateway.until_status("/readyz", 200).await;

    let mut c = Client::connect("feeds-client", &gateway).await;
    c.subscribe("quote", &[one, two], json!({"snapshot": false}))
        .await;
    let mut waiting = vec![one, two];
    c.until("live quotes of both files' instruments", deadline(), |v| {
        waiting.retain(|s| !is_live_update(v, "quote", s));
        waiting.is_empty()
    })
    .await;
    let list = c.request(json!({"op": "list"}), "symbols").await;
    let listed: Vec<&str> = list["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["symbol"].as_str())
        .collect();
    assert_eq!(listed, vec![one, two], "only the two files' instruments");
}
