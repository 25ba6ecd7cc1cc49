//! Interest-based subscriptions over one pub/sub connection per bus.
//!
//! Local subscribers of a topic share one broadcast (so lagging works as in
//! the memory bus); the first one makes the bus SUBSCRIBE (SSUBSCRIBE on a
//! cluster) and waits for the confirmation, and the last one leaving makes
//! it UNSUBSCRIBE. One task owns the connection and serialises every
//! subscribe, unsubscribe and reconnect; a second task per connection only
//! reads messages and hands them to the topic broadcasts, never waiting on
//! anything else. After a lost connection the owner reconnects with
//! backoff, subscribes again to every topic still wanted, sends `Resumed`
//! down each of them, and only then reports the link up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use metrics::Counter;
use redis::aio::PubSubSink;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tickwire_model::{Channel, Topic};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::envelope;
use super::health::{Health, Link};
use super::link::{CONNECT_TIMEOUT, Endpoint, OP_TIMEOUT, check_cluster};
use crate::{Delivery, Status, metrics as m};

/// How often the pub/sub connection is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Channels per SUBSCRIBE (or per batch of concurrent SSUBSCRIBEs on a
/// cluster) when subscribing to many at once, after a reconnect.
const CHUNK: usize = 512;

/// One topic wanted by local subscribers.
struct Slot {
    topic: Topic,
    tx: broadcast::Sender<Delivery>,
    /// Live local subscriptions.
    refs: usize,
    /// The connection generation on which the channel was confirmed
    /// subscribed; 0 for none.
    live: u64,
}

/// The topics this bus wants, by channel name.
pub(crate) struct Interest {
    slots: Mutex<Slots>,
    /// Wakes the owner task when a topic lost its last subscriber.
    released: Notify,
    capacity: usize,
}

#[derive(Default)]
struct Slots {
    by_channel: HashMap<Arc<str>, Slot>,
    /// Channels whose last local subscriber left since the owner looked
    /// (some may be wanted again by now).
    released: Vec<Arc<str>>,
}

impl Interest {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::default(),
            released: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a local subscriber of `topic` on `channel`.
    pub(crate) fn join(&self, channel: &Arc<str>, topic: &Topic) -> broadcast::Receiver<Delivery> {
        let mut slots = lock(&self.slots);
        let slot = slots
            .by_channel
            .entry(channel.clone())
            .or_insert_with(|| Slot {
                topic: topic.clone(),
                tx: broadcast::channel(self.capacity).0,
                refs: 0,
                live: 0,
            });
        slot.refs += 1;
        slot.tx.subscribe()
    }

    fn leave(&self, channel: &Arc<str>) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.by_channel.get_mut(channel) {
            slot.refs = slot.refs.saturating_sub(1);
            if slot.refs == 0 {
                slots.released.push(channel.clone());
                self.released.notify_one();
            }
        }
    }

    /// Forgets released topics nobody wants again; returns those that were
    /// subscribed on connection `generation` (to unsubscribe).
    fn remove_unwanted(&self, generation: u64) -> Vec<Arc<str>> {
        let mut slots = lock(&self.slots);
        let Slots {
            by_channel,
            released,
        } = &mut *slots;
        let mut gone = Vec::new();
        for channel in released.drain(..) {
            if let Some(slot) = by_channel.get(&channel) {
                if slot.refs == 0 {
                    if slot.live == generation {
                        gone.push(channel.clone());
                    }
                    by_channel.remove(&channel);
                }
            }
        }
        gone
    }

    /// Every wanted channel.
    fn wanted(&self) -> Vec<Arc<str>> {
        lock(&self.slots)
            .by_channel
            .iter()
            .filter(|(_, s)| s.refs > 0)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Whether `channel` is wanted and not yet subscribed on `generation`.
    fn needs(&self, channel: &str, generation: u64) -> bool {
        lock(&self.slots)
            .by_channel
            .get(channel)
            .is_some_and(|s| s.refs > 0 && s.live != generation)
    }

    /// Marks channels subscribed on `generation`; with `resumed`, tells
    /// their subscribers that updates may have been missed.
    fn confirm(&self, channels: &[Arc<str>], generation: u64, resumed: bool) {
        let mut slots = lock(&self.slots);
        for channel in channels {
            if let Some(slot) = slots.by_channel.get_mut(channel) {
                slot.live = generation;
                if resumed {
                    // No receivers is fine: they all left meanwhile.
                    let _none = slot.tx.send(Delivery::Resumed);
                }
            }
        }
    }

    /// Ends every subscription (the bus is gone): receivers see `None`.
    pub(crate) fn close(&self) {
        let mut slots = lock(&self.slots);
        slots.by_channel.clear();
        slots.released.clear();
    }
}

