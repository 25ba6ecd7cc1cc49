//! The Redis bus: ingest and any number of gateways as separate processes,
//! on one Redis server or a Redis Cluster (sharded pub/sub).
//!
//! Per topic, Redis holds the newest `<epoch> <seq>` (`meta`), the newest
//! update (`last`) and, for trades, a bounded stream of recent updates
//! (`hist`); one Lua script per update changes all of them and publishes
//! the update on the topic's channel, atomically. See [`keys`] for names,
//! [`envelope`] for the stored bytes, [`scripts`] for the scripts.

mod backoff;
mod envelope;
mod health;
mod keys;
mod link;
mod pubsub;
mod scripts;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::Value;
use tickwire_model::{Epoch, Instrument, Topic, Update};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::health::Health;
use self::keys::Keys;
use self::link::{DataLink, Endpoint};
use self::pubsub::{Control, Interest, InterestGuard, Owner, ReceiveMetrics};
use self::scripts::ANNOUNCE_SCRIPT;
use self::writer::{Item, Progress, PublishMetrics, Writer};
use crate::{
    BoxFuture, Bus, CatalogueEntry, Error, Result, Status, StatusSubscription, Subscription,
    metrics as m,
};

/// Longest wait in [`RedisBus::connect`] for the first connection attempts.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// Longest wait of `last`/`history` for this bus's own earlier publishes
/// to reach Redis.
const READ_YOUR_WRITES: Duration = Duration::from_secs(2);
/// Longest wait of `subscribe` for Redis to confirm the subscription.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

/// Where Redis is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, `redis://HOST:PORT`.
    Single(String),
    /// Seed nodes of a Redis Cluster, each `redis://HOST:PORT`; the other
    /// nodes are discovered. Uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// Parses `redis://HOST:PORT` (one server) or
    /// `redis-cluster://HOST:PORT,HOST:PORT,...` (a cluster). Refuses
    /// anything else with [`Error::Config`] saying what is wrong (never
    /// echoing a password).
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::Config(
                "bus URL must start with redis:// (one server) or redis-cluster:// (a cluster)"
                    .into(),
            )
        })?;
        match scheme {
            "redis" => {
                check_node(rest)?;
                Ok(RedisTarget::Single(url.to_owned()))
            }
            "redis-cluster" => {
                let nodes = rest
                    .split(',')
                    .map(|node| {
                        check_node(node.trim())?;
                        Ok(format!("redis://{}", node.trim()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(RedisTarget::Cluster(nodes))
            }
            other => Err(Error::Config(format!(
                "unknown bus URL scheme {other:?}: expected redis:// or redis-cluster://"
            ))),
        }
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let client = |url: &str| {
            redis::Client::open(url)
                .map_err(|e| Error::Config(format!("malformed Redis URL: {}", e.category())))
        };
        match self {
            RedisTarget::Single(url) => Ok(Endpoint::Single(client(url)?)),
            RedisTarget::Cluster(nodes) if nodes.is_empty() => Err(Error::Config(
                "a Redis Cluster needs at least one node".into(),
            )),
            RedisTarget::Cluster(nodes) => {
                for node in nodes {
                    client(node)?;
                }
                Ok(Endpoint::Cluster(nodes.clone()))
            }
        }
    }
}

/// Checks `[user:password@]HOST:PORT[/DB]` without echoing it.
fn check_node(node: &str) -> Result<()> {
    let host_port = node.rsplit_once('@').map_or(node, |(_, hp)| hp);
    let host_port = host_port.split_once('/').map_or(host_port, |(hp, _)| hp);
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Err(Error::Config(format!(
            "Redis node {host_port:?} needs HOST:PORT"
        )));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(Error::Config(format!(
            "Redis node {host_port:?} needs a host and a port 1-65535"
        )));
    }
    redis::Client::open(format!("redis://{node}").as_str())
        .map(drop)
        .map_err(|e| Error::Config(format!("malformed Redis URL: {}", e.category())))
}

/// Settings of the Redis bus.
#[derive(Clone, Debug)]
pub struct RedisBusConfig {
    /// Where Redis is. Default `redis://127.0.0.1:6379`.
    pub target: RedisTarget,
    /// Prefix of every key and channel, so deployments can share one
    /// Redis. Default `tw`; no braces or spaces.
    pub prefix: String,
    /// Trades kept per trade topic for `from_seq` resume (`XADD MAXLEN ~`,
    /// so Redis may keep up to one stream node more). Default 10 000:
    /// about 2 MB of Redis memory per busy topic; more makes longer
    /// outages resumable. 0 keeps no history.
    pub history_len: usize,
    /// Updates buffered per topic for a local subscriber that is behind
    /// before it lags. Default 4096.
    pub subscriber_capacity: usize,
    /// Updates waiting to be written before `publish` refuses new ones
    /// (`Overloaded`, counted), so a slow or absent Redis never blocks a
    /// feed. Default 65 536: rides out a few seconds of stall at full rate,
    /// at the cost of memory and of staler data when it drains.
    pub publish_queue: usize,
    /// Most updates written in one pipelined round trip. Default 512:
    /// carries bursts with few round trips while bounding the latency one
    /// batch adds.
    pub publish_batch: usize,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        Self {
            target: RedisTarget::Single("redis://127.0.0.1:6379".into()),
            prefix: "tw".into(),
            history_len: 10_000,
            subscriber_capacity: 4096,
            publish_queue: 65_536,
            publish_batch: 512,
        }
    }
}

