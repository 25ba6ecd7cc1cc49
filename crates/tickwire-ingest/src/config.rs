//! Feeds files: the TOML that says which markets ingest plays, parsed with
//! serde into [`FeedsConfig`] and validated so that a bad file names the
//! offending key. The demo feeds are embedded in the binary.

use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tickwire_model::{Instrument, parse_decimal};

use crate::feed::{VenueFeed, VenueFile};
use crate::replay::ReplayConfig;
use crate::synthetic::{ChannelMix, SyntheticConfig, SyntheticInstrument};
use crate::{Error, Result};

/// The demo feeds (`feeds/demo.toml`), embedded: what `tickwire run` plays
/// with no configuration.
pub const DEMO_FEEDS: &str = include_str!("../../../feeds/demo.toml");

/// What a feeds file defines: a synthetic market or one live venue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedsConfig {
    /// A synthetic market (table `[synthetic]`).
    Synthetic(SyntheticConfig),
    /// A live venue (table `[venue]`, e.g. `feeds/binance/feed.toml`).
    Venue(VenueFeed),
    /// A capture replayed through its venue's adapter (`tickwire replay`,
    /// and the default of `tickwire run`); built by code, not from TOML.
    Replay(ReplayConfig),
}

impl FeedsConfig {
    /// The embedded demo feeds ([`DEMO_FEEDS`]).
    pub fn demo() -> Self {
        // The embedded file is checked by this crate's tests, so this
        // cannot fail in a released binary.
        Self::parse(DEMO_FEEDS).expect("the embedded feeds/demo.toml is valid")
    }

    /// Parses and validates feeds TOML. Errors name the key: toml's own
    /// errors give the line, column and key; value checks give the key path
    /// (`synthetic.instruments[3].tick`).
    pub fn parse(text: &str) -> Result<Self> {
        let file: FeedsFile = toml::from_str(text).map_err(|e| Error::Toml(Box::new(e)))?;
        match (file.synthetic, file.venue) {
            (Some(synthetic), None) => {
                let synthetic = synthetic.into_config();
                synthetic
                    .validate()
                    .map_err(|e| e.in_section("synthetic"))?;
                Ok(Self::Synthetic(synthetic))
            }
            (None, Some(venue)) => venue
                .into_feed()
                .map(Self::Venue)
                .map_err(|e| e.in_section("venue")),
            (Some(_), Some(_)) => Err(Error::invalid(
                "venue",
                "a feeds file holds either [synthetic] or [venue], not both",
            )),
            (None, None) => Err(Error::invalid(
                "synthetic",
                "a feeds file needs a [synthetic] or a [venue] table",
            )),
        }
    }

    /// The synthetic market, if this is one.
    pub fn synthetic(&self) -> Option<&SyntheticConfig> {
        match self {
            Self::Synthetic(s) => Some(s),
            Self::Venue(_) | Self::Replay(_) => None,
        }
    }

    /// The venue feed, if this is one.
    pub fn venue(&self) -> Option<&VenueFeed> {
        match self {
            Self::Venue(v) => Some(v),
            Self::Synthetic(_) | Self::Replay(_) => None,
        }
    }

    /// Every canonical instrument the feeds play.
    pub fn instruments(&self) -> Vec<Instrument> {
        match self {
            Self::Synthetic(s) => s.instruments.iter().map(|i| i.symbol.clone()).collect(),
            Self::Venue(v) => v.instruments.iter().map(|i| i.instrument.clone()).collect(),
            Self::Replay(r) => r
                .capture
                .header
                .instruments
                .iter()
                .map(|i| i.instrument.clone())
                .collect(),
        }
    }

