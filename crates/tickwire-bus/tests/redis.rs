//! The Redis bus against `redis-server` processes of its own (one per
//! test, on a free port, unique key prefix): the shared conformance suite,
//! then what only a remote bus has — interest-based subscriptions, several
//! bus instances on one server, sequence continuity across publishers,
//! outages, malformed data, metrics.

mod common;

use common::{WAIT, prefix};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tickwire_bus::conformance::{quote, trade};
use tickwire_bus::testkit::RedisServer;
use tickwire_bus::{Bus, Error, Received, RedisBus, RedisBusConfig, RedisTarget, Subscription};
use tickwire_model::{Channel, Epoch, Instrument, Topic};

fn config(url: &str, prefix: &str) -> RedisBusConfig {
    RedisBusConfig {
        target: RedisTarget::parse(url).expect("test URL"),
        prefix: prefix.into(),
        history_len: 100,
        subscriber_capacity: 64,
        ..RedisBusConfig::default()
    }
}

async fn bus_on(server: &RedisServer, prefix: &str) -> RedisBus {
    RedisBus::connect(config(&server.url(), prefix))
        .await
        .expect("connect")
}

/// A bus on a server of its own; the server outlives the bus.
async fn single() -> (RedisBus, RedisServer) {
    let server = RedisServer::start();
    let bus = bus_on(&server, &prefix()).await;
    (bus, server)
}

mod conformance {
    tickwire_bus::bus_conformance_tests!(super::single);
}

fn inst(name: &str) -> Instrument {
    Instrument::parse(&format!("test:{name}-USD")).expect("instrument")
}

fn epoch(name: &str) -> Epoch {
    Epoch::new(name).expect("epoch")
}

async fn next(sub: &mut Subscription) -> Received {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => panic!("subscription closed"),
        Err(_) => panic!("nothing received within {WAIT:?}"),
    }
}

async fn wait_health(bus: &RedisBus, want: bool) {
    let mut health = bus.health();
    tokio::time::timeout(WAIT * 2, health.wait_for(|h| *h == want))
        .await
        .unwrap_or_else(|_| panic!("health did not become {want}"))
        .expect("health watch");
}

