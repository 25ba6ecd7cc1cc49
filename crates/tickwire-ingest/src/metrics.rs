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
