//! Channels and topics: a topic is one instrument on one channel, the unit
//! of sequencing, subscription and conflation.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Instrument, Result};

/// The kind of stream a topic carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Channel {
    /// Every trade, lossless and in order; gaps are announced.
    Trade,
    /// Best bid and offer; conflatable.
    Quote,
    /// Last price and 24 h statistics; conflatable.
    Ticker,
    /// Top N levels of the order book; conflatable.
    Book,
}

impl Channel {
    /// Every channel, in protocol order.
    pub const ALL: [Channel; 4] = [
        Channel::Trade,
        Channel::Quote,
        Channel::Ticker,
        Channel::Book,
    ];

    /// The channel's protocol name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Trade => "trade",
            Channel::Quote => "quote",
            Channel::Ticker => "ticker",
            Channel::Book => "book",
        }
    }

    /// Whether a newer value may replace an unsent older one.
    pub const fn is_conflatable(self) -> bool {
        !matches!(self, Channel::Trade)
    }

    /// A dense index (0..4), for per-channel tables.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Channel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::Channel(s.to_owned()))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instrument on one channel.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Topic {
    /// The instrument.
    pub instrument: Instrument,
    /// The channel.
    pub channel: Channel,
}

impl Topic {
    /// Builds a topic.
    pub fn new(instrument: Instrument, channel: Channel) -> Self {
        Self {
            instrument,
            channel,
        }
    }
}

impl fmt::Display for Topic {
    /// `channel/venue:BASE-QUOTE`, the form used in logs and bus keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.channel, self.instrument)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
        assert_eq!(
            "Quote".parse::<Channel>(),
            Err(Error::Channel("Quote".into()))
        );
        assert!(!Channel::Trade.is_conflatable());
        assert!(Channel::Book.is_conflatable());
    }
}
