//! The venue adapters, one module each with the same files: `mod.rs`
//! (the [`Adapter`] and the venue's constants), `messages.rs` (wire types,
//! each with an example frame), `parse.rs` (wire → canonical), `fake.rs`
//! (the venue's side of the wire: the fake venue and the capture
//! generator). This file is the one place that chooses among them.

pub mod binance;
pub(crate) mod books;
pub mod bybit;
pub mod coinbase;
pub mod kraken;
pub mod okx;

use crate::adapter::{Adapter, Limits};
use crate::feed::{VenueFeed, VenueKind};

/// A fresh adapter for one connection of `feed`.
pub fn adapter(feed: &VenueFeed) -> Box<dyn Adapter> {
    match feed.venue {
        VenueKind::Coinbase => Box::new(coinbase::CoinbaseAdapter::new(feed)),
        VenueKind::Binance => Box::new(binance::BinanceAdapter::new(feed)),
        VenueKind::Kraken => Box::new(kraken::KrakenAdapter::new(feed)),
        VenueKind::Okx => Box::new(okx::OkxAdapter::new(feed)),
        VenueKind::Bybit => Box::new(bybit::BybitAdapter::new(feed)),
    }
}

/// What a venue allows and expects of a connection.
pub fn limits(venue: VenueKind) -> Limits {
    match venue {
        VenueKind::Coinbase => coinbase::LIMITS,
        VenueKind::Binance => binance::LIMITS,
        VenueKind::Kraken => kraken::LIMITS,
        VenueKind::Okx => okx::LIMITS,
        VenueKind::Bybit => bybit::LIMITS,
    }
}

/// The venue's side of one fake-venue session, for `tickwire replay
/// --serve` and the adapters' tests. The fake plays a capture as a live
/// broadcast: it observes every frame of the tape (keeping its own books),
/// serves them to subscribed clients, and answers subscribe requests,
/// pings and REST snapshot requests the way the venue does, with fresh
/// snapshots built from its books.
pub trait FakeVenue: Send {
    /// Frames the venue sends as soon as a client connects (Kraken's
    /// `status`); most send none.
    fn greeting(&mut self) -> Vec<String>;

    /// Answers one text frame from the client: subscribe acks (one per
    /// symbol or argument, as the venue does), a rejection for instruments
    /// the tape does not carry, pongs, and for a book subscription the
    /// fresh snapshot frame built from the fake's current book.
    fn on_client(&mut self, text: &str, out: &mut Vec<String>);

    /// Takes in one frame of the tape before it is broadcast, updating the
    /// fake's books. Returns whether subscribed clients should receive it
    /// (the tape's own acks and snapshots are not broadcast: the fake makes
    /// its own per client).
    fn observe(&mut self, frame: &str) -> bool;

    /// Answers a REST GET (path and query, `/api/v3/depth?symbol=BTCUSDT&limit=5000`)
    /// with a body built from the current books, or `None` (404).
    fn rest(&mut self, path_and_query: &str) -> Option<String>;

    /// The frame announcing that the venue will close the connection soon
    /// (Binance `serverShutdown`), at `now_ms`; `None` for venues that just
    /// close.
    fn shutdown_notice(&mut self, now_ms: u64) -> Option<String> {
        let _ = now_ms;
        None
    }
}

/// A fake venue for captures of `venue`, with the instruments' venue names.
pub fn fake(venue: VenueKind, natives: &[String]) -> Box<dyn FakeVenue> {
    match venue {
        VenueKind::Coinbase => Box::new(coinbase::fake::CoinbaseFake::new(natives)),
        VenueKind::Binance => Box::new(binance::fake::BinanceFake::new(natives)),
        VenueKind::Kraken => Box::new(kraken::fake::KrakenFake::new(natives)),
        VenueKind::Okx => Box::new(okx::fake::OkxFake::new(natives)),
        VenueKind::Bybit => Box::new(bybit::fake::BybitFake::new(natives)),
    }
}

/// The synthetic capture of `venue` (what `feeds/<venue>/capture.jsonl`
/// holds), generated from a seed: deterministic, so a test can check the
/// committed file is what the generator writes.
pub fn generate_capture(venue: VenueKind) -> String {
    match venue {
        VenueKind::Coinbase => coinbase::fake::generate(),
        VenueKind::Binance => binance::fake::generate(),
        VenueKind::Kraken => kraken::fake::generate(),
        VenueKind::Okx => okx::fake::generate(),
        VenueKind::Bybit => bybit::fake::generate(),
    }
}

