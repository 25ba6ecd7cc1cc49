//! Shared driver of the venue fuzz targets: one adapter, subscribed as the
//! feed runner does, then fed every frame of the input.

use std::sync::OnceLock;

use tickwire_ingest::adapter::Output;
use tickwire_ingest::feed::{VenueFeed, VenueKind};
use tickwire_ingest::venue;

/// A line starting with this is handed to `on_rest` (the body of the REST
/// snapshot of the feed's first instrument) instead of `on_text`.
pub const REST_PREFIX: &str = "@rest ";

/// Runs one venue adapter over `data`: one frame per line, received 1 ms
/// apart. Panics (the fuzzer's finding) when the adapter panics or breaks
/// the `Adapter` contract: a frame refused with an error produced no event.
pub fn run_venue(kind: VenueKind, data: &[u8]) {
    let feed = feed(kind);
    let mut adapter = venue::adapter(feed);
    let _ = adapter.subscribe();
    let first = feed.instruments.first().map(|i| i.instrument.clone());
    let text = String::from_utf8_lossy(data);
    let mut out = Output::default();
    let mut rx = 1_793_577_600_000_000u64;
    for line in text.split('\n') {
        out.clear();
        rx += 1_000;
        let result = match (line.strip_prefix(REST_PREFIX), &first) {
            (Some(body), Some(instrument)) => adapter.on_rest(instrument, body, rx, &mut out),
            _ => adapter.on_text(line, rx, &mut out),
        };
        if result.is_err() {
            assert!(
                out.events.is_empty(),
                "a refused frame produced events: {line:?} -> {:?}",
                out.events
            );
        }
        let _ = adapter.keepalive();
    }
}

/// The venue's embedded feed definition, parsed once per process (parsing
/// its TOML on every input would dominate the run).
fn feed(kind: VenueKind) -> &'static VenueFeed {
    static FEEDS: OnceLock<Vec<VenueFeed>> = OnceLock::new();
    let feeds = FEEDS.get_or_init(|| {
        VenueKind::ALL
            .into_iter()
            .map(venue::default_feed)
            .collect()
    });
    let index = VenueKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    &feeds[index]
}
