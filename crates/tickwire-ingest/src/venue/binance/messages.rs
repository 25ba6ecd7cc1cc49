//! Binance Spot wire types: the stream payloads, the combined-stream
//! wrapper, the live-subscription replies and the REST depth snapshot.
//!
//! Strings borrow from the frame (simd-json unescapes in place); unknown
//! fields are ignored, because Binance adds fields without notice (trades
//! lost `b`/`a` around 2024).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// `<symbol>@trade`: one trade.
///
/// ```json
/// {"e":"trade","E":1730419200123,"s":"BTCUSDT","t":4102556781,"p":"70213.45000000","q":"0.01250000","T":1730419200121,"m":true,"M":true}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceTrade<'a> {
    /// Symbol, upper-case.
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    /// Trade id, increasing per symbol.
    #[serde(rename = "t")]
    pub(crate) trade_id: u64,
    /// Price.
    #[serde(rename = "p")]
    pub(crate) price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub(crate) qty: &'a str,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub(crate) time: u64,
    /// The buyer was the maker: the taker sold.
    #[serde(rename = "m")]
    pub(crate) buyer_is_maker: bool,
}

/// `<symbol>@aggTrade`: the trades of one taker order at one price.
///
/// ```json
/// {"e":"aggTrade","E":1730419200130,"s":"BTCUSDT","a":3155102233,"p":"70213.44000000","q":"0.30000000","f":4102556782,"l":4102556786,"T":1730419200128,"m":false,"M":true}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceAggTrade<'a> {
    /// Symbol.
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    /// Aggregate trade id.
    #[serde(rename = "a")]
    pub(crate) agg_id: u64,
    /// Price.
    #[serde(rename = "p")]
    pub(crate) price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub(crate) qty: &'a str,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub(crate) time: u64,
    /// The buyer was the maker: the taker sold.
    #[serde(rename = "m")]
    pub(crate) buyer_is_maker: bool,
}

/// `<symbol>@bookTicker`: best bid and offer. No event type and no time.
///
/// ```json
/// {"u":58392217034,"s":"BTCUSDT","b":"70213.44000000","B":"1.20800000","a":"70213.45000000","A":"0.00421000"}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceBookTicker<'a> {
    /// Symbol.
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    /// Best bid price.
    #[serde(rename = "b")]
    pub(crate) bid: &'a str,
    /// Best bid quantity.
    #[serde(rename = "B")]
    pub(crate) bid_qty: &'a str,
    /// Best ask price.
    #[serde(rename = "a")]
    pub(crate) ask: &'a str,
    /// Best ask quantity.
    #[serde(rename = "A")]
    pub(crate) ask_qty: &'a str,
}

/// `<symbol>@ticker` (`24hrTicker`; `24hrMiniTicker` has the same fields
/// used here): rolling 24 h statistics, every second.
///
/// ```json
/// {"e":"24hrTicker","E":1730419201000,"s":"BTCUSDT","p":"812.10000000","P":"1.170","w":"69950.11820345","x":"69401.35000000","c":"70213.45000000","Q":"0.01250000","b":"70213.44000000","B":"1.20800000","a":"70213.45000000","A":"0.00421000","o":"69401.35000000","h":"70588.00000000","l":"69011.20000000","v":"21877.40316000","q":"1530355213.52281034","O":1730332801000,"C":1730419201000,"F":4100212550,"L":4102556781,"n":2344232}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceTicker<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub(crate) time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    /// Last price.
    #[serde(rename = "c")]
    pub(crate) last: &'a str,
    /// Open price of the window.
    #[serde(rename = "o")]
    pub(crate) open: &'a str,
    /// High of the window.
    #[serde(rename = "h")]
    pub(crate) high: &'a str,
    /// Low of the window.
    #[serde(rename = "l")]
    pub(crate) low: &'a str,
    /// Base-asset volume of the window.
    #[serde(rename = "v")]
    pub(crate) volume: &'a str,
}

/// `<symbol>@depth@100ms`: the levels that changed, with absolute
/// quantities (zero removes), covering update ids `U..=u`.
///
/// ```json
/// {"e":"depthUpdate","E":1730419200200,"s":"BTCUSDT","U":58392217001,"u":58392217034,"b":[["70213.44000000","1.20800000"],["70210.00000000","0.00000000"]],"a":[["70213.45000000","0.00421000"]]}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceDepthUpdate<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub(crate) time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    /// First update id in this event.
    #[serde(rename = "U")]
    pub(crate) first_update_id: u64,
    /// Final update id in this event.
    #[serde(rename = "u")]
    pub(crate) final_update_id: u64,
    /// Bid levels to set.
    #[serde(rename = "b", borrow)]
    pub(crate) bids: Vec<BinanceLevel<'a>>,
    /// Ask levels to set.
    #[serde(rename = "a", borrow)]
    pub(crate) asks: Vec<BinanceLevel<'a>>,
}

