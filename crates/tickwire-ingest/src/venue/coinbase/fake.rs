//! The Coinbase side of the wire: the fake venue and the capture generator.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tickwire_model::parse_decimal;

use crate::book::Book;
use crate::venue::FakeVenue;

pub use super::generate::generate;

/// A fake Coinbase Exchange `ws-feed` session: answers `subscribe` and
/// `unsubscribe` with `subscriptions` (everything subscribed now), refuses
/// products it does not carry with Coinbase's `error`, and on subscribe
/// sends a `level2_batch` snapshot from its books and a `last_match`
/// replay of the latest trade, as Coinbase does.
pub struct CoinbaseFake {
    natives: Vec<String>,
    /// The tape's books, kept from its snapshots and `l2update`s.
    books: HashMap<String, Book>,
    /// The latest `match` of each product, as a `last_match` frame.
    last_match: HashMap<String, String>,
    /// Channel → products this client is subscribed to (sorted, for a
    /// stable reply).
    subscribed: BTreeMap<String, Vec<String>>,
    /// The latest `time` on the tape, to stamp snapshots with.
    last_time: Option<String>,
}

impl CoinbaseFake {
    /// A fake serving these instruments (venue names).
    pub fn new(natives: &[String]) -> Self {
        Self {
            natives: natives.to_vec(),
            books: HashMap::new(),
            last_match: HashMap::new(),
            subscribed: BTreeMap::new(),
            last_time: None,
        }
    }