/// Polls a blocking server query until `ok`, bounded.
async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pubsub_channels(server: &RedisServer, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg(format!("{prefix}:*"))
        .query(&mut server.connection())
        .expect("PUBSUB CHANNELS");
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_in_redis_only_while_a_local_subscriber_wants_the_topic() {
    let server = RedisServer::start();
    let p = prefix();
    let bus = bus_on(&server, &p).await;
    let topic = Topic::new(inst("INT"), Channel::Quote);
    let channel = format!("{p}:{{quote/test:INT-USD}}");
    let status = format!("{p}:status");
    assert_eq!(
        pubsub_channels(&server, &p),
        vec![status.clone()],
        "only statuses before anyone subscribes"
    );

    let first = bus.subscribe(&topic).await.expect("subscribe");
    assert_eq!(
        pubsub_channels(&server, &p),
        vec![status.clone(), channel.clone()],
        "subscribed in Redis once subscribe returned"
    );
    let second = bus.subscribe(&topic).await.expect("subscribe");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        pubsub_channels(&server, &p).contains(&channel),
        "still wanted by the second subscriber"
    );
    drop(second);
    eventually("unsubscribed after the last subscriber left", || {
        pubsub_channels(&server, &p) == vec![status.clone()]
    })
    .await;

    // Interest can come back after it was gone.
    let mut again = bus.subscribe(&topic).await.expect("subscribe again");
    assert!(pubsub_channels(&server, &p).contains(&channel));
    bus.publish(quote(&inst("INT"), 1, &epoch("e1")))
        .expect("publish");
    match next(&mut again).await {
        Received::Update(u) => assert_eq!(u.seq(), 1),
        other => panic!("expected the update, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buses_on_one_server_see_identical_updates() {
    let server = RedisServer::start();
    let p = prefix();
    let ingest = bus_on(&server, &p).await;
    let gateway = bus_on(&server, &p).await;
    let i = inst("TWO");
    let topic = Topic::new(i.clone(), Channel::Trade);
    let mut sub = gateway.subscribe(&topic).await.expect("subscribe");
    let ep = epoch("k3x9");
    let sent: Vec<_> = (1..=20).map(|seq| trade(&i, seq, &ep)).collect();
    for u in &sent {
        ingest.publish(u.clone()).expect("publish");
    }
    for want in &sent {
        match next(&mut sub).await {
            Received::Update(got) => {
                assert_eq!(
                    (got.epoch(), got.seq(), got.bytes(), got.ts(), got.rx()),
                    (want.epoch(), want.seq(), want.bytes(), want.ts(), want.rx())
                );
                assert_eq!(&got, want);
            }
            other => panic!("expected an update, got {other:?}"),
        }
    }
    let last = gateway.last(&topic).await.expect("last").expect("a value");
    assert_eq!(&last, sent.last().expect("sent"));
    let history = gateway.history(&topic, 15).await.expect("history");
    assert_eq!(history, sent[14..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_publisher_continues_the_sequence() {
    let server = RedisServer::start();
    let p = prefix();
    let i = inst("CONT");
    let topic = Topic::new(i.clone(), Channel::Trade);
    let ep = epoch("run1");
    {
        let first = bus_on(&server, &p).await;
        for seq in 1..=5 {
            first.publish(trade(&i, seq, &ep)).expect("publish");
        }
        first.flush().await.expect("flush");
    }

    let second = bus_on(&server, &p).await;
    let last = second.last(&topic).await.expect("last").expect("a value");
    assert_eq!(
        (last.epoch(), last.seq()),
        (&ep, 5),
        "seq and epoch live in Redis"
    );
    for seq in last.seq() + 1..=8 {
        second
            .publish(trade(&i, seq, last.epoch()))
            .expect("publish");
    }
    let seqs: Vec<u64> = second
        .history(&topic, 1)
        .await
        .expect("history")
        .iter()
        .map(|u| u.seq())
        .collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<_>>(),
        "resume across the restart"
    );

    // A third publisher that does not know the state yet is refused by
    // Redis (not locally): nothing changes.
    let stale = bus_on(&server, &p).await;
    stale.publish(trade(&i, 3, &ep)).expect("accepted locally");
    stale.flush().await.expect("flush");
    let last = stale.last(&topic).await.expect("last").expect("a value");
    assert_eq!(last.seq(), 8, "a stale seq never overwrites a newer one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_survived_and_announced() {
    let mut server = RedisServer::start();
    let p = prefix();
    let bus = bus_on(&server, &p).await;
    let i = inst("OUT");
    let topic = Topic::new(i.clone(), Channel::Trade);
    let ep = epoch("e1");
    let mut sub = bus.subscribe(&topic).await.expect("subscribe");
    for seq in 1..=5 {
        bus.publish(trade(&i, seq, &ep)).expect("publish");
    }
    for seq in 1..=5 {
        match next(&mut sub).await {
            Received::Update(u) => assert_eq!(u.seq(), seq),
            other => panic!("expected update {seq}, got {other:?}"),
        }
    }

    server.stop();
    wait_health(&bus, false).await;
    let started = Instant::now();
    let mut seq = 5;
    for _ in 0..1_000 {
        seq += 1;
        match bus.publish(trade(&i, seq, &ep)) {
            Ok(()) | Err(Error::Overloaded) => {}
            Err(e) => panic!("publish during an outage: {e}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "publishing never waits on a dead Redis: {:?}",
        started.elapsed()
    );
    let read = tokio::time::timeout(Duration::from_secs(4), bus.last(&topic))
        .await
        .expect("reads fail fast while down");
    assert!(matches!(read, Err(Error::Unavailable(_))), "{read:?}");

    server.restart();
    wait_health(&bus, true).await;
    match next(&mut sub).await {
        Received::Resumed => {}
        other => panic!("expected Resumed after the outage, got {other:?}"),
    }
    for _ in 0..3 {
        seq += 1;
        bus.publish(trade(&i, seq, &ep))
            .expect("publish after the outage");
    }
    for want in seq - 2..=seq {
        match next(&mut sub).await {
            Received::Update(u) => assert_eq!(u.seq(), want),
            other => panic!("expected update {want}, got {other:?}"),
        }
    }
    let last = bus.last(&topic).await.expect("last").expect("a value");
    assert_eq!(last.seq(), seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down_and_connects_later() {
    let mut server = RedisServer::start();
    server.stop();
    let p = prefix();
    let started = Instant::now();
    let bus = bus_on(&server, &p).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "connect is bounded"
    );
    assert!(!*bus.health().borrow(), "down at start");
    let i = inst("LATE");
    let topic = Topic::new(i.clone(), Channel::Quote);
    let mut sub = bus
        .subscribe(&topic)
        .await
        .expect("subscribing while down is accepted");
    assert!(matches!(bus.last(&topic).await, Err(Error::Unavailable(_))));

    server.restart();
    wait_health(&bus, true).await;
    match next(&mut sub).await {
        Received::Resumed => {}
        other => panic!("a subscription made while down is resumed, got {other:?}"),
    }
    bus.publish(quote(&i, 1, &epoch("e1"))).expect("publish");
    match next(&mut sub).await {
        Received::Update(u) => assert_eq!(u.seq(), 1),
        other => panic!("expected the update, got {other:?}"),
    }
    assert_eq!(
        bus.last(&topic).await.expect("last").map(|u| u.seq()),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_in_redis_are_skipped() {
    let server = RedisServer::start();
    let p = prefix();
    let bus = bus_on(&server, &p).await;
    let i = inst("BAD");
    let topic = Topic::new(i.clone(), Channel::Quote);
    let channel = format!("{p}:{{quote/test:BAD-USD}}");
    let mut sub = bus.subscribe(&topic).await.expect("subscribe");
    let mut raw = server.connection();
    for garbage in ["", "no header", "1 e1 2\n{}", "x y z w\n{}"] {
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(garbage)
            .exec(&mut raw)
            .expect("raw publish");
    }
    bus.publish(quote(&i, 1, &epoch("e1"))).expect("publish");
    match next(&mut sub).await {
        Received::Update(u) => assert_eq!(u.seq(), 1, "garbage skipped, the update delivered"),
        other => panic!("expected the update, got {other:?}"),
    }
    redis::cmd("SET")
        .arg(format!("{channel}:last"))
        .arg("garbage")
        .exec(&mut raw)
        .expect("raw set");
    assert!(bus.last(&topic).await.expect("last").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lost_its_scripts_is_reloaded() {
    let server = RedisServer::start();
    let bus = bus_on(&server, &prefix()).await;
    let i = inst("FLUSH");
    let topic = Topic::new(i.clone(), Channel::Trade);
    let ep = epoch("e1");
    bus.publish(trade(&i, 1, &ep)).expect("publish");
    bus.flush().await.expect("flush");
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec(&mut server.connection())
        .expect("script flush");
    bus.publish(trade(&i, 2, &ep)).expect("publish");
    let last = bus.last(&topic).await.expect("last").expect("a value");
    assert_eq!(last.seq(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_at_connect() {
    let server = RedisServer::start();
    for bad in ["", "a{b}", "with space"] {
        match RedisBus::connect(config(&server.url(), bad)).await {
            Err(Error::Config(message)) => assert!(message.contains("prefix"), "{message}"),
            Err(e) => panic!("prefix {bad:?}: expected Config, got {e}"),
            Ok(_) => panic!("prefix {bad:?}: expected Config, got a bus"),
        }
    }
}

/// `tickwire_bus_publish_errors_total` by reason.
fn publish_errors(snapshotter: &Snapshotter) -> HashMap<String, u64> {
    let mut by_reason = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (key, DebugValue::Counter(n)) = (key.key(), value) else {
            continue;
        };
        if key.name() != tickwire_bus::metrics::PUBLISH_ERRORS {
            continue;
        }
        for label in key.labels().filter(|l| l.key() == "reason") {
            *by_reason.entry(label.value().to_string()).or_default() += n;
        }
    }
    by_reason
}

#[test]
fn refused_and_dropped_publishes_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut server = RedisServer::start();
    server.stop();
    let cfg = RedisBusConfig {
        publish_queue: 4,
        ..config(&server.url(), &prefix())
    };
    let bus = metrics::with_local_recorder(&recorder, || runtime.block_on(RedisBus::connect(cfg)))
        .expect("connect while down");

    // Outside the runtime the writer cannot run, so the queue fills.
    let i = inst("CNT");
    let ep = epoch("e1");
    let outcomes: Vec<bool> = (1..=6)
        .map(|seq| match bus.publish(quote(&i, seq, &ep)) {
            Ok(()) => true,
            Err(Error::Overloaded) => false,
            Err(e) => panic!("unexpected {e}"),
        })
        .collect();
    assert_eq!(outcomes, [true, true, true, true, false, false]);
    assert!(matches!(
        bus.publish(quote(&i, 2, &ep)),
        Err(Error::OutOfOrder {
            seq: 2,
            last: 4,
            ..
        })
    ));
    runtime
        .block_on(bus.flush())
        .expect("the writer drops while down");

    let errors = publish_errors(&snapshotter);
    assert_eq!(errors.get("overloaded"), Some(&2), "{errors:?}");
    assert_eq!(errors.get("out_of_order"), Some(&1), "{errors:?}");
    assert_eq!(errors.get("redis_down"), Some(&4), "{errors:?}");
    drop(bus);
}
