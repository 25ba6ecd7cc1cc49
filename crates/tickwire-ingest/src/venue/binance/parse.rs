//! Binance wire → canonical: classifying a frame from its first key,
//! turning wire types into canonical values, and naming the field at fault
//! when a frame of a known kind does not decode.

use serde_json::Value;
use tickwire_model::{Level, Quote, Side, Ticker, Trade};

use super::messages::{
    BinanceAggTrade, BinanceBookTicker, BinanceDepthSnapshot, BinanceDepthUpdate, BinanceLevel,
    BinanceProbe, BinanceProbeInner, BinanceTicker, BinanceTrade,
};
use crate::adapter::{FrameError, ms_to_us};
use crate::book::{BinanceDiff, BinanceSnapshot};

/// What a frame is, as far as dispatch needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `trade`.
    Trade,
    /// `aggTrade`.
    AggTrade,
    /// `bookTicker` (no `e`: recognized by its leading `u`).
    BookTicker,
    /// `24hrTicker` / `24hrMiniTicker`.
    Ticker,
    /// `depthUpdate`.
    Depth,
    /// `serverShutdown` as a bare payload.
    Shutdown,
    /// `{"event":{...}}`, the WebSocket-API event form.
    EventWrapper,
    /// `{"result":...,"id":...}`.
    Response,
    /// `{"code":...,"msg":...,"id":...}`.
    Error,
    /// Anything else well-formed: another stream's payload, a partial book.
    Other,
}

/// A frame's kind and whether it came in the combined wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Peek {
    /// `{"stream":..,"data":..}`.
    pub(crate) combined: bool,
    /// The payload's kind.
    pub(crate) kind: Kind,
}

/// The kind of a payload from its `e`.
pub(crate) fn kind_of_event(e: &[u8]) -> Kind {
    match e {
        b"trade" => Kind::Trade,
        b"aggTrade" => Kind::AggTrade,
        b"24hrTicker" | b"24hrMiniTicker" => Kind::Ticker,
        b"depthUpdate" => Kind::Depth,
        b"serverShutdown" => Kind::Shutdown,
        _ => Kind::Other,
    }
}

/// Classifies a frame from its first key (and, for the combined wrapper,
/// the payload's first key) without parsing it: Binance writes `e` (or
/// `u`, `result`, `code`, `stream`) first. `None` when the frame does not
/// start that way; the caller then asks the parser ([`probe_kind`]). The
/// guess is only a dispatch hint: the typed decode that follows checks
/// every field it uses.
pub(crate) fn peek(frame: &[u8]) -> Option<Peek> {
    let (key, i) = first_key(frame)?;
    let kind = match key {
        b"e" => kind_of_event(string_at(frame, i)?.0),
        b"u" => Kind::BookTicker,
        b"result" => Kind::Response,
        b"code" => Kind::Error,
        b"event" => Kind::EventWrapper,
        b"lastUpdateId" => Kind::Other,
        b"stream" => {
            let (_, mut i) = string_at(frame, i)?;
            i = skip_ws(frame, i);
            if frame.get(i) != Some(&b',') {
                return None;
            }
            let rest = &frame[i + 1..];
            let (key, j) = key_at(rest, skip_ws(rest, 0))?;
            if key != b"data" {
                return None;
            }
            let inner = peek(&rest[j..])?;
            if inner.combined {
                return None;
            }
            return Some(Peek {
                combined: true,
                kind: inner.kind,
            });
        }
        _ => return None,
    };
    Some(Peek {
        combined: false,
        kind,
    })
}

/// The kind of a frame decoded as a [`BinanceProbe`] (keys in any order).
pub(crate) fn probe_kind(p: &BinanceProbe<'_>) -> Peek {
    let inner_kind = |i: &BinanceProbeInner<'_>| match &i.kind {
        Some(e) => kind_of_event(e.as_bytes()),
        None if i.update_id.0 && i.symbol.0 => Kind::BookTicker,
        None => Kind::Other,
    };
    let (combined, kind) = if let Some(data) = &p.data {
        (true, inner_kind(data))
    } else if p.event.is_some() {
        (false, Kind::EventWrapper)
    } else if let Some(e) = &p.kind {
        (false, kind_of_event(e.as_bytes()))
    } else if p.code.0 {
        (false, Kind::Error)
    } else if p.result.0 {
        (false, Kind::Response)
    } else if p.update_id.0 && p.symbol.0 {
        (false, Kind::BookTicker)
    } else {
        (false, Kind::Other)
    };
    Peek { combined, kind }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string starting at `b[i]` (a `"`) without escapes, and the index
/// after its closing quote. `None` for an escape: the parser handles those.
fn string_at(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\')?;
    let end = start + len;
    if b[end] == b'\\' {
        return None;
    }
    Some((&b[start..end], end + 1))
}

/// The key at `b[i]` and the index of its value.
fn key_at(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let (key, i) = string_at(b, i)?;
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((key, skip_ws(b, i + 1)))
}

