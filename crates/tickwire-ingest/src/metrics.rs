//! Ingest metrics: names and descriptions in one place, and the handles the
//! hot path increments without any label lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram};
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Instrument};

/// Events produced by a feed (generated or parsed), by venue and channel.
pub const EVENTS_GENERATED: &str = "tickwire_ingest_events_generated_total";
/// Updates accepted by the bus, by venue and channel.
pub const UPDATES_PUBLISHED: &str = "tickwire_ingest_updates_published_total";
/// Publishes the bus refused, by reason (`out_of_order`, `overloaded`,
/// `unavailable`, `closed`).
pub const PUBLISH_ERRORS: &str = "tickwire_ingest_publish_errors_total";
/// Whether any of a venue's instruments is live (1) or none is (0), by
/// venue.
pub const FEED_STATE: &str = "tickwire_ingest_feed_state";
/// Instruments by venue and last published state (`live`, `stale`).
pub const INSTRUMENTS: &str = "tickwire_ingest_instruments";
/// Venue timestamp to ingest receive (`rx - ts`), seconds, by venue.
pub const VENUE_TO_INGEST: &str = "tickwire_ingest_venue_to_ingest_seconds";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        EVENTS_GENERATED,
        "Market events produced by ingest feeds, by venue and channel"
    );
    metrics::describe_counter!(
        UPDATES_PUBLISHED,
        "Sequenced updates accepted by the bus, by venue and channel"
    );
    metrics::describe_counter!(
        PUBLISH_ERRORS,
        "Updates and statuses the bus refused, by reason"
    );
    metrics::describe_gauge!(
        FEED_STATE,
        "Feed state per venue: 1 while any of its instruments is live, 0 when none is"
    );
    metrics::describe_gauge!(
        INSTRUMENTS,
        "Instruments per venue by their last published state (live, stale)"
    );
}

/// Why the bus refused a publish: a dense index and its label.
pub(crate) fn publish_error_reason(e: &tickwire_bus::Error) -> (usize, &'static str) {
    match e {
        tickwire_bus::Error::OutOfOrder { .. } => (0, "out_of_order"),
        tickwire_bus::Error::Overloaded => (1, "overloaded"),
        tickwire_bus::Error::Unavailable(_) => (2, "unavailable"),
        // `publish` never answers a configuration error (that fails at
        // connect); if it ever did, the bus cannot take updates: closed.
        tickwire_bus::Error::Closed | tickwire_bus::Error::Config(_) => (3, "closed"),
    }
}

/// Every publish error reason, in [`publish_error_reason`] index order.
pub(crate) const PUBLISH_ERROR_REASONS: [&str; 4] =
    ["out_of_order", "overloaded", "unavailable", "closed"];

/// Counters of one venue, by channel index.
#[derive(Clone)]
pub(crate) struct VenueCounters {
    pub(crate) generated: [Counter; 4],
    pub(crate) published: [Counter; 4],
    /// Venue→ingest latency of this venue's events.
    pub(crate) latency: Histogram,
}

/// How many of a venue's instruments are live and stale, over every feed
/// and lane of the process that plays the venue (a venue split over
/// several connections must not have one lane overwrite another's gauge).
struct VenueStates {
    counts: Mutex<[i64; 2]>,
    live: Gauge,
    stale: Gauge,
    feed_state: Gauge,
}

impl VenueStates {
    /// Moves one instrument from `from` (if it had a state) to `to`.
    fn transition(&self, from: Option<FeedState>, to: FeedState) {
        let index = |s: FeedState| usize::from(s != FeedState::Live);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(from) = from {
            counts[index(from)] -= 1;
        }
        counts[index(to)] += 1;
        // Gauges are set under the lock so two lanes cannot interleave an
        // older count after a newer one.
        self.live.set(counts[0] as f64);
        self.stale.set(counts[1] as f64);
        self.feed_state.set(if counts[0] > 0 { 1.0 } else { 0.0 });
    }
}

