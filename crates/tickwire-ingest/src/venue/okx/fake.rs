//! The OKX side of the wire: the fake venue (plays a capture as a live OKX
//! v5 public session) and the capture generator ([`generate`]).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::Value;
use tickwire_model::parse_decimal;

use crate::venue::FakeVenue;

pub use super::generate::generate;

/// The connection id the fake reports in its acks.
const CONN_ID: &str = "a4d3ae55";

/// One side of the fake's book: price → the level exactly as OKX wrote it
/// (`[px, sz, "0", orders]`).
type Side = BTreeMap<Decimal, [String; 3]>;

/// One instrument's book as the tape left it, and the last `seqId`.
#[derive(Default)]
struct FakeBook {
    bids: Side,
    asks: Side,
    seq_id: i64,
}

/// A fake OKX session: acks each subscribe argument, refuses instruments
/// the tape does not carry with OKX's error, answers `ping` with `pong`,
/// and starts every `books` subscription with a snapshot of its current
/// book carrying the current `seqId`, so the tape's next update chains.
pub struct OkxFake {
    natives: Vec<String>,
    books: HashMap<String, FakeBook>,
    /// The newest tape `ts` (ms text), for the fake's own snapshots.
    now: String,
}

impl OkxFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
            books: HashMap::new(),
            now: "1793577600000".into(),
        }
    }

    fn snapshot(&self, inst_id: &str) -> String {
        let empty = FakeBook::default();
        let book = self.books.get(inst_id).unwrap_or(&empty);
        let asks: Vec<&[String; 3]> = book.asks.values().collect();
        let bids: Vec<&[String; 3]> = book.bids.values().rev().collect();
        books_frame(
            "snapshot",
            inst_id,
            &levels_json(asks.into_iter()),
            &levels_json(bids.into_iter()),
            &self.now,
            -1,
            book.seq_id,
        )
    }
}

fn levels_json<'a>(levels: impl Iterator<Item = &'a [String; 3]>) -> String {
    let items: Vec<String> = levels
        .map(|[p, s, n]| format!(r#"["{p}","{s}","0","{n}"]"#))
        .collect();
    items.join(",")
}

/// A `books` push (the checksum is 0, as OKX sends it since June 2026).
pub(crate) fn books_frame(
    action: &str,
    inst_id: &str,
    asks: &str,
    bids: &str,
    ts: &str,
    prev_seq_id: i64,
    seq_id: i64,
) -> String {
    format!(
        r#"{{"arg":{{"channel":"books","instId":"{inst_id}"}},"action":"{action}","data":[{{"asks":[{asks}],"bids":[{bids}],"ts":"{ts}","checksum":0,"prevSeqId":{prev_seq_id},"seqId":{seq_id}}}]}}"#
    )
}

fn apply(side: &mut Side, levels: Option<&Value>) {
    for l in levels.and_then(Value::as_array).into_iter().flatten() {
        let (Some(p), Some(s)) = (l[0].as_str(), l[1].as_str()) else {
            continue;
        };
        let (Ok(price), Ok(size)) = (parse_decimal(p), parse_decimal(s)) else {
            continue;
        };
        if size.is_zero() {
            side.remove(&price);
        } else {
            let orders = l[3].as_str().unwrap_or("1").to_owned();
            side.insert(price, [p.to_owned(), s.to_owned(), orders]);
        }
    }
}

impl FakeVenue for OkxFake {
    fn greeting(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_client(&mut self, text: &str, out: &mut Vec<String>) {
        if text == "ping" {
            out.push("pong".into());
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            // OKX's answer to a request it cannot read [memory].
            let e = serde_json::json!({
                "event": "error",
                "code": "60012",
                "msg": format!("Invalid request: {text}"),
                "connId": CONN_ID,
            });
            out.push(e.to_string());
            return;
        };
        let id = v.get("id").cloned();
        let op = v["op"].as_str().unwrap_or_default();
        if op != "subscribe" && op != "unsubscribe" {
            let mut e = serde_json::json!({
                "event": "error",
                "code": "60012",
                "msg": format!("Invalid request: {text}"),
                "connId": CONN_ID,
            });
            if let Some(id) = id {
                e["id"] = id;
            }
            out.push(e.to_string());
            return;
        }
        for arg in v["args"].as_array().into_iter().flatten() {
            let channel = arg["channel"].as_str().unwrap_or_default();
            let inst_id = arg["instId"].as_str().unwrap_or_default();
            let known = matches!(channel, "trades" | "tickers" | "books");
            let reply = if known && self.natives.iter().any(|n| n == inst_id) {
                let mut r = serde_json::json!({
                    "event": op,
                    "arg": {"channel": channel, "instId": inst_id},
                    "connId": CONN_ID,
                });
                if let Some(id) = &id {
                    r["id"] = id.clone();
                }
                r
            } else {
                // OKX's wording for an unknown channel or instrument
                // [memory]; it names no `arg`.
                let mut r = serde_json::json!({
                    "event": "error",
                    "code": "60018",
                    "msg": format!("Wrong URL or channel:{channel},instId:{inst_id} doesn't exist"),
                    "connId": CONN_ID,
                });
                if let Some(id) = &id {
                    r["id"] = id.clone();
                }
                out.push(r.to_string());
                continue;
            };
            out.push(reply.to_string());
            if op == "subscribe" && channel == "books" {
                out.push(self.snapshot(inst_id));
            }
        }
    }

    fn observe(&mut self, frame: &str) -> bool {
        if frame == "pong" {
            // The answer to the recording client's ping, not to ours.
            return false;
        }
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            return true;
        };
        if v.get("event").is_some() {
            // The tape's own acks: the fake makes its own per client.
            return false;
        }
        let channel = v["arg"]["channel"].as_str().unwrap_or_default();
        if channel != "books" {
            if let Some(ts) = v["data"][0]["ts"].as_str() {
                ts.clone_into(&mut self.now);
            }
            return true;
        }
        let Some(inst_id) = v["arg"]["instId"].as_str() else {
            return true;
        };
        let snapshot = v["action"].as_str() == Some("snapshot");
        let book = self.books.entry(inst_id.to_owned()).or_default();
        for d in v["data"].as_array().into_iter().flatten() {
            if snapshot {
                book.bids.clear();
                book.asks.clear();
            }
            apply(&mut book.bids, d.get("bids"));
            apply(&mut book.asks, d.get("asks"));
            if let Some(seq) = d["seqId"].as_i64() {
                book.seq_id = seq;
            }
            if let Some(ts) = d["ts"].as_str() {
                ts.clone_into(&mut self.now);
            }
        }
        !snapshot
    }

    fn rest(&mut self, _path_and_query: &str) -> Option<String> {
        None
    }
}
