//! The wire encoding: updates and server messages written straight into
//! bytes, in the exact field order of the v1 protocol, with no intermediate
//! JSON tree.

use std::io::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use rust_decimal::Decimal;

use crate::{Epoch, Event, Payload};

/// A small JSON writer over a growable buffer, for messages whose shape is
/// fixed by the protocol.
pub struct JsonWriter {
    buf: BytesMut,
}

impl JsonWriter {
    /// A writer with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Appends raw, already valid JSON text (punctuation, keys, literals).
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.buf.put_slice(text.as_bytes());
        self
    }

    /// Appends a JSON string, escaping what JSON requires.
    pub fn string(&mut self, text: &str) -> &mut Self {
        self.buf.put_u8(b'"');
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0..=0x1f => None,
                _ => continue,
            };
            self.buf.put_slice(&bytes[start..i]);
            match escape {
                Some(e) => self.buf.put_slice(e),
                None => {
                    let _ = write!((&mut self.buf).writer(), "\\u{b:04x}");
                }
            }
            start = i + 1;
        }
        self.buf.put_slice(&bytes[start..]);
        self.buf.put_u8(b'"');
        self
    }

    /// Appends an unsigned integer.
    pub fn uint(&mut self, n: u64) -> &mut Self {
        self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
        self
    }

    /// Appends a decimal as a JSON string, keeping its scale.
    pub fn decimal(&mut self, d: &Decimal) -> &mut Self {
        self.buf.put_u8(b'"');
        // Writing into a BytesMut cannot fail.
        let _ = write!((&mut self.buf).writer(), "{d}");
        self.buf.put_u8(b'"');
        self
    }

    /// Appends `"key":` (keys are protocol constants, never escaped).
    pub fn key(&mut self, key: &str) -> &mut Self {
        self.buf.put_u8(b'"');
        self.buf.put_slice(key.as_bytes());
        self.buf.put_slice(b"\":");
        self
    }

    /// Finishes, handing out the bytes.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Encodes a sequenced event in the v1 update format.
pub(crate) fn encode_update(event: &Event, seq: u64, epoch: &Epoch) -> Bytes {
    let capacity = match &event.payload {
        Payload::Book(b) => 160 + 40 * (b.bids.len() + b.asks.len()),
        _ => 224,
    };
    let mut w = JsonWriter::with_capacity(capacity);
    w.raw("{\"type\":\"")
        .raw(event.payload.channel().as_str())
        .raw("\",");
    w.key("symbol").string(event.instrument.as_str()).raw(",");
    w.key("seq").uint(seq).raw(",");
    w.key("epoch").string(epoch.as_str()).raw(",");
    match &event.payload {
        Payload::Trade(t) => {
            w.key("price").decimal(&t.price).raw(",");
            w.key("size").decimal(&t.size).raw(",");
            w.key("side").string(t.side.as_str()).raw(",");
            w.key("trade_id").string(&t.trade_id).raw(",");
        }
        Payload::Quote(q) => {
            w.key("bid").decimal(&q.bid).raw(",");
            w.key("bid_size").decimal(&q.bid_size).raw(",");
            w.key("ask").decimal(&q.ask).raw(",");
            w.key("ask_size").decimal(&q.ask_size).raw(",");
        }
        Payload::Ticker(t) => {
            w.key("last").decimal(&t.last).raw(",");
            w.key("open_24h").decimal(&t.open_24h).raw(",");
            w.key("high_24h").decimal(&t.high_24h).raw(",");
            w.key("low_24h").decimal(&t.low_24h).raw(",");
            w.key("volume_24h").decimal(&t.volume_24h).raw(",");
        }
        Payload::Book(b) => {
            for (name, side) in [("bids", &b.bids), ("asks", &b.asks)] {
                w.key(name).raw("[");
                for (i, (price, size)) in side.iter().enumerate() {
                    if i > 0 {
                        w.raw(",");
                    }
                    w.raw("[").decimal(price).raw(",").decimal(size).raw("]");
                }
                w.raw("],");
            }
        }
    }
    w.key("ts").uint(event.ts).raw(",");
    w.key("rx").uint(event.rx).raw("}");
    w.finish()
}

