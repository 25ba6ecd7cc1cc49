//! Entitlements: which topics a key or token may see, and how much of
//! them. Pure checks over instruments and channels, so a session, the REST
//! routes and `list` all ask the same question the same way.

use serde::Deserialize;
use tickwire_model::{Channel, Instrument};

/// What one principal may see. Every field has a permissive default, so
/// `{}` entitles to everything with the gateway's own limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Entitlements {
    /// Instrument patterns (`coinbase:*`, `*:BTC-*`, `kraken:BTC-USD`);
    /// `*` matches any run of characters. Default `["*"]`.
    pub instruments: Vec<String>,
    /// Channels allowed (`trade`, `quote`, `ticker`, `book`). Default all.
    pub channels: Option<Vec<String>>,
    /// Floor of `throttle_ms` for every subscription: a client asking for
    /// less gets this. Default 0 (no floor).
    pub min_throttle_ms: u32,
    /// Subscriptions one connection may hold; the lower of this and
    /// `gateway.max_subscriptions` applies. Default none.
    pub max_subscriptions: Option<usize>,
    /// Connections the key may hold at once, across shards. Default none.
    pub max_connections: Option<usize>,
}

impl Default for Entitlements {
    fn default() -> Self {
        Self {
            instruments: vec!["*".to_string()],
            channels: None,
            min_throttle_ms: 0,
            max_subscriptions: None,
            max_connections: None,
        }
    }
}

impl Entitlements {
    /// Checks every channel name parses; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        for c in self.channels.iter().flatten() {
            c.parse::<Channel>()
                .map_err(|_| format!("unknown channel {c:?} in `channels`"))?;
        }
        if self.max_connections == Some(0) || self.max_subscriptions == Some(0) {
            return Err("`max_connections` and `max_subscriptions` must be at least 1".into());
        }
        Ok(())
    }

    /// Whether `channel` may be subscribed at all.
    pub fn allows_channel(&self, channel: Channel) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|cs| cs.iter().any(|c| c == channel.as_str()))
    }

    /// Whether the instrument matches one of the patterns.
    pub fn allows_instrument(&self, instrument: &Instrument) -> bool {
        self.instruments
            .iter()
            .any(|p| glob(p.as_bytes(), instrument.as_str().as_bytes()))
    }

    /// Whether the topic (`instrument` on `channel`) may be seen.
    pub fn allows(&self, instrument: &Instrument, channel: Channel) -> bool {
        self.allows_channel(channel) && self.allows_instrument(instrument)
    }

    /// The channels of `channels` that may be seen for `instrument`.
    pub fn filter_channels(&self, instrument: &Instrument, channels: &[Channel]) -> Vec<Channel> {
        if !self.allows_instrument(instrument) {
            return Vec::new();
        }
        channels
            .iter()
            .copied()
            .filter(|c| self.allows_channel(*c))
            .collect()
    }
}

/// `*`-only glob, iterative with one backtrack point: linear in practice
/// and never recursive, whatever a pattern holds.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(s: &str) -> Instrument {
        Instrument::parse(s).expect("valid instrument")
    }

    #[test]
    fn patterns_match_venue_symbol_and_exact() {
        let cases = [
            ("*", "coinbase:BTC-USD", true),
            ("coinbase:*", "coinbase:BTC-USD", true),
            ("coinbase:*", "kraken:BTC-USD", false),
            ("*:BTC-*", "kraken:BTC-USD", true),
            ("*:BTC-*", "kraken:ETH-USD", false),
            ("kraken:BTC-USD", "kraken:BTC-USD", true),
            ("kraken:BTC-USD", "kraken:BTC-USDT", false),
            ("*USD", "kraken:BTC-USDT", false),
            ("**:*-*", "binance:ETH-USDT", true),
        ];
        for (pattern, symbol, want) in cases {
            let e = Entitlements {
                instruments: vec![pattern.to_string()],
                ..Entitlements::default()
            };
            assert_eq!(
                e.allows_instrument(&inst(symbol)),
                want,
                "{pattern} {symbol}"
            );
        }
    }

    #[test]
    fn channels_filter_and_validate() {
        let e = Entitlements {
            channels: Some(vec!["trade".into(), "quote".into()]),
            instruments: vec!["coinbase:*".into()],
            ..Entitlements::default()
        };
        assert!(e.validate().is_ok());
        assert!(e.allows(&inst("coinbase:BTC-USD"), Channel::Trade));
        assert!(!e.allows(&inst("coinbase:BTC-USD"), Channel::Book));
        assert_eq!(
            e.filter_channels(&inst("coinbase:BTC-USD"), &Channel::ALL),
            vec![Channel::Trade, Channel::Quote]
        );
        assert!(
            e.filter_channels(&inst("kraken:BTC-USD"), &Channel::ALL)
                .is_empty()
        );
        let bad = Entitlements {
            channels: Some(vec!["trades".into()]),
            ..Entitlements::default()
        };
        assert!(bad.validate().expect_err("refused").contains("trades"));
    }
}
