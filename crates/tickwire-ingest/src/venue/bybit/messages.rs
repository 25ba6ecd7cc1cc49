//! Bybit v5 public (spot) wire types.
//!
//! Two kinds of frames: replies to our requests (`op`, `success`,
//! `ret_msg`) and pushes (`topic`, `type`, `ts`, `data`). Both decode into
//! [`BybitMessage`] with optional fields; `data` is an array for
//! `publicTrade` and an object for `orderbook` and `tickers`, told apart
//! while decoding (no buffering).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// One frame. Examples:
///
/// Subscribe ack (unsubscribe alike):
/// ```json
/// {"success":true,"ret_msg":"subscribe","conn_id":"d8e2a6b0-4b2c-4c47-9f1c-3a1f0c2b7e55","req_id":"sub-1","op":"subscribe"}
/// ```
/// Refusal:
/// ```json
/// {"success":false,"ret_msg":"Invalid topic :[orderbook.50.XYZUSDT]","conn_id":"d8e2a6b0-4b2c-4c47-9f1c-3a1f0c2b7e55","req_id":"sub-1","op":"subscribe"}
/// ```
/// Pong (spot; linear answers `"op":"pong"` instead):
/// ```json
/// {"success":true,"ret_msg":"pong","conn_id":"d8e2a6b0-4b2c-4c47-9f1c-3a1f0c2b7e55","req_id":"ping-1","op":"ping"}
/// ```
/// Pushes: see [`BybitData`].
#[derive(Debug, Deserialize)]
pub(crate) struct BybitMessage<'a> {
    /// `publicTrade.BTCUSDT`, `orderbook.50.BTCUSDT`, `tickers.BTCUSDT`.
    #[serde(borrow)]
    pub(crate) topic: Option<&'a str>,
    /// `snapshot` or `delta`.
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<&'a str>,
    /// When the push was produced, ms.
    pub(crate) ts: Option<u64>,
    /// Matching-engine time of a book push, ms.
    pub(crate) cts: Option<u64>,
    /// The payload.
    #[serde(borrow)]
    pub(crate) data: Option<BybitData<'a>>,
    /// The request a reply answers: `subscribe`, `unsubscribe`, `ping`
    /// (`pong` on linear).
    #[serde(borrow)]
    pub(crate) op: Option<&'a str>,
    /// Whether the request succeeded.
    pub(crate) success: Option<bool>,
    /// The venue's words (`pong`, `subscribe`, the refused topic).
    #[serde(borrow)]
    pub(crate) ret_msg: Option<Cow<'a, str>>,
}

/// A push's `data`.
#[derive(Debug)]
pub(crate) enum BybitData<'a> {
    /// `publicTrade`: one entry per fill.
    /// ```json
    /// {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1793577601234,"data":[{"T":1793577601232,"s":"BTCUSDT","S":"Buy","v":"0.001200","p":"84012.50","i":"2290000000123456789","BT":false}]}
    /// ```
    Trades(Vec<BybitTrade<'a>>),
    /// `orderbook.{depth}` or `tickers`.
    Object(BybitObject<'a>),
}

/// One fill of a `publicTrade` push.
#[derive(Debug, Deserialize)]
pub(crate) struct BybitTrade<'a> {
    /// Fill time, ms.
    #[serde(rename = "T")]
    pub(crate) time: Option<u64>,
    /// Symbol.
    #[serde(borrow)]
    pub(crate) s: Option<&'a str>,
    /// Taker side, `Buy` or `Sell`.
    #[serde(rename = "S", borrow)]
    pub(crate) side: Option<&'a str>,
    /// Size.
    #[serde(borrow)]
    pub(crate) v: Option<&'a str>,
    /// Price.
    #[serde(borrow)]
    pub(crate) p: Option<&'a str>,
    /// Trade id.
    #[serde(borrow)]
    pub(crate) i: Option<&'a str>,
}

/// The object `data` of a book or ticker push.
///
/// `orderbook.50` (`b`/`a` levels, `u` update id, `seq` cross sequence):
/// ```json
/// {"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1735500000123,"data":{"s":"BTCUSDT","b":[["60123.5","0.421"],["60122.0","0"]],"a":[["60125.0","1.05"]],"u":123456789,"seq":9876543210},"cts":1735500000100}
/// ```
/// `tickers` (spot):
/// ```json
/// {"topic":"tickers.BTCUSDT","ts":1793577601000,"type":"snapshot","cs":44939063582,"data":{"symbol":"BTCUSDT","lastPrice":"84012.50","highPrice24h":"85120.00","lowPrice24h":"82990.01","prevPrice24h":"83500.00","volume24h":"12873.230551","turnover24h":"1081822301.91244113","price24hPcnt":"0.0061","usdIndexPrice":"84010.120411"}}
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BybitObject<'a> {
    /// Book: symbol.
    #[serde(borrow)]
    pub(crate) s: Option<&'a str>,
    /// Book: bids `[price, size]`.
    #[serde(borrow)]
    pub(crate) b: Option<Vec<(&'a str, &'a str)>>,
    /// Book: asks `[price, size]`.
    #[serde(borrow)]
    pub(crate) a: Option<Vec<(&'a str, &'a str)>>,
    /// Book: update id.
    pub(crate) u: Option<u64>,
    /// Ticker: symbol.
    #[serde(borrow)]
    pub(crate) symbol: Option<&'a str>,
    /// Ticker: last price.
    #[serde(borrow)]
    pub(crate) last_price: Option<&'a str>,
    /// Ticker: price 24 h ago.
    #[serde(rename = "prevPrice24h", borrow)]
    pub(crate) prev_price_24h: Option<&'a str>,
    /// Ticker: 24 h high.
    #[serde(rename = "highPrice24h", borrow)]
    pub(crate) high_price_24h: Option<&'a str>,
    /// Ticker: 24 h low.
    #[serde(rename = "lowPrice24h", borrow)]
    pub(crate) low_price_24h: Option<&'a str>,
    /// Ticker: 24 h base volume.
    #[serde(rename = "volume24h", borrow)]
    pub(crate) volume_24h: Option<&'a str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for BybitData<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
            type Value = BybitData<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of trades or a book/ticker object")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut trades = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(t) = seq.next_element()? {
                    trades.push(t);
                }
                Ok(BybitData::Trades(trades))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                BybitObject::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(BybitData::Object)
            }
        }

        deserializer.deserialize_any(DataVisitor(std::marker::PhantomData))
    }
}