/// The first key of an object and the index of its value.
fn first_key(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    key_at(b, skip_ws(b, i + 1))
}

/// A price or quantity from its wire text, scale kept.
pub(crate) use crate::adapter::decimal;

/// The aggressor: Binance says whether the buyer was the maker, so a
/// maker buyer means the taker sold.
pub(crate) fn side(buyer_is_maker: bool) -> Side {
    if buyer_is_maker {
        Side::Sell
    } else {
        Side::Buy
    }
}

/// A trade id as text, built once with its exact length.
pub(crate) fn id_text(id: u64) -> String {
    let mut digits = [0u8; 20];
    let mut n = id;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut text = String::with_capacity(digits.len() - start);
    text.extend(digits[start..].iter().map(|&d| char::from(d)));
    text
}

/// A `trade`; its time is `T` (when it executed), in µs.
pub(crate) fn trade(t: &BinanceTrade<'_>) -> Result<(u64, Trade), FrameError> {
    Ok((
        ms_to_us(t.time),
        Trade {
            price: decimal("p", t.price)?,
            size: decimal("q", t.qty)?,
            side: side(t.buyer_is_maker),
            trade_id: id_text(t.trade_id),
        },
    ))
}

/// An `aggTrade` as one trade: the aggregate id stands for the trade id.
pub(crate) fn agg_trade(t: &BinanceAggTrade<'_>) -> Result<(u64, Trade), FrameError> {
    Ok((
        ms_to_us(t.time),
        Trade {
            price: decimal("p", t.price)?,
            size: decimal("q", t.qty)?,
            side: side(t.buyer_is_maker),
            trade_id: id_text(t.agg_id),
        },
    ))
}

/// A `bookTicker` as a quote (it has no time: the caller stamps `rx`).
pub(crate) fn quote(b: &BinanceBookTicker<'_>) -> Result<Quote, FrameError> {
    Ok(Quote {
        bid: decimal("b", b.bid)?,
        bid_size: decimal("B", b.bid_qty)?,
        ask: decimal("a", b.ask)?,
        ask_size: decimal("A", b.ask_qty)?,
    })
}

/// A `24hrTicker` and its event time in µs.
pub(crate) fn ticker(t: &BinanceTicker<'_>) -> Result<(u64, Ticker), FrameError> {
    Ok((
        ms_to_us(t.time),
        Ticker {
            last: decimal("c", t.last)?,
            open_24h: decimal("o", t.open)?,
            high_24h: decimal("h", t.high)?,
            low_24h: decimal("l", t.low)?,
            volume_24h: decimal("v", t.volume)?,
        },
    ))
}

/// Wire levels as book levels.
pub(crate) fn levels(
    field: &'static str,
    wire: &[BinanceLevel<'_>],
) -> Result<Vec<Level>, FrameError> {
    wire.iter()
        .map(|l| Ok((decimal(field, l.price)?, decimal(field, l.qty)?)))
        .collect()
}

/// A `depthUpdate` for the book sync, and its event time in µs.
pub(crate) fn diff(d: &BinanceDepthUpdate<'_>) -> Result<(u64, BinanceDiff), FrameError> {
    Ok((
        ms_to_us(d.time),
        BinanceDiff {
            first_update_id: d.first_update_id,
            final_update_id: d.final_update_id,
            bids: levels("b", &d.bids)?,
            asks: levels("a", &d.asks)?,
        },
    ))
}

/// A REST depth snapshot for the book sync.
pub(crate) fn snapshot(s: &BinanceDepthSnapshot<'_>) -> Result<BinanceSnapshot, FrameError> {
    Ok(BinanceSnapshot {
        last_update_id: s.last_update_id,
        bids: levels("bids", &s.bids)?,
        asks: levels("asks", &s.asks)?,
    })
}

/// How a field of a known message must look.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    UInt,
    Int,
    Bool,
    Levels,
}

/// The fields each kind's wire type requires, in wire order.
fn required(kind: Kind) -> &'static [(&'static str, Shape)] {
    use Shape::*;
    match kind {
        Kind::Trade => &[
            ("s", Str),
            ("t", UInt),
            ("p", Str),
            ("q", Str),
            ("T", UInt),
            ("m", Bool),
        ],
        Kind::AggTrade => &[
            ("s", Str),
            ("a", UInt),
            ("p", Str),
            ("q", Str),
            ("T", UInt),
            ("m", Bool),
        ],
        Kind::BookTicker => &[("s", Str), ("b", Str), ("B", Str), ("a", Str), ("A", Str)],
        Kind::Ticker => &[
            ("E", UInt),
            ("s", Str),
            ("c", Str),
            ("o", Str),
            ("h", Str),
            ("l", Str),
            ("v", Str),
        ],
        Kind::Depth => &[
            ("E", UInt),
            ("s", Str),
            ("U", UInt),
            ("u", UInt),
            ("b", Levels),
            ("a", Levels),
        ],
        Kind::Error => &[("code", Int), ("msg", Str)],
        Kind::Shutdown => &[("e", Str)],
        Kind::EventWrapper | Kind::Response | Kind::Other => &[],
    }
}

