//! Kraken WebSocket v2 wire types.
//!
//! Every frame is run through [`crate::json::quote_numbers`] before it is
//! decoded, so every JSON number (prices, sizes, `checksum`, `req_id`,
//! `trade_id`) arrives here as a string holding its exact wire text:
//! `0.10000000` stays `"0.10000000"`, which is what the book checksum and
//! the canonical decimal scale need.
//!
//! Kraken frames are not tagged in a way serde can use without buffering
//! (`channel` for data, `method` for replies), and which fields `data`
//! holds depends on the channel. Rather than decoding twice or through
//! serde's buffered `untagged`/internally tagged enums, one flat envelope
//! ([`KrakenMessage`]) and one flat data item ([`KrakenData`]) take every
//! field any handled message has, all optional; `parse.rs` decides which
//! are required once the channel is known. One pass, no buffering, every
//! string borrowed from the scratch buffer.

use std::borrow::Cow;

use serde::Deserialize;

/// Any Kraken v2 frame. Examples (as sent by Kraken, before quoting):
///
/// ```text
/// {"channel":"heartbeat"}
/// {"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":12345,"system":"online","version":"2.0.0"}]}
/// {"method":"subscribe","req_id":3,"result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2026-11-02T00:00:00.081021Z","time_out":"2026-11-02T00:00:00.081107Z"}
/// {"error":"Currency pair not supported BTC/XYZ","method":"subscribe","req_id":3,"success":false,"symbol":"BTC/XYZ","time_in":"2026-11-02T00:00:00.081021Z","time_out":"2026-11-02T00:00:00.081107Z"}
/// {"method":"pong","req_id":4,"time_in":"2026-11-02T00:00:30.000120Z","time_out":"2026-11-02T00:00:30.000151Z"}
/// {"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":70213.4,"qty":0.01250000,"ord_type":"market","trade_id":4665906,"timestamp":"2026-11-02T00:00:01.708706Z"}]}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct KrakenMessage<'a> {
    /// Data and status frames: `trade`, `ticker`, `book`, `heartbeat`,
    /// `status`, ...
    #[serde(borrow, default)]
    pub(crate) channel: Option<&'a str>,
    /// `snapshot` or `update` on data frames.
    #[serde(rename = "type", borrow, default)]
    pub(crate) kind: Option<&'a str>,
    /// Replies to our requests: `subscribe`, `unsubscribe`, `pong`.
    #[serde(borrow, default)]
    pub(crate) method: Option<&'a str>,
    /// Whether a request succeeded.
    #[serde(default)]
    pub(crate) success: Option<bool>,
    /// Why a request failed (free text).
    #[serde(borrow, default)]
    pub(crate) error: Option<Cow<'a, str>>,
    /// The symbol a failed subscription was for, when Kraken echoes it.
    #[serde(borrow, default)]
    pub(crate) symbol: Option<Cow<'a, str>>,
    /// What a successful subscription covers.
    #[serde(borrow, default)]
    pub(crate) result: Option<KrakenResult<'a>>,
    /// The data items of a channel message.
    #[serde(borrow, default)]
    pub(crate) data: Vec<KrakenData<'a>>,
}

/// The `result` of a subscribe/unsubscribe reply:
///
/// ```text
/// {"channel":"ticker","event_trigger":"bbo","snapshot":true,"symbol":"ETH/EUR"}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct KrakenResult<'a> {
    /// The symbol this reply is about (one reply per symbol).
    #[serde(borrow, default)]
    pub(crate) symbol: Option<Cow<'a, str>>,
}

/// One data item of a `trade`, `ticker` or `book` message (fields of the
/// other channels are absent). Examples, one per channel:
///
/// ```text
/// trade:  {"symbol":"BTC/USD","side":"buy","price":70213.5,"qty":0.00421000,"ord_type":"limit","trade_id":4665907,"timestamp":"2026-11-02T00:00:01.708706Z"}
/// ticker: {"symbol":"BTC/USD","bid":70213.4,"bid_qty":0.51200000,"ask":70213.5,"ask_qty":1.02000000,"last":70213.5,"volume":1543.12345678,"vwap":69950.1,"low":69011.2,"high":70588.0,"change":812.1,"change_pct":1.17,"timestamp":"2026-11-02T00:00:01.712001Z"}
/// book:   {"symbol":"BTC/USD","bids":[{"price":70213.4,"qty":0.51200000}],"asks":[{"price":70213.5,"qty":0.00000000}],"checksum":2439117997,"timestamp":"2026-11-02T00:00:01.713144Z"}
/// ```
#[derive(Debug, Default, Deserialize)]
pub(crate) struct KrakenData<'a> {
    /// `BASE/QUOTE`, e.g. `BTC/USD`.
    #[serde(borrow, default)]
    pub(crate) symbol: Option<&'a str>,
    /// RFC 3339, µs.
    #[serde(borrow, default)]
    pub(crate) timestamp: Option<&'a str>,
    /// trade: the taker's side, `buy` or `sell`.
    #[serde(borrow, default)]
    pub(crate) side: Option<&'a str>,
    /// trade: price.
    #[serde(borrow, default)]
    pub(crate) price: Option<&'a str>,
    /// trade: quantity.
    #[serde(borrow, default)]
    pub(crate) qty: Option<&'a str>,
    /// trade: integer id, sequential per book.
    #[serde(borrow, default)]
    pub(crate) trade_id: Option<&'a str>,
    /// ticker: best bid.
    #[serde(borrow, default)]
    pub(crate) bid: Option<&'a str>,
    /// ticker: size at the best bid.
    #[serde(borrow, default)]
    pub(crate) bid_qty: Option<&'a str>,
    /// ticker: best ask.
    #[serde(borrow, default)]
    pub(crate) ask: Option<&'a str>,
    /// ticker: size at the best ask.
    #[serde(borrow, default)]
    pub(crate) ask_qty: Option<&'a str>,
    /// ticker: last trade price.
    #[serde(borrow, default)]
    pub(crate) last: Option<&'a str>,
    /// ticker: 24 h base volume.
    #[serde(borrow, default)]
    pub(crate) volume: Option<&'a str>,
    /// ticker: 24 h low.
    #[serde(borrow, default)]
    pub(crate) low: Option<&'a str>,
    /// ticker: 24 h high.
    #[serde(borrow, default)]
    pub(crate) high: Option<&'a str>,
    /// ticker: price change over 24 h (`last − open`).
    #[serde(borrow, default)]
    pub(crate) change: Option<&'a str>,
    /// book: bid levels to set, in order (qty 0 removes).
    #[serde(borrow, default)]
    pub(crate) bids: Option<Vec<KrakenLevel<'a>>>,
    /// book: ask levels to set, in order (qty 0 removes).
    #[serde(borrow, default)]
    pub(crate) asks: Option<Vec<KrakenLevel<'a>>>,
    /// book: CRC-32 of the top 10 levels after this message.
    #[serde(borrow, default)]
    pub(crate) checksum: Option<&'a str>,
}

/// One book level: `{"price":45283.5,"qty":0.10000000}`.
#[derive(Debug, Deserialize)]
pub(crate) struct KrakenLevel<'a> {
    /// Price text.
    #[serde(borrow)]
    pub(crate) price: &'a str,
    /// Size text (zero removes the level).
    #[serde(borrow)]
    pub(crate) qty: &'a str,
}
