//! OKX v5 public wire types. Prices and sizes are strings on the wire
//! (exact text, borrowed); `seqId`/`prevSeqId` are JSON integers; `ts` is
//! a string of epoch milliseconds.
//!
//! As for Kraken, which fields `data` holds depends on `arg.channel`, so
//! one flat envelope ([`OkxMessage`]) and one flat data item ([`OkxData`])
//! take every field a handled channel has, all optional, and `parse.rs`
//! requires the ones the channel needs: one decoding pass, no buffering.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};

/// Any OKX JSON frame (the keepalive answer is the bare text `pong`,
/// handled before decoding). Examples:
///
/// ```text
/// {"id":"1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}
/// {"id":"1","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:XYZ-USDT doesn't exist","connId":"a4d3ae55"}
/// {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0","seqId":1234}]}
/// {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","0","0","0"]],"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct OkxMessage<'a> {
    /// Replies and notices: `subscribe`, `unsubscribe`, `error`, `notice`,
    /// `channel-conn-count`.
    #[serde(borrow, default)]
    pub(crate) event: Option<&'a str>,
    /// The error or notice code (`60018`, `64008`).
    #[serde(borrow, default)]
    pub(crate) code: Option<Cow<'a, str>>,
    /// The error or notice text.
    #[serde(borrow, default)]
    pub(crate) msg: Option<Cow<'a, str>>,
    /// The channel and instrument of a push or an ack.
    #[serde(borrow, default)]
    pub(crate) arg: Option<OkxArg<'a>>,
    /// `snapshot` or `update` on book pushes.
    #[serde(borrow, default)]
    pub(crate) action: Option<&'a str>,
    /// The pushed items.
    #[serde(borrow, default)]
    pub(crate) data: Vec<OkxData<'a>>,
}

/// `arg`: `{"channel":"tickers","instId":"BTC-USDT"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct OkxArg<'a> {
    /// `trades`, `tickers`, `books`, ...
    #[serde(borrow)]
    pub(crate) channel: &'a str,
    /// The instrument, `BASE-QUOTE`.
    #[serde(rename = "instId", borrow, default)]
    pub(crate) inst_id: Option<&'a str>,
}

/// One pushed item of `trades`, `tickers` or `books`. Examples:
///
/// ```text
/// trades:  {"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0","seqId":1234}
/// tickers: {"instType":"SPOT","instId":"BTC-USDT","last":"66256.8","lastSz":"0.0000152","askPx":"66260.3","askSz":"0.22152927","bidPx":"66260.2","bidSz":"0.43439376","open24h":"66724.9","high24h":"67124.6","low24h":"66159.7","volCcy24h":"204987308.1880515","vol24h":"3074.77151423","sodUtc0":"66369","sodUtc8":"66526.2","ts":"1774805577108"}
/// books:   {"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","0","0","0"]],"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}
/// ```
///
/// The books `checksum` is not read: OKX deprecated it (always `0` from
/// June 2026) and the `seqId`/`prevSeqId` chain is what keeps the book.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OkxData<'a> {
    /// The instrument (trades, tickers).
    #[serde(rename = "instId", borrow, default)]
    pub(crate) inst_id: Option<&'a str>,
    /// Epoch milliseconds, as a string.
    #[serde(borrow, default)]
    pub(crate) ts: Option<&'a str>,
    /// trades: the trade id (text).
    #[serde(rename = "tradeId", borrow, default)]
    pub(crate) trade_id: Option<&'a str>,
    /// trades: price.
    #[serde(borrow, default)]
    pub(crate) px: Option<&'a str>,
    /// trades: size.
    #[serde(borrow, default)]
    pub(crate) sz: Option<&'a str>,
    /// trades: the taker's side.
    #[serde(borrow, default)]
    pub(crate) side: Option<&'a str>,
    /// tickers: last trade price.
    #[serde(borrow, default)]
    pub(crate) last: Option<&'a str>,
    /// tickers: best ask.
    #[serde(rename = "askPx", borrow, default)]
    pub(crate) ask_px: Option<&'a str>,
    /// tickers: size at the best ask.
    #[serde(rename = "askSz", borrow, default)]
    pub(crate) ask_sz: Option<&'a str>,
    /// tickers: best bid.
    #[serde(rename = "bidPx", borrow, default)]
    pub(crate) bid_px: Option<&'a str>,
    /// tickers: size at the best bid.
    #[serde(rename = "bidSz", borrow, default)]
    pub(crate) bid_sz: Option<&'a str>,
    /// tickers: price 24 h ago.
    #[serde(rename = "open24h", borrow, default)]
    pub(crate) open_24h: Option<&'a str>,
    /// tickers: 24 h high.
    #[serde(rename = "high24h", borrow, default)]
    pub(crate) high_24h: Option<&'a str>,
    /// tickers: 24 h low.
    #[serde(rename = "low24h", borrow, default)]
    pub(crate) low_24h: Option<&'a str>,
    /// tickers: 24 h volume in the base currency (spot).
    #[serde(rename = "vol24h", borrow, default)]
    pub(crate) vol_24h: Option<&'a str>,
    /// books: ask levels.
    #[serde(borrow, default)]
    pub(crate) asks: Option<Vec<OkxLevel<'a>>>,
    /// books: bid levels.
    #[serde(borrow, default)]
    pub(crate) bids: Option<Vec<OkxLevel<'a>>>,
    /// books: the previous message's `seqId` (`-1` on a snapshot).
    #[serde(rename = "prevSeqId", default)]
    pub(crate) prev_seq_id: Option<i64>,
    /// books (and trades): this message's sequence id.
    #[serde(rename = "seqId", default)]
    pub(crate) seq_id: Option<i64>,
}

/// A book level, `["8476.98","415","0","13"]`: price, size, a deprecated
/// `"0"` and the order count; only the first two are read, the rest are
/// skipped whatever their number.
#[derive(Debug)]
pub(crate) struct OkxLevel<'a> {
    /// Price text.
    pub(crate) price: &'a str,
    /// Size text (`"0"` removes the level).
    pub(crate) size: &'a str,
}

impl<'de: 'a, 'a> Deserialize<'de> for OkxLevel<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Level;
        impl<'de> Visitor<'de> for Level {
            type Value = OkxLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a book level [price, size, ...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let price = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let size = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OkxLevel { price, size })
            }
        }
        d.deserialize_seq(Level)
    }
}
