//! Ingest metrics: names and descriptions in one place, and the handles the
//! hot path increments without any label lookup.

use std::collections::HashMap;

use metrics::{Counter, Gauge};
use tickwire_model::{Channel, Instrument};

/// Events produced by a feed (generated or parsed), by venue and channel.
pub const EVENTS_GENERATED: &str = "tickwire_ingest_events_generated_total";
/// Updates accepted by the bus, by venue and channel.
pub const UPDATES_PUBLISHED: &str = "tickwire_ingest_updates_published_total";
/// Publishes the bus refused, by reason (`out_of_order`, `overloaded`,
/// `unavailable`, `closed`).
pub const PUBLISH_ERRORS: &str = "tickwire_ingest_publish_errors_total";
/// Whether a venue's feed is live (1) or not (0), by venue.
pub const FEED_STATE: &str = "tickwire_ingest_feed_state";

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
        "Feed state per venue: 1 live, 0 stale or stopped"
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
}

/// The handles one feed task records with, resolved once at start.
pub(crate) struct FeedMetrics {
    by_instrument: HashMap<Instrument, VenueCounters>,
    state: HashMap<String, Gauge>,
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
                    }
                })
                .clone();
            by_instrument.insert(inst.clone(), counters);
        }
        let state = venues
            .keys()
            .map(|v| (v.clone(), metrics::gauge!(FEED_STATE, "venue" => v.clone())))
            .collect();
        Self {
            by_instrument,
            state,
            publish_errors: PUBLISH_ERROR_REASONS
                .map(|r| metrics::counter!(PUBLISH_ERRORS, "reason" => r)),
        }
    }

    /// The counters of an instrument's venue (one hash lookup, no label
    /// resolution).
    pub(crate) fn venue(&self, instrument: &Instrument) -> Option<&VenueCounters> {
        self.by_instrument.get(instrument)
    }

    /// Sets every venue's feed state gauge.
    pub(crate) fn set_live(&self, live: bool) {
        for g in self.state.values() {
            g.set(if live { 1.0 } else { 0.0 });
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
    pub(crate) rotations: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) connections: Gauge,
    venue: String,
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
            rotations: metrics::counter!(ROTATIONS, "venue" => v.clone()),
            duplicates: metrics::counter!(DUPLICATES, "venue" => v.clone()),
            connections: metrics::gauge!(CONNECTIONS, "venue" => v.clone()),
            venue: v,
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

    /// Counts a resync; reasons are a small fixed set chosen by the
    /// adapters, so the label lookup happens only on a break.
    pub(crate) fn resync(&self, reason: &'static str) {
        metrics::counter!(RESYNCS, "venue" => self.venue.clone(), "reason" => reason).increment(1);
    }
}
