//! The async shell around feeds: sequencing events into updates under one
//! epoch, and the task that plays a synthetic market onto the bus. The
//! only place in this crate that reads the clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tickwire_bus::{Bus, CatalogueEntry, Status};
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Epoch, Event, Instrument, Topic, Update};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metrics::{FeedMetrics, PUBLISH_ERROR_REASONS, publish_error_reason};
use crate::{FeedsConfig, Result, SyntheticMarket, rng, synthetic};

/// How often the runner wakes to generate what is due: short enough that
/// events leave within a few ms of their `ts`, long enough that a tick at
/// 100 000 events/s carries hundreds of them (one wake-up, many publishes).
const TICK: Duration = Duration::from_millis(5);
/// Wait between two attempts to announce the catalogue to a bus that is
/// not reachable yet.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(1);
/// Status reason published when a feed stops on shutdown.
const STOPPED_REASON: &str = "feed_stopped";

/// Microseconds since the Unix epoch from the wall clock (0 if the clock is
/// before 1970).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Assigns each topic's `seq` (1, 2, 3, ...) under one [`Epoch`] and encodes
/// events into [`Update`]s. One per feed task; two sequencers must never
/// publish the same topic.
#[derive(Debug)]
pub struct Sequencer {
    epoch: Epoch,
    /// Position per instrument, by channel index; keyed by instrument so
    /// stamping needs no `Topic` allocation.
    last: HashMap<Instrument, [Cursor; 4]>,
}

/// Where one topic's sequence stands.
#[derive(Debug, Default, Clone)]
struct Cursor {
    seq: u64,
    /// The run this topic continues, when it was resumed from the bus;
    /// otherwise the sequencer's own epoch.
    epoch: Option<Epoch>,
}

impl Sequencer {
    /// A sequencer with a fresh epoch, from the start time, the process id
    /// and a per-process counter, so every new sequence run (a new process
    /// or a restarted feed) gets a new epoch.
    pub fn new() -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let seed = now_us()
            ^ u64::from(std::process::id()).rotate_left(40)
            ^ run.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self::with_epoch(Epoch::from_seed(rng::mix(seed)))
    }

    /// A sequencer with a given epoch (tests, or resuming a known run).
    pub fn with_epoch(epoch: Epoch) -> Self {
        Self {
            epoch,
            last: HashMap::new(),
        }
    }

    /// The epoch every update of this sequencer carries.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The next `seq` of a topic: 1 for its first update, then one more
    /// each call.
    pub fn next_seq(&mut self, instrument: &Instrument, channel: Channel) -> u64 {
        let slot = match self.last.get_mut(instrument) {
            Some(slot) => slot,
            None => self.last.entry(instrument.clone()).or_default(),
        };
        slot[channel.index()].seq += 1;
        slot[channel.index()].seq
    }

    /// Continues a topic's sequence where the bus says it stands (a
    /// restarted ingest), so clients see the same epoch and the next seq
    /// instead of a new run.
    pub fn resume(&mut self, instrument: &Instrument, channel: Channel, epoch: Epoch, seq: u64) {
        let slot = self.last.entry(instrument.clone()).or_default();
        slot[channel.index()] = Cursor {
            seq,
            epoch: Some(epoch),
        };
    }

    /// Stamps an event with its topic's next `seq` and encodes it.
    pub fn stamp(&mut self, event: &Event) -> Update {
        let channel = event.payload.channel();
        let seq = self.next_seq(&event.instrument, channel);
        let resumed = self
            .last
            .get(&event.instrument)
            .and_then(|c| c[channel.index()].epoch.as_ref());
        Update::encode(event, seq, resumed.unwrap_or(&self.epoch))
    }
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

/// Publishes onto the bus, counting and logging failures: each kind of
/// failure is logged once per feed task, never per update.
pub(crate) struct Publisher {
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) sequencer: Sequencer,
    pub(crate) metrics: FeedMetrics,
    pub(crate) logged: [bool; 4],
}

impl Publisher {
    pub(crate) fn publish(&mut self, event: &Event) {
        let channel = event.payload.channel().index();
        let counters = self.metrics.venue(&event.instrument);
        if let Some(c) = counters {
            c.generated[channel].increment(1);
            // A venue clock ahead of ours would give a negative latency:
            // not recorded rather than clamped to zero.
            if let Some(us) = event.rx.checked_sub(event.ts) {
                c.latency.record(us as f64 / 1e6);
            }
        }
        // A refused update keeps its seq: consumers see the loss as a jump,
        // which is what happened.
        let update = self.sequencer.stamp(event);
        match self.bus.publish(update) {
            Ok(()) => {
                if let Some(c) = counters {
                    c.published[channel].increment(1);
                }
            }
            Err(e) => self.failed(&e, "update"),
        }
    }

