//! Live venue feed definitions (`feeds/<venue>/feed.toml`, table
//! `[venue]`): which venue, its endpoints, the instruments with their
//! venue names mapped to canonical ones, and the channels to carry.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use tickwire_model::{Channel, Instrument};

use crate::{Error, Result};

/// The venues tickwire has adapters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VenueKind {
    /// Coinbase Exchange `ws-feed`.
    Coinbase,
    /// Binance Spot streams.
    Binance,
    /// Kraken WebSocket v2.
    Kraken,
    /// OKX v5 public.
    Okx,
    /// Bybit v5 public spot.
    Bybit,
}

impl VenueKind {
    /// Every venue, in documentation order.
    pub const ALL: [VenueKind; 5] = [
        VenueKind::Coinbase,
        VenueKind::Binance,
        VenueKind::Kraken,
        VenueKind::Okx,
        VenueKind::Bybit,
    ];

    /// The venue's name as used in instruments (`binance:BTC-USDT`) and in
    /// feed files.
    pub const fn name(self) -> &'static str {
        match self {
            VenueKind::Coinbase => "coinbase",
            VenueKind::Binance => "binance",
            VenueKind::Kraken => "kraken",
            VenueKind::Okx => "okx",
            VenueKind::Bybit => "bybit",
        }
    }

    /// The venue of a name (`binance`); `None` for a venue without an
    /// adapter.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl fmt::Display for VenueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One instrument of a venue feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedInstrument {
    /// The venue's own name (`BTCUSDT`, `BTC/USD`, `BTC-USDT`).
    pub native: String,
    /// The canonical instrument (`binance:BTC-USDT`).
    pub instrument: Instrument,
}

/// A live venue feed: everything an adapter and its connection need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenueFeed {
    /// Which adapter.
    pub venue: VenueKind,
    /// The WebSocket URL (`wss://stream.binance.com:9443/ws`).
    pub url: String,
    /// The REST base URL for snapshots (`https://api.binance.com`); only
    /// venues that sync books over REST need it.
    pub rest_url: Option<String>,
    /// Canonical channels to carry (default: all four).
    pub channels: Vec<Channel>,
    /// Levels per side published in `book` updates (default 10).
    pub book_depth: usize,
    /// The instruments, venue name to canonical name.
    pub instruments: Vec<FeedInstrument>,
    /// A connection silent this long is dead (default: the venue's own).
    pub silence: Option<Duration>,
    /// Rotate each connection after this long (default: shortly before
    /// the venue's forced cutoff, if it has one).
    pub rotate_after: Option<Duration>,
    /// First reconnect delay (default 250 ms); doubles per failure.
    pub backoff_min: Duration,
    /// Largest reconnect delay (default 30 s).
    pub backoff_max: Duration,
}

impl VenueFeed {
    /// The canonical instrument of a venue name, from the definition.
    pub fn canonical(&self, native: &str) -> Option<&Instrument> {
        self.instruments
            .iter()
            .find(|i| i.native == native)
            .map(|i| &i.instrument)
    }

    /// The venue name of a canonical instrument.
    pub fn native(&self, instrument: &Instrument) -> Option<&str> {
        self.instruments
            .iter()
            .find(|i| &i.instrument == instrument)
            .map(|i| i.native.as_str())
    }

    /// Whether the feed carries a channel.
    pub fn wants(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }

    /// The same feed restricted to some of its instruments (one connection's
    /// share when a feed is split).
    pub fn with_instruments(&self, instruments: Vec<FeedInstrument>) -> Self {
        Self {
            instruments,
            ..self.clone()
        }
    }
}

/// `[venue]` as written in a feeds file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VenueFile {
    name: String,
    url: String,
    rest_url: Option<String>,
    channels: Option<Vec<String>>,
    book_depth: Option<usize>,
    silence_ms: Option<u64>,
    rotate_after_s: Option<u64>,
    backoff_min_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    instruments: Vec<InstrumentFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentFile {
    native: String,
    symbol: String,
}

/// Largest `book_depth`: the published top stays a small message.
const MAX_BOOK_DEPTH: usize = 50;