/// The Redis [`Bus`]. Connections are made and remade in the background:
/// the bus is usable (publishes are queued or counted as dropped, reads
/// fail with [`Error::Unavailable`]) while Redis is down, and
/// [`Bus::health`] says when it is not. Dropping the bus stops its tasks
/// and ends its subscriptions.
pub struct RedisBus {
    keys: Keys,
    status_key: String,
    link: Arc<DataLink>,
    queue: mpsc::Sender<Item>,
    progress: Arc<Progress>,
    /// Last accepted `(epoch, seq)` per topic published through this bus,
    /// so `publish` refuses out-of-order updates synchronously. Held only
    /// for a map lookup and a non-blocking queue push.
    seqs: Mutex<HashMap<Topic, (Epoch, u64)>>,
    interest: Arc<Interest>,
    control: mpsc::Sender<Control>,
    status_tx: broadcast::Sender<Status>,
    health: Arc<Health>,
    publish_metrics: Arc<PublishMetrics>,
    receive_metrics: Arc<ReceiveMetrics>,
    tasks: Vec<JoinHandle<()>>,
    /// Every instrument this bus announced, written again by the writer
    /// when Redis comes back without its data.
    announced: Arc<std::sync::Mutex<Vec<CatalogueEntry>>>,
}

impl RedisBus {
    /// Starts the bus: validates the settings (a malformed URL or prefix is
    /// an [`Error::Config`]), starts connecting, and waits (at most 5 s)
    /// for the first connection attempts. Redis being down is not an
    /// error: health stays false and the bus keeps retrying with backoff.
    pub async fn connect(config: RedisBusConfig) -> Result<Self> {
        let keys = Keys::new(&config.prefix)?;
        let endpoint = config.target.endpoint()?;
        m::describe();
        let health = Arc::new(Health::new());
        let link = Arc::new(DataLink::new(endpoint.clone(), health.clone())?);
        let publish_metrics = Arc::new(PublishMetrics::new());
        let receive_metrics = Arc::new(ReceiveMetrics::new());
        let progress = Arc::new(Progress::default());
        let announced: Arc<std::sync::Mutex<Vec<CatalogueEntry>>> = Arc::default();
        let interest = Arc::new(Interest::new(config.subscriber_capacity));
        let (status_tx, _) = broadcast::channel(1024);
        let status_key = keys.status();

        let (queue, rx) = mpsc::channel(config.publish_queue.max(1));
        let writer = Writer {
            rx,
            link: link.clone(),
            keys: keys.clone(),
            status_key: status_key.clone(),
            cluster: endpoint.is_cluster(),
            history_len: config.history_len,
            batch: config.publish_batch.max(1),
            progress: progress.clone(),
            metrics: publish_metrics.clone(),
            topic_keys: HashMap::new(),
            dropped: 0,
            logged_refusal: false,
            announced: announced.clone(),
            catalogue_key: keys.catalogue().to_owned(),
            statuses: HashMap::new(),
        };
        let (control, control_rx) = mpsc::channel(1024);
        let owner = Owner::new(
            endpoint,
            interest.clone(),
            control_rx,
            status_key.as_str().into(),
            status_tx.clone(),
            health.clone(),
            receive_metrics.clone(),
        );
        let tasks = vec![
            tokio::spawn(link.clone().probe_forever()),
            tokio::spawn(writer.run()),
            tokio::spawn(owner.run()),
        ];
        let bus = Self {
            keys,
            status_key,
            link,
            queue,
            progress,
            seqs: Mutex::default(),
            interest,
            control,
            status_tx,
            health,
            publish_metrics,
            receive_metrics,
            tasks,
            announced,
        };
        // Down after the first attempts is fine: the tasks keep trying.
        let _settled_or_not = tokio::time::timeout(CONNECT_WAIT, bus.health.settled()).await;
        Ok(bus)
    }

