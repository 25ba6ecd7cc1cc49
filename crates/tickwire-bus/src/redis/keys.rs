//! Redis key and channel names. Every key of a topic and its pub/sub
//! channel share one hash tag, `{<channel>/<venue:BASE-QUOTE>}`, so a
//! topic's state sits on one cluster shard (one Lua script can touch it
//! all) while different topics spread over the shards.

use std::sync::Arc;

use tickwire_model::Topic;

use crate::{Error, Result};

/// The names under one key prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

/// The names of one topic, built once per topic and reused.
#[derive(Clone, Debug)]
pub(crate) struct TopicKeys {
    /// `"<epoch> <seq>"` of the newest update.
    pub(crate) meta: String,
    /// The newest update's envelope.
    pub(crate) last: String,
    /// Stream of trade envelopes, entry id `0-<seq>`.
    pub(crate) hist: String,
    /// The pub/sub channel (also the broadcast key on the receiving side).
    pub(crate) channel: Arc<str>,
}

impl Keys {
    /// Validates the prefix: it must not break the hash tag (`{`, `}`) nor
    /// the space-separated values, and must not be empty.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let bad = prefix.is_empty()
            || prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control());
        if bad {
            return Err(Error::Config(format!(
                "key prefix {prefix:?} must be non-empty, without braces or spaces"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// A topic's pub/sub channel: `<prefix>:{<channel>/<instrument>}`.
    pub(crate) fn channel(&self, topic: &Topic) -> String {
        format!("{}:{{{topic}}}", self.prefix)
    }

    /// Every name of a topic.
    pub(crate) fn topic(&self, topic: &Topic) -> TopicKeys {
        let channel = self.channel(topic);
        TopicKeys {
            meta: format!("{channel}:meta"),
            last: format!("{channel}:last"),
            hist: format!("{channel}:hist"),
            channel: channel.into(),
        }
    }

    /// The catalogue hash: instrument → comma-separated channels.
    pub(crate) fn catalogue(&self) -> String {
        format!("{}:catalogue", self.prefix)
    }

    /// The status hash (instrument → `"<state> <reason>"`), which is also
    /// the name of the status channel (same slot in a cluster).
    pub(crate) fn status(&self) -> String {
        format!("{}:status", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use tickwire_model::{Channel, Instrument};

    use super::*;

    #[test]
    fn names_share_the_topic_hash_tag() {
        let keys = Keys::new("tw").expect("prefix");
        let topic = Topic::new(
            Instrument::parse("coinbase:BTC-USD").expect("instrument"),
            Channel::Trade,
        );
        let k = keys.topic(&topic);
        assert_eq!(&*k.channel, "tw:{trade/coinbase:BTC-USD}");
        assert_eq!(k.meta, "tw:{trade/coinbase:BTC-USD}:meta");
        assert_eq!(k.last, "tw:{trade/coinbase:BTC-USD}:last");
        assert_eq!(k.hist, "tw:{trade/coinbase:BTC-USD}:hist");
        assert_eq!(keys.catalogue(), "tw:catalogue");
        assert_eq!(keys.status(), "tw:status");
    }

    #[test]
    fn prefixes_that_break_tags_are_refused() {
        for bad in ["", "a{b", "a}b", "a b", "a\nb"] {
            assert!(
                matches!(Keys::new(bad), Err(Error::Config(_))),
                "{bad:?} must be refused"
            );
        }
        assert!(Keys::new("tickwire-prod:eu").is_ok());
    }
}
