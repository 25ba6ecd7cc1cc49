//! The Kraken side of the wire: the fake venue (plays a capture as a live
//! Kraken v2 session) and the capture generator ([`generate`]).

use std::collections::HashMap;

use serde_json::Value;
use tickwire_model::parse_decimal;

use crate::book::{Book, kraken_checksum};
use crate::json;
use crate::venue::FakeVenue;

pub use super::generate::generate;

/// Levels per side the fake keeps: the capture is recorded at depth 10.
const FAKE_DEPTH: usize = 10;

/// A fake Kraken session: answers subscribe/unsubscribe with one reply per
/// symbol, refuses symbols the tape does not carry, answers pings, and
/// sends a fresh book snapshot (with a correct checksum) from its own
/// books on every book subscription.
pub struct KrakenFake {
    natives: Vec<String>,
    books: HashMap<String, Book>,
    /// The tape's newest ticker message per symbol, re-sent as the
    /// snapshot a ticker subscription starts with.
    tickers: HashMap<String, String>,
    /// The venue time of the newest tape frame (RFC 3339), for `time_in`
    /// and `time_out`: the fake has no clock of its own.
    now: String,
}

impl KrakenFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
            books: HashMap::new(),
            tickers: HashMap::new(),
            now: "2026-11-02T00:00:00.000000Z".into(),
        }
    }

    /// The snapshot frame of one symbol's current book.
    fn snapshot(&self, symbol: &str) -> String {
        let empty = Book::new();
        let book = self.books.get(symbol).unwrap_or(&empty);
        book_frame(
            "snapshot",
            symbol,
            book.bids(),
            book.asks(),
            kraken_checksum(book),
            &self.now,
        )
    }

    fn reply(&self, method: &str, req_id: &Value, result: Value) -> String {
        let mut v = serde_json::json!({
            "method": method,
            "result": result,
            "success": true,
            "time_in": self.now,
            "time_out": self.now,
        });
        if !req_id.is_null() {
            v["req_id"] = req_id.clone();
        }
        v.to_string()
    }

    fn refusal(&self, method: &str, req_id: &Value, symbol: &str) -> String {
        // Kraken's wording for an unknown pair [memory].
        let mut v = serde_json::json!({
            "error": format!("Currency pair not supported {symbol}"),
            "method": method,
            "success": false,
            "symbol": symbol,
            "time_in": self.now,
            "time_out": self.now,
        });
        if !req_id.is_null() {
            v["req_id"] = req_id.clone();
        }
        v.to_string()
    }
}

/// A `book` frame with these levels (written at their own scale, as JSON
/// numbers, the way Kraken writes them).
pub(crate) fn book_frame(
    kind: &str,
    symbol: &str,
    bids: impl Iterator<Item = (rust_decimal::Decimal, rust_decimal::Decimal)>,
    asks: impl Iterator<Item = (rust_decimal::Decimal, rust_decimal::Decimal)>,
    checksum: u32,
    timestamp: &str,
) -> String {
    let side =
        |levels: &mut dyn Iterator<Item = (rust_decimal::Decimal, rust_decimal::Decimal)>| {
            let items: Vec<String> = levels
                .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
                .collect();
            items.join(",")
        };
    let (mut bids, mut asks) = (bids, asks);
    format!(
        r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"{timestamp}"}}]}}"#,
        side(&mut bids),
        side(&mut asks),
    )
}

