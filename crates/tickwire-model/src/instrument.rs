//! Instruments: `venue:BASE-QUOTE`, the one name every venue's symbol maps to.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Error, Result};

/// Longest accepted venue name and asset code; keeps topic keys short and
/// rejects garbage early.
const MAX_PART: usize = 24;

/// A tradable instrument in canonical form, `venue:BASE-QUOTE`
/// (`coinbase:BTC-USD`): venue lower-case, assets upper-case.
///
/// Cheap to clone (one shared allocation) because every update, topic and
/// subscription carries one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instrument {
    text: Arc<str>,
    /// Byte offset of the `-` between base and quote.
    dash: u8,
}

impl Instrument {
    /// Builds an instrument from its parts, canonicalizing case.
    pub fn new(venue: &str, base: &str, quote: &str) -> Result<Self> {
        Self::parse(&format!("{venue}:{base}-{quote}"))
    }

    /// Parses `venue:BASE-QUOTE`; the venue is folded to lower case and the
    /// assets to upper case, so `Coinbase:btc-usd` names `coinbase:BTC-USD`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Instrument(text.to_owned());
        let (venue, pair) = text.split_once(':').ok_or_else(bad)?;
        let (base, quote) = pair.split_once('-').ok_or_else(bad)?;
        let venue_ok = is_part(venue, |b| b.is_ascii_alphanumeric() || b == b'_');
        let asset_ok = |s: &str| is_part(s, |b| b.is_ascii_alphanumeric());
        if !venue_ok || !asset_ok(base) || !asset_ok(quote) {
            return Err(bad());
        }
        let canonical = format!(
            "{}:{}-{}",
            venue.to_ascii_lowercase(),
            base.to_ascii_uppercase(),
            quote.to_ascii_uppercase()
        );
        let dash = u8::try_from(venue.len() + 1 + base.len()).map_err(|_| bad())?;
        Ok(Self {
            text: canonical.into(),
            dash,
        })
    }

    /// The canonical text, `venue:BASE-QUOTE`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The venue, e.g. `coinbase`.
    pub fn venue(&self) -> &str {
        &self.text[..self.colon()]
    }

    /// The base asset, e.g. `BTC`.
    pub fn base(&self) -> &str {
        &self.text[self.colon() + 1..usize::from(self.dash)]
    }

    /// The quote asset, e.g. `USD`.
    pub fn quote(&self) -> &str {
        &self.text[usize::from(self.dash) + 1..]
    }

    fn colon(&self) -> usize {
        // Validated at construction: a venue never holds ':'.
        self.text.find(':').unwrap_or(0)
    }
}

fn is_part(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.len() <= MAX_PART && s.bytes().all(ok)
}

impl FromStr for Instrument {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instrument({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalizes() {
        let i = Instrument::parse("Coinbase:btc-usd").expect("valid");
        assert_eq!(i.as_str(), "coinbase:BTC-USD");
        assert_eq!((i.venue(), i.base(), i.quote()), ("coinbase", "BTC", "USD"));
        assert_eq!(
            Instrument::new("binance", "BTC", "USDT")
                .expect("valid")
                .as_str(),
            "binance:BTC-USDT"
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "BTC-USD",
            "coinbase:",
            "coinbase:BTCUSD",
            "coinbase:BTC-",
            ":BTC-USD",
            "coin base:BTC-USD",
            "coinbase:BTC-USD-X",
            "coinbase:BTC/USD",
            "a:b:c-d",
            "coinbase:ÄBC-USD",
        ] {
            assert_eq!(
                Instrument::parse(s),
                Err(Error::Instrument(s.to_owned())),
                "{s:?}"
            );
        }
    }
}
