//! The in-process bus: one broadcast channel, last value and trade history
//! per topic. What `tickwire run` uses with no configuration.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use metrics::Counter;
use tickwire_model::{Channel, Instrument, Topic, Update};
use tokio::sync::{broadcast, watch};

use crate::{
    BoxFuture, Bus, CatalogueEntry, Delivery, Error, Result, Status, StatusSubscription,
    Subscription, metrics as m,
};

/// Settings of the memory bus.
#[derive(Clone, Copy, Debug)]
pub struct MemoryBusConfig {
    /// Trades kept per trade topic for `from_seq` resume. Default 10 000:
    /// about 2 MB per busy topic; more makes longer outages resumable.
    pub history_len: usize,
    /// Updates buffered per topic for a subscriber that is behind before it
    /// lags. Default 4096: deep enough to ride out scheduling hiccups of a
    /// loaded gateway without losing trades.
    pub subscriber_capacity: usize,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        Self {
            history_len: 10_000,
            subscriber_capacity: 4096,
        }
    }
}

struct TopicCell {
    /// Held only for memory operations, never across an await. Publishing
    /// sends under this lock so that `last`/`history` and delivery agree.
    state: Mutex<TopicState>,
    tx: broadcast::Sender<Delivery>,
}

#[derive(Default)]
struct TopicState {
    last: Option<Update>,
    history: VecDeque<Update>,
}

/// The in-process [`Bus`].
pub struct MemoryBus {
    config: MemoryBusConfig,
    topics: RwLock<HashMap<Topic, Arc<TopicCell>>>,
    catalogue: Mutex<BTreeMap<Instrument, Vec<Channel>>>,
    statuses: Mutex<BTreeMap<Instrument, Status>>,
    status_tx: broadcast::Sender<Status>,
    /// Always up: an in-process bus cannot be unreachable.
    health: watch::Sender<bool>,
    published: [Counter; 4],
    out_of_order: Counter,
}

impl MemoryBus {
    /// A memory bus with the given settings.
    pub fn new(config: MemoryBusConfig) -> Self {
        m::describe();
        // In one process the bus cannot be unreachable; the gauge is set so
        // dashboards and alerts read the same series for either bus.
        metrics::gauge!(m::CONNECTED, "bus" => "memory", "link" => "data").set(1.0);
        let (status_tx, _) = broadcast::channel(1024);
        Self {
            config,
            topics: RwLock::default(),
            catalogue: Mutex::default(),
            statuses: Mutex::default(),
            status_tx,
            health: watch::Sender::new(true),
            published: Channel::ALL.map(
                |c| metrics::counter!(m::PUBLISHED, "bus" => "memory", "channel" => c.as_str()),
            ),
            out_of_order: metrics::counter!(m::PUBLISH_ERRORS, "bus" => "memory", "reason" => "out_of_order"),
        }
    }

    fn cell(&self, topic: &Topic) -> Arc<TopicCell> {
        if let Some(cell) = read(&self.topics).get(topic) {
            return cell.clone();
        }
        let mut topics = write(&self.topics);
        topics
            .entry(topic.clone())
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(self.config.subscriber_capacity.max(1));
                Arc::new(TopicCell {
                    state: Mutex::default(),
                    tx,
                })
            })
            .clone()
    }

    fn existing(&self, topic: &Topic) -> Option<Arc<TopicCell>> {
        read(&self.topics).get(topic).cloned()
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new(MemoryBusConfig::default())
    }
}

// A poisoned lock means a panic elsewhere already happened; the data it
// guards (plain collections) is still consistent, so keep serving.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

impl Bus for MemoryBus {
    fn publish(&self, update: Update) -> Result<()> {
        let cell = self.cell(update.topic());
        let mut state = lock(&cell.state);
        if let Some(last) = &state.last {
            if update.seq() <= last.seq() && update.epoch() == last.epoch() {
                self.out_of_order.increment(1);
                return Err(Error::OutOfOrder {
                    topic: update.topic().clone(),
                    seq: update.seq(),
                    last: last.seq(),
                });
            }
            if update.epoch() != last.epoch() {
                // A new sequence run: history of the old one cannot be
                // resumed with the new numbers.
                state.history.clear();
            }
        }
        let channel = update.topic().channel;
        if channel == Channel::Trade && self.config.history_len > 0 {
            if state.history.len() == self.config.history_len {
                state.history.pop_front();
            }
            state.history.push_back(update.clone());
        }
        state.last = Some(update.clone());
        // No receivers is normal (nobody wants this topic yet).
        let _no_receivers_is_fine = cell.tx.send(Delivery::Update(update));
        self.published[channel.index()].increment(1);
        Ok(())
    }

    fn publish_status(&self, status: Status) -> Result<()> {
        let mut statuses = lock(&self.statuses);
        let changed = statuses.get(&status.instrument) != Some(&status);
        if changed {
            statuses.insert(status.instrument.clone(), status.clone());
            let _no_receivers_is_fine = self.status_tx.send(status);
        }
        Ok(())
    }

    fn announce(&self, entries: Vec<CatalogueEntry>) -> BoxFuture<'_, Result<()>> {
        let mut catalogue = lock(&self.catalogue);
        for e in entries {
            let channels = catalogue.entry(e.instrument).or_default();
            channels.extend(e.channels);
            channels.sort();
            channels.dedup();
        }
        Box::pin(async { Ok(()) })
    }

    fn catalogue(&self) -> BoxFuture<'_, Result<Vec<CatalogueEntry>>> {
        let entries = lock(&self.catalogue)
            .iter()
            .map(|(i, c)| CatalogueEntry {
                instrument: i.clone(),
                channels: c.clone(),
            })
            .collect();
        Box::pin(async { Ok(entries) })
    }

    fn subscribe(&self, topic: &Topic) -> BoxFuture<'_, Result<Subscription>> {
        let cell = self.cell(topic);
        // Subscribing under the state lock orders it against publishes.
        let rx = {
            let _state = lock(&cell.state);
            cell.tx.subscribe()
        };
        Box::pin(async move { Ok(Subscription::new(rx)) })
    }

    fn last(&self, topic: &Topic) -> BoxFuture<'_, Result<Option<Update>>> {
        let last = self
            .existing(topic)
            .and_then(|cell| lock(&cell.state).last.clone());
        Box::pin(async move { Ok(last) })
    }

    fn history(&self, topic: &Topic, from_seq: u64) -> BoxFuture<'_, Result<Vec<Update>>> {
        let out = self
            .existing(topic)
            .map(|cell| {
                let state = lock(&cell.state);
                let start = state.history.partition_point(|u| u.seq() < from_seq);
                state.history.range(start..).cloned().collect()
            })
            .unwrap_or_default();
        Box::pin(async move { Ok(out) })
    }

    fn statuses(&self) -> Result<StatusSubscription> {
        Ok(StatusSubscription::new(self.status_tx.subscribe()))
    }

    fn current_statuses(&self) -> BoxFuture<'_, Result<Vec<Status>>> {
        let all = lock(&self.statuses).values().cloned().collect();
        Box::pin(async move { Ok(all) })
    }

    fn health(&self) -> watch::Receiver<bool> {
        self.health.subscribe()
    }
}

#[cfg(test)]
mod tests {
    crate::bus_conformance_tests!(|| async {
        super::MemoryBus::new(super::MemoryBusConfig {
            history_len: 100,
            subscriber_capacity: 64,
        })
    });
}