/// A frame parsed with its numbers as exact text.
fn quoted(frame: &str) -> Option<Value> {
    let mut buf = Vec::new();
    json::quote_numbers(frame.as_bytes(), &mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

fn apply_side(book: &mut Book, levels: Option<&Value>, bid: bool) {
    let Some(levels) = levels.and_then(Value::as_array) else {
        return;
    };
    for l in levels {
        let (Some(p), Some(q)) = (l["price"].as_str(), l["qty"].as_str()) else {
            continue;
        };
        let (Ok(p), Ok(q)) = (parse_decimal(p), parse_decimal(q)) else {
            continue;
        };
        if bid {
            book.apply_bid(p, q);
        } else {
            book.apply_ask(p, q);
        }
    }
}

impl FakeVenue for KrakenFake {
    fn greeting(&mut self) -> Vec<String> {
        vec![status_frame()]
    }

    fn on_client(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            // Kraken answers unparsable requests with an error [memory].
            let v = serde_json::json!({
                "error": "Malformed request",
                "success": false,
                "time_in": self.now,
                "time_out": self.now,
            });
            out.push(v.to_string());
            return;
        };
        let req_id = v.get("req_id").cloned().unwrap_or(Value::Null);
        let method = v["method"].as_str().unwrap_or_default();
        match method {
            "ping" => {
                let mut pong = serde_json::json!({"method": "pong", "time_in": self.now, "time_out": self.now});
                if !req_id.is_null() {
                    pong["req_id"] = req_id;
                }
                out.push(pong.to_string());
            }
            "subscribe" | "unsubscribe" => {
                let params = &v["params"];
                let channel = params["channel"].as_str().unwrap_or_default().to_owned();
                let symbols: Vec<String> = params["symbol"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for symbol in symbols {
                    if !self.natives.contains(&symbol) {
                        out.push(self.refusal(method, &req_id, &symbol));
                        continue;
                    }
                    let mut result = serde_json::json!({"channel": channel, "symbol": symbol});
                    match channel.as_str() {
                        "book" => {
                            result["depth"] = params.get("depth").cloned().unwrap_or(10.into());
                            if method == "subscribe" {
                                result["snapshot"] = true.into();
                            }
                        }
                        "ticker" if method == "subscribe" => {
                            result["event_trigger"] = params
                                .get("event_trigger")
                                .cloned()
                                .unwrap_or("trades".into());
                            result["snapshot"] = true.into();
                        }
                        "trade" if method == "subscribe" => {
                            result["snapshot"] =
                                params.get("snapshot").cloned().unwrap_or(true.into());
                        }
                        _ => {}
                    }
                    out.push(self.reply(method, &req_id, result));
                    if method == "subscribe" {
                        match channel.as_str() {
                            "book" => out.push(self.snapshot(&symbol)),
                            "ticker" => {
                                if let Some(t) = self.tickers.get(&symbol) {
                                    out.push(t.replacen(
                                        r#""type":"update""#,
                                        r#""type":"snapshot""#,
                                        1,
                                    ));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {
                let v = serde_json::json!({
                    "error": format!("Unsupported method {method}"),
                    "success": false,
                    "time_in": self.now,
                    "time_out": self.now,
                });
                out.push(v.to_string());
            }
        }
    }

    fn observe(&mut self, frame: &str) -> bool {
        let Some(v) = quoted(frame) else {
            return true;
        };
        if v.get("method").is_some() {
            // The tape's own replies: the fake makes its own per client.
            return false;
        }
        let channel = v["channel"].as_str().unwrap_or_default();
        let kind = v["type"].as_str().unwrap_or_default();
        let Some(items) = v["data"].as_array() else {
            return channel != "status";
        };
        for d in items {
            if let Some(ts) = d["timestamp"].as_str() {
                ts.clone_into(&mut self.now);
            }
            let Some(symbol) = d["symbol"].as_str() else {
                continue;
            };
            match channel {
                "book" => {
                    let book = self.books.entry(symbol.to_owned()).or_default();
                    if kind == "snapshot" {
                        book.clear();
                    }
                    apply_side(book, d.get("bids"), true);
                    apply_side(book, d.get("asks"), false);
                    book.truncate(FAKE_DEPTH);
                }
                "ticker" => {
                    let update = frame.replacen(r#""type":"snapshot""#, r#""type":"update""#, 1);
                    self.tickers.insert(symbol.to_owned(), update);
                }
                _ => {}
            }
        }
        match channel {
            "status" => false,
            "book" | "ticker" => kind != "snapshot",
            _ => true,
        }
    }

    fn rest(&mut self, _path_and_query: &str) -> Option<String> {
        None
    }
}

/// What Kraken sends as soon as a client connects.
pub(crate) fn status_frame() -> String {
    r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":14104571297034553516,"system":"online","version":"2.0.10"}]}"#.into()
}