/// Each venue's live feed definition, embedded (`feeds/<venue>/feed.toml`).
const FEED_FILES: [(VenueKind, &str); 5] = [
    (
        VenueKind::Coinbase,
        include_str!("../../../feeds/coinbase/feed.toml"),
    ),
    (
        VenueKind::Binance,
        include_str!("../../../feeds/binance/feed.toml"),
    ),
    (
        VenueKind::Kraken,
        include_str!("../../../feeds/kraken/feed.toml"),
    ),
    (VenueKind::Okx, include_str!("../../../feeds/okx/feed.toml")),
    (
        VenueKind::Bybit,
        include_str!("../../../feeds/bybit/feed.toml"),
    ),
];

/// The venue's embedded live feed definition (`feeds/<venue>/feed.toml`):
/// the real endpoints and the instruments' name mapping.
pub fn default_feed(venue: VenueKind) -> VenueFeed {
    let text = FEED_FILES
        .iter()
        .find(|(v, _)| *v == venue)
        .map_or("", |(_, t)| t);
    // The embedded files are checked by this crate's tests.
    match crate::FeedsConfig::parse(text) {
        Ok(crate::FeedsConfig::Venue(feed)) => feed,
        other => panic!("the embedded feeds/{venue}/feed.toml is invalid: {other:?}"),
    }
}

/// Each venue's synthetic capture, embedded (`feeds/<venue>/capture.jsonl`):
/// what `tickwire run` replays with no configuration.
const CAPTURE_FILES: [(VenueKind, &str); 5] = [
    (
        VenueKind::Coinbase,
        include_str!("../../../feeds/coinbase/capture.jsonl"),
    ),
    (
        VenueKind::Binance,
        include_str!("../../../feeds/binance/capture.jsonl"),
    ),
    (
        VenueKind::Kraken,
        include_str!("../../../feeds/kraken/capture.jsonl"),
    ),
    (
        VenueKind::Okx,
        include_str!("../../../feeds/okx/capture.jsonl"),
    ),
    (
        VenueKind::Bybit,
        include_str!("../../../feeds/bybit/capture.jsonl"),
    ),
];

/// The demo: every venue's embedded capture, replayed through its real
/// adapter in a loop at the recorded pace. Named `feeds/<venue>/capture.jsonl`.
pub fn demo_replays() -> Vec<(String, crate::ReplayConfig)> {
    CAPTURE_FILES
        .iter()
        .filter_map(|(venue, text)| {
            let name = format!("feeds/{venue}/capture.jsonl");
            match crate::capture::Capture::parse(text) {
                Ok(capture) => Some((
                    name.clone(),
                    crate::ReplayConfig {
                        name,
                        capture: std::sync::Arc::new(capture),
                        speed: crate::Speed::REAL_TIME,
                        looped: true,
                    },
                )),
                // The embedded captures are checked by this crate's tests.
                Err(e) => {
                    tracing::error!(error = %e, %name, "the embedded capture is invalid; skipping it");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_feed_files_are_valid_with_real_endpoints() {
        for venue in VenueKind::ALL {
            let feed = default_feed(venue);
            assert_eq!(feed.venue, venue);
            assert!(feed.url.starts_with("wss://"), "{venue}: {}", feed.url);
            assert!(!feed.instruments.is_empty());
            for i in &feed.instruments {
                assert_eq!(i.instrument.venue(), venue.name());
            }
        }
        assert_eq!(
            default_feed(VenueKind::Binance).rest_url.as_deref(),
            Some("https://api.binance.com")
        );
    }

    #[test]
    fn embedded_captures_are_what_the_generators_write() {
        for (venue, text) in CAPTURE_FILES {
            assert!(
                *text == generate_capture(venue),
                "feeds/{venue}/capture.jsonl differs from venue::generate_capture({venue}); regenerate it"
            );
            let capture = crate::capture::Capture::parse(text).expect("the capture parses");
            assert_eq!(capture.header.venue, venue);
            assert!(
                capture.header.synthetic,
                "{venue}: the header says synthetic"
            );
            assert!(text.lines().next().is_some_and(|l| l.contains("synthetic")));
            assert_eq!(
                capture.header.instruments,
                default_feed(venue).instruments,
                "{venue}: the capture carries the feed file's instruments"
            );
        }
        assert_eq!(demo_replays().len(), 5);
    }
}