/// Held by a `Subscription`: its drop ends this subscriber's interest.
pub(crate) struct InterestGuard {
    pub(crate) interest: Arc<Interest>,
    pub(crate) channel: Arc<str>,
}

impl Drop for InterestGuard {
    fn drop(&mut self) {
        self.interest.leave(&self.channel);
    }
}

/// A request to the owner task.
pub(crate) enum Control {
    /// Make sure `channel` is subscribed; answered once it is confirmed, or
    /// at once while the connection is down (the subscriber then gets
    /// `Resumed` when it is back).
    Subscribe {
        channel: Arc<str>,
        done: oneshot::Sender<()>,
    },
}

/// Receive-side metric handles, resolved once.
pub(crate) struct ReceiveMetrics {
    received: [Counter; 4],
    malformed: Counter,
    logged_malformed: AtomicBool,
}

impl ReceiveMetrics {
    pub(crate) fn new() -> Self {
        Self {
            received: Channel::ALL
                .map(|c| metrics::counter!(m::RECEIVED, "bus" => "redis", "channel" => c.as_str())),
            malformed: metrics::counter!(m::RECEIVE_ERRORS, "bus" => "redis", "reason" => "malformed"),
            logged_malformed: AtomicBool::new(false),
        }
    }

    /// Counts a skipped value; logs the first one of this bus.
    pub(crate) fn malformed(&self, what: &str, why: &envelope::Malformed) {
        self.malformed.increment(1);
        if !self.logged_malformed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                what,
                reason = why.0,
                "skipped a malformed value from redis (logged once)"
            );
        }
    }
}

/// Hands received messages to the topic broadcasts.
#[derive(Clone)]
struct Dispatcher {
    interest: Arc<Interest>,
    status_channel: Arc<str>,
    status_tx: broadcast::Sender<Status>,
    metrics: Arc<ReceiveMetrics>,
}

impl Dispatcher {
    fn deliver(&self, channel: &[u8], payload: Bytes) {
        if channel == self.status_channel.as_bytes() {
            match envelope::parse_status_message(&payload) {
                // No receivers is fine: nobody watches statuses here.
                Ok(s) => {
                    let _none = self.status_tx.send(s);
                }
                Err(why) => self.metrics.malformed("status", &why),
            }
            return;
        }
        let Ok(channel) = std::str::from_utf8(channel) else {
            return;
        };
        let slots = lock(&self.interest.slots);
        let Some(slot) = slots.by_channel.get(channel) else {
            // Unsubscribed meanwhile.
            return;
        };
        match envelope::decode(&slot.topic, payload) {
            Ok(update) => {
                self.metrics.received[slot.topic.channel.index()].increment(1);
                // No receivers is fine: the last one just left.
                let _none = slot.tx.send(Delivery::Update(update));
            }
            Err(why) => self.metrics.malformed("update", &why),
        }
    }

    /// Reads one server's messages until the connection ends.
    async fn run_single(self, mut stream: redis::aio::PubSubStream, lost: oneshot::Sender<String>) {
        while let Some(msg) = stream.next().await {
            match msg.get_payload::<Bytes>() {
                Ok(payload) => self.deliver(msg.get_channel_name().as_bytes(), payload),
                Err(_) => self
                    .metrics
                    .malformed("message", &envelope::Malformed("payload")),
            }
        }
        let _owner_gone = lost.send("pub/sub connection closed".into());
    }

    /// Reads a cluster's push messages until a node connection drops.
    async fn run_cluster(
        self,
        mut pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
        lost: oneshot::Sender<String>,
    ) {
        while let Some(push) = pushes.recv().await {
            match push.kind {
                PushKind::SMessage | PushKind::Message => {
                    let mut data = push.data.into_iter();
                    match (data.next(), data.next()) {
                        (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) => {
                            self.deliver(&channel, Bytes::from(payload));
                        }
                        _ => self
                            .metrics
                            .malformed("message", &envelope::Malformed("push shape")),
                    }
                }
                PushKind::Disconnection => {
                    let _owner_gone = lost.send("a cluster node connection closed".into());
                    return;
                }
                _ => {}
            }
        }
        let _owner_gone = lost.send("cluster push stream ended".into());
    }
}