    /// Waits (at most 2 s) until everything published through this bus
    /// before the call was written to Redis or dropped (and counted).
    /// Useful before shutting down a publisher.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let barrier = async {
            self.queue
                .send(Item::Barrier(done))
                .await
                .map_err(|_| Error::Closed)?;
            wait.await.map_err(|_| Error::Closed)
        };
        tokio::time::timeout(READ_YOUR_WRITES, barrier)
            .await
            .map_err(|_| Error::Unavailable("publish queue did not drain in time".into()))?
    }

    /// Read-your-writes: lets this bus's queued publishes reach Redis
    /// first (bounded; skipped when nothing is in flight).
    async fn settle(&self) {
        if !self.progress.is_idle() {
            // A slow writer only makes the read a little stale.
            let _late = self.flush().await;
        }
    }

    fn malformed(&self, what: &str, why: &envelope::Malformed) {
        self.receive_metrics.malformed(what, why);
    }

    async fn hash(&self, key: String) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        self.link
            .call(|mut c| async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await })
            .await
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.interest.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bus for RedisBus {
    fn publish(&self, update: Update) -> Result<()> {
        let mut seqs = lock(&self.seqs);
        if let Some((epoch, last)) = seqs.get(update.topic()) {
            if epoch == update.epoch() && update.seq() <= *last {
                self.publish_metrics.out_of_order.increment(1);
                return Err(Error::OutOfOrder {
                    topic: update.topic().clone(),
                    seq: update.seq(),
                    last: *last,
                });
            }
        }
        // Cheap: reference counts only.
        let accepted = (update.epoch().clone(), update.seq());
        let topic = update.topic().clone();
        match self.queue.try_send(Item::Update(update)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.publish_metrics.overloaded.increment(1);
                return Err(Error::Overloaded);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Closed),
        }
        self.progress.queued();
        seqs.insert(topic, accepted);
        Ok(())
    }

    fn publish_status(&self, status: Status) -> Result<()> {
        match self.queue.try_send(Item::Status(status)) {
            Ok(()) => {
                self.progress.queued();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.publish_metrics.overloaded.increment(1);
                Err(Error::Overloaded)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    fn announce(&self, entries: Vec<CatalogueEntry>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            {
                let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
                for e in &entries {
                    match announced.iter_mut().find(|a| a.instrument == e.instrument) {
                        Some(a) => {
                            a.channels.extend(e.channels.iter().copied());
                            a.channels.sort();
                            a.channels.dedup();
                        }
                        None => announced.push(e.clone()),
                    }
                }
            }
            let mut invocation = ANNOUNCE_SCRIPT.key(self.keys.catalogue());
            for e in &entries {
                invocation
                    .arg(e.instrument.as_str())
                    .arg(envelope::channels_value(&e.channels));
            }
            self.link
                .call(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
                .await
                .map(drop)
        })
    }

    fn catalogue(&self) -> BoxFuture<'_, Result<Vec<CatalogueEntry>>> {
        Box::pin(async move {
            let all = self.hash(self.keys.catalogue()).await?;
            let mut entries: Vec<CatalogueEntry> = all
                .into_iter()
                .filter_map(|(instrument, channels)| {
                    let instrument = std::str::from_utf8(&instrument)
                        .ok()
                        .and_then(|i| Instrument::parse(i).ok());
                    match instrument {
                        Some(instrument) => Some(CatalogueEntry {
                            instrument,
                            channels: envelope::parse_channels(&channels),
                        }),
                        None => {
                            self.malformed("catalogue", &envelope::Malformed("instrument"));
                            None
                        }
                    }
                })
                .collect();
            entries.sort_by(|a, b| a.instrument.cmp(&b.instrument));
            Ok(entries)
        })
    }

    fn subscribe(&self, topic: &Topic) -> BoxFuture<'_, Result<Subscription>> {
        let channel: Arc<str> = self.keys.channel(topic).into();
        let rx = self.interest.join(&channel, topic);
        // Created before any await: if this future is dropped or fails,
        // the interest ends with it.
        let guard = InterestGuard {
            interest: self.interest.clone(),
            channel: channel.clone(),
        };
        Box::pin(async move {
            let (done, confirmed) = oneshot::channel();
            let request = async {
                self.control
                    .send(Control::Subscribe { channel, done })
                    .await
                    .map_err(|_| Error::Closed)?;
                confirmed.await.map_err(|_| Error::Closed)
            };
            tokio::time::timeout(SUBSCRIBE_WAIT, request)
                .await
                .map_err(|_| {
                    Error::Unavailable("redis did not confirm the subscription".into())
                })??;
            Ok(Subscription::with_guard(rx, Box::new(guard)))
        })
    }

    fn last(&self, topic: &Topic) -> BoxFuture<'_, Result<Option<Update>>> {
        let topic = topic.clone();
        Box::pin(async move {
            self.settle().await;
            let key = self.keys.topic(&topic).last;
            let value: Option<Bytes> = self
                .link
                .call(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
                .await?;
            let Some(envelope) = value else {
                return Ok(None);
            };
            match envelope::decode(&topic, envelope) {
                Ok(update) => Ok(Some(update)),
                Err(why) => {
                    self.malformed("last", &why);
                    Ok(None)
                }
            }
        })
    }

    fn history(&self, topic: &Topic, from_seq: u64) -> BoxFuture<'_, Result<Vec<Update>>> {
        let topic = topic.clone();
        Box::pin(async move {
            self.settle().await;
            let key = self.keys.topic(&topic).hist;
            let reply: Value = self
                .link
                .call(|mut c| async move {
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(format!("0-{from_seq}"))
                        .arg("+")
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let mut out = Vec::new();
            for envelope in stream_values(reply) {
                match envelope::decode(&topic, envelope) {
                    Ok(update) => out.push(update),
                    Err(why) => self.malformed("history", &why),
                }
            }
            Ok(out)
        })
    }

    fn statuses(&self) -> Result<StatusSubscription> {
        Ok(StatusSubscription::new(self.status_tx.subscribe()))
    }

    fn current_statuses(&self) -> BoxFuture<'_, Result<Vec<Status>>> {
        Box::pin(async move {
            self.settle().await;
            let all = self.hash(self.status_key.clone()).await?;
            let mut out: Vec<Status> = all
                .iter()
                .filter_map(|(instrument, value)| {
                    envelope::parse_status(instrument, value)
                        .map_err(|why| self.malformed("status", &why))
                        .ok()
                })
                .collect();
            out.sort_by(|a, b| a.instrument.cmp(&b.instrument));
            Ok(out)
        })
    }

    fn health(&self) -> watch::Receiver<bool> {
        self.health.watch()
    }
}