/// The fields a REST depth snapshot requires.
const SNAPSHOT_FIELDS: &[(&str, Shape)] = &[
    ("lastUpdateId", Shape::UInt),
    ("bids", Shape::Levels),
    ("asks", Shape::Levels),
];

fn fits(v: Option<&Value>, shape: Shape) -> bool {
    let Some(v) = v else { return false };
    match shape {
        Shape::Str => v.is_string(),
        Shape::UInt => v.is_u64(),
        Shape::Int => v.is_i64() || v.is_u64(),
        Shape::Bool => v.is_boolean(),
        Shape::Levels => v.as_array().is_some_and(|levels| {
            levels.iter().all(|l| {
                l.as_array()
                    .is_some_and(|p| p.len() >= 2 && p[0].is_string() && p[1].is_string())
            })
        }),
    }
}

/// The first required field that is missing or of the wrong type.
fn first_bad(value: &Value, fields: &[(&'static str, Shape)]) -> Option<&'static str> {
    fields
        .iter()
        .find(|(name, shape)| !fits(value.get(*name), *shape))
        .map(|(name, _)| *name)
}

/// Why a frame of kind `peek` did not decode, given the same frame parsed
/// into a generic value (`None` if it is not JSON at all): the field at
/// fault, or `Malformed` with the parser's words.
pub(crate) fn diagnose(peek: Peek, value: Option<&Value>, parser: String) -> FrameError {
    let Some(value) = value else {
        return FrameError::Malformed(parser);
    };
    let payload = if peek.combined {
        match value.get("data") {
            Some(data) => data,
            None => return FrameError::Field("data"),
        }
    } else if peek.kind == Kind::EventWrapper {
        match value.get("event") {
            Some(event) => event,
            None => return FrameError::Field("event"),
        }
    } else {
        value
    };
    let fields = if peek.kind == Kind::EventWrapper {
        &[("e", Shape::Str)][..]
    } else {
        required(peek.kind)
    };
    match first_bad(payload, fields) {
        Some(name) => FrameError::Field(name),
        None => FrameError::Malformed(parser),
    }
}

/// Why a REST snapshot body did not decode (see [`diagnose`]).
pub(crate) fn diagnose_snapshot(value: Option<&Value>, parser: String) -> FrameError {
    match value.and_then(|v| first_bad(v, SNAPSHOT_FIELDS)) {
        Some(name) => FrameError::Field(name),
        None => FrameError::Malformed(parser),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(frame: &str) -> Option<Peek> {
        peek(frame.as_bytes())
    }

    fn raw(kind: Kind) -> Option<Peek> {
        Some(Peek {
            combined: false,
            kind,
        })
    }

    #[test]
    fn peeks_the_first_key() {
        assert_eq!(p(r#"{"e":"trade","E":1}"#), raw(Kind::Trade));
        assert_eq!(p(r#" { "e" : "aggTrade" }"#), raw(Kind::AggTrade));
        assert_eq!(p(r#"{"e":"24hrTicker"}"#), raw(Kind::Ticker));
        assert_eq!(p(r#"{"e":"depthUpdate"}"#), raw(Kind::Depth));
        assert_eq!(p(r#"{"e":"kline"}"#), raw(Kind::Other));
        assert_eq!(p(r#"{"u":1,"s":"X"}"#), raw(Kind::BookTicker));
        assert_eq!(p(r#"{"result":null,"id":1}"#), raw(Kind::Response));
        assert_eq!(p(r#"{"code":2,"msg":"x"}"#), raw(Kind::Error));
        assert_eq!(
            p(r#"{"event":{"e":"serverShutdown"}}"#),
            raw(Kind::EventWrapper)
        );
        assert_eq!(
            p(r#"{"stream":"btcusdt@trade", "data" :{"e":"trade"}}"#),
            Some(Peek {
                combined: true,
                kind: Kind::Trade
            })
        );
        // Not recognizable from the first key: the parser decides.
        for f in [
            r#"{"id":1,"result":null}"#,
            r#"{"E":1,"e":"trade"}"#,
            r#"{"data":{"e":"trade"},"stream":"x"}"#,
            r#"{"stream":"x","data":{"stream":"y","data":{}}}"#,
            r#"{"e":"tr\"ade"}"#,
            "[1,2]",
            "",
            "{",
            r#"{"e""#,
        ] {
            assert_eq!(p(f), None, "{f}");
        }
    }

    #[test]
    fn trade_ids_are_decimal_text() {
        for n in [0, 7, 10, 4_102_556_781, u64::MAX] {
            assert_eq!(id_text(n), n.to_string());
        }
    }
}