    pub(crate) fn publish_status(
        &mut self,
        instrument: &Instrument,
        state: FeedState,
        reason: &str,
    ) {
        let status = Status {
            instrument: instrument.clone(),
            state,
            reason: reason.to_owned(),
        };
        match self.bus.publish_status(status) {
            Ok(()) => self.metrics.state_published(instrument, state),
            Err(e) => self.failed(&e, "status"),
        }
    }

    fn failed(&mut self, e: &tickwire_bus::Error, what: &str) {
        let (index, reason) = publish_error_reason(e);
        self.metrics.publish_errors[index].increment(1);
        if !std::mem::replace(&mut self.logged[index], true) {
            tracing::warn!(
                error = %e,
                reason,
                what,
                "bus refused a publish; counting further `{}` refusals without logging them",
                PUBLISH_ERROR_REASONS[index]
            );
        }
    }
}

/// Plays `market` onto `bus` until `shutdown` is cancelled.
///
/// Announces every instrument with all four channels (retrying every
/// second while the bus is unavailable), marks each instrument live, then
/// every 5 ms generates what is due by the wall clock, sequences it and
/// publishes it. Publish failures are counted by reason and logged once per
/// reason; they never stop the loop. On shutdown every instrument is marked
/// stale (`feed_stopped`). Returns an error only when the bus refuses the
/// catalogue for good.
pub async fn run_synthetic(
    mut market: SyntheticMarket,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<()> {
    let instruments: Vec<Instrument> = market.instruments().cloned().collect();
    if !announce(&bus, &instruments, &Channel::ALL, &shutdown).await? {
        return Ok(());
    }

    let Some(sequencer) = resume_sequences(&instruments, &bus, &shutdown).await else {
        return Ok(());
    };
    let mut publisher = Publisher {
        metrics: FeedMetrics::new(&instruments),
        bus,
        sequencer,
        logged: [false; 4],
    };
    for i in &instruments {
        publisher.publish_status(i, FeedState::Live, "");
    }
    tracing::info!(
        instruments = instruments.len(),
        rate = market.rate(),
        epoch = %publisher.sequencer.epoch(),
        "synthetic feed live"
    );

    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut events = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        market.advance(now_us(), &mut events);
        for event in events.drain(..) {
            publisher.publish(&event);
        }
    }

    for i in &instruments {
        publisher.publish_status(i, FeedState::Stale, STOPPED_REASON);
    }
    tracing::info!("synthetic feed stopped");
    Ok(())
}

/// Announces instruments with their channels to the bus, retrying every
/// second while it is unavailable. `Ok(false)` on shutdown; an error when
/// the bus refuses the catalogue for good.
pub(crate) async fn announce(
    bus: &Arc<dyn Bus>,
    instruments: &[Instrument],
    channels: &[Channel],
    shutdown: &CancellationToken,
) -> Result<bool> {
    let entries: Vec<CatalogueEntry> = instruments
        .iter()
        .map(|i| CatalogueEntry {
            instrument: i.clone(),
            channels: channels.to_vec(),
        })
        .collect();
    let mut logged_unavailable = false;
    loop {
        let announced = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(false),
            r = bus.announce(entries.clone()) => r,
        };
        match announced {
            Ok(()) => return Ok(true),
            Err(e) if e.is_terminal() => return Err(e.into()),
            Err(e) => {
                if !std::mem::replace(&mut logged_unavailable, true) {
                    tracing::warn!(error = %e, "cannot announce instruments yet; retrying every second");
                }
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return Ok(false),
                    () = tokio::time::sleep(ANNOUNCE_RETRY) => {}
                }
            }
        }
    }
}

/// A sequencer that continues every topic the bus already has a value for
/// (same epoch, next seq), so an ingest restart does not restart the
/// streams. Retries while the bus is unreachable; `None` on shutdown.
pub(crate) async fn resume_sequences(
    instruments: &[Instrument],
    bus: &Arc<dyn Bus>,
    shutdown: &CancellationToken,
) -> Option<Sequencer> {
    let mut sequencer = Sequencer::new();
    let mut resumed = 0usize;
    for instrument in instruments {
        for channel in Channel::ALL {
            let topic = Topic::new(instrument.clone(), channel);
            let mut logged = false;
            let last = loop {
                let read = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return None,
                    r = bus.last(&topic) => r,
                };
                match read {
                    Ok(last) => break last,
                    Err(e) => {
                        if !std::mem::replace(&mut logged, true) {
                            tracing::warn!(error = %e, %topic, "cannot read where the sequence stands yet; retrying");
                        }
                        tokio::select! {
                            biased;
                            () = shutdown.cancelled() => return None,
                            () = tokio::time::sleep(ANNOUNCE_RETRY) => {}
                        }
                    }
                }
            };
            if let Some(last) = last {
                sequencer.resume(instrument, channel, last.epoch().clone(), last.seq());
                resumed += 1;
            }
        }
    }
    if resumed > 0 {
        tracing::info!(topics = resumed, "continuing sequences from the bus");
    }
    Some(sequencer)
}