/// The process-wide state counts of `venue`.
fn venue_states(venue: &str) -> Arc<VenueStates> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<VenueStates>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(venue.to_owned())
        .or_insert_with(|| {
            let v = venue.to_owned();
            Arc::new(VenueStates {
                counts: Mutex::new([0, 0]),
                live: metrics::gauge!(INSTRUMENTS, "venue" => v.clone(), "state" => "live"),
                stale: metrics::gauge!(INSTRUMENTS, "venue" => v.clone(), "state" => "stale"),
                feed_state: metrics::gauge!(FEED_STATE, "venue" => v),
            })
        })
        .clone()
}

/// The handles one feed task records with, resolved once at start.
pub(crate) struct FeedMetrics {
    by_instrument: HashMap<Instrument, VenueCounters>,
    states: HashMap<String, Arc<VenueStates>>,
    /// The state last published per instrument, to move the counts.
    published_state: HashMap<Instrument, FeedState>,
    pub(crate) publish_errors: [Counter; 4],
}

impl FeedMetrics {
    /// Resolves every handle for these instruments.
    pub(crate) fn new<'a>(instruments: impl IntoIterator<Item = &'a Instrument>) -> Self {
        describe();
        let mut venues: HashMap<String, VenueCounters> = HashMap::new();
        let mut by_instrument = HashMap::new();
        for inst in instruments {
            let counters = venues
                .entry(inst.venue().to_owned())
                .or_insert_with(|| {
                    let venue = inst.venue().to_owned();
                    VenueCounters {
                        generated: Channel::ALL.map(|c| {
                            metrics::counter!(EVENTS_GENERATED, "venue" => venue.clone(), "channel" => c.as_str())
                        }),
                        published: Channel::ALL.map(|c| {
                            metrics::counter!(UPDATES_PUBLISHED, "venue" => venue.clone(), "channel" => c.as_str())
                        }),
                        latency: tickwire_metrics::latency(
                            VENUE_TO_INGEST,
                            "Latency from the venue's event timestamp (ts) to its receipt by ingest (rx), seconds, by venue",
                            &[("venue", &venue)],
                        ),
                    }
                })
                .clone();
            by_instrument.insert(inst.clone(), counters);
        }
        let states = venues
            .keys()
            .map(|v| (v.clone(), venue_states(v)))
            .collect();
        Self {
            by_instrument,
            states,
            published_state: HashMap::new(),
            publish_errors: PUBLISH_ERROR_REASONS
                .map(|r| metrics::counter!(PUBLISH_ERRORS, "reason" => r)),
        }
    }

    /// The counters of an instrument's venue (one hash lookup, no label
    /// resolution).
    pub(crate) fn venue(&self, instrument: &Instrument) -> Option<&VenueCounters> {
        self.by_instrument.get(instrument)
    }

    /// Records that `instrument`'s state `state` was published: moves it
    /// between its venue's live and stale counts.
    pub(crate) fn state_published(&mut self, instrument: &Instrument, state: FeedState) {
        let Some(states) = self.states.get(instrument.venue()) else {
            return;
        };
        let from = self.published_state.insert(instrument.clone(), state);
        if from != Some(state) {
            states.transition(from, state);
        }
    }
}

/// Venue frames that could not be used, by venue and kind (`malformed`,
/// `field`, `decimal`, `time`, `unknown_instrument`).
pub const PARSE_ERRORS: &str = "tickwire_ingest_parse_errors_total";
/// Venue frames that carried no market data, by venue and kind (`ack`,
/// `rejected`, `heartbeat`, `pong`, `unknown`, `stale`).
pub const FRAMES_NOTED: &str = "tickwire_ingest_frames_noted_total";
/// Books found inconsistent and re-synced from a fresh snapshot, by venue
/// and reason (`sequence_gap`, `checksum_mismatch`, `crossed_book`, ...).
pub const RESYNCS: &str = "tickwire_ingest_resyncs_total";
/// Venue connections that ended and were replaced, by venue and reason
/// (`closed`, `error`, `silent`, `connect_failed`).
pub const RECONNECTS: &str = "tickwire_ingest_reconnects_total";
/// Make-before-break connection rotations completed, by venue.
pub const ROTATIONS: &str = "tickwire_ingest_rotations_total";
/// Trades received twice (a rotation's overlap, a venue's replay after
/// subscribe) and published once, by venue.
pub const DUPLICATES: &str = "tickwire_ingest_duplicate_trades_total";
/// Venue connections currently open, by venue.
pub const CONNECTIONS: &str = "tickwire_ingest_venue_connections";