impl VenueFile {
    /// Validates into a [`VenueFeed`]; errors name the key under `venue.`.
    pub(crate) fn into_feed(self) -> Result<VenueFeed> {
        let venue = VenueKind::from_name(&self.name).ok_or_else(|| {
            let known: Vec<_> = VenueKind::ALL.iter().map(|v| v.name()).collect();
            Error::invalid(
                "name",
                format!(
                    "no adapter for venue {:?}; known: {}",
                    self.name,
                    known.join(", ")
                ),
            )
        })?;
        check_url(&self.url, &["ws://", "wss://"]).map_err(|r| Error::invalid("url", r))?;
        if let Some(rest) = &self.rest_url {
            check_url(rest, &["http://", "https://"]).map_err(|r| Error::invalid("rest_url", r))?;
        }
        if venue == VenueKind::Binance && self.wants_book() && self.rest_url.is_none() {
            return Err(Error::invalid(
                "rest_url",
                "binance books sync from a REST snapshot: set rest_url (https://api.binance.com)",
            ));
        }
        let channels = match &self.channels {
            None => Channel::ALL.to_vec(),
            Some(names) => {
                let mut channels = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let channel = Channel::ALL
                        .into_iter()
                        .find(|c| c.as_str() == name)
                        .ok_or_else(|| {
                            Error::invalid(
                                format!("channels[{i}]"),
                                format!("unknown channel {name:?}; use trade, quote, ticker, book"),
                            )
                        })?;
                    if !channels.contains(&channel) {
                        channels.push(channel);
                    }
                }
                if channels.is_empty() {
                    return Err(Error::invalid("channels", "name at least one channel"));
                }
                channels
            }
        };
        let book_depth = self.book_depth.unwrap_or(10);
        if !(1..=MAX_BOOK_DEPTH).contains(&book_depth) {
            return Err(Error::invalid(
                "book_depth",
                format!("must be 1 to {MAX_BOOK_DEPTH}, not {book_depth}"),
            ));
        }
        if self.instruments.is_empty() {
            return Err(Error::invalid(
                "instruments",
                "name at least one instrument",
            ));
        }
        let mut instruments = Vec::with_capacity(self.instruments.len());
        let mut natives = HashSet::new();
        let mut symbols = HashSet::new();
        for (i, inst) in self.instruments.into_iter().enumerate() {
            let key = |k: &str| format!("instruments[{i}].{k}");
            let instrument = Instrument::parse(&inst.symbol)
                .map_err(|e| Error::invalid(key("symbol"), e.to_string()))?;
            if instrument.venue() != venue.name() {
                return Err(Error::invalid(
                    key("symbol"),
                    format!("{instrument} is not a {venue} instrument"),
                ));
            }
            if inst.native.is_empty() || inst.native.len() > 64 {
                return Err(Error::invalid(key("native"), "must be 1 to 64 characters"));
            }
            if !natives.insert(inst.native.clone()) {
                return Err(Error::invalid(
                    key("native"),
                    format!("{:?} is listed twice", inst.native),
                ));
            }
            if !symbols.insert(instrument.clone()) {
                return Err(Error::invalid(
                    key("symbol"),
                    format!("{instrument} is listed twice"),
                ));
            }
            instruments.push(FeedInstrument {
                native: inst.native,
                instrument,
            });
        }
        let ms = |v: Option<u64>, key: &str, default: u64| -> Result<Duration> {
            match v {
                Some(0) => Err(Error::invalid(key, "must be above 0")),
                Some(v) => Ok(Duration::from_millis(v)),
                None => Ok(Duration::from_millis(default)),
            }
        };
        let backoff_min = ms(self.backoff_min_ms, "backoff_min_ms", 250)?;
        let backoff_max = ms(self.backoff_max_ms, "backoff_max_ms", 30_000)?;
        if backoff_max < backoff_min {
            return Err(Error::invalid(
                "backoff_max_ms",
                "must not be below backoff_min_ms",
            ));
        }
        Ok(VenueFeed {
            venue,
            url: self.url,
            rest_url: self.rest_url,
            channels,
            book_depth,
            instruments,
            silence: self
                .silence_ms
                .map(|v| ms(Some(v), "silence_ms", 0))
                .transpose()?,
            rotate_after: match self.rotate_after_s {
                Some(0) => return Err(Error::invalid("rotate_after_s", "must be above 0")),
                v => v.map(Duration::from_secs),
            },
            backoff_min,
            backoff_max,
        })
    }

    fn wants_book(&self) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == "book"))
    }
}

fn check_url(url: &str, schemes: &[&str]) -> std::result::Result<(), String> {
    let Some(rest) = schemes.iter().find_map(|s| url.strip_prefix(s)) else {
        return Err(format!("{url:?} must start with {}", schemes.join(" or ")));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}
