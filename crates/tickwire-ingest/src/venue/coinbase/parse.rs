//! Coinbase wire → canonical: pure functions over decoded messages.

use tickwire_model::{Level, Side, Ticker, Trade};

use super::messages::CoinbaseMessage;
use crate::adapter::{FrameError, parse_rfc3339_us};

/// A required field, or [`FrameError::Field`] naming it.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, FrameError> {
    value.ok_or(FrameError::Field(field))
}

/// An exact decimal from the wire text, keeping its scale.
pub(crate) use crate::adapter::decimal;

/// µs since the epoch of a `time` field.
pub(crate) fn time_us(field: &'static str, text: &str) -> Result<u64, FrameError> {
    parse_rfc3339_us(text).ok_or_else(|| FrameError::Time {
        field,
        text: text.to_owned(),
    })
}

/// The event time of a message that should carry `time`: `rx` when it does
/// not (snapshots before 2023, the first `ticker` after subscribing).
pub(crate) fn time_or(msg: &CoinbaseMessage<'_>, rx: u64) -> Result<u64, FrameError> {
    msg.time.map_or(Ok(rx), |t| time_us("time", t))
}

/// The aggressor of a `match`: Coinbase names the maker's side, so a
/// `sell` maker means the taker bought.
pub(crate) fn aggressor_from_maker(side: &str) -> Result<Side, FrameError> {
    match side {
        "sell" => Ok(Side::Buy),
        "buy" => Ok(Side::Sell),
        _ => Err(FrameError::Field("side")),
    }
}

/// A `match` or `last_match`: the trade and its venue time.
pub(crate) fn trade(msg: &CoinbaseMessage<'_>) -> Result<(Trade, u64), FrameError> {
    let trade_id = required(msg.trade_id, "trade_id")?;
    let price = decimal("price", required(msg.price, "price")?)?;
    let size = decimal("size", required(msg.size, "size")?)?;
    let side = aggressor_from_maker(required(msg.side, "side")?)?;
    let ts = time_us("time", required(msg.time, "time")?)?;
    let trade = Trade {
        price,
        size,
        side,
        trade_id: trade_id.to_string(),
    };
    Ok((trade, ts))
}

/// A `ticker`: last price and 24 h statistics (its BBO is ignored: it only
/// moves on trades, the quote comes from the book).
pub(crate) fn ticker(msg: &CoinbaseMessage<'_>, rx: u64) -> Result<(Ticker, u64), FrameError> {
    let ticker = Ticker {
        last: decimal("price", required(msg.price, "price")?)?,
        open_24h: decimal("open_24h", required(msg.open_24h, "open_24h")?)?,
        high_24h: decimal("high_24h", required(msg.high_24h, "high_24h")?)?,
        low_24h: decimal("low_24h", required(msg.low_24h, "low_24h")?)?,
        volume_24h: decimal("volume_24h", required(msg.volume_24h, "volume_24h")?)?,
    };
    Ok((ticker, time_or(msg, rx)?))
}

/// Snapshot levels, `[price, size]`, in wire order.
pub(crate) fn levels(
    field: &'static str,
    wire: &[(&str, &str)],
    out: &mut Vec<Level>,
) -> Result<(), FrameError> {
    out.reserve(wire.len());
    for &(price, size) in wire {
        out.push((decimal(field, price)?, decimal(field, size)?));
    }
    Ok(())
}

/// Which side of the book an `l2update` change is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BookSide {
    /// `buy`.
    Bid,
    /// `sell`.
    Ask,
}

/// `l2update` changes, `[side, price, size]`, in wire order.
pub(crate) fn changes(
    wire: &[(&str, &str, &str)],
    out: &mut Vec<(BookSide, Level)>,
) -> Result<(), FrameError> {
    out.reserve(wire.len());
    for &(side, price, size) in wire {
        let side = match side {
            "buy" => BookSide::Bid,
            "sell" => BookSide::Ask,
            _ => return Err(FrameError::Field("changes")),
        };
        out.push((
            side,
            (decimal("changes", price)?, decimal("changes", size)?),
        ));
    }
    Ok(())
}

/// The products of our feed that a free-text venue message names, as whole
/// words (`BTC-USD` is not named by `BTC-USDC`).
pub(crate) fn named_products<'n>(
    text: &str,
    natives: impl Iterator<Item = &'n str>,
) -> Vec<&'n str> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    natives.filter(|n| words.contains(n)).collect()
}
