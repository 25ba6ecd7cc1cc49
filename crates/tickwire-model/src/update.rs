//! Market-data values (`Trade`, `Quote`, `Ticker`, `BookTop`), the unsequenced
//! [`Event`] an adapter produces, and the sequenced, encoded [`Update`] that
//! travels the bus and is written to every subscriber as the same bytes.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;

use crate::{Channel, Error, Instrument, Result, Topic, wire};

/// The aggressor side of a trade: `buy` means a buyer lifted the offer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Side {
    /// The buyer was the taker.
    Buy,
    /// The seller was the taker.
    Sell,
}

impl Side {
    /// The protocol name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// One trade.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trade {
    /// Execution price.
    pub price: Decimal,
    /// Executed quantity in the base asset.
    pub size: Decimal,
    /// Aggressor side.
    pub side: Side,
    /// The venue's trade identifier, as text.
    pub trade_id: String,
}

/// Best bid and offer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Quote {
    /// Best bid price.
    pub bid: Decimal,
    /// Quantity at the best bid.
    pub bid_size: Decimal,
    /// Best ask price.
    pub ask: Decimal,
    /// Quantity at the best ask.
    pub ask_size: Decimal,
}

/// Last price and rolling 24 h statistics.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ticker {
    /// Last traded price.
    pub last: Decimal,
    /// Price 24 h ago.
    pub open_24h: Decimal,
    /// Highest price in the last 24 h.
    pub high_24h: Decimal,
    /// Lowest price in the last 24 h.
    pub low_24h: Decimal,
    /// Base-asset volume traded in the last 24 h.
    pub volume_24h: Decimal,
}

/// One price level: `(price, size)`.
pub type Level = (Decimal, Decimal);

/// The top levels of an order book, best first on each side.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BookTop {
    /// Bids, highest price first.
    pub bids: Vec<Level>,
    /// Asks, lowest price first.
    pub asks: Vec<Level>,
}

/// The value of one update, by channel.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Payload {
    /// A trade.
    Trade(Trade),
    /// A best bid/offer.
    Quote(Quote),
    /// A ticker.
    Ticker(Ticker),
    /// A book top.
    Book(BookTop),
}

impl Payload {
    /// The channel this payload belongs to.
    pub const fn channel(&self) -> Channel {
        match self {
            Payload::Trade(_) => Channel::Trade,
            Payload::Quote(_) => Channel::Quote,
            Payload::Ticker(_) => Channel::Ticker,
            Payload::Book(_) => Channel::Book,
        }
    }
}

/// A normalized market event before it gets its topic sequence number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// The instrument it is about.
    pub instrument: Instrument,
    /// Venue event time, microseconds since the Unix epoch.
    pub ts: u64,
    /// Ingest receive time, microseconds since the Unix epoch.
    pub rx: u64,
    /// The value.
    pub payload: Payload,
}

impl Event {
    /// The topic this event is published on.
    pub fn topic(&self) -> Topic {
        Topic::new(self.instrument.clone(), self.payload.channel())
    }
}

/// Identifies one run of a topic sequence: changes only when `seq` restarts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// Validates an epoch: 1 to 32 of `[A-Za-z0-9_-]`, so it never needs
    /// escaping on the wire.
    pub fn new(text: &str) -> Result<Self> {
        let ok = !text.is_empty()
            && text.len() <= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(text.into()))
        } else {
            Err(Error::Epoch(text.to_owned()))
        }
    }

    /// A fresh epoch from a seed (e.g. start time and process id), in base 36.
    pub fn from_seed(seed: u64) -> Self {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut n = seed;
        let mut out = Vec::with_capacity(13);
        loop {
            out.push(DIGITS[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        out.reverse();
        Self(String::from_utf8_lossy(&out).into())
    }

    /// The epoch text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({})", self.0)
    }
}

/// A sequenced update with its wire bytes, encoded once at ingest.
///
/// Cloning is cheap (reference counts only): the hub hands the same bytes to
/// every subscriber's outbox and every socket writes them unchanged.
#[derive(Clone, PartialEq, Eq)]
pub struct Update {
    topic: Topic,
    seq: u64,
    epoch: Epoch,
    ts: u64,
    rx: u64,
    bytes: Bytes,
}

impl Update {
    /// Stamps an event with its topic sequence number and epoch and encodes
    /// its wire JSON: the one encoding this update will ever get.
    pub fn encode(event: &Event, seq: u64, epoch: &Epoch) -> Self {
        let topic = event.topic();
        let bytes = wire::encode_update(event, seq, epoch);
        Self {
            topic,
            seq,
            epoch: epoch.clone(),
            ts: event.ts,
            rx: event.rx,
            bytes,
        }
    }

    /// Rebuilds an update from bytes encoded elsewhere (a bus carrying the
    /// wire JSON with its metadata beside it). The bytes are trusted to be
    /// this update's encoding.
    pub fn from_encoded(
        topic: Topic,
        seq: u64,
        epoch: Epoch,
        ts: u64,
        rx: u64,
        bytes: Bytes,
    ) -> Self {
        Self {
            topic,
            seq,
            epoch,
            ts,
            rx,
            bytes,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The topic sequence number, rising by one per update.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The sequence's epoch.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// Venue event time (µs since the Unix epoch).
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// Ingest receive time (µs since the Unix epoch).
    pub fn rx(&self) -> u64 {
        self.rx
    }

    /// The wire JSON, shared by reference count.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The wire JSON flagged `"snapshot":true`, for the value a client gets
    /// at subscribe time. Allocates; called once per subscription, never on
    /// the fan-out path.
    pub fn snapshot_bytes(&self) -> Bytes {
        wire::with_snapshot_flag(&self.bytes)
    }
}

impl fmt::Debug for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("topic", &self.topic)
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("json", &String::from_utf8_lossy(&self.bytes))
            .finish()
    }
}