/// The same object with `"snapshot":true` added as its last field.
pub(crate) fn with_snapshot_flag(bytes: &Bytes) -> Bytes {
    const FLAG: &[u8] = b",\"snapshot\":true}";
    let body = bytes.strip_suffix(b"}").unwrap_or(bytes);
    let mut out = BytesMut::with_capacity(body.len() + FLAG.len());
    out.put_slice(body);
    out.put_slice(FLAG);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BookTop, Instrument, Quote, Side, Ticker, Trade, Update, parse_decimal};

    fn d(s: &str) -> Decimal {
        parse_decimal(s).expect("valid decimal")
    }

    fn event(symbol: &str, payload: Payload) -> Event {
        Event {
            instrument: Instrument::parse(symbol).expect("valid"),
            ts: 1764000000123456,
            rx: 1764000000124001,
            payload,
        }
    }

    fn text(u: &Update) -> &str {
        std::str::from_utf8(u.bytes()).expect("utf8")
    }

    #[test]
    fn golden_updates_match_the_protocol_text() {
        let epoch = Epoch::new("k3x9").expect("valid");
        let cases = [
            (
                event(
                    "coinbase:BTC-USD",
                    Payload::Quote(Quote {
                        bid: d("64000.12"),
                        bid_size: d("0.51"),
                        ask: d("64000.13"),
                        ask_size: d("1.2"),
                    }),
                ),
                1042,
                r#"{"type":"quote","symbol":"coinbase:BTC-USD","seq":1042,"epoch":"k3x9","bid":"64000.12","bid_size":"0.51","ask":"64000.13","ask_size":"1.2","ts":1764000000123456,"rx":1764000000124001}"#,
            ),
            (
                event(
                    "binance:BTC-USDT",
                    Payload::Trade(Trade {
                        price: d("64000.10"),
                        size: d("0.012"),
                        side: Side::Buy,
                        trade_id: "3141592".into(),
                    }),
                ),
                77,
                r#"{"type":"trade","symbol":"binance:BTC-USDT","seq":77,"epoch":"k3x9","price":"64000.10","size":"0.012","side":"buy","trade_id":"3141592","ts":1764000000123456,"rx":1764000000124001}"#,
            ),
            (
                event(
                    "kraken:BTC-USD",
                    Payload::Ticker(Ticker {
                        last: d("64001.0"),
                        open_24h: d("63000.0"),
                        high_24h: d("64500.0"),
                        low_24h: d("62800.5"),
                        volume_24h: d("1234.5678"),
                    }),
                ),
                9,
                r#"{"type":"ticker","symbol":"kraken:BTC-USD","seq":9,"epoch":"k3x9","last":"64001.0","open_24h":"63000.0","high_24h":"64500.0","low_24h":"62800.5","volume_24h":"1234.5678","ts":1764000000123456,"rx":1764000000124001}"#,
            ),
            (
                event(
                    "kraken:BTC-USD",
                    Payload::Book(BookTop {
                        bids: vec![(d("64000.1"), d("0.5")), (d("64000.0"), d("2"))],
                        asks: vec![(d("64000.2"), d("1.1"))],
                    }),
                ),
                310,
                r#"{"type":"book","symbol":"kraken:BTC-USD","seq":310,"epoch":"k3x9","bids":[["64000.1","0.5"],["64000.0","2"]],"asks":[["64000.2","1.1"]],"ts":1764000000123456,"rx":1764000000124001}"#,
            ),
            (
                event("kraken:BTC-USD", Payload::Book(BookTop::default())),
                1,
                r#"{"type":"book","symbol":"kraken:BTC-USD","seq":1,"epoch":"k3x9","bids":[],"asks":[],"ts":1764000000123456,"rx":1764000000124001}"#,
            ),
        ];
        for (ev, seq, expected) in cases {
            let u = Update::encode(&ev, seq, &epoch);
            assert_eq!(text(&u), expected);
            assert!(serde_json::from_slice::<serde_json::Value>(u.bytes()).is_ok());
        }
    }

    #[test]
    fn snapshot_flag_is_the_last_field() {
        let epoch = Epoch::new("e1").expect("valid");
        let ev = event(
            "coinbase:ETH-USD",
            Payload::Trade(Trade {
                price: d("1"),
                size: d("2"),
                side: Side::Sell,
                trade_id: "x".into(),
            }),
        );
        let u = Update::encode(&ev, 5, &epoch);
        let snap = u.snapshot_bytes();
        let v: serde_json::Value = serde_json::from_slice(&snap).expect("json");
        assert_eq!(v["snapshot"], serde_json::Value::Bool(true));
        assert_eq!(v["seq"], 5);
        assert!(snap.ends_with(b",\"snapshot\":true}"));
    }

    #[test]
    fn strings_are_escaped() {
        let mut w = JsonWriter::with_capacity(8);
        w.string("a\"b\\c\nd\u{1}é");
        let out = w.finish();
        assert_eq!(&out[..], "\"a\\\"b\\\\c\\nd\\u0001é\"".as_bytes());
        let back: String = serde_json::from_slice(&out).expect("json");
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn decimal_scale_survives_encoding() {
        let epoch = Epoch::new("e").expect("valid");
        let ev = event(
            "kraken:ETH-EUR",
            Payload::Quote(Quote {
                bid: d("0.00100000"),
                bid_size: d("10.000"),
                ask: d("0.00100001"),
                ask_size: d("0"),
            }),
        );
        let u = Update::encode(&ev, 1, &epoch);
        let v: serde_json::Value = serde_json::from_slice(u.bytes()).expect("json");
        assert_eq!(v["bid"], "0.00100000");
        assert_eq!(v["bid_size"], "10.000");
        assert_eq!(v["ask_size"], "0");
    }
}