    /// Reads, parses and validates a feeds file; errors also name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| Error::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedsFile {
    synthetic: Option<SyntheticFile>,
    venue: Option<VenueFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyntheticFile {
    rate: Option<u32>,
    book_depth: Option<usize>,
    volatility_bp: Option<DecimalText>,
    mix: Option<MixFile>,
    instruments: Vec<InstrumentFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    trade: u32,
    quote: u32,
    ticker: u32,
    book: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentFile {
    symbol: SymbolText,
    price: DecimalText,
    tick: DecimalText,
    size_scale: u32,
    typical_size: DecimalText,
}

impl SyntheticFile {
    fn into_config(self) -> SyntheticConfig {
        let instruments = self
            .instruments
            .into_iter()
            .map(|i| SyntheticInstrument {
                symbol: i.symbol.0,
                price: i.price.0,
                tick: i.tick.0,
                size_scale: i.size_scale,
                typical_size: i.typical_size.0,
            })
            .collect();
        let mut config = SyntheticConfig::new(instruments);
        if let Some(rate) = self.rate {
            config.rate = rate;
        }
        if let Some(depth) = self.book_depth {
            config.book_depth = depth;
        }
        if let Some(v) = self.volatility_bp {
            config.volatility_bp = v.0;
        }
        if let Some(m) = self.mix {
            config.mix = ChannelMix {
                trade: m.trade,
                quote: m.quote,
                ticker: m.ticker,
                book: m.book,
            };
        }
        config
    }
}

/// An exact decimal: a string (`"0.01"`) or an integer, never a float,
/// which would have been rounded through `f64` before we saw it.
struct DecimalText(Decimal);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DecimalText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal as a string, e.g. \"0.01\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DecimalText, E> {
                parse_decimal(s).map(DecimalText).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<DecimalText, E> {
                Ok(DecimalText(Decimal::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<DecimalText, E> {
                Ok(DecimalText(Decimal::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<DecimalText, E> {
                Err(E::custom(format!(
                    "write decimals as strings so they stay exact: \"{n}\", not {n}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// An instrument name, `venue:BASE-QUOTE`.
struct SymbolText(Instrument);

impl<'de> Deserialize<'de> for SymbolText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Instrument::parse(&text)
            .map(SymbolText)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_model::Channel;

    const ONE: &str = r#"
[synthetic]
rate = 50
instruments = [
  { symbol = "test:BTC-USD", price = "100.00", tick = "0.01", size_scale = 8, typical_size = "0.1" },
]
"#;

    fn error_of(text: &str) -> Error {
        match FeedsConfig::parse(text) {
            Ok(c) => panic!("expected an error, parsed {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn demo_is_valid_and_big_enough() {
        let demo = FeedsConfig::demo();
        let s = demo.synthetic().expect("synthetic");
        assert!(s.instruments.len() >= 8);
        let venues = crate::synthetic::venues(s);
        for v in ["coinbase", "binance", "kraken"] {
            assert!(venues.contains(&v), "{v} missing from {venues:?}");
        }
        assert_eq!(s.book_depth, 10);
        assert!(s.rate > 0);
        let btc = s
            .instruments
            .iter()
            .find(|i| i.symbol.as_str() == "coinbase:BTC-USD")
            .expect("coinbase:BTC-USD");
        assert_eq!(btc.price.to_string(), "64000.00");
        assert_eq!(btc.tick.scale(), 2);
    }

    #[test]
    fn defaults_fill_optional_keys() {
        let c = FeedsConfig::parse(ONE).expect("valid");
        assert_eq!(c.synthetic().expect("synthetic").rate, 50);
        assert_eq!(c.synthetic().expect("synthetic").book_depth, 10);
        assert_eq!(
            c.synthetic().expect("synthetic").volatility_bp,
            Decimal::ONE
        );
        assert_eq!(c.synthetic().expect("synthetic").mix, ChannelMix::default());
        assert!(c.synthetic().expect("synthetic").mix.weight(Channel::Quote) > 0);
    }

    #[test]
    fn value_errors_name_the_key() {
        let cases = [
            ("rate = 50", "rate = 0", "synthetic.rate"),
            (
                "rate = 50",
                "rate = 1\nbook_depth = 0",
                "synthetic.book_depth",
            ),
            (
                "rate = 50",
                "rate = 1\nvolatility_bp = \"-1\"",
                "synthetic.volatility_bp",
            ),
            (
                "rate = 50",
                "rate = 1\nmix = { trade = 0, quote = 0, ticker = 0, book = 0 }",
                "synthetic.mix",
            ),
            (
                "tick = \"0.01\"",
                "tick = \"0\"",
                "synthetic.instruments[0].tick",
            ),
            (
                "price = \"100.00\"",
                "price = \"100.005\"",
                "synthetic.instruments[0].price",
            ),
            (
                "price = \"100.00\"",
                "price = \"-1\"",
                "synthetic.instruments[0].price",
            ),
            (
                "size_scale = 8",
                "size_scale = 40",
                "synthetic.instruments[0].size_scale",
            ),
            (
                "typical_size = \"0.1\"",
                "typical_size = \"0.000000001\"",
                "synthetic.instruments[0].typical_size",
            ),
        ];
        for (from, to, key) in cases {
            let text = ONE.replace(from, to);
            let e = error_of(&text);
            assert_eq!(e.key(), Some(key), "{to}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn duplicate_instruments_are_refused() {
        let line = r#"  { symbol = "test:BTC-USD", price = "100.00", tick = "0.01", size_scale = 8, typical_size = "0.1" },"#;
        let text = ONE.replace(line, &format!("{line}\n{}", line.replace("test:", "TEST:")));
        let e = error_of(&text);
        assert_eq!(e.key(), Some("synthetic.instruments[1].symbol"), "{e}");
        assert!(e.to_string().contains("instruments[0]"), "{e}");
    }

    #[test]
    fn shape_errors_come_from_toml_with_line_and_key() {
        let cases = [
            // A float price would have been rounded: refused, naming it.
            ("price = \"100.00\"", "price = 100.5", "price"),
            // An invalid instrument name.
            ("test:BTC-USD", "test:BTCUSD", "test:BTCUSD"),
            // A misspelt key.
            ("rate = 50", "rtae = 50", "rtae"),
            // A wrong type.
            ("rate = 50", "rate = \"fast\"", "rate"),
            // A missing key.
            (", size_scale = 8", "", "size_scale"),
        ];
        for (from, to, needle) in cases {
            let text = ONE.replace(from, to);
            let e = error_of(&text);
            assert!(matches!(e, Error::Toml(_)), "{to}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(needle), "{to}: {msg}");
            assert!(msg.contains("line"), "{to}: {msg}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("tickwire-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.toml");
        std::fs::write(&path, ONE.replace("rate = 50", "rate = 0")).expect("write");
        let e = FeedsConfig::load(&path).expect_err("rate 0");
        assert!(e.to_string().contains("bad.toml"), "{e}");
        assert_eq!(e.key(), Some("synthetic.rate"));
        let missing = FeedsConfig::load(&dir.join("missing.toml")).expect_err("missing");
        assert!(matches!(missing, Error::Read { .. }), "{missing:?}");
        std::fs::write(&path, ONE).expect("write");
        assert!(FeedsConfig::load(&path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