/// Spawns the feeds of `config` on the current tokio runtime; the task ends
/// when `shutdown` is cancelled, and logs (once) an error that ends it
/// early. Fails at once if the configuration is invalid. Must be called
/// within a tokio runtime.
pub fn spawn_feeds(
    config: &FeedsConfig,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>> {
    let synthetic = match config {
        FeedsConfig::Synthetic(s) => s,
        FeedsConfig::Venue(feed) => {
            return Ok(crate::live::spawn_venue(feed.clone(), bus, shutdown));
        }
        FeedsConfig::Replay(replay) => {
            return Ok(crate::replay::spawn_replay(replay.clone(), bus, shutdown));
        }
    };
    let now = now_us();
    let seed = rng::mix(now ^ u64::from(std::process::id()).rotate_left(32));
    let market = SyntheticMarket::new(synthetic.clone(), seed, now)?;
    let venues = synthetic::venues(synthetic).join(",");
    let span = tracing::info_span!("feed", feed = "synthetic", venues = %venues);
    Ok(tokio::spawn(
        async move {
            if let Err(e) = run_synthetic(market, bus, shutdown).await {
                tracing::error!(error = %e, "synthetic feed ended");
            }
        }
        .instrument(span),
    ))
}

/// Spawns the demo market ([`FeedsConfig::demo`]), which plays until
/// `shutdown` is cancelled. Must be called within a tokio runtime.
pub fn spawn_demo(bus: Arc<dyn Bus>, shutdown: CancellationToken) -> JoinHandle<()> {
    match spawn_feeds(&FeedsConfig::demo(), bus, shutdown) {
        Ok(handle) => handle,
        Err(e) => {
            // Unreachable while the embedded file passes its tests; still
            // not worth a panic in a server.
            tracing::error!(error = %e, "the embedded demo feeds are invalid");
            tokio::spawn(async {})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_model::{Payload, Quote, parse_decimal};

    fn quote_event(symbol: &str) -> Event {
        let d = |s: &str| parse_decimal(s).expect("decimal");
        Event {
            instrument: Instrument::parse(symbol).expect("instrument"),
            ts: 1,
            rx: 2,
            payload: Payload::Quote(Quote {
                bid: d("1.00"),
                bid_size: d("1"),
                ask: d("1.01"),
                ask_size: d("1"),
            }),
        }
    }

    #[test]
    fn sequencer_counts_per_topic_from_one() {
        let epoch = Epoch::new("e1").expect("epoch");
        let mut s = Sequencer::with_epoch(epoch.clone());
        let a = Instrument::parse("x:A-B").expect("instrument");
        let b = Instrument::parse("x:C-D").expect("instrument");
        assert_eq!(s.next_seq(&a, Channel::Quote), 1);
        assert_eq!(s.next_seq(&a, Channel::Quote), 2);
        assert_eq!(s.next_seq(&a, Channel::Trade), 1);
        assert_eq!(s.next_seq(&b, Channel::Quote), 1);
        assert_eq!(s.next_seq(&a, Channel::Quote), 3);
        let u = s.stamp(&quote_event("x:C-D"));
        assert_eq!((u.seq(), u.epoch()), (2, &epoch));
        assert_eq!(u.topic().channel, Channel::Quote);
        assert_eq!((u.ts(), u.rx()), (1, 2));
    }

    #[test]
    fn resumed_topic_continues_its_epoch_and_seq() {
        let mut s = Sequencer::with_epoch(Epoch::new("new").expect("epoch"));
        let old = Epoch::new("old").expect("epoch");
        let i = Instrument::parse("x:C-D").expect("instrument");
        s.resume(&i, Channel::Quote, old.clone(), 41);
        let u = s.stamp(&quote_event("x:C-D"));
        assert_eq!((u.seq(), u.epoch()), (42, &old));
        let other = s.stamp(&quote_event("x:A-B"));
        assert_eq!((other.seq(), other.epoch().as_str()), (1, "new"));
    }

    #[test]
    fn fresh_sequencers_get_distinct_valid_epochs() {
        let a = Sequencer::new();
        let b = Sequencer::new();
        assert_ne!(a.epoch(), b.epoch());
        for e in [a.epoch(), b.epoch()] {
            assert_eq!(Epoch::new(e.as_str()).as_ref(), Ok(e));
        }
    }
}
