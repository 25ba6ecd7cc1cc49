//! The Redis bus on a three-node Redis Cluster of its own (sharded
//! pub/sub): the conformance suite (one cluster for the whole suite, a
//! fresh bus and key prefix per check), and that topics spread over the
//! shards while each topic's subscribers get its updates.

mod common;

use common::{WAIT, prefix};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tickwire_bus::conformance::{quote, trade};
use tickwire_bus::testkit::RedisCluster;
use tickwire_bus::{Bus, Received, RedisBus, RedisBusConfig, RedisTarget};
use tickwire_model::{Channel, Epoch, Instrument, Topic};

async fn bus(url: &str, prefix: &str) -> RedisBus {
    let bus = RedisBus::connect(RedisBusConfig {
        target: RedisTarget::parse(url).expect("cluster URL"),
        prefix: prefix.into(),
        history_len: 100,
        subscriber_capacity: 64,
        ..RedisBusConfig::default()
    })
    .await
    .expect("connect");
    assert!(*bus.health().borrow(), "the cluster is up");
    bus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let url = cluster.bus_url();
    tickwire_bus::conformance::run_all(|| {
        let url = url.clone();
        async move { bus(&url, &prefix()).await }
    })
    .await;
}

/// Every key and shard channel of `prefix` per node.
fn keys_per_node(cluster: &RedisCluster, prefix: &str) -> Vec<Vec<String>> {
    cluster
        .nodes()
        .iter()
        .map(|node| {
            redis::cmd("KEYS")
                .arg(format!("{prefix}:*:meta"))
                .query(&mut node.connection())
                .expect("KEYS")
        })
        .collect()
}

fn shard_channels(cluster: &RedisCluster, prefix: &str) -> BTreeSet<String> {
    cluster
        .nodes()
        .iter()
        .flat_map(|node| {
            redis::cmd("PUBSUB")
                .arg("SHARDCHANNELS")
                .arg(format!("{prefix}:*"))
                .query::<Vec<String>>(&mut node.connection())
                .expect("PUBSUB SHARDCHANNELS")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_spread_over_shards_and_reach_their_subscribers() {
    let cluster = RedisCluster::start(3);
    let url = cluster.bus_url();
    let p = prefix();
    let ingest = bus(&url, &p).await;
    let gateway = bus(&url, &p).await;
    let ep = Epoch::new("e1").expect("epoch");
    let topics: Vec<Topic> = (0..20)
        .map(|n| {
            let i = Instrument::parse(&format!("test:S{n}-USD")).expect("instrument");
            let channel = if n % 2 == 0 {
                Channel::Trade
            } else {
                Channel::Quote
            };
            Topic::new(i, channel)
        })
        .collect();
    let mut subs = Vec::new();
    for t in &topics {
        subs.push(gateway.subscribe(t).await.expect("subscribe"));
    }
    let channels = shard_channels(&cluster, &p);
    for t in &topics {
        assert!(
            channels.contains(&format!("{p}:{{{t}}}")),
            "{t} is a shard channel"
        );
    }

    for seq in 1..=3 {
        for t in &topics {
            let u = match t.channel {
                Channel::Trade => trade(&t.instrument, seq, &ep),
                _ => quote(&t.instrument, seq, &ep),
            };
            ingest.publish(u).expect("publish");
        }
    }
    for (t, sub) in topics.iter().zip(&mut subs) {
        for seq in 1..=3 {
            match tokio::time::timeout(WAIT, sub.recv()).await {
                Ok(Some(Received::Update(u))) => {
                    assert_eq!((u.topic(), u.seq(), u.epoch()), (t, seq, &ep));
                }
                other => panic!("{t} seq {seq}: got {other:?}"),
            }
        }
    }
    for t in &topics {
        let last = gateway.last(t).await.expect("last").expect("a value");
        assert_eq!(last.seq(), 3);
    }
    let trades = gateway.history(&topics[0], 1).await.expect("history");
    assert_eq!(
        trades.iter().map(|u| u.seq()).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    let placed = keys_per_node(&cluster, &p);
    assert_eq!(
        placed.iter().map(Vec::len).sum::<usize>(),
        topics.len(),
        "one meta key per topic: {placed:?}"
    );
    let shards_used = placed.iter().filter(|keys| !keys.is_empty()).count();
    assert!(
        shards_used >= 2,
        "topics land on several shards: {placed:?}"
    );

    drop(subs);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = shard_channels(&cluster, &p);
        if left == BTreeSet::from([format!("{p}:status")]) {
            break;
        }
        assert!(Instant::now() < deadline, "still subscribed: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outage_is_survived_and_announced() {
    let mut cluster = RedisCluster::start(3);
    let url = cluster.bus_url();
    let p = prefix();
    let bus = bus(&url, &p).await;
    let ep = Epoch::new("e1").expect("epoch");
    let topics: Vec<Topic> = (0..12)
        .map(|n| {
            let i = Instrument::parse(&format!("test:N{n}-USD")).expect("instrument");
            Topic::new(i, Channel::Trade)
        })
        .collect();
    let mut subs = Vec::new();
    for t in &topics {
        subs.push(bus.subscribe(t).await.expect("subscribe"));
    }

    cluster.nodes_mut()[0].stop();
    let mut health = bus.health();
    tokio::time::timeout(WAIT, health.wait_for(|up| !*up))
        .await
        .expect("health goes false when a node is lost")
        .expect("health watch");
    for t in &topics {
        match bus.publish(trade(&t.instrument, 1, &ep)) {
            Ok(()) | Err(tickwire_bus::Error::Overloaded) => {}
            Err(e) => panic!("publish during an outage: {e}"),
        }
    }
    cluster.nodes_mut()[0].restart();
    tokio::time::timeout(WAIT * 3, health.wait_for(|up| *up))
        .await
        .expect("health comes back with the node")
        .expect("health watch");

    for t in &topics {
        bus.publish(trade(&t.instrument, 2, &ep)).expect("publish");
    }
    for (t, sub) in topics.iter().zip(&mut subs) {
        let mut resumed = false;
        loop {
            match tokio::time::timeout(WAIT, sub.recv()).await {
                Ok(Some(Received::Resumed)) => resumed = true,
                Ok(Some(Received::Update(u))) if u.seq() == 2 => break,
                // An update published before the outage was noticed.
                Ok(Some(Received::Update(u))) => assert_eq!(u.seq(), 1),
                other => panic!("{t}: got {other:?}"),
            }
        }
        assert!(resumed, "{t}: told about the outage before new updates");
    }
}
