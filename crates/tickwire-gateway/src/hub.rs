//! The hub: subscribes to the bus once per topic that at least one local
//! client wants, and fans each update out to the subscribers' outboxes,
//! converting it to a frame once. Also tracks instrument status and the
//! catalogue of served instruments.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickwire_bus::{Bus, Received, Status};
use tickwire_model::protocol::{self, FeedState, SymbolSelector};
use tickwire_model::{Channel, Instrument, Topic, Update};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::entitle::{DelayLine, is_older_than};
use crate::metrics::HubMetrics;
use crate::outbox::{Frame, Outbox, SlotId};

/// How a new subscription starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Start {
    /// With the topic's latest value, flagged `"snapshot":true`.
    Snapshot,
    /// With the next live update.
    Live,
    /// With trades from this `seq` on, from history, then live.
    FromSeq(u64),
}

/// One subscriber of a topic: a connection's outbox and its slot there.
#[derive(Clone)]
pub struct Subscriber {
    /// The connection's id.
    pub conn: u64,
    /// The connection's outbox.
    pub outbox: Arc<Outbox>,
    /// The slot of this topic in the outbox.
    pub slot: SlotId,
}

/// How long a subscribe waits for the bus before registering without a snapshot.
const INIT_WAIT: Duration = Duration::from_secs(5);
/// Status reason while the bus is unreachable.
const BUS_DOWN: &str = "bus_disconnected";
/// How long a catalogue read from the bus is reused.
const CATALOGUE_TTL: Duration = Duration::from_secs(1);

struct TopicEntry {
    topic: Topic,
    /// Held for memory operations only; the fan-out holds it while offering,
    /// which is what orders snapshots before live updates.
    state: Mutex<TopicState>,
    /// Becomes true once the pump is subscribed and has read the last value.
    initialized: watch::Receiver<bool>,
    stop: CancellationToken,
}

#[derive(Default)]
struct TopicState {
    subs: Vec<Subscriber>,
    last: Option<Update>,
    closed: bool,
    /// Set when the bus came back from an outage: the next value of a
    /// conflatable topic goes out flagged as a fresh snapshot.
    resnapshot: bool,
    /// The delayed tier's lines, one per delay in use.
    lines: Vec<Arc<DelayLine>>,
}

impl TopicState {
    /// Realtime and delayed subscribers alike, for status notices (a feed
    /// going stale is news to both tiers).
    fn all_subscribers(&self) -> Vec<Subscriber> {
        let mut all = self.subs.clone();
        for line in &self.lines {
            all.extend(line.subscribers());
        }
        all
    }
}

type Catalogue = BTreeMap<Instrument, Vec<Channel>>;

