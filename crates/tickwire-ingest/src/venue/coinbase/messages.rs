//! Coinbase Exchange `ws-feed` wire types.
//!
//! Every frame is one JSON object with a `type`; the fields used depend on
//! it. The frame is decoded once into [`CoinbaseMessage`], whose fields are
//! all optional, so a missing field is reported by name
//! ([`crate::adapter::FrameError::Field`]) when the type that needs it is
//! normalized, and unknown types and fields cost nothing.

use std::borrow::Cow;

use serde::Deserialize;

/// One `ws-feed` frame, any type. Examples, one per type used:
///
/// `subscriptions` (the reply to subscribe and unsubscribe: everything the
/// connection is now subscribed to):
/// ```json
/// {"type":"subscriptions","channels":[{"name":"level2_batch","product_ids":["BTC-USD"]},{"name":"heartbeat","product_ids":["BTC-USD"]}]}
/// ```
/// `error`:
/// ```json
/// {"type":"error","message":"Failed to subscribe","reason":"XYZ-USD is not a valid product"}
/// ```
/// `heartbeat` (1/s per product):
/// ```json
/// {"type":"heartbeat","sequence":136967652360,"last_trade_id":1099995623,"product_id":"BTC-USD","time":"2026-09-29T13:45:58.312001Z"}
/// ```
/// `match` / `last_match` (`side` is the maker's):
/// ```json
/// {"type":"match","trade_id":1099995624,"sequence":136967653295,"maker_order_id":"7b0e4aeb-72c1-4d36-adce-e6221ffecc05","taker_order_id":"92906bb7-eb38-40c1-9c54-76bc1dd19ce4","time":"2026-09-29T13:45:58.484212Z","product_id":"BTC-USD","size":"0.00004104","price":"84149.24","side":"sell"}
/// ```
/// `ticker`:
/// ```json
/// {"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","open_24h":"1310.79","volume_24h":"245532.79269678","low_24h":"1280.52","high_24h":"1313.8","volume_30d":"9788783.60117027","best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}
/// ```
/// `snapshot` (`level2_batch`; `time` only in recent captures):
/// ```json
/// {"type":"snapshot","product_id":"BTC-USD","bids":[["10101.10","0.45054140"]],"asks":[["10102.55","0.57753524"]],"time":"2026-11-02T00:00:00.101234Z"}
/// ```
/// `l2update` (sizes are absolute, zero removes):
/// ```json
/// {"type":"l2update","product_id":"BTC-USD","changes":[["buy","22356.27","0.00000000"],["sell","22356.30","1.00000000"]],"time":"2022-08-04T15:25:05.010758Z"}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct CoinbaseMessage<'a> {
    /// The message type.
    #[serde(rename = "type", borrow)]
    pub(crate) kind: &'a str,
    /// `BASE-QUOTE`.
    #[serde(borrow)]
    pub(crate) product_id: Option<&'a str>,
    /// Event time, RFC 3339 with µs.
    #[serde(borrow)]
    pub(crate) time: Option<&'a str>,
    /// `match`, `last_match`, `ticker`: the product's trade id.
    pub(crate) trade_id: Option<u64>,
    /// `match`, `last_match`, `ticker`: the trade price.
    #[serde(borrow)]
    pub(crate) price: Option<&'a str>,
    /// `match`, `last_match`: the trade size.
    #[serde(borrow)]
    pub(crate) size: Option<&'a str>,
    /// `match`, `last_match`: the maker's side; `ticker`: the taker's.
    #[serde(borrow)]
    pub(crate) side: Option<&'a str>,
    /// `ticker`: the price 24 h ago.
    #[serde(borrow)]
    pub(crate) open_24h: Option<&'a str>,
    /// `ticker`: the 24 h high.
    #[serde(borrow)]
    pub(crate) high_24h: Option<&'a str>,
    /// `ticker`: the 24 h low.
    #[serde(borrow)]
    pub(crate) low_24h: Option<&'a str>,
    /// `ticker`: the 24 h base volume.
    #[serde(borrow)]
    pub(crate) volume_24h: Option<&'a str>,
    /// `snapshot`: bids, `[price, size]`.
    #[serde(borrow)]
    pub(crate) bids: Option<Vec<(&'a str, &'a str)>>,
    /// `snapshot`: asks, `[price, size]`.
    #[serde(borrow)]
    pub(crate) asks: Option<Vec<(&'a str, &'a str)>>,
    /// `l2update`: `[side, price, size]`, side `buy` or `sell`.
    #[serde(borrow)]
    pub(crate) changes: Option<Vec<(&'a str, &'a str, &'a str)>>,
    /// `subscriptions`: the channels subscribed now.
    #[serde(borrow)]
    pub(crate) channels: Option<Vec<CoinbaseChannel<'a>>>,
    /// `error`: what failed (free text: may hold escapes, so not borrowed
    /// from the frame by every backend).
    #[serde(borrow)]
    pub(crate) message: Option<Cow<'a, str>>,
    /// `error`: why.
    #[serde(borrow)]
    pub(crate) reason: Option<Cow<'a, str>>,
}

/// One channel of a `subscriptions` reply:
/// `{"name":"ticker","product_ids":["ETH-USD","ETH-BTC"]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CoinbaseChannel<'a> {
    /// The channel name (`level2_batch`, `matches`, `ticker`, `heartbeat`).
    #[serde(borrow)]
    pub(crate) name: &'a str,
    /// The products subscribed on it.
    #[serde(borrow)]
    pub(crate) product_ids: Option<Vec<&'a str>>,
}
