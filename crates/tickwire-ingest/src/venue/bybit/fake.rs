//! The Bybit side of the wire: the fake venue and the capture generator.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use tickwire_model::parse_decimal;

use crate::book::Book;
use crate::venue::FakeVenue;

pub use super::generate::generate;

/// The `conn_id` the fake puts in its replies.
const CONN_ID: &str = "7a3c9e1f-2b4d-4e6a-8c0b-1d2e3f4a5b6c";

/// Topic prefixes the fake serves.
const TOPICS: [&str; 4] = ["publicTrade", "orderbook.1", "orderbook.50", "tickers"];

/// One book the fake keeps from the tape: levels, last `u`, last `seq`.
#[derive(Default)]
struct Kept {
    book: Book,
    u: u64,
    seq: u64,
}

/// A fake Bybit v5 public spot session: one `op` reply per request
/// (`success:false` naming the topics it does not carry), pongs to
/// `{"op":"ping"}`, and for an `orderbook` subscription a snapshot from its
/// books with the current `u`.
pub struct BybitFake {
    natives: Vec<String>,
    /// Keyed by topic (`orderbook.50.BTCUSDT`, `orderbook.1.BTCUSDT`).
    books: HashMap<String, Kept>,
    subscribed: BTreeSet<String>,
    /// The latest `ts` and `cts` on the tape, to stamp snapshots with.
    last_ts: u64,
    last_cts: u64,
}

impl BybitFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
            books: HashMap::new(),
            subscribed: BTreeSet::new(),
            last_ts: 0,
            last_cts: 0,
        }
    }

    /// Whether the fake carries a topic.
    fn serves(&self, topic: &str) -> bool {
        topic.rsplit_once('.').is_some_and(|(kind, sym)| {
            TOPICS.contains(&kind) && self.natives.iter().any(|n| n == sym)
        })
    }

    fn reply(op: &str, req_id: &Value, success: bool, ret_msg: &str) -> String {
        format!(
            r#"{{"success":{success},"ret_msg":{},"conn_id":"{CONN_ID}","req_id":{},"op":{}}}"#,
            Value::from(ret_msg),
            Value::from(req_id.as_str().unwrap_or("")),
            Value::from(op)
        )
    }

    /// An `orderbook` snapshot of `topic` from the fake's book.
    fn snapshot(&self, topic: &str) -> String {
        let empty = Kept::default();
        let kept = self.books.get(topic).unwrap_or(&empty);
        let symbol = topic.rsplit_once('.').map_or("", |(_, s)| s);
        let depth = if topic.starts_with("orderbook.1.") {
            1
        } else {
            50
        };
        let side = |levels: Vec<tickwire_model::Level>| -> String {
            levels
                .iter()
                .map(|(p, s)| format!(r#"["{p}","{s}"]"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let bids = side(kept.book.bids().take(depth).collect());
        let asks = side(kept.book.asks().take(depth).collect());
        format!(
            r#"{{"topic":"{topic}","ts":{},"type":"snapshot","data":{{"s":"{symbol}","b":[{bids}],"a":[{asks}],"u":{},"seq":{}}},"cts":{}}}"#,
            self.last_ts, kept.u, kept.seq, self.last_cts
        )
    }

    fn apply(book: &mut Book, levels: &Value, bid: bool) {
        for level in levels.as_array().into_iter().flatten() {
            let (Some(p), Some(s)) = (
                level.get(0).and_then(Value::as_str),
                level.get(1).and_then(Value::as_str),
            ) else {
                continue;
            };
            if let (Ok(p), Ok(s)) = (parse_decimal(p), parse_decimal(s)) {
                if bid {
                    book.apply_bid(p, s);
                } else {
                    book.apply_ask(p, s);
                }
            }
        }
    }
}

impl FakeVenue for BybitFake {
    fn greeting(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_client(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            out.push(Self::reply(
                "",
                &Value::Null,
                false,
                "Invalid request: not JSON",
            ));
            return;
        };
        let req_id = req.get("req_id").cloned().unwrap_or(Value::Null);
        let args: Vec<String> = req
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        match req.get("op").and_then(Value::as_str) {
            Some("ping") => out.push(Self::reply("ping", &req_id, true, "pong")),
            Some("subscribe") => {
                let (good, bad): (Vec<String>, Vec<String>) =
                    args.into_iter().partition(|t| self.serves(t));
                if bad.is_empty() {
                    out.push(Self::reply("subscribe", &req_id, true, "subscribe"));
                } else {
                    // The valid topics still subscribe, so one session can
                    // show both outcomes.
                    let msg = format!("Invalid topic :[{}]", bad.join(","));
                    out.push(Self::reply("subscribe", &req_id, false, &msg));
                }
                for topic in good {
                    if topic.starts_with("orderbook.") {
                        out.push(self.snapshot(&topic));
                    }
                    self.subscribed.insert(topic);
                }
            }
            Some("unsubscribe") => {
                for topic in &args {
                    self.subscribed.remove(topic);
                }
                out.push(Self::reply("unsubscribe", &req_id, true, ""));
            }
            op => out.push(Self::reply(op.unwrap_or(""), &req_id, false, "Invalid op")),
        }
    }

    fn observe(&mut self, frame: &str) -> bool {
        let Ok(msg) = serde_json::from_str::<Value>(frame) else {
            return true;
        };
        let Some(topic) = msg.get("topic").and_then(Value::as_str) else {
            // The tape's own op replies: the fake answers for itself.
            return false;
        };
        if let Some(ts) = msg.get("ts").and_then(Value::as_u64) {
            self.last_ts = ts;
        }
        if let Some(cts) = msg.get("cts").and_then(Value::as_u64) {
            self.last_cts = cts;
        }
        if !topic.starts_with("orderbook.") {
            return true;
        }
        let data = &msg["data"];
        let u = data.get("u").and_then(Value::as_u64).unwrap_or(0);
        let snapshot = msg.get("type").and_then(Value::as_str) == Some("snapshot");
        let kept = self.books.entry(topic.to_owned()).or_default();
        if snapshot || u == 1 {
            kept.book.clear();
        }
        Self::apply(&mut kept.book, &data["b"], true);
        Self::apply(&mut kept.book, &data["a"], false);
        kept.u = u;
        kept.seq = data.get("seq").and_then(Value::as_u64).unwrap_or(kept.seq);
        // An `orderbook.50` snapshot with `u != 1` answers a subscription
        // (the fake makes its own); `u == 1` is the venue restarting, and
        // depth 1 only ever sends snapshots: both are the stream itself.
        !(snapshot && u != 1 && topic.starts_with("orderbook.50."))
    }

    fn rest(&mut self, _path_and_query: &str) -> Option<String> {
        None
    }
}
