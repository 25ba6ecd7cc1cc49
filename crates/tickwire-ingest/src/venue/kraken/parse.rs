//! Kraken wire → canonical: pure functions from decoded [`KrakenData`]
//! items to canonical values. Prices and sizes come as their exact wire
//! text (numbers were quoted before decoding) and are parsed with
//! [`parse_decimal`], keeping the scale.

use rust_decimal::{Decimal, RoundingStrategy};
use tickwire_model::{Level, Quote, Side, Ticker, Trade};

use super::messages::{KrakenData, KrakenLevel};
use crate::adapter::{FrameError, parse_rfc3339_us};

/// A required text field.
pub(crate) fn field<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, FrameError> {
    value.ok_or(FrameError::Field(name))
}

/// A required decimal field, exactly as written.
pub(crate) fn decimal(value: Option<&str>, name: &'static str) -> Result<Decimal, FrameError> {
    crate::adapter::decimal(name, field(value, name)?)
}

/// The venue time of an item: its `timestamp` when present, else the
/// receive time (older frames and some channels carry none).
pub(crate) fn time_or(value: Option<&str>, rx: u64) -> Result<u64, FrameError> {
    match value {
        None => Ok(rx),
        Some(text) => parse_rfc3339_us(text).ok_or_else(|| FrameError::Time {
            field: "timestamp",
            text: text.to_owned(),
        }),
    }
}

/// A `trade` item. `side` is the taker's side, which is the canonical
/// aggressor directly.
pub(crate) fn trade(d: &KrakenData<'_>) -> Result<Trade, FrameError> {
    let side = match field(d.side, "side")? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(FrameError::Field("side")),
    };
    let trade_id = field(d.trade_id, "trade_id")?;
    Ok(Trade {
        price: decimal(d.price, "price")?,
        size: decimal(d.qty, "qty")?,
        side,
        trade_id: trade_id.to_owned(),
    })
}

/// The best bid and offer of a `ticker` item.
pub(crate) fn quote(d: &KrakenData<'_>) -> Result<Quote, FrameError> {
    Ok(Quote {
        bid: decimal(d.bid, "bid")?,
        bid_size: decimal(d.bid_qty, "bid_qty")?,
        ask: decimal(d.ask, "ask")?,
        ask_size: decimal(d.ask_qty, "ask_qty")?,
    })
}

/// The 24 h statistics of a `ticker` item. Kraken sends no open price, only
/// `change` (= last − open), so `open_24h` is derived: see [`open_24h`].
pub(crate) fn ticker(d: &KrakenData<'_>) -> Result<Ticker, FrameError> {
    let last = decimal(d.last, "last")?;
    let change = decimal(d.change, "change")?;
    Ok(Ticker {
        open_24h: open_24h(last, change),
        last,
        high_24h: decimal(d.high, "high")?,
        low_24h: decimal(d.low, "low")?,
        volume_24h: decimal(d.volume, "volume")?,
    })
}

/// `last − change`, computed exactly in `Decimal` and written at the
/// scale of `last` (the pair's price precision), so `70213.5 − 812.1`
/// is `69401.4` and not `69401.40`. A `change` with more decimals than the
/// price (which the pair's tick cannot produce) is rounded half away from
/// zero at that scale.
pub(crate) fn open_24h(last: Decimal, change: Decimal) -> Decimal {
    let scale = last.scale();
    let mut open =
        (last - change).round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    open.rescale(scale);
    open
}

/// The levels of one side of a book item, in wire order.
pub(crate) fn levels(
    levels: Option<&[KrakenLevel<'_>]>,
    price: &'static str,
    qty: &'static str,
) -> Result<Vec<Level>, FrameError> {
    levels
        .unwrap_or_default()
        .iter()
        .map(|l| Ok((decimal(Some(l.price), price)?, decimal(Some(l.qty), qty)?)))
        .collect()
}

/// A book item's `checksum` (an unsigned 32-bit CRC).
pub(crate) fn checksum(value: Option<&str>) -> Result<u32, FrameError> {
    field(value, "checksum")?
        .parse()
        .map_err(|_| FrameError::Field("checksum"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        tickwire_model::parse_decimal(s).expect("decimal")
    }

    #[test]
    fn open_is_last_minus_change_at_the_price_scale() {
        let cases = [
            ("70213.5", "812.1", "69401.4"),
            ("70213.5", "-0.5", "70214.0"),
            ("3128.05", "12", "3116.05"),
            ("3128.05", "-1.1", "3129.15"),
            ("0.5117", "0.00005", "0.5117"),
            ("100.0", "100.0", "0.0"),
        ];
        for (last, change, open) in cases {
            let got = open_24h(d(last), d(change));
            assert_eq!(got.to_string(), open, "{last} - {change}");
            assert_eq!(got.scale(), d(last).scale());
        }
    }
}
