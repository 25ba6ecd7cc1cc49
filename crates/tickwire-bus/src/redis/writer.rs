//! The publish path: `publish` pushes into a bounded queue and returns; one
//! writer task drains the queue in batches and sends each batch as one
//! pipeline of publish scripts (one round trip per batch, not per update;
//! on a cluster, one pipeline per topic slot, all in flight at once).
//! While Redis is down the writer drops what it cannot send and counts it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use metrics::{Counter, Gauge};
use redis::{Pipeline, ServerErrorKind, Value};
use tickwire_model::{Channel, Instrument, Topic, Update};
use tokio::sync::{mpsc, oneshot};

use super::envelope;
use super::keys::{Keys, TopicKeys};
use super::link::{DataConn, DataLink, OP_TIMEOUT};
use super::scripts::{ANNOUNCE_SCRIPT, PUBLISH_SCRIPT, STATUS_SCRIPT};
use crate::{CatalogueEntry, Status, metrics as m};

/// What the writer is asked to do, in order.
pub(crate) enum Item {
    /// Publish an update (already checked against the local sequence).
    Update(Update),
    /// Set and announce a status.
    Status(Status),
    /// Answered once everything queued before it was written or dropped.
    Barrier(oneshot::Sender<()>),
}

/// Counts of queued and finished writes: equal means nothing is in flight,
/// so a reader needs no barrier to see its own writes.
#[derive(Default)]
pub(crate) struct Progress {
    queued: AtomicU64,
    finished: AtomicU64,
}

impl Progress {
    pub(crate) fn queued(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.finished.load(Ordering::Acquire) == self.queued.load(Ordering::Acquire)
    }
}

/// Publish-side metric handles, resolved once.
pub(crate) struct PublishMetrics {
    published: [Counter; 4],
    pub(crate) overloaded: Counter,
    pub(crate) out_of_order: Counter,
    redis_down: Counter,
    redis_error: Counter,
    depth: Gauge,
}

impl PublishMetrics {
    pub(crate) fn new() -> Self {
        let reason =
            |r: &'static str| metrics::counter!(m::PUBLISH_ERRORS, "bus" => "redis", "reason" => r);
        Self {
            published: Channel::ALL.map(
                |c| metrics::counter!(m::PUBLISHED, "bus" => "redis", "channel" => c.as_str()),
            ),
            overloaded: reason("overloaded"),
            out_of_order: reason("out_of_order"),
            redis_down: reason("redis_down"),
            redis_error: reason("redis_error"),
            depth: metrics::gauge!(m::PUBLISH_QUEUE_DEPTH, "bus" => "redis"),
        }
    }
}

/// How one write ended.
enum Outcome {
    Done,
    /// Refused by the script: an update not above the stored `seq`, or a
    /// status equal to the stored one.
    Unchanged,
    /// The server had lost the script (it restarted): send again after
    /// loading it.
    NoScript,
    /// The server refused it for another reason.
    Failed(String),
}

/// One pipeline: the writes of one slot (or of everything, on one server).
struct Group<'a> {
    items: Vec<&'a Item>,
}

/// The writer task's state.
pub(crate) struct Writer {
    pub(crate) rx: mpsc::Receiver<Item>,
    pub(crate) link: Arc<DataLink>,
    pub(crate) keys: Keys,
    pub(crate) status_key: String,
    pub(crate) cluster: bool,
    pub(crate) history_len: usize,
    pub(crate) batch: usize,
    pub(crate) progress: Arc<Progress>,
    pub(crate) metrics: Arc<PublishMetrics>,
    /// Names per topic, built on first use.
    pub(crate) topic_keys: HashMap<Topic, TopicKeys>,
    /// Updates dropped in the current outage, reported when it ends.
    pub(crate) dropped: u64,
    /// Whether a server refusal was logged already (once per bus).
    pub(crate) logged_refusal: bool,
    /// What this bus announced, shared with [`RedisBus::announce`](super::RedisBus).
    pub(crate) announced: Arc<Mutex<Vec<CatalogueEntry>>>,
    /// The catalogue hash's name.
    pub(crate) catalogue_key: String,
    /// The latest status this bus set per instrument.
    pub(crate) statuses: HashMap<Instrument, Status>,
}