/// The `u` field of each XRANGE entry, in order.
fn stream_values(reply: Value) -> impl Iterator<Item = Bytes> {
    let entries = match reply {
        Value::Array(entries) => entries,
        _ => Vec::new(),
    };
    entries.into_iter().filter_map(|entry| {
        let Value::Array(parts) = entry else {
            return None;
        };
        let fields = parts.into_iter().nth(1)?;
        let pairs: Vec<(Value, Value)> = match fields {
            Value::Array(flat) => {
                let mut it = flat.into_iter();
                std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
            }
            Value::Map(pairs) => pairs,
            _ => return None,
        };
        pairs.into_iter().find_map(|(k, v)| match (k, v) {
            (Value::BulkString(k), Value::BulkString(v)) if k == b"u" => Some(Bytes::from(v)),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let parse = |url: &str| RedisTarget::parse(url).expect(url);
        assert_eq!(
            parse("redis://127.0.0.1:6390"),
            RedisTarget::Single("redis://127.0.0.1:6390".into())
        );
        assert_eq!(
            parse(" redis://:secret@cache.internal:6379/2 "),
            RedisTarget::Single("redis://:secret@cache.internal:6379/2".into())
        );
        assert_eq!(
            parse("redis-cluster://10.0.0.1:7000, 10.0.0.2:7001"),
            RedisTarget::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://10.0.0.2:7001".into()
            ])
        );
    }

    #[test]
    fn malformed_targets_say_what_is_wrong_without_the_password() {
        let cases = [
            ("", "must start with redis://"),
            ("127.0.0.1:6379", "must start with redis://"),
            ("http://h:1", "unknown bus URL scheme \"http\""),
            ("redis://", "needs HOST:PORT"),
            ("redis://host", "needs HOST:PORT"),
            ("redis://:secret@host:0", "port 1-65535"),
            ("redis://host:port", "port 1-65535"),
            ("redis-cluster://h:1,,h:2", "needs HOST:PORT"),
            ("redis-cluster://:hunter2@h:1,h:99999", "port 1-65535"),
        ];
        for (url, want) in cases {
            match RedisTarget::parse(url) {
                Err(Error::Config(message)) => {
                    assert!(message.contains(want), "{url:?}: {message}");
                    assert!(
                        !message.contains("secret") && !message.contains("hunter2"),
                        "{url:?}: {message}"
                    );
                }
                other => panic!("{url:?}: expected Config, got {other:?}"),
            }
        }
    }

    #[test]
    fn stream_replies_yield_the_stored_envelopes() {
        let entry = |id: &str, fields: Value| {
            Value::Array(vec![Value::BulkString(id.as_bytes().to_vec()), fields])
        };
        let flat = Value::Array(vec![
            Value::BulkString(b"u".to_vec()),
            Value::BulkString(b"one".to_vec()),
        ]);
        let map = Value::Map(vec![(
            Value::BulkString(b"u".to_vec()),
            Value::BulkString(b"two".to_vec()),
        )]);
        let other = Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::BulkString(b"skip".to_vec()),
        ]);
        let reply = Value::Array(vec![
            entry("0-1", flat),
            entry("0-2", map),
            entry("0-3", other),
            Value::Nil,
        ]);
        let got: Vec<Bytes> = stream_values(reply).collect();
        assert_eq!(got, [Bytes::from("one"), Bytes::from("two")]);
        assert_eq!(stream_values(Value::Nil).count(), 0);
    }
}