/// One pub/sub connection; dropping it stops its reader.
struct Session {
    conn: SessionConn,
    reader: JoinHandle<()>,
    lost: oneshot::Receiver<String>,
}

enum SessionConn {
    Single(PubSubSink),
    Cluster(ClusterConnection),
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Session {
    /// Subscribes and waits for the confirmations; each chunk of channels
    /// is bounded by [`OP_TIMEOUT`].
    async fn subscribe(&mut self, channels: &[Arc<str>]) -> Result<(), String> {
        self.change(channels, true).await
    }

    /// Unsubscribes, bounded like [`subscribe`](Self::subscribe).
    async fn unsubscribe(&mut self, channels: &[Arc<str>]) -> Result<(), String> {
        self.change(channels, false).await
    }

    async fn change(&mut self, channels: &[Arc<str>], subscribe: bool) -> Result<(), String> {
        let names: Vec<&str> = channels.iter().map(|c| &**c).collect();
        for chunk in names.chunks(CHUNK) {
            match &mut self.conn {
                SessionConn::Single(sink) if subscribe => bounded(sink.subscribe(chunk)).await?,
                SessionConn::Single(sink) => bounded(sink.unsubscribe(chunk)).await?,
                // Shard channels of different slots cannot share a command.
                SessionConn::Cluster(conn) => {
                    let each = chunk.iter().map(|name| {
                        let mut conn = conn.clone();
                        async move {
                            if subscribe {
                                conn.ssubscribe(*name).await
                            } else {
                                conn.sunsubscribe(*name).await
                            }
                        }
                    });
                    let all = async { join_all(each).await.into_iter().collect() };
                    bounded::<Vec<()>>(all).await?;
                }
            }
        }
        Ok(())
    }

    /// Checks the connection: a PING, or every master of the cluster.
    async fn check(&mut self) -> Result<(), String> {
        match &mut self.conn {
            SessionConn::Single(sink) => bounded(sink.ping::<Value>()).await.map(drop),
            SessionConn::Cluster(conn) => tokio::time::timeout(OP_TIMEOUT, check_cluster(conn))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {OP_TIMEOUT:?}"))),
        }
    }
}

/// Bounds a pub/sub operation; a timeout counts as a lost connection.
async fn bounded<T>(op: impl Future<Output = RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
    }
}

/// The task owning the pub/sub connection.
pub(crate) struct Owner {
    endpoint: Endpoint,
    interest: Arc<Interest>,
    control: mpsc::Receiver<Control>,
    dispatcher: Dispatcher,
    health: Arc<Health>,
    /// Bumped per connection; slots confirmed on an older one are not live.
    generation: u64,
}

impl Owner {
    pub(crate) fn new(
        endpoint: Endpoint,
        interest: Arc<Interest>,
        control: mpsc::Receiver<Control>,
        status_channel: Arc<str>,
        status_tx: broadcast::Sender<Status>,
        health: Arc<Health>,
        metrics: Arc<ReceiveMetrics>,
    ) -> Self {
        Self {
            endpoint,
            dispatcher: Dispatcher {
                interest: interest.clone(),
                status_channel,
                status_tx,
                metrics,
            },
            interest,
            control,
            health,
            generation: 0,
        }
    }

