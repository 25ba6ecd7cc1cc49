//! OKX wire → canonical: pure functions from decoded [`OkxData`] items to
//! canonical values, decimals parsed from the wire text with their scale.

use rust_decimal::Decimal;
use tickwire_model::{Level, Quote, Side, Ticker, Trade};

use super::messages::{OkxData, OkxLevel};
use crate::adapter::{FrameError, ms_to_us};

/// A required text field.
pub(crate) fn field<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, FrameError> {
    value.ok_or(FrameError::Field(name))
}

/// A required decimal field, exactly as written.
pub(crate) fn decimal(value: Option<&str>, name: &'static str) -> Result<Decimal, FrameError> {
    crate::adapter::decimal(name, field(value, name)?)
}

/// `ts`: a string of epoch milliseconds, to µs.
pub(crate) fn ts(value: Option<&str>) -> Result<u64, FrameError> {
    let text = field(value, "ts")?;
    text.parse::<u64>()
        .map(ms_to_us)
        .map_err(|_| FrameError::Time {
            field: "ts",
            text: text.to_owned(),
        })
}

/// A `trades` item; `side` is the taker's side, the canonical aggressor.
pub(crate) fn trade(d: &OkxData<'_>) -> Result<Trade, FrameError> {
    let side = match field(d.side, "side")? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(FrameError::Field("side")),
    };
    Ok(Trade {
        price: decimal(d.px, "px")?,
        size: decimal(d.sz, "sz")?,
        side,
        trade_id: field(d.trade_id, "tradeId")?.to_owned(),
    })
}

/// The best bid and offer of a `tickers` item.
pub(crate) fn quote(d: &OkxData<'_>) -> Result<Quote, FrameError> {
    Ok(Quote {
        bid: decimal(d.bid_px, "bidPx")?,
        bid_size: decimal(d.bid_sz, "bidSz")?,
        ask: decimal(d.ask_px, "askPx")?,
        ask_size: decimal(d.ask_sz, "askSz")?,
    })
}

/// The 24 h statistics of a `tickers` item (`vol24h` is in the base
/// currency on spot).
pub(crate) fn ticker(d: &OkxData<'_>) -> Result<Ticker, FrameError> {
    Ok(Ticker {
        last: decimal(d.last, "last")?,
        open_24h: decimal(d.open_24h, "open24h")?,
        high_24h: decimal(d.high_24h, "high24h")?,
        low_24h: decimal(d.low_24h, "low24h")?,
        volume_24h: decimal(d.vol_24h, "vol24h")?,
    })
}

/// One side of a `books` item, in wire order.
pub(crate) fn levels(
    levels: Option<&[OkxLevel<'_>]>,
    price: &'static str,
    size: &'static str,
) -> Result<Vec<Level>, FrameError> {
    levels
        .unwrap_or_default()
        .iter()
        .map(|l| Ok((decimal(Some(l.price), price)?, decimal(Some(l.size), size)?)))
        .collect()
}

/// The instrument named in an OKX error text, e.g. `XYZ-USDT` in
/// `Wrong URL or channel:books,instId:XYZ-USDT doesn't exist` (OKX errors
/// carry no `arg`, and not every one names the instrument).
pub(crate) fn inst_id_in(msg: &str) -> Option<&str> {
    let start = msg.find("instId:")? + "instId:".len();
    let rest = &msg[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_ids_in_error_texts() {
        let cases = [
            (
                "Wrong URL or channel:books,instId:XYZ-USDT doesn't exist",
                Some("XYZ-USDT"),
            ),
            ("channel:tickers,instId:BTC-USDT", Some("BTC-USDT")),
            ("Invalid request: {\"op\": \"subscribe\"}", None),
            ("instId: doesn't exist", None),
        ];
        for (msg, want) in cases {
            assert_eq!(inst_id_in(msg), want, "{msg}");
        }
    }

    #[test]
    fn ms_strings_become_us() {
        assert_eq!(ts(Some("1597026383085")), Ok(1_597_026_383_085_000));
        assert_eq!(
            ts(Some("1597026383.085")),
            Err(FrameError::Time {
                field: "ts",
                text: "1597026383.085".into()
            })
        );
        assert_eq!(ts(None), Err(FrameError::Field("ts")));
    }
}