/// The gateway's fan-out node.
pub struct Hub {
    bus: Arc<dyn Bus>,
    topics: Mutex<HashMap<Topic, Arc<TopicEntry>>>,
    catalogue: RwLock<(Option<Instant>, Arc<Catalogue>)>,
    statuses: Mutex<HashMap<Instrument, Status>>,
    connections: Mutex<HashMap<u64, Arc<Outbox>>>,
    metrics: HubMetrics,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Hub {
    /// A hub over a bus; its tasks stop when `shutdown` is cancelled.
    pub fn new(bus: Arc<dyn Bus>, shutdown: CancellationToken) -> Arc<Self> {
        let hub = Arc::new(Self {
            bus,
            topics: Mutex::default(),
            catalogue: RwLock::new((None, Arc::default())),
            statuses: Mutex::default(),
            connections: Mutex::default(),
            metrics: HubMetrics::new(),
            shutdown,
        });
        tokio::spawn(watch_statuses(Arc::downgrade(&hub)));
        tokio::spawn(watch_health(Arc::downgrade(&hub)));
        hub
    }

    /// The bus behind this hub.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Registers a connection's outbox (for stats and status notices).
    pub fn register(&self, conn: u64, outbox: Arc<Outbox>) {
        lock(&self.connections).insert(conn, outbox);
    }

    /// Forgets a connection.
    pub fn deregister(&self, conn: u64) {
        lock(&self.connections).remove(&conn);
    }

    /// Calls `f` with every registered connection's outbox (under the
    /// registry's lock: `f` must not register or deregister).
    pub(crate) fn each_connection(&self, mut f: impl FnMut(&Outbox)) {
        for outbox in lock(&self.connections).values() {
            f(outbox);
        }
    }

    /// Every registered connection's id and outbox, in no order.
    pub(crate) fn connections(&self) -> Vec<(u64, Arc<Outbox>)> {
        lock(&self.connections)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Number of registered connections.
    pub(crate) fn connection_count(&self) -> usize {
        lock(&self.connections).len()
    }

    /// `(connection id, outbox depth)` of every connection.
    pub fn connection_depths(&self) -> Vec<(u64, usize)> {
        self.connections()
            .into_iter()
            .map(|(k, o)| (k, o.depth()))
            .collect()
    }

    /// Number of topics this hub holds a bus subscription for.
    pub fn bus_topics(&self) -> usize {
        lock(&self.topics).len()
    }

    /// The served instruments with their channels (cached briefly).
    pub async fn catalogue(&self) -> Arc<Catalogue> {
        {
            let cached = self.catalogue.read().unwrap_or_else(|e| e.into_inner());
            if cached.0.is_some_and(|at| at.elapsed() < CATALOGUE_TTL) {
                return cached.1.clone();
            }
        }
        match self.bus.catalogue().await {
            Ok(entries) => {
                let fresh: Arc<Catalogue> = Arc::new(
                    entries
                        .into_iter()
                        .map(|e| (e.instrument, e.channels))
                        .collect(),
                );
                *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) =
                    (Some(Instant::now()), fresh.clone());
                fresh
            }
            Err(e) => {
                warn!(error = %e, "catalogue unavailable; serving the last known one");
                self.catalogue
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .1
                    .clone()
            }
        }
    }

    /// Resolves request symbols for a channel: the served instruments they
    /// name (in request order, no duplicates) and the ones not served.
    pub async fn resolve(
        &self,
        channel: Channel,
        selectors: &[SymbolSelector],
    ) -> (Vec<Instrument>, Vec<String>) {
        let catalogue = self.catalogue().await;
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut unknown = Vec::new();
        for sel in selectors {
            match sel {
                SymbolSelector::Instrument(i) => {
                    if catalogue.get(i).is_some_and(|c| c.contains(&channel)) {
                        if seen.insert(i.clone()) {
                            found.push(i.clone());
                        }
                    } else {
                        unknown.push(i.to_string());
                    }
                }
                SymbolSelector::Venue(v) => {
                    let before = found.len();
                    for (i, _) in catalogue
                        .iter()
                        .filter(|(i, c)| i.venue() == v && c.contains(&channel))
                    {
                        if seen.insert(i.clone()) {
                            found.push(i.clone());
                        }
                    }
                    if found.len() == before && !catalogue.keys().any(|i| i.venue() == v) {
                        unknown.push(format!("{v}:*"));
                    }
                }
            }
        }
        (found, unknown)
    }

    /// Subscribes `sub` to `topic`, starting as asked. The snapshot (or the
    /// position a live start continues from) is taken under the same lock
    /// as the fan-out, so no update is repeated or skipped at the seam.
    /// The slot stays held: the caller releases it (or calls
    /// [`replay`](Self::replay)) once the client's ack is queued.
    pub async fn subscribe(self: &Arc<Self>, topic: &Topic, sub: Subscriber, start: Start) {
        loop {
            let entry = self.entry(topic);
            let mut init = entry.initialized.clone();
            if tokio::time::timeout(INIT_WAIT, init.wait_for(|ready| *ready))
                .await
                .is_err()
            {
                debug!(%topic, "bus slow to subscribe; registering without a snapshot");
            }
            {
                let mut st = lock(&entry.state);
                if st.closed {
                    continue;
                }
                match (start, &st.last) {
                    (Start::Snapshot, Some(last)) => {
                        if let Ok(frame) = Frame::try_from(last.snapshot_bytes()) {
                            sub.outbox.offer_snapshot(sub.slot, last, frame);
                        }
                    }
                    (Start::Live, Some(last)) => {
                        sub.outbox.set_position(sub.slot, last.seq(), last.epoch())
                    }
                    _ => {}
                }
                st.subs.push(sub.clone());
            }
            self.metrics.subscriptions.increment(1.0);
            break;
        }
    }

    /// Subscribes `sub` to the topic delayed by `delay`: it joins the
    /// topic's one delay line for that delay (made on first use), with the
    /// newest update at least `delay` old as its snapshot when asked. The
    /// slot stays held, as with [`subscribe`](Self::subscribe).
    pub async fn subscribe_delayed(
        self: &Arc<Self>,
        topic: &Topic,
        sub: Subscriber,
        delay: Duration,
        snapshot: bool,
    ) {
        loop {
            let entry = self.entry(topic);
            let mut init = entry.initialized.clone();
            let _ = tokio::time::timeout(INIT_WAIT, init.wait_for(|ready| *ready)).await;
            {
                let mut st = lock(&entry.state);
                if st.closed {
                    continue;
                }
                let line = match st.lines.iter().find(|l| l.delay == delay) {
                    Some(l) => l.clone(),
                    None => {
                        let l = DelayLine::start(delay, entry.stop.child_token());
                        st.lines.push(l.clone());
                        l
                    }
                };
                line.add(sub.clone(), snapshot, st.last.as_ref());
            }
            self.metrics.subscriptions.increment(1.0);
            break;
        }
    }

    /// The newest update of a topic at least `delay` old, for the delayed
    /// tier's REST snapshot: the delay line's, else the latest if old
    /// enough.
    pub async fn last_delayed(&self, topic: &Topic, delay: Duration) -> Option<Update> {
        let entry = lock(&self.topics).get(topic).cloned();
        if let Some(entry) = entry {
            let st = lock(&entry.state);
            if let Some(u) = st
                .lines
                .iter()
                .find(|l| l.delay == delay)
                .and_then(|l| l.released())
            {
                return Some(u);
            }
        }
        self.last(topic).await.filter(|u| is_older_than(u, delay))
    }

    /// Completes a `from_seq` start: history from the bus, merged with the
    /// live trades the slot held meanwhile, then live.
    pub async fn replay(&self, topic: &Topic, outbox: &Outbox, slot: SlotId, from_seq: u64) {
        let history = match self.bus.history(topic, from_seq).await {
            Ok(h) => h,
            Err(e) => {
                warn!(%topic, error = %e, "history unavailable for from_seq");
                Vec::new()
            }
        };
        outbox.finish_replay(slot, from_seq, &history);
    }

    /// The status notice for an instrument whose data is stale right now:
    /// its feed is stale, or the bus is unreachable.
    pub fn stale_notice(&self, instrument: &Instrument) -> Option<Status> {
        if !*self.bus.health().borrow() {
            return Some(Status {
                instrument: instrument.clone(),
                state: FeedState::Stale,
                reason: BUS_DOWN.into(),
            });
        }
        lock(&self.statuses)
            .get(instrument)
            .filter(|s| s.state == FeedState::Stale)
            .cloned()
    }

    /// Removes a subscriber; the last one out ends the bus subscription.
    /// After this returns, the hub offers nothing more to that slot.
    pub fn unsubscribe(&self, topic: &Topic, conn: u64, slot: SlotId) {
        let mut topics = lock(&self.topics);
        let Some(entry) = topics.get(topic).cloned() else {
            return;
        };
        let mut st = lock(&entry.state);
        let before = st.subs.len();
        st.subs.retain(|s| !(s.conn == conn && s.slot == slot));
        if st.subs.len() < before {
            self.metrics.subscriptions.decrement(1.0);
        }
        st.lines.retain(|l| {
            if l.remove(conn, slot) {
                self.metrics.subscriptions.decrement(1.0);
            }
            let keep = !l.is_empty();
            if !keep {
                l.stop.cancel();
            }
            keep
        });
        if st.subs.is_empty() && st.lines.is_empty() {
            st.closed = true;
            entry.stop.cancel();
            topics.remove(topic);
            self.metrics.bus_topics.set(topics.len() as f64);
        }
    }

    /// The latest update of a topic: the hub's own copy when it follows the
    /// topic, otherwise the bus's.
    pub async fn last(&self, topic: &Topic) -> Option<Update> {
        let entry = lock(&self.topics).get(topic).cloned();
        if let Some(last) = entry.and_then(|e| lock(&e.state).last.clone()) {
            return Some(last);
        }
        self.bus.last(topic).await.ok().flatten()
    }

    /// Whether the bus is reachable and at least one instrument's feed is live.
    pub async fn any_live(&self) -> bool {
        if !*self.bus.health().borrow() {
            return false;
        }
        match self.bus.current_statuses().await {
            Ok(all) => all.iter().any(|s| s.state == FeedState::Live),
            Err(_) => false,
        }
    }

    fn entry(self: &Arc<Self>, topic: &Topic) -> Arc<TopicEntry> {
        let mut topics = lock(&self.topics);
        if let Some(e) = topics.get(topic) {
            return e.clone();
        }
        let (tx, rx) = watch::channel(false);
        let entry = Arc::new(TopicEntry {
            topic: topic.clone(),
            state: Mutex::default(),
            initialized: rx,
            stop: self.shutdown.child_token(),
        });
        topics.insert(topic.clone(), entry.clone());
        self.metrics.bus_topics.set(topics.len() as f64);
        tokio::spawn(pump(self.clone(), entry.clone(), tx));
        entry
    }

    fn fan_out(&self, entry: &TopicEntry, update: Update) {
        let channel = update.topic().channel.index();
        self.metrics.updates_in[channel].increment(1);
        let mut st = lock(&entry.state);
        if let Some(last) = &st.last {
            if last.epoch() == update.epoch() && update.seq() <= last.seq() {
                return;
            }
        }
        // Only what is fanned out: duplicates at a subscribe seam would
        // count twice and skew the stage's latency.
        self.metrics
            .ingest_to_gateway
            .record(now_us().saturating_sub(update.rx()) as f64 / 1e6);
        let snapshot = st.resnapshot && update.topic().channel.is_conflatable();
        st.resnapshot = false;
        let bytes = if snapshot {
            update.snapshot_bytes()
        } else {
            update.bytes().clone()
        };
        // Converted (and UTF-8 checked) once per update, not per client.
        let Ok(frame) = Frame::try_from(bytes) else {
            warn!(topic = %entry.topic, seq = update.seq(), "update is not UTF-8; dropped");
            return;
        };
        for s in &st.subs {
            s.outbox.offer(s.slot, &update, &frame);
        }
        for line in &st.lines {
            line.push(&update, &frame);
        }
        self.metrics.updates_out[channel].increment(st.subs.len() as u64);
        st.last = Some(update);
    }

    /// After a bus outage: trades missed meanwhile come from history when
    /// it still holds them (otherwise the next trade's jump in `seq` makes
    /// each outbox announce a gap); conflatable topics get their newest
    /// value as a fresh snapshot.
    async fn catch_up(&self, entry: &TopicEntry) {
        // The subscription can come back before the bus answers reads
        // (separate links): reading now would turn recoverable trades into
        // gaps.
        let mut health = self.bus.health();
        let _ = tokio::time::timeout(INIT_WAIT, health.wait_for(|up| *up)).await;
        let (position, channel) = {
            let mut st = lock(&entry.state);
            st.resnapshot = true;
            (
                st.last.as_ref().map(|u| (u.seq(), u.epoch().clone())),
                entry.topic.channel,
            )
        };
        if channel == Channel::Trade {
            if let Some((seq, epoch)) = position {
                match self.bus.history(&entry.topic, seq + 1).await {
                    Ok(missed) => {
                        for u in missed.into_iter().filter(|u| u.epoch() == &epoch) {
                            self.fan_out(entry, u);
                        }
                    }
                    Err(e) => {
                        warn!(topic = %entry.topic, error = %e, "no history to catch up from")
                    }
                }
            }
            return;
        }
        if let Ok(Some(last)) = self.bus.last(&entry.topic).await {
            self.fan_out(entry, last);
        }
    }

    /// Tells every connection following an instrument that the bus went
    /// away or came back (unless its feed is stale on its own).
    fn on_health(&self, up: bool) {
        let entries: Vec<Arc<TopicEntry>> = lock(&self.topics).values().cloned().collect();
        let statuses = lock(&self.statuses).clone();
        let mut told: HashSet<(u64, Instrument)> = HashSet::new();
        for entry in entries {
            let instrument = &entry.topic.instrument;
            let status = if up {
                match statuses.get(instrument) {
                    Some(s) if s.state == FeedState::Stale => s.clone(),
                    _ => Status {
                        instrument: instrument.clone(),
                        state: FeedState::Live,
                        reason: String::new(),
                    },
                }
            } else {
                Status {
                    instrument: instrument.clone(),
                    state: FeedState::Stale,
                    reason: BUS_DOWN.into(),
                }
            };
            let subs = lock(&entry.state).all_subscribers();
            for s in subs {
                if told.insert((s.conn, instrument.clone())) {
                    push_status(&s.outbox, &status);
                }
            }
        }
    }

    fn on_status(&self, status: Status) {
        lock(&self.statuses).insert(status.instrument.clone(), status.clone());
        let entries: Vec<Arc<TopicEntry>> = {
            let topics = lock(&self.topics);
            Channel::ALL
                .iter()
                .filter_map(|c| {
                    topics
                        .get(&Topic::new(status.instrument.clone(), *c))
                        .cloned()
                })
                .collect()
        };
        let mut told = HashSet::new();
        for entry in entries {
            let subs = lock(&entry.state).all_subscribers();
            for s in subs {
                if told.insert(s.conn) {
                    push_status(&s.outbox, &status);
                }
            }
        }
    }
}

/// Queues a status notice (newest per instrument wins).
pub fn push_status(outbox: &Outbox, status: &Status) {
    let bytes = protocol::status(&status.instrument, status.state, &status.reason);
    if let Ok(frame) = Frame::try_from(bytes) {
        outbox.push_notice(&status.instrument, frame);
    }
}

/// Follows one topic on the bus for as long as local clients want it.
async fn pump(hub: Arc<Hub>, entry: Arc<TopicEntry>, initialized: watch::Sender<bool>) {
    let topic = entry.topic.clone();
    let mut backoff = Duration::from_millis(50);
    let mut lag_logged = false;
    'resubscribe: while !entry.stop.is_cancelled() {
        let subscribed = tokio::select! {
            _ = entry.stop.cancelled() => break,
            s = hub.bus.subscribe(&topic) => s,
        };
        let mut sub = match subscribed {
            Ok(s) => s,
            Err(e) => {
                warn!(%topic, error = %e, "bus subscribe failed; retrying");
                tokio::select! {
                    _ = entry.stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if let Ok(Some(last)) = hub.bus.last(&topic).await {
            let mut st = lock(&entry.state);
            let newer = st
                .last
                .as_ref()
                .is_none_or(|l| l.epoch() != last.epoch() || l.seq() < last.seq());
            if newer {
                st.last = Some(last);
            }
        }
        initialized.send_replace(true);
        loop {
            let received = tokio::select! {
                _ = entry.stop.cancelled() => break 'resubscribe,
                r = sub.recv() => r,
            };
            match received {
                Some(Received::Update(u)) => hub.fan_out(&entry, u),
                Some(Received::Resumed) => hub.catch_up(&entry).await,
                Some(Received::Lagged(n)) => {
                    hub.metrics.lagged.increment(n);
                    // Once per topic subscription: under overload this
                    // repeats, and the counter says how much.
                    if !std::mem::replace(&mut lag_logged, true) {
                        warn!(%topic, skipped = n, "hub lagged behind the bus (counted in tickwire_gateway_bus_lagged_total)");
                    }
                }
                None => continue 'resubscribe,
            }
        }
    }
}

/// Follows instrument status changes and tells the affected connections.
async fn watch_statuses(hub: std::sync::Weak<Hub>) {
    let (mut sub, shutdown) = match hub.upgrade() {
        Some(h) => match h.bus.statuses() {
            Ok(s) => (s, h.shutdown.clone()),
            Err(e) => {
                warn!(error = %e, "status subscription failed");
                return;
            }
        },
        None => return,
    };
    if let Some(h) = hub.upgrade() {
        if let Ok(all) = h.bus.current_statuses().await {
            let mut map = lock(&h.statuses);
            for s in all {
                map.insert(s.instrument.clone(), s);
            }
        }
    }
    loop {
        let status = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = sub.recv() => s,
        };
        match (status, hub.upgrade()) {
            (Some(s), Some(h)) => h.on_status(s),
            _ => return,
        }
    }
}

/// Follows the bus's reachability and tells the affected connections.
async fn watch_health(hub: std::sync::Weak<Hub>) {
    let (mut health, shutdown) = match hub.upgrade() {
        Some(h) => (h.bus.health(), h.shutdown.clone()),
        None => return,
    };
    let mut up = *health.borrow_and_update();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = health.changed() => if changed.is_err() { return },
        }
        let now = *health.borrow_and_update();
        if now == up {
            continue;
        }
        up = now;
        match hub.upgrade() {
            Some(h) => {
                if up {
                    info!("bus reachable again");
                    // Status changes published during the outage never
                    // reached us: read the current ones before telling clients.
                    if let Ok(all) = h.bus.current_statuses().await {
                        let mut map = lock(&h.statuses);
                        for s in all {
                            map.insert(s.instrument.clone(), s);
                        }
                    }
                } else {
                    warn!("bus unreachable; marking subscribed instruments stale");
                }
                h.on_health(up);
            }
            None => return,
        }
    }
}