/// `GET /api/v3/depth?symbol=BTCUSDT&limit=5000`: the REST book snapshot.
///
/// ```json
/// {"lastUpdateId":58392216990,"bids":[["70213.44000000","1.10000000"]],"asks":[["70213.45000000","0.00421000"]]}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceDepthSnapshot<'a> {
    /// The last update id the snapshot includes.
    #[serde(rename = "lastUpdateId")]
    pub(crate) last_update_id: u64,
    /// Bids, best first.
    #[serde(borrow)]
    pub(crate) bids: Vec<BinanceLevel<'a>>,
    /// Asks, best first.
    #[serde(borrow)]
    pub(crate) asks: Vec<BinanceLevel<'a>>,
}

/// One `[price, quantity]` pair. Older API versions appended an ignored
/// third element; anything after the first two is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BinanceLevel<'a> {
    /// Price text.
    pub(crate) price: &'a str,
    /// Quantity text.
    pub(crate) qty: &'a str,
}

impl<'de: 'a, 'a> Deserialize<'de> for BinanceLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LevelVisitor;
        impl<'de> Visitor<'de> for LevelVisitor {
            type Value = BinanceLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [price, quantity] pair of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let price = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let qty = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BinanceLevel { price, qty })
            }
        }
        d.deserialize_seq(LevelVisitor)
    }
}

/// `{"stream":"<name>","data":<payload>}`: the combined-stream wrapper.
///
/// ```json
/// {"stream":"btcusdt@trade","data":{"e":"trade","E":1730419200123,"s":"BTCUSDT","t":4102556781,"p":"70213.45000000","q":"0.01250000","T":1730419200121,"m":true,"M":true}}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceCombined<T> {
    /// The payload.
    pub(crate) data: T,
}

/// A reply to a live request that succeeded (`result` is `null` for
/// `SUBSCRIBE`/`UNSUBSCRIBE`, a list for `LIST_SUBSCRIPTIONS`).
///
/// ```json
/// {"result":null,"id":1}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceResponse {
    /// The request id echoed.
    #[serde(default)]
    pub(crate) id: RequestId,
}

/// A live request that failed.
///
/// ```json
/// {"code":2,"msg":"Invalid request: unknown variant","id":1}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceError<'a> {
    /// Error code (0 unknown property, 1 bad value type, 2 invalid request,
    /// 3 invalid JSON).
    pub(crate) code: i64,
    /// The venue's words.
    #[serde(borrow)]
    pub(crate) msg: Cow<'a, str>,
    /// The request id echoed (`null` when the request was not JSON).
    #[serde(default)]
    pub(crate) id: RequestId,
}

/// An event object carrying only a type and a time: `serverShutdown` on the
/// stream endpoint.
///
/// ```json
/// {"e":"serverShutdown","E":1770123456789}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceEvent<'a> {
    /// Event type.
    #[serde(rename = "e")]
    pub(crate) kind: &'a str,
}

/// The WebSocket-API form of an event.
///
/// ```json
/// {"event":{"e":"serverShutdown","E":1770123456789}}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct BinanceEventWrapper<'a> {
    /// The event.
    #[serde(borrow)]
    pub(crate) event: BinanceEvent<'a>,
}

/// A request id as echoed: an integer (what this adapter sends), a string
/// or `null`; only unsigned integers can be ours.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestId(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a request id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                Ok(RequestId(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RequestId, E> {
                Ok(RequestId(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<RequestId, E> {
                Ok(RequestId(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RequestId, E> {
                Ok(RequestId(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RequestId, E> {
                Ok(RequestId(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<RequestId, E> {
                Ok(RequestId(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RequestId, D::Error> {
                d.deserialize_any(IdVisitor)
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Whether a key is present, whatever its value (`null` included): tells a
/// reply (`"result":null`) from a payload when the cheap peek could not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Present(pub(crate) bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// What any Binance object says about its own kind, for frames whose keys
/// come in an unexpected order (the cheap peek reads only the first key).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BinanceProbe<'a> {
    /// Event type of a payload.
    #[serde(rename = "e", default, borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    /// Update id: a `bookTicker` (which has no `e`) carries it.
    #[serde(rename = "u", default)]
    pub(crate) update_id: Present,
    /// Symbol.
    #[serde(rename = "s", default)]
    pub(crate) symbol: Present,
    /// A reply's result.
    #[serde(default)]
    pub(crate) result: Present,
    /// An error reply's code.
    #[serde(default)]
    pub(crate) code: Present,
    /// A combined-stream payload.
    #[serde(default, borrow)]
    pub(crate) data: Option<BinanceProbeInner<'a>>,
    /// A WebSocket-API event.
    #[serde(default, borrow)]
    pub(crate) event: Option<BinanceProbeInner<'a>>,
}

/// The kind of a nested payload (inside `data` or `event`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BinanceProbeInner<'a> {
    /// Event type.
    #[serde(rename = "e", default, borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    /// Update id (`bookTicker`).
    #[serde(rename = "u", default)]
    pub(crate) update_id: Present,
    /// Symbol.
    #[serde(rename = "s", default)]
    pub(crate) symbol: Present,
}
