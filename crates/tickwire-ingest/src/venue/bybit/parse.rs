//! Bybit wire → canonical: pure functions over decoded messages.

use rust_decimal::Decimal;
use tickwire_model::{Level, Side, Ticker, Trade};

use super::messages::{BybitObject, BybitTrade};
use crate::adapter::{FrameError, ms_to_us};

/// A required field, or [`FrameError::Field`] naming it.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, FrameError> {
    value.ok_or(FrameError::Field(field))
}

/// An exact decimal from the wire text, keeping its scale.
pub(crate) use crate::adapter::decimal;

/// The venue channel of a topic and its symbol: `orderbook.50.BTCUSDT` is
/// (`orderbook.50`, `BTCUSDT`).
pub(crate) fn split_topic(topic: &str) -> Option<(&str, &str)> {
    topic.rsplit_once('.')
}

/// One fill of a `publicTrade` push: its symbol, trade and time (µs).
/// `S` is the taker's side.
pub(crate) fn trade<'a>(t: &BybitTrade<'a>) -> Result<(&'a str, Trade, u64), FrameError> {
    let symbol = required(t.s, "s")?;
    let side = match required(t.side, "S")? {
        "Buy" => Side::Buy,
        "Sell" => Side::Sell,
        _ => return Err(FrameError::Field("S")),
    };
    let trade = Trade {
        price: decimal("p", required(t.p, "p")?)?,
        size: decimal("v", required(t.v, "v")?)?,
        side,
        trade_id: required(t.i, "i")?.to_owned(),
    };
    Ok((symbol, trade, ms_to_us(required(t.time, "T")?)))
}

/// A `tickers` push. Fields a delta leaves out keep their last value
/// (`last`); spot sends whole snapshots, so normally nothing is missing.
pub(crate) fn ticker(o: &BybitObject<'_>, last: Option<&Ticker>) -> Result<Ticker, FrameError> {
    let field = |text: Option<&str>,
                 name: &'static str,
                 prev: Option<&Decimal>|
     -> Result<Decimal, FrameError> {
        match (text, prev) {
            (Some(t), _) => decimal(name, t),
            (None, Some(p)) => Ok(*p),
            (None, None) => Err(FrameError::Field(name)),
        }
    };
    Ok(Ticker {
        last: field(o.last_price, "lastPrice", last.map(|t| &t.last))?,
        open_24h: field(o.prev_price_24h, "prevPrice24h", last.map(|t| &t.open_24h))?,
        high_24h: field(o.high_price_24h, "highPrice24h", last.map(|t| &t.high_24h))?,
        low_24h: field(o.low_price_24h, "lowPrice24h", last.map(|t| &t.low_24h))?,
        volume_24h: field(o.volume_24h, "volume24h", last.map(|t| &t.volume_24h))?,
    })
}

/// Book levels `[price, size]` in wire order (size zero removes).
pub(crate) fn levels(
    field: &'static str,
    wire: Option<&[(&str, &str)]>,
) -> Result<Vec<Level>, FrameError> {
    // A delta may leave out a side that did not change.
    let Some(wire) = wire else {
        return Ok(Vec::new());
    };
    wire.iter()
        .map(|&(p, s)| Ok((decimal(field, p)?, decimal(field, s)?)))
        .collect()
}

/// The symbols of the topics a refusal names (`Invalid topic
/// :[orderbook.50.XYZUSDT]`): the last part of every dotted word.
pub(crate) fn named_symbols(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
        .filter(|w| w.contains('.') && !w.ends_with('.'))
        .filter_map(|w| w.rsplit_once('.').map(|(_, s)| s))
        .collect()
}
