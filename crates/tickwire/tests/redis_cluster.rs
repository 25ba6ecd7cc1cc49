//! End-to-end over a real 3-node Redis Cluster: `tickwire ingest` and
//! `tickwire gateway` with `--bus redis-cluster://...`, clients on several
//! topics, and the topics' sharded channels spread over the nodes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tickwire_bus::testkit::RedisCluster;

use common::{
    Client, DEMO_SYMBOLS, Proc, deadline, is_live_update, names_topic, serial, until_channels,
};

/// The trade topics subscribed besides every quote.
const TRADED: [&str; 2] = ["coinbase:BTC-USD", "kraken:ETH-EUR"];

/// `HOST:PORT` of a `redis://HOST:PORT` URL.
fn host_port(url: &str) -> &str {
    url.strip_prefix("redis://")
        .unwrap_or(url)
        .trim_end_matches('/')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_topics_over_shards_and_serves_each() {
    let _serial = serial().await;
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(|u| host_port(u)).collect();
    let ports: Vec<u16> = nodes
        .iter()
        .map(|n| {
            n.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no port in {n}"))
        })
        .collect();
    let bus = format!("redis-cluster://{}", nodes.join(","));
    let prefix = "e2e-cluster";

    let mut ingest = Proc::ingest("cluster-ingest", &bus, prefix, &[]);
    let mut gateway = Proc::gateway("cluster-gateway", &bus, prefix);
    gateway.until_status("/readyz", 200).await;

    let mut client = Client::connect("cluster-client", &gateway).await;
    client
        .subscribe("quote", &DEMO_SYMBOLS, json!({"snapshot": false}))
        .await;
    client
        .subscribe("trade", &TRADED, json!({"snapshot": false}))
        .await;
    let mut waiting: BTreeSet<(&str, &str)> = DEMO_SYMBOLS
        .iter()
        .map(|s| ("quote", *s))
        .chain(TRADED.iter().map(|s| ("trade", *s)))
        .collect();
    let wanted = waiting.clone();
    client
        .until("a live update of every topic", deadline(), |v| {
            waiting.retain(|(kind, symbol)| !is_live_update(v, kind, symbol));
            waiting.is_empty()
        })
        .await;

    // Where each topic's channel lives: exactly one node each, and not all
    // on one node.
    let mut owner: BTreeMap<(&str, &str), Vec<u16>> = BTreeMap::new();
    let mut used = 0;
    for &port in &ports {
        let channels = until_channels(port, true, "listed", |_| true).await;
        used += usize::from(!channels.is_empty());
        for &(kind, symbol) in &wanted {
            if channels.iter().any(|c| names_topic(c, symbol, kind)) {
                owner.entry((kind, symbol)).or_default().push(port);
            }
        }
    }
    for topic in &wanted {
        let on = owner.get(topic).cloned().unwrap_or_default();
        assert_eq!(
            on.len(),
            1,
            "{topic:?}: its sharded channel on exactly one node, found on {on:?}"
        );
    }
    assert!(
        used >= 2,
        "topics spread over at least 2 of the 3 shards: {owner:?}"
    );

    client.close().await;
    for p in [&mut gateway.proc, &mut ingest] {
        let status = p.terminate();
        assert!(status.success(), "{}: {status}; {}", p.name, p.describe());
    }
}