    /// The `level2_batch` snapshot of a product from the current book.
    fn snapshot(&self, product: &str) -> String {
        let empty = Book::new();
        let book = self.books.get(product).unwrap_or(&empty);
        let side = |levels: &mut dyn Iterator<Item = tickwire_model::Level>| -> Value {
            Value::Array(
                levels
                    .map(|(p, s)| Value::from(vec![p.to_string(), s.to_string()]))
                    .collect(),
            )
        };
        let bids = side(&mut book.bids());
        let asks = side(&mut book.asks());
        // Built by hand to keep Coinbase's key order.
        let mut frame = format!(
            r#"{{"type":"snapshot","product_id":{},"bids":{bids},"asks":{asks}"#,
            Value::from(product)
        );
        if let Some(time) = &self.last_time {
            frame.push_str(&format!(r#","time":{}"#, Value::from(time.as_str())));
        }
        frame.push('}');
        frame
    }

    /// The `subscriptions` reply: every channel with its products.
    fn subscriptions(&self) -> String {
        let channels: Vec<Value> = self
            .subscribed
            .iter()
            .filter(|(_, products)| !products.is_empty())
            .map(|(name, products)| serde_json::json!({"name": name, "product_ids": products}))
            .collect();
        format!(
            r#"{{"type":"subscriptions","channels":{}}}"#,
            Value::Array(channels)
        )
    }

    fn error(message: &str, reason: &str) -> String {
        format!(
            r#"{{"type":"error","message":{},"reason":{}}}"#,
            Value::from(message),
            Value::from(reason)
        )
    }

    /// The (channel, products) pairs of a request: each channel is a name
    /// (taking the root `product_ids`) or `{"name", "product_ids"}`.
    fn requested(req: &Value) -> Result<Vec<(String, Vec<String>)>, String> {
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let root = strings(req.get("product_ids"));
        let Some(channels) = req.get("channels").and_then(Value::as_array) else {
            return Err("channels must be an array".into());
        };
        let mut out = Vec::new();
        for c in channels {
            match c {
                Value::String(name) => out.push((name.clone(), root.clone())),
                Value::Object(o) => {
                    let Some(name) = o.get("name").and_then(Value::as_str) else {
                        return Err("a channel needs a name".into());
                    };
                    let mut products = strings(o.get("product_ids"));
                    if products.is_empty() {
                        products = root.clone();
                    }
                    out.push((name.to_owned(), products));
                }
                _ => return Err("a channel is a name or an object".into()),
            }
        }
        Ok(out)
    }

    fn subscribe(&mut self, req: &Value, out: &mut Vec<String>) {
        let requested = match Self::requested(req) {
            Ok(r) => r,
            Err(reason) => {
                out.push(Self::error("Failed to subscribe", &reason));
                return;
            }
        };
        // Like Coinbase, one error naming the first bad product; unlike it
        // (which refuses the whole request) the valid ones still subscribe,
        // so one fake session can test both outcomes.
        let mut refused = false;
        let mut fresh = Vec::new();
        for (channel, products) in requested {
            if products.is_empty() && !refused {
                refused = true;
                out.push(Self::error(
                    "Failed to subscribe",
                    &format!("You need to specify at least one product ID for channel {channel}"),
                ));
            }
            for product in products {
                if !self.natives.contains(&product) {
                    if !refused {
                        refused = true;
                        out.push(Self::error(
                            "Failed to subscribe",
                            &format!("{product} is not a valid product"),
                        ));
                    }
                    continue;
                }
                let list = self.subscribed.entry(channel.clone()).or_default();
                if !list.contains(&product) {
                    list.push(product.clone());
                    list.sort();
                }
                fresh.push((channel.clone(), product));
            }
        }
        out.push(self.subscriptions());
        for (channel, product) in fresh {
            match channel.as_str() {
                "level2_batch" | "level2" | "level2_50" => out.push(self.snapshot(&product)),
                "matches" => {
                    if let Some(m) = self.last_match.get(&product) {
                        out.push(m.clone());
                    }
                }
                _ => {}
            }
        }
    }

    fn unsubscribe(&mut self, req: &Value, out: &mut Vec<String>) {
        let requested = match Self::requested(req) {
            Ok(r) => r,
            Err(reason) => {
                out.push(Self::error("Failed to unsubscribe", &reason));
                return;
            }
        };
        for (channel, products) in requested {
            if products.is_empty() {
                // No products: the whole channel.
                self.subscribed.remove(&channel);
            } else if let Some(list) = self.subscribed.get_mut(&channel) {
                list.retain(|p| !products.contains(p));
            }
        }
        out.push(self.subscriptions());
    }

    fn apply_levels(book: &mut Book, levels: &Value, bid: bool) {
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

    /// Applies an `l2update` to the fake's book unless it would cross it:
    /// a crossing update on the tape stands for one the client got wrong,
    /// not for the venue's book, which never crosses.
    fn l2update(&mut self, product: &str, changes: &Value) {
        let Some(book) = self.books.get(product) else {
            return;
        };
        let mut next = book.clone();
        for change in changes.as_array().into_iter().flatten() {
            let (Some(side), Some(p), Some(s)) = (
                change.get(0).and_then(Value::as_str),
                change.get(1).and_then(Value::as_str),
                change.get(2).and_then(Value::as_str),
            ) else {
                continue;
            };
            let (Ok(p), Ok(s)) = (parse_decimal(p), parse_decimal(s)) else {
                continue;
            };
            match side {
                "buy" => next.apply_bid(p, s),
                "sell" => next.apply_ask(p, s),
                _ => {}
            }
        }
        if !next.is_crossed() {
            self.books.insert(product.to_owned(), next);
        }
    }
}

impl FakeVenue for CoinbaseFake {
    fn greeting(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_client(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            out.push(Self::error("Malformed JSON", "could not parse the message"));
            return;
        };
        match req.get("type").and_then(Value::as_str) {
            Some("subscribe") => self.subscribe(&req, out),
            Some("unsubscribe") => self.unsubscribe(&req, out),
            _ => out.push(Self::error(
                "Failed to subscribe",
                "type must be subscribe or unsubscribe",
            )),
        }
    }

    fn observe(&mut self, frame: &str) -> bool {
        let Ok(msg) = serde_json::from_str::<Value>(frame) else {
            // Not ours to judge: a broken tape frame is played as is.
            return true;
        };
        if let Some(time) = msg.get("time").and_then(Value::as_str) {
            self.last_time = Some(time.to_owned());
        }
        let product = msg.get("product_id").and_then(Value::as_str).unwrap_or("");
        match msg.get("type").and_then(Value::as_str) {
            Some("snapshot") => {
                let mut book = Book::new();
                Self::apply_levels(&mut book, &msg["bids"], true);
                Self::apply_levels(&mut book, &msg["asks"], false);
                self.books.insert(product.to_owned(), book);
                false
            }
            Some("l2update") => {
                self.l2update(product, &msg["changes"]);
                true
            }
            Some("match") => {
                let replay = frame.replacen(r#""type":"match""#, r#""type":"last_match""#, 1);
                self.last_match.insert(product.to_owned(), replay);
                true
            }
            Some("last_match") => {
                self.last_match.insert(product.to_owned(), frame.to_owned());
                false
            }
            Some("subscriptions" | "error") => false,
            _ => true,
        }
    }

    fn rest(&mut self, _path_and_query: &str) -> Option<String> {
        None
    }
}