/// Labels of [`PARSE_ERRORS`], in `FrameError::kind` terms.
pub(crate) const PARSE_ERROR_KINDS: [&str; 5] = [
    "malformed",
    "field",
    "decimal",
    "time",
    "unknown_instrument",
];
/// Labels of [`FRAMES_NOTED`], in `Note::kind` terms.
pub(crate) const NOTE_KINDS: [&str; 6] =
    ["ack", "rejected", "heartbeat", "pong", "unknown", "stale"];
/// Labels of [`RECONNECTS`].
pub(crate) const RECONNECT_REASONS: [&str; 4] = ["closed", "error", "silent", "connect_failed"];

/// Registers the venue metrics' descriptions.
pub(crate) fn describe_venue() {
    describe();
    metrics::describe_counter!(
        PARSE_ERRORS,
        "Venue frames skipped because they could not be parsed, by venue and kind"
    );
    metrics::describe_counter!(
        FRAMES_NOTED,
        "Venue frames without market data (acks, heartbeats, pongs, unknown types), by venue and kind"
    );
    metrics::describe_counter!(
        RESYNCS,
        "Order books found inconsistent and re-synced from a fresh snapshot, by venue and reason"
    );
    metrics::describe_counter!(
        RECONNECTS,
        "Venue connections lost and replaced, by venue and reason"
    );
    metrics::describe_counter!(
        ROTATIONS,
        "Make-before-break venue connection rotations, by venue"
    );
    metrics::describe_counter!(
        DUPLICATES,
        "Trades received more than once and published once, by venue"
    );
    metrics::describe_gauge!(CONNECTIONS, "Open venue connections, by venue");
}

/// The handles of one venue's connections, resolved once per feed.
#[derive(Clone)]
pub(crate) struct VenueMetrics {
    pub(crate) parse_errors: [Counter; 5],
    pub(crate) noted: [Counter; 6],
    pub(crate) reconnects: [Counter; 4],
    resyncs: [Counter; 6],
    pub(crate) rotations: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) connections: Gauge,
}

impl VenueMetrics {
    /// Resolves the handles of `venue`.
    pub(crate) fn new(venue: &str) -> Self {
        describe_venue();
        let v = venue.to_owned();
        Self {
            parse_errors: PARSE_ERROR_KINDS
                .map(|k| metrics::counter!(PARSE_ERRORS, "venue" => v.clone(), "kind" => k)),
            noted: NOTE_KINDS
                .map(|k| metrics::counter!(FRAMES_NOTED, "venue" => v.clone(), "kind" => k)),
            reconnects: RECONNECT_REASONS
                .map(|r| metrics::counter!(RECONNECTS, "venue" => v.clone(), "reason" => r)),
            resyncs: crate::venue::books::BREAK_REASONS
                .map(|r| metrics::counter!(RESYNCS, "venue" => v.clone(), "reason" => r)),
            rotations: metrics::counter!(ROTATIONS, "venue" => v.clone()),
            duplicates: metrics::counter!(DUPLICATES, "venue" => v.clone()),
            connections: metrics::gauge!(CONNECTIONS, "venue" => v),
        }
    }

    /// Counts a parse error of this kind.
    pub(crate) fn parse_error(&self, kind: &str) {
        if let Some(i) = PARSE_ERROR_KINDS.iter().position(|k| *k == kind) {
            self.parse_errors[i].increment(1);
        }
    }

    /// Counts a noted frame of this kind.
    pub(crate) fn noted(&self, kind: &str) {
        if let Some(i) = NOTE_KINDS.iter().position(|k| *k == kind) {
            self.noted[i].increment(1);
        }
    }

    /// Counts a reconnect for this reason.
    pub(crate) fn reconnect(&self, reason: &str) {
        let i = RECONNECT_REASONS
            .iter()
            .position(|k| *k == reason)
            .unwrap_or(1);
        self.reconnects[i].increment(1);
    }

    /// Counts a resync for one of the book break reasons.
    pub(crate) fn resync(&self, reason: &str) {
        if let Some(i) = crate::venue::books::BREAK_REASONS
            .iter()
            .position(|r| *r == reason)
        {
            self.resyncs[i].increment(1);
        }
    }
}
