//! The Binance side of the wire: the fake venue (live `SUBSCRIBE`
//! replies, the REST depth snapshot served from the books the tape
//! builds) and the capture generator ([`generate`]).

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use tickwire_model::parse_decimal;

use crate::book::Book;
use crate::venue::FakeVenue;

pub use super::generate::generate;

/// Levels a REST depth request gets when it names no `limit` (Binance's
/// default).
const DEFAULT_LIMIT: usize = 100;

/// Largest `limit` Binance accepts on `/api/v3/depth`.
const MAX_LIMIT: usize = 5000;

/// One symbol's book as the tape has built it.
#[derive(Debug, Default)]
struct FakeBook {
    book: Book,
    /// `u` of the last diff applied: the snapshot's `lastUpdateId`.
    last_update_id: u64,
}

/// A fake Binance session: answers live requests, follows the tape's diffs
/// to keep a book per symbol, and serves REST depth snapshots from them.
pub struct BinanceFake {
    /// Upper-case venue names the fake lists.
    natives: Vec<String>,
    books: HashMap<String, FakeBook>,
    /// Streams subscribed, for `LIST_SUBSCRIPTIONS`.
    streams: BTreeSet<String>,
}

impl BinanceFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.iter().map(|n| n.to_ascii_uppercase()).collect(),
            books: HashMap::new(),
            streams: BTreeSet::new(),
        }
    }

    fn lists(&self, symbol: &str) -> bool {
        self.natives.iter().any(|n| n.eq_ignore_ascii_case(symbol))
    }

    /// Applies a `depthUpdate` of the tape to the fake's book.
    fn apply_depth(&mut self, payload: &Value) {
        let (Some(symbol), Some(u)) = (payload["s"].as_str(), payload["u"].as_u64()) else {
            return;
        };
        let entry = self.books.entry(symbol.to_ascii_uppercase()).or_default();
        let levels = |side: &Value| -> Vec<(String, String)> {
            side.as_array()
                .map(|levels| {
                    levels
                        .iter()
                        .filter_map(|l| {
                            Some((l[0].as_str()?.to_owned(), l[1].as_str()?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for (price, qty) in levels(&payload["b"]) {
            if let (Ok(p), Ok(q)) = (parse_decimal(&price), parse_decimal(&qty)) {
                entry.book.apply_bid(p, q);
            }
        }
        for (price, qty) in levels(&payload["a"]) {
            if let (Ok(p), Ok(q)) = (parse_decimal(&price), parse_decimal(&qty)) {
                entry.book.apply_ask(p, q);
            }
        }
        entry.last_update_id = u;
    }

    // Written by hand: serde_json's maps sort keys, Binance writes
    // `result` before `id` (and `code`, `msg`, `id`).
    fn reply(id: &Value, result: Value) -> String {
        format!(r#"{{"result":{result},"id":{id}}}"#)
    }

    // [memory] The error shape `{"code":2,"msg":"...","id":N}` is the
    // documented one; the exact words for an unknown symbol ("Invalid
    // symbol.") are from memory, not re-read in the docs.
    fn error(id: &Value, code: i64, msg: &str) -> String {
        format!(r#"{{"code":{code},"msg":{},"id":{id}}}"#, Value::from(msg))
    }
}

impl FakeVenue for BinanceFake {
    fn greeting(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_client(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            // [memory] code 3 for a request that is not JSON; no id to echo.
            out.push(Self::error(&Value::Null, 3, "Invalid JSON"));
            return;
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let params: Vec<&str> = request["params"]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match request["method"].as_str() {
            Some("SUBSCRIBE") => {
                let bad = params.iter().any(|stream| {
                    let symbol = stream.split('@').next().unwrap_or_default();
                    !self.lists(symbol)
                });
                if bad || params.is_empty() {
                    out.push(Self::error(&id, 2, "Invalid symbol."));
                    return;
                }
                self.streams.extend(params.iter().map(|s| s.to_string()));
                out.push(Self::reply(&id, Value::Null));
            }
            Some("UNSUBSCRIBE") => {
                for stream in &params {
                    self.streams.remove(*stream);
                }
                out.push(Self::reply(&id, Value::Null));
            }
            Some("LIST_SUBSCRIPTIONS") => {
                let list: Vec<Value> = self.streams.iter().map(|s| json!(s)).collect();
                out.push(Self::reply(&id, Value::Array(list)));
            }
            Some("SET_PROPERTY") => out.push(Self::reply(&id, Value::Null)),
            Some("GET_PROPERTY") => out.push(Self::reply(&id, Value::Bool(false))),
            _ => out.push(Self::error(&id, 2, "Invalid request: unknown method")),
        }
    }

    fn observe(&mut self, frame: &str) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            return true;
        };
        // Replies and REST bodies belong to the recorded client: the fake
        // answers its own clients itself.
        if value.get("result").is_some()
            || value.get("code").is_some()
            || value.get("lastUpdateId").is_some()
        {
            return false;
        }
        let payload = value.get("data").unwrap_or(&value);
        if payload["e"].as_str() == Some("depthUpdate") {
            self.apply_depth(payload);
        }
        true
    }

    fn shutdown_notice(&mut self, now_ms: u64) -> Option<String> {
        // The stream endpoint's form was not shown in the docs; the adapter
        // accepts any object with `e == "serverShutdown"`.
        Some(format!(r#"{{"e":"serverShutdown","E":{now_ms}}}"#))
    }

    fn rest(&mut self, path_and_query: &str) -> Option<String> {
        let query = path_and_query.strip_prefix("/api/v3/depth?")?;
        let mut symbol = None;
        let mut limit = DEFAULT_LIMIT;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("symbol", s)) => symbol = Some(s),
                Some(("limit", l)) => limit = l.parse().ok()?,
                _ => {}
            }
        }
        let symbol = symbol?.to_ascii_uppercase();
        if !self.lists(&symbol) {
            return None;
        }
        let limit = limit.clamp(1, MAX_LIMIT);
        let empty = FakeBook::default();
        let book = self.books.get(&symbol).unwrap_or(&empty);
        // Decimals keep the tape's scale, so trailing zeros come back.
        let mut body = format!(r#"{{"lastUpdateId":{},"bids":["#, book.last_update_id);
        write_levels(&mut body, book.book.bids().take(limit));
        body.push_str(r#"],"asks":["#);
        write_levels(&mut body, book.book.asks().take(limit));
        body.push_str("]}");
        Some(body)
    }
}

/// Appends `["price","qty"]` pairs, comma-separated.
fn write_levels(out: &mut String, levels: impl Iterator<Item = tickwire_model::Level>) {
    for (i, (price, qty)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"["{price}","{qty}"]"#));
    }
}