    /// Connects, serves, reconnects; returns when the bus is dropped.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::default();
        let mut first = true;
        loop {
            let Some(mut session) = self.connect(&mut backoff, first).await else {
                return;
            };
            first = false;
            backoff.reset();
            let why = match self.serve(&mut session).await {
                Some(why) => why,
                None => return,
            };
            drop(session);
            self.health.down(Link::PubSub, &why);
        }
    }

    /// Waits out the backoff and opens a connection, answering requests
    /// meanwhile (at once: the link is down); `None` when the bus is
    /// dropped.
    async fn connect(&mut self, backoff: &mut Backoff, first: bool) -> Option<Session> {
        let mut delay = if first {
            Duration::ZERO
        } else {
            backoff.next_delay()
        };
        loop {
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            // Serve requests while waiting: answered at once (down).
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    request = self.control.recv() => match request {
                        Some(Control::Subscribe { done, .. }) => {
                            let _gone = done.send(());
                        }
                        None => return None,
                    },
                    () = self.interest.released.notified() => {
                        self.interest.remove_unwanted(self.generation);
                    }
                }
            }
            let attempt = Self::open(self.endpoint.clone(), self.dispatcher.clone());
            tokio::pin!(attempt);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut attempt => break outcome,
                    request = self.control.recv() => match request {
                        Some(Control::Subscribe { done, .. }) => {
                            let _gone = done.send(());
                        }
                        None => return None,
                    },
                }
            };
            match outcome {
                Ok(session) => return Some(session),
                Err(why) => {
                    self.health.down(Link::PubSub, &why);
                    delay = backoff.next_delay();
                }
            }
        }
    }

    /// Opens a connection and subscribes the status channel.
    async fn open(endpoint: Endpoint, dispatcher: Dispatcher) -> Result<Session, String> {
        let (lost_tx, lost) = oneshot::channel();
        let status = [dispatcher.status_channel.clone()];
        let mut session = match &endpoint {
            Endpoint::Single(client) => {
                let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
                    .await
                    .map_err(|_| "pub/sub connection timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                let (sink, stream) = pubsub.split();
                Session {
                    conn: SessionConn::Single(sink),
                    reader: tokio::spawn(dispatcher.run_single(stream, lost_tx)),
                    lost,
                }
            }
            Endpoint::Cluster(nodes) => {
                let (push_tx, pushes) = tokio::sync::mpsc::unbounded_channel();
                let client = Endpoint::cluster_builder(nodes)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push_tx)
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut conn =
                    tokio::time::timeout(CONNECT_TIMEOUT * 3, client.get_async_connection())
                        .await
                        .map_err(|_| "cluster pub/sub connection timed out".to_string())?
                        .map_err(|e| e.to_string())?;
                // Subscribing to a shard whose node is down can look fine.
                tokio::time::timeout(OP_TIMEOUT, check_cluster(&mut conn))
                    .await
                    .map_err(|_| "cluster check timed out".to_string())??;
                Session {
                    conn: SessionConn::Cluster(conn),
                    reader: tokio::spawn(dispatcher.run_cluster(pushes, lost_tx)),
                    lost,
                }
            }
        };
        session.subscribe(&status).await?;
        Ok(session)
    }

    /// Serves one connection; `Some(why)` when it was lost, `None` when the
    /// bus is dropped.
    async fn serve(&mut self, session: &mut Session) -> Option<String> {
        self.generation += 1;
        let generation = self.generation;
        // Subscribe again to everything wanted (topics joined while the
        // connection was down included), then tell their subscribers.
        let wanted = self.interest.wanted();
        if let Err(why) = session.subscribe(&wanted).await {
            return Some(why);
        }
        tracing::debug!(topics = wanted.len(), "pub/sub connection ready");
        self.interest.confirm(&wanted, generation, true);
        self.health.up(Link::PubSub);

        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        loop {
            tokio::select! {
                why = &mut session.lost => {
                    return Some(why.unwrap_or_else(|_| "pub/sub reader stopped".into()));
                }
                request = self.control.recv() => {
                    let Some(Control::Subscribe { channel, done }) = request else {
                        return None;
                    };
                    let outcome = if self.interest.needs(&channel, generation) {
                        let one = [channel];
                        let outcome = session.subscribe(&one).await;
                        if outcome.is_ok() {
                            self.interest.confirm(&one, generation, false);
                        }
                        outcome
                    } else {
                        Ok(())
                    };
                    // Answered either way: on failure the reconnect that
                    // follows sends `Resumed` to this subscriber.
                    let _gone = done.send(());
                    if let Err(why) = outcome {
                        return Some(why);
                    }
                }
                () = self.interest.released.notified() => {
                    let gone = self.interest.remove_unwanted(generation);
                    if !gone.is_empty() {
                        if let Err(why) = session.unsubscribe(&gone).await {
                            return Some(why);
                        }
                    }
                }
                _ = ping.tick() => {
                    if let Err(why) = session.check().await {
                        return Some(why);
                    }
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
