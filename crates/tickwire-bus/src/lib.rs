//! The fan-out bus between ingest and gateways: the [`Bus`] trait, its
//! guarantees, the in-process [`MemoryBus`], the [`RedisBus`] for separate
//! processes and machines, and the conformance suite every implementation
//! must pass.

mod error;
mod memory;
pub mod metrics;
mod redis;
#[cfg(feature = "testkit")]
pub mod testkit;

pub mod conformance;

use std::future::Future;
use std::pin::Pin;

use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Instrument, Topic, Update};
use tokio::sync::{broadcast, watch};

pub use self::redis::{RedisBus, RedisBusConfig, RedisTarget};
pub use error::{Error, Result};
pub use memory::{MemoryBus, MemoryBusConfig};

/// A boxed future, so that `Bus` stays object safe (`Arc<dyn Bus>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One instrument a feed serves, with the channels it publishes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CatalogueEntry {
    /// The instrument.
    pub instrument: Instrument,
    /// Its channels, in [`Channel::ALL`] order.
    pub channels: Vec<Channel>,
}

/// Whether an instrument's feed is delivering, as announced by ingest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Status {
    /// The instrument.
    pub instrument: Instrument,
    /// Live or stale.
    pub state: FeedState,
    /// Why (`feed_disconnected`, `resync`, ...); empty when live.
    pub reason: String,
}

/// What a topic subscription yields.
#[derive(Clone, Debug)]
pub enum Received {
    /// The next update of the topic.
    Update(Update),
    /// This subscriber fell behind and `n` updates were skipped for it;
    /// the next `Update` is newer than the ones it missed. The caller sees
    /// the hole as a jump in `seq`.
    Lagged(u64),
    /// The bus came back after an outage and this subscription is live
    /// again, but updates published meanwhile never arrive on it: the
    /// subscriber catches up from `last` (and `history` for trades).
    Resumed,
}

/// What a bus implementation sends down a topic's broadcast.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// An update of the topic.
    Update(Update),
    /// The bus reconnected; see [`Received::Resumed`].
    Resumed,
}

/// A live subscription to one topic. Dropping it ends the interest.
pub struct Subscription {
    rx: broadcast::Receiver<Delivery>,
    /// Dropped with the subscription: lets the bus notice lost interest.
    _guard: Option<Box<dyn Send + Sync>>,
}

impl Subscription {
    /// Wraps the receiving end of a topic's broadcast.
    pub fn new(rx: broadcast::Receiver<Delivery>) -> Self {
        Self { rx, _guard: None }
    }

    /// Wraps a receiver with a guard the bus uses to end its own
    /// subscription when the last local receiver is gone.
    pub fn with_guard(rx: broadcast::Receiver<Delivery>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            rx,
            _guard: Some(guard),
        }
    }

    /// The next update, in publish order; `None` once the bus has closed
    /// this subscription (the subscriber should resubscribe).
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(Delivery::Update(u)) => Some(Received::Update(u)),
            Ok(Delivery::Resumed) => Some(Received::Resumed),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// A stream of instrument status changes.
pub struct StatusSubscription {
    rx: broadcast::Receiver<Status>,
}

impl StatusSubscription {
    /// Wraps the receiving end of the status broadcast.
    pub fn new(rx: broadcast::Receiver<Status>) -> Self {
        Self { rx }
    }

    /// The next status change; `None` when the bus is gone. Lagging here
    /// skips to the newest changes (statuses are rare and idempotent).
    pub async fn recv(&mut self) -> Option<Status> {
        loop {
            match self.rx.recv().await {
                Ok(s) => return Some(s),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The fan-out bus. One implementation is chosen at start-up by
/// configuration; everything above this trait works with either.
///
/// Guarantees every implementation keeps (checked by [`conformance`]):
///
/// - **Ordering**: on one topic, subscribers receive updates in publish
///   order, which is `seq` order. Nothing is ordered across topics.
/// - **Sequencing**: a topic's `seq` rises by one per update within an
///   epoch; `publish` refuses an update whose `seq` is not above the
///   topic's last one ([`Error::OutOfOrder`]) so the streams stay monotone.
/// - **Last value**: after `publish` returns, `last` answers that update
///   (or a newer one) for its topic.
/// - **Subscribe, then last**: an update published after `subscribe`
///   returns is delivered to that subscription (unless it lags); so a
///   subscriber that calls `subscribe`, then `last`, and drops stream items
///   with `seq <= last.seq` sees every update exactly once.
/// - **History**: the newest `history_len` trades of each trade topic are
///   kept for resume; other channels keep only their last value.
/// - **Lagging**: a subscriber that does not keep up loses the oldest
///   pending updates and is told how many ([`Received::Lagged`]); it never
///   slows the publisher or other subscribers.
/// - **Blocking**: `publish` and `publish_status` never await and never
///   block on I/O; an implementation that cannot take more returns
///   [`Error::Overloaded`] and counts the drop.
pub trait Bus: Send + Sync + 'static {
    /// Publishes a sequenced update: sets the topic's last value, appends
    /// trades to history, and delivers to the topic's subscribers.
    fn publish(&self, update: Update) -> Result<()>;

    /// Publishes a status change for an instrument.
    fn publish_status(&self, status: Status) -> Result<()>;

    /// Declares instruments a feed serves, so gateways can list and
    /// validate them. Announcing again adds to (never removes from) the
    /// catalogue.
    fn announce(&self, entries: Vec<CatalogueEntry>) -> BoxFuture<'_, Result<()>>;

    /// Every announced instrument, sorted by instrument.
    fn catalogue(&self) -> BoxFuture<'_, Result<Vec<CatalogueEntry>>>;

    /// Subscribes to one topic's updates published from now on. A remote
    /// bus that is down answers at once; the subscription then delivers
    /// [`Received::Resumed`] when the bus is back.
    fn subscribe(&self, topic: &Topic) -> BoxFuture<'_, Result<Subscription>>;

    /// The latest update of a topic, if it has one.
    fn last(&self, topic: &Topic) -> BoxFuture<'_, Result<Option<Update>>>;

    /// Retained trades of a topic with `seq >= from_seq`, oldest first. If
    /// the first returned `seq` is above `from_seq` (and `from_seq` is not
    /// beyond the topic's last `seq`), the difference is gone for good.
    fn history(&self, topic: &Topic, from_seq: u64) -> BoxFuture<'_, Result<Vec<Update>>>;

    /// Subscribes to instrument status changes.
    fn statuses(&self) -> Result<StatusSubscription>;

    /// The current status of every instrument that has one.
    fn current_statuses(&self) -> BoxFuture<'_, Result<Vec<Status>>>;

    /// Whether the bus is reachable now, as a watch that changes when it
    /// goes down or comes back. Subscriptions survive an outage: they
    /// deliver [`Received::Resumed`] when the bus is back.
    fn health(&self) -> watch::Receiver<bool>;
}
