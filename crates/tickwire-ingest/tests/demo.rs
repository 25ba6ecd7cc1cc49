//! The runner end to end: the demo market played into a real `MemoryBus`,
//! observed only through the `Bus` trait, with bounded waits and no timing
//! assertions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tickwire_bus::{Bus, CatalogueEntry, MemoryBus, Received};
use tickwire_ingest::{FeedsConfig, metrics as m, spawn_demo, spawn_feeds};
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Topic, Update, parse_decimal};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

async fn catalogue(bus: &Arc<dyn Bus>) -> Vec<CatalogueEntry> {
    timeout(WAIT, async {
        loop {
            let c = bus.catalogue().await.expect("catalogue");
            if !c.is_empty() {
                return c;
            }
            sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the feed announces its instruments")
}

fn json(u: &Update) -> serde_json::Value {
    serde_json::from_slice(u.bytes()).expect("an update is JSON")
}

fn decimal(v: &serde_json::Value) -> rust_decimal::Decimal {
    parse_decimal(v.as_str().expect("a decimal string")).expect("a plain decimal")
}

/// Collects a topic's updates until `want` of them arrived or `deadline`.
async fn collect(bus: Arc<dyn Bus>, topic: Topic, want: usize, deadline: Instant) -> Vec<Update> {
    let mut sub = bus.subscribe(&topic).await.expect("subscribe");
    let mut got = Vec::new();
    while got.len() < want {
        match timeout_at(deadline, sub.recv()).await {
            Ok(Some(Received::Update(u))) => got.push(u),
            Ok(Some(Received::Lagged(n))) => panic!("{topic}: lagged by {n}"),
            Ok(Some(Received::Resumed)) => panic!("{topic}: the memory bus never has an outage"),
            Ok(None) | Err(_) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_quotes_and_trades_every_instrument_within_two_seconds() {
    let started = Instant::now();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let shutdown = CancellationToken::new();
    let feed = spawn_demo(bus.clone(), shutdown.clone());

    let catalogue = catalogue(&bus).await;
    let venues: BTreeSet<&str> = catalogue.iter().map(|e| e.instrument.venue()).collect();
    assert!(catalogue.len() >= 8, "{catalogue:?}");
    assert!(venues.len() >= 2, "{venues:?}");
    assert!(catalogue.iter().all(|e| e.channels == Channel::ALL));

    let deadline = started + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for e in &catalogue {
        for (channel, want) in [(Channel::Quote, 4), (Channel::Trade, 2)] {
            let topic = Topic::new(e.instrument.clone(), channel);
            tasks.push(tokio::spawn(collect(bus.clone(), topic, want, deadline)));
        }
    }
    let mut by_topic: BTreeMap<Topic, Vec<Update>> = BTreeMap::new();
    for t in tasks {
        let updates = t.await.expect("collector");
        if let Some(u) = updates.first() {
            by_topic.insert(u.topic().clone(), updates);
        }
    }

    for e in &catalogue {
        for channel in [Channel::Quote, Channel::Trade] {
            let topic = Topic::new(e.instrument.clone(), channel);
            // Updates published before the subscription are in `last`.
            let seen =
                by_topic.contains_key(&topic) || bus.last(&topic).await.expect("last").is_some();
            assert!(seen, "no {channel} for {} within 2 s", e.instrument);
        }
    }
    let epochs: BTreeSet<String> = by_topic
        .values()
        .flatten()
        .map(|u| u.epoch().to_string())
        .collect();
    assert_eq!(epochs.len(), 1, "{epochs:?}");
    for (topic, updates) in &by_topic {
        for w in updates.windows(2) {
            assert_eq!(w[1].seq(), w[0].seq() + 1, "{topic}: seq not contiguous");
        }
        for u in updates {
            let v = json(u);
            assert_eq!(v["symbol"], topic.instrument.as_str());
            assert_eq!(v["seq"], u.seq());
            assert!(u.ts() <= u.rx(), "{topic}: ts after rx");
            match topic.channel {
                Channel::Quote => {
                    let (bid, ask) = (decimal(&v["bid"]), decimal(&v["ask"]));
                    assert!(bid < ask, "{topic}: {bid} >= {ask}");
                    decimal(&v["bid_size"]);
                    decimal(&v["ask_size"]);
                }
                Channel::Trade => {
                    decimal(&v["price"]);
                    decimal(&v["size"]);
                    assert!(v["side"] == "buy" || v["side"] == "sell");
                }
                _ => {}
            }
        }
    }

    let statuses = bus.current_statuses().await.expect("statuses");
    assert_eq!(statuses.len(), catalogue.len());
    assert!(statuses.iter().all(|s| s.state == FeedState::Live));

    shutdown.cancel();
    timeout(WAIT, feed)
        .await
        .expect("the feed stops promptly")
        .expect("the feed task does not panic");
    let statuses = bus.current_statuses().await.expect("statuses");
    assert!(statuses.iter().all(|s| s.state == FeedState::Stale));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_is_sequenced_from_one_without_holes() {
    let FeedsConfig::Synthetic(mut synthetic) = FeedsConfig::demo() else {
        panic!("the demo is synthetic");
    };
    synthetic.instruments.truncate(2);
    let config = FeedsConfig::Synthetic(synthetic.with_rate(4_000).expect("rate"));
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let shutdown = CancellationToken::new();
    let feed = spawn_feeds(&config, bus.clone(), shutdown.clone()).expect("valid config");
    let inst = catalogue(&bus).await[0].instrument.clone();
    let topic = Topic::new(inst, Channel::Trade);
    // Bounded: at 4 000 events/s a trade topic passes 100 trades in well
    // under a second; give it WAIT.
    let history = timeout(WAIT, async {
        loop {
            let h = bus.history(&topic, 1).await.expect("history");
            if h.len() >= 100 {
                return h;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("trades keep coming");
    shutdown.cancel();
    timeout(WAIT, feed).await.expect("stops").expect("no panic");
    for (i, u) in history.iter().enumerate() {
        assert_eq!(u.seq(), i as u64 + 1);
    }
}

#[test]
fn published_counters_match_what_the_bus_holds() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let bus = Arc::new(MemoryBus::default());
    let last_seqs: u64 = metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let bus_dyn: Arc<dyn Bus> = bus.clone();
            let shutdown = CancellationToken::new();
            let feed = spawn_demo(bus_dyn.clone(), shutdown.clone());
            let catalogue = catalogue(&bus_dyn).await;
            sleep(Duration::from_millis(300)).await;
            shutdown.cancel();
            timeout(WAIT, feed).await.expect("stops").expect("no panic");
            let mut sum = 0;
            for e in &catalogue {
                for c in Channel::ALL {
                    let topic = Topic::new(e.instrument.clone(), c);
                    if let Some(u) = bus_dyn.last(&topic).await.expect("last") {
                        sum += u.seq();
                    }
                }
            }
            sum
        })
    });
    let mut generated = 0;
    let mut published = 0;
    let mut venues = BTreeSet::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name();
        let DebugValue::Counter(n) = value else {
            continue;
        };
        if name == m::EVENTS_GENERATED {
            generated += n;
        } else if name == m::UPDATES_PUBLISHED {
            published += n;
            venues.extend(
                key.key()
                    .labels()
                    .filter(|l| l.key() == "venue")
                    .map(|l| l.value().to_owned()),
            );
        } else if name == m::PUBLISH_ERRORS {
            assert_eq!(n, 0, "{key:?}");
        }
    }
    assert!(published > 0);
    assert_eq!(generated, published);
    assert_eq!(published, last_seqs);
    assert!(venues.len() >= 3, "{venues:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_feed_continues_every_sequence() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let topic = Topic::new(
        tickwire_model::Instrument::parse("coinbase:BTC-USD").expect("instrument"),
        Channel::Quote,
    );
    let first = CancellationToken::new();
    let feed = spawn_demo(bus.clone(), first.clone());
    let deadline = Instant::now() + WAIT;
    let before = collect(bus.clone(), topic.clone(), 3, deadline).await;
    assert_eq!(before.len(), 3, "the first run publishes");
    first.cancel();
    timeout(WAIT, feed).await.expect("stops").expect("joins");
    let stopped_at = bus.last(&topic).await.expect("last").expect("a value");

    // Subscribed before the second run starts, so its first update cannot
    // slip past the subscription.
    let mut sub = bus.subscribe(&topic).await.expect("subscribe");
    let second = CancellationToken::new();
    let feed = spawn_demo(bus.clone(), second.clone());
    let next = match timeout(WAIT, sub.recv()).await {
        Ok(Some(Received::Update(u))) => u,
        Ok(Some(other)) => panic!("{topic}: {other:?}"),
        Ok(None) | Err(_) => panic!("{topic}: the second run publishes nothing"),
    };
    second.cancel();
    timeout(WAIT, feed).await.expect("stops").expect("joins");
    assert_eq!(next.epoch(), stopped_at.epoch(), "same run of the sequence");
    assert_eq!(
        next.seq(),
        stopped_at.seq() + 1,
        "continues at the next seq"
    );
}

/// A replayed capture is re-timed to now: its events' `ts` and `rx` move
/// by the same offset, so clients see current times and venue→ingest
/// latency keeps the recorded gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_events_are_retimed_to_now_keeping_the_recorded_gap() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let shutdown = CancellationToken::new();
    let (_, replay) = tickwire_ingest::venue::demo_replays()
        .into_iter()
        .next()
        .expect("an embedded capture");
    let capture = replay.capture.clone();
    let feed = spawn_feeds(&FeedsConfig::Replay(replay), bus.clone(), shutdown.clone())
        .expect("spawn the replay");
    let entries = catalogue(&bus).await;
    let instrument = entries[0].instrument.clone();
    let topic = Topic::new(instrument, Channel::Trade);
    let got = collect(
        bus,
        topic.clone(),
        3,
        Instant::now() + Duration::from_secs(20),
    )
    .await;
    shutdown.cancel();
    let _ = timeout(WAIT, feed).await;
    assert!(!got.is_empty(), "{topic}: no trade replayed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64;
    let recorded_first = capture.frames.first().expect("frames").rx;
    assert!(
        now - recorded_first > 60_000_000,
        "the capture is older than a minute"
    );
    for u in &got {
        let v = json(u);
        let (ts, rx) = (v["ts"].as_u64().expect("ts"), v["rx"].as_u64().expect("rx"));
        assert!(now.abs_diff(rx) < 30_000_000, "{v}: rx is not now ({now})");
        assert!(rx >= ts && rx - ts < 10_000_000, "{v}: the recorded gap");
    }
}