impl Writer {
    /// Drains the queue until the bus is dropped.
    pub(crate) async fn run(mut self) {
        let mut batch: Vec<Item> = Vec::with_capacity(self.batch);
        loop {
            batch.clear();
            if self.rx.recv_many(&mut batch, self.batch).await == 0 {
                return;
            }
            self.metrics.depth.set(self.rx.len() as f64);
            for item in &batch {
                if let Item::Status(st) = item {
                    self.statuses.insert(st.instrument.clone(), st.clone());
                }
            }
            let writes = batch
                .iter()
                .filter(|i| !matches!(i, Item::Barrier(_)))
                .count() as u64;
            if writes > 0 {
                self.write(&batch).await;
                self.progress.finished.fetch_add(writes, Ordering::AcqRel);
            }
            for item in batch.drain(..) {
                if let Item::Barrier(done) = item {
                    // The reader may have given up waiting; nothing to do.
                    let _gone = done.send(());
                }
            }
        }
    }

    async fn write(&mut self, batch: &[Item]) {
        let conn = match self.link.conn() {
            Ok(conn) => conn,
            Err(_) => {
                self.drop_all(batch.iter());
                return;
            }
        };
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "redis back: updates published while it was down were dropped"
            );
            self.dropped = 0;
            // A Redis that restarted empty lost what this bus owns.
            self.restore(conn.clone()).await;
        }
        for item in batch {
            if let Item::Update(u) = item {
                if !self.topic_keys.contains_key(u.topic()) {
                    let keys = self.keys.topic(u.topic());
                    self.topic_keys.insert(u.topic().clone(), keys);
                }
            }
        }
        let groups = self.group(batch);
        let outcomes = join_all(groups.iter().map(|g| self.send(g, conn.clone()))).await;
        let mut restarted = false;
        for (group, outcome) in groups.iter().zip(outcomes) {
            match outcome {
                Ok((results, reloaded)) => {
                    restarted |= reloaded;
                    self.count(group, &results);
                }
                Err(()) => self.drop_all(group.items.iter().copied()),
            }
        }
        if restarted {
            // The server had lost our scripts: it restarted, maybe empty.
            self.restore(conn).await;
        }
    }

    /// Writes again what this bus owns in Redis outside the topics: the
    /// instruments it announced and the statuses it set, so that gateways
    /// of a Redis that restarted without its data list them and turn ready.
    async fn restore(&mut self, mut conn: DataConn) {
        let entries = self
            .announced
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        if !entries.is_empty() {
            let mut inv = ANNOUNCE_SCRIPT.key(&self.catalogue_key);
            for e in &entries {
                inv.arg(e.instrument.as_str())
                    .arg(envelope::channels_value(&e.channels));
            }
            match tokio::time::timeout(OP_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => self.link.report(&e),
                Err(_) => self.link.report_timeout(),
            }
        }
        let items: Vec<Item> = self.statuses.values().cloned().map(Item::Status).collect();
        if items.is_empty() {
            return;
        }
        let refs: Vec<&Item> = items.iter().collect();
        if self.exec(&refs, &mut conn).await.is_ok() {
            tracing::info!(
                instruments = entries.len(),
                statuses = items.len(),
                "restored catalogue and statuses in redis"
            );
        }
    }

    /// Splits a batch into pipelines: one on a single server; one per
    /// route (topic, or the status hash) on a cluster, keeping order.
    fn group<'a>(&self, batch: &'a [Item]) -> Vec<Group<'a>> {
        let writes = batch.iter().filter(|i| !matches!(i, Item::Barrier(_)));
        if !self.cluster {
            return vec![Group {
                items: writes.collect(),
            }];
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<Group<'a>> = Vec::new();
        for item in writes {
            let route: &str = match item {
                Item::Update(u) => &self.topic_keys[u.topic()].channel,
                Item::Status(_) => &self.status_key,
                Item::Barrier(_) => continue,
            };
            let at = *index.entry(route).or_insert_with(|| {
                groups.push(Group { items: Vec::new() });
                groups.len() - 1
            });
            groups[at].items.push(item);
        }
        groups
    }

    /// Sends one group; a group whose script the server lost is sent once
    /// more after loading it. `Err` when the link failed.
    async fn send(
        &self,
        group: &Group<'_>,
        mut conn: DataConn,
    ) -> Result<(Vec<Outcome>, bool), ()> {
        let mut outcomes = self.exec(&group.items, &mut conn).await?;
        let missing: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Outcome::NoScript))
            .map(|(i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok((outcomes, false));
        }
        let load = async {
            PUBLISH_SCRIPT.load_async(&mut conn).await?;
            ANNOUNCE_SCRIPT.load_async(&mut conn).await?;
            STATUS_SCRIPT.load_async(&mut conn).await
        };
        match tokio::time::timeout(OP_TIMEOUT, load).await {
            Ok(Ok(_sha)) => {}
            Ok(Err(e)) => {
                self.link.report(&e);
                return Err(());
            }
            Err(_) => {
                self.link.report_timeout();
                return Err(());
            }
        }
        let again: Vec<&Item> = missing.iter().map(|&i| group.items[i]).collect();
        let retried = self.exec(&again, &mut conn).await?;
        for (i, outcome) in missing.into_iter().zip(retried) {
            outcomes[i] = outcome;
        }
        Ok((outcomes, true))
    }

    /// One pipeline round trip.
    async fn exec(&self, items: &[&Item], conn: &mut DataConn) -> Result<Vec<Outcome>, ()> {
        let mut pipe = Pipeline::with_capacity(items.len());
        pipe.ignore_errors();
        let command = if self.cluster { "SPUBLISH" } else { "PUBLISH" };
        for item in items {
            match item {
                Item::Update(u) => {
                    let keys = &self.topic_keys[u.topic()];
                    let keep = if u.topic().channel == Channel::Trade {
                        self.history_len
                    } else {
                        0
                    };
                    let mut inv = PUBLISH_SCRIPT.key(&keys.meta);
                    inv.key(&keys.last)
                        .key(&keys.hist)
                        .arg(u.epoch().as_str())
                        .arg(u.seq())
                        .arg(envelope::encode(u))
                        .arg(keep)
                        .arg(&*keys.channel)
                        .arg(command);
                    pipe.invoke_script(&inv);
                }
                Item::Status(s) => {
                    let mut inv = STATUS_SCRIPT.key(&self.status_key);
                    inv.arg(s.instrument.as_str())
                        .arg(envelope::status_value(s))
                        .arg(command);
                    pipe.invoke_script(&inv);
                }
                Item::Barrier(_) => {}
            }
        }
        let reply = tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<Value>(conn)).await;
        let results = match reply {
            Ok(Ok(Value::Array(results))) if results.len() == items.len() => results,
            Ok(Ok(other)) => {
                let why = format!("unexpected pipeline reply {other:?}");
                return Ok(items.iter().map(|_| Outcome::Failed(why.clone())).collect());
            }
            Ok(Err(e)) => {
                self.link.report(&e);
                if super::link::is_connection_error(&e) {
                    return Err(());
                }
                return Ok(items
                    .iter()
                    .map(|_| Outcome::Failed(e.to_string()))
                    .collect());
            }
            Err(_) => {
                self.link.report_timeout();
                return Err(());
            }
        };
        Ok(results.into_iter().map(outcome).collect())
    }

    fn count(&mut self, group: &Group<'_>, outcomes: &[Outcome]) {
        for (item, outcome) in group.items.iter().zip(outcomes) {
            match (item, outcome) {
                (Item::Update(u), Outcome::Done) => {
                    self.metrics.published[u.topic().channel.index()].increment(1);
                }
                (Item::Update(u), Outcome::Unchanged) => {
                    // Another publisher is ahead on this topic in Redis.
                    self.metrics.out_of_order.increment(1);
                    tracing::debug!(topic = %u.topic(), seq = u.seq(), "redis refused a stale seq");
                }
                (_, Outcome::NoScript | Outcome::Failed(_)) => {
                    self.metrics.redis_error.increment(1);
                    if !self.logged_refusal {
                        self.logged_refusal = true;
                        let why = match outcome {
                            Outcome::Failed(e) => e.as_str(),
                            _ => "script missing after reload",
                        };
                        tracing::error!(error = why, "redis refused a publish (logged once)");
                    }
                }
                _ => {}
            }
        }
    }

    fn drop_all<'a>(&mut self, items: impl Iterator<Item = &'a Item>) {
        let n = items
            .filter(|i| matches!(i, Item::Update(_) | Item::Status(_)))
            .count() as u64;
        self.metrics.redis_down.increment(n);
        self.dropped += n;
    }
}

fn outcome(v: Value) -> Outcome {
    match v {
        Value::Int(1) => Outcome::Done,
        Value::Int(0) => Outcome::Unchanged,
        Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => Outcome::NoScript,
        Value::ServerError(e) => Outcome::Failed(format!("{e:?}")),
        other => Outcome::Failed(format!("unexpected script reply {other:?}")),
    }
}
