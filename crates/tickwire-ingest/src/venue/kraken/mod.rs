//! Kraken WebSocket v2 (spot, public): the adapter, its limits and the
//! subscription mapping.
//!
//! Canonical channel → Kraken channel:
//! - `trade` → `trade` (`snapshot:false`: no replay of the last 50 trades);
//! - `quote` and/or `ticker` → ONE `ticker` subscription, with
//!   `event_trigger:"bbo"` when quotes are wanted (a message on every best
//!   bid/offer change) and Kraken's default (on every trade) otherwise; each
//!   message yields a `Quote` and/or a `Ticker`, whichever the feed wants;
//! - `book` → `book` at the smallest Kraken depth (10, 25, 100, 500, 1000)
//!   holding `feed.book_depth`, kept from the snapshot and the updates and
//!   checked with Kraken's CRC-32 on every message.
//!
//! Kraken writes prices and sizes as JSON numbers with their full scale
//! (`0.10000000`): every frame is rewritten with [`json::quote_numbers`]
//! before decoding so the exact text survives the JSON parser.

pub mod fake;
mod generate;
mod messages;
mod parse;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tickwire_model::{Channel, Event, Instrument, Level, Payload};

use self::messages::{KrakenData, KrakenMessage};
use crate::adapter::{Action, Adapter, FrameError, Limits, Note, Output};
use crate::book::kraken_checksum;
use crate::feed::VenueFeed;
use crate::json;
use crate::venue::books::{BAD_MESSAGE, Books, CHECKSUM_MISMATCH};

/// What Kraken allows and expects of a connection.
///
/// - `messages_per_sec` 10: Kraken documents no hard WebSocket request
///   rate for public market data [memory]; 10/s is far below what gets a
///   client throttled and more than a subscribe burst needs.
/// - `max_streams` 1024 [memory]: no documented per-connection cap; a
///   generous bound so one connection carries a normal feed.
/// - `streams_per_instrument` 3: `trade`, `ticker` (quote and ticker share
///   it) and `book`.
/// - `silence` 10 s: Kraken sends `{"channel":"heartbeat"}` about once a
///   second whenever no other traffic flows (reference §3), so 10 s of
///   nothing is a dead connection.
/// - `keepalive` 30 s: a `{"method":"ping"}` now and then is harmless and
///   measures the round trip; the heartbeat already keeps the link alive.
/// - no forced lifetime.
pub const LIMITS: Limits = Limits {
    messages_per_sec: 10,
    max_streams: 1024,
    streams_per_instrument: 3,
    silence: Duration::from_secs(10),
    keepalive: Duration::from_secs(30),
    max_lifetime: None,
};

/// The book depths Kraken accepts in a subscription.
pub const BOOK_DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

/// Symbols per subscribe request. Kraken takes a list; this bound [memory]
/// keeps each request (and each burst of per-symbol acks) small.
const SYMBOLS_PER_REQUEST: usize = 50;

/// The smallest Kraken book depth that holds `depth` levels per side.
pub fn subscription_depth(depth: usize) -> usize {
    BOOK_DEPTHS
        .into_iter()
        .find(|&d| d >= depth)
        .unwrap_or(BOOK_DEPTHS[BOOK_DEPTHS.len() - 1])
}

/// One Kraken connection's protocol state.
pub struct KrakenAdapter {
    feed: VenueFeed,
    backend: json::Backend,
    /// The frame with its numbers quoted; decoded in place.
    scratch: Vec<u8>,
    books: Books,
    /// The depth subscribed (and the depth the local books are cut to).
    book_depth: usize,
    quote: bool,
    ticker: bool,
    next_req_id: u64,
}

impl KrakenAdapter {
    /// A fresh adapter for a connection of `feed`, decoding with simd-json.
    pub fn new(feed: &VenueFeed) -> Self {
        Self::with_backend(feed, json::Backend::Simd)
    }

    /// A fresh adapter decoding with `backend` (benchmarks compare them).
    pub fn with_backend(feed: &VenueFeed, backend: json::Backend) -> Self {
        let books = Books::new(feed.book_depth);
        Self {
            feed: feed.clone(),
            backend,
            scratch: Vec::new(),
            book_depth: subscription_depth(books.depth()),
            books,
            quote: feed.wants(Channel::Quote),
            ticker: feed.wants(Channel::Ticker),
            next_req_id: 1,
        }
    }

    fn req_id(&mut self) -> u64 {
        let id = self.next_req_id;
        self.next_req_id += 1;
        id
    }

    /// `params` of a book subscription for `symbols`.
    fn book_params(&self, symbols: &[&str], subscribe: bool) -> serde_json::Value {
        let mut params = serde_json::json!({
            "channel": "book",
            "symbol": symbols,
            "depth": self.book_depth,
        });
        if subscribe {
            params["snapshot"] = true.into();
        }
        params
    }

    fn request(&mut self, method: &str, params: serde_json::Value) -> String {
        serde_json::json!({"method": method, "params": params, "req_id": self.req_id()}).to_string()
    }

    /// Unsubscribe then subscribe one symbol's book: Kraken's way to get a
    /// fresh snapshot.
    fn resync(&mut self, native: &str, out: &mut Output) {
        let unsubscribe = self.book_params(&[native], false);
        let subscribe = self.book_params(&[native], true);
        let frame = self.request("unsubscribe", unsubscribe);
        out.actions.push(Action::Send(frame));
        let frame = self.request("subscribe", subscribe);
        out.actions.push(Action::Send(frame));
    }

    fn instrument(&self, native: Option<&str>) -> Result<Instrument, FrameError> {
        let native = native.ok_or(FrameError::Field("symbol"))?;
        self.feed
            .canonical(native)
            .cloned()
            .ok_or_else(|| FrameError::UnknownInstrument(native.to_owned()))
    }

    fn handle(
        &mut self,
        msg: &KrakenMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        if let Some(method) = msg.method {
            return self.reply(method, msg, out);
        }
        match msg.channel {
            Some("trade") => {
                for d in &msg.data {
                    let instrument = self.instrument(d.symbol)?;
                    let trade = parse::trade(d)?;
                    let ts = parse::time_or(d.timestamp, rx)?;
                    out.events.push(Event {
                        instrument,
                        ts,
                        rx,
                        payload: Payload::Trade(trade),
                    });
                }
                Ok(())
            }
            Some("ticker") => {
                for d in &msg.data {
                    let instrument = self.instrument(d.symbol)?;
                    let ts = parse::time_or(d.timestamp, rx)?;
                    if self.quote {
                        let quote = parse::quote(d)?;
                        out.events.push(Event {
                            instrument: instrument.clone(),
                            ts,
                            rx,
                            payload: Payload::Quote(quote),
                        });
                    }
                    if self.ticker {
                        let ticker = parse::ticker(d)?;
                        out.events.push(Event {
                            instrument,
                            ts,
                            rx,
                            payload: Payload::Ticker(ticker),
                        });
                    }
                }
                Ok(())
            }
            Some("book") => self.book(msg, rx, out),
            Some("heartbeat" | "status") => {
                out.notes.push(Note::Heartbeat);
                Ok(())
            }
            Some(_) => {
                out.notes.push(Note::Unknown);
                Ok(())
            }
            None if msg.success == Some(false) => {
                out.notes.push(self.rejection(msg));
                Ok(())
            }
            None => {
                out.notes.push(Note::Unknown);
                Ok(())
            }
        }
    }

    /// Replies to our requests: acks, refusals, pongs.
    fn reply(
        &self,
        method: &str,
        msg: &KrakenMessage<'_>,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let note = match method {
            "pong" => Note::Pong,
            _ if msg.success == Some(false) => self.rejection(msg),
            "subscribe" | "unsubscribe" if msg.success == Some(true) => Note::Ack,
            "subscribe" | "unsubscribe" => return Err(FrameError::Field("success")),
            _ => Note::Unknown,
        };
        out.notes.push(note);
        Ok(())
    }

    fn rejection(&self, msg: &KrakenMessage<'_>) -> Note {
        let symbol = msg
            .symbol
            .as_deref()
            .or_else(|| msg.result.as_ref().and_then(|r| r.symbol.as_deref()));
        Note::Rejected {
            instrument: symbol.and_then(|s| self.feed.canonical(s)).cloned(),
            reason: msg
                .error
                .as_deref()
                .unwrap_or("subscription refused")
                .to_owned(),
        }
    }

    /// A `book` snapshot or update: every item is parsed before any book is
    /// touched, so a bad item leaves the books as they were (and the books
    /// the frame was about are resynced, since they missed it).
    fn book(
        &mut self,
        msg: &KrakenMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let snapshot = match msg.kind {
            Some("snapshot") => true,
            Some("update") => false,
            _ => return Err(FrameError::Field("type")),
        };
        let mut parsed = Vec::with_capacity(msg.data.len());
        for d in &msg.data {
            let instrument = self.instrument(d.symbol)?;
            match parse_book(d, rx) {
                Ok(item) => parsed.push((instrument, item)),
                Err(e) => {
                    for d in &msg.data {
                        if let (Some(native), Ok(instrument)) =
                            (d.symbol, self.instrument(d.symbol))
                        {
                            if snapshot || self.books.is_synced(&instrument) {
                                self.books.invalidate(&instrument, BAD_MESSAGE, out);
                                self.resync(native, out);
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
        for (d, (instrument, item)) in msg.data.iter().zip(parsed) {
            let native = d.symbol.unwrap_or_default();
            self.apply_book(native, &instrument, item, snapshot, rx, out);
        }
        Ok(())
    }

    fn apply_book(
        &mut self,
        native: &str,
        instrument: &Instrument,
        item: BookItem,
        snapshot: bool,
        rx: u64,
        out: &mut Output,
    ) {
        let book = if snapshot {
            self.books.begin_snapshot(instrument)
        } else if let Some(book) = self.books.synced_mut(instrument) {
            book
        } else {
            // Before the first snapshot or while a resync is under way.
            out.notes.push(Note::Stale);
            return;
        };
        // Bids then asks, each in wire order: the same price may appear
        // twice in one message and the later one wins.
        for (price, size) in item.bids {
            book.apply_bid(price, size);
        }
        for (price, size) in item.asks {
            book.apply_ask(price, size);
        }
        // Levels pushed out of the subscribed window are not deleted by
        // Kraken: cut them before checksumming.
        book.truncate(self.book_depth);
        if kraken_checksum(book) != item.checksum {
            self.books.invalidate(instrument, CHECKSUM_MISMATCH, out);
            self.resync(native, out);
            return;
        }
        self.books.publish(instrument, item.ts, rx, snapshot, out);
        if !self.books.is_synced(instrument) {
            // `publish` found the book crossed.
            self.resync(native, out);
        }
    }
}

/// One parsed book item, not yet applied.
struct BookItem {
    bids: Vec<Level>,
    asks: Vec<Level>,
    checksum: u32,
    ts: u64,
}

fn parse_book(d: &KrakenData<'_>, rx: u64) -> Result<BookItem, FrameError> {
    Ok(BookItem {
        bids: parse::levels(d.bids.as_deref(), "bids.price", "bids.qty")?,
        asks: parse::levels(d.asks.as_deref(), "asks.price", "asks.qty")?,
        checksum: parse::checksum(d.checksum)?,
        ts: parse::time_or(d.timestamp, rx)?,
    })
}

impl Adapter for KrakenAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let natives: Vec<String> = self
            .feed
            .instruments
            .iter()
            .map(|i| i.native.clone())
            .collect();
        let mut frames = Vec::new();
        for chunk in natives.chunks(SYMBOLS_PER_REQUEST) {
            let symbols: Vec<&str> = chunk.iter().map(String::as_str).collect();
            if self.feed.wants(Channel::Trade) {
                let params =
                    serde_json::json!({"channel": "trade", "symbol": symbols, "snapshot": false});
                frames.push(self.request("subscribe", params));
            }
            if self.quote || self.ticker {
                let mut params = serde_json::json!({"channel": "ticker", "symbol": symbols});
                if self.quote {
                    params["event_trigger"] = "bbo".into();
                }
                frames.push(self.request("subscribe", params));
            }
            if self.feed.wants(Channel::Book) {
                let params = self.book_params(&symbols, true);
                frames.push(self.request("subscribe", params));
            }
        }
        frames
    }

    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError> {
        // serde would also take a JSON array as a struct (by position).
        if !frame.trim_start().starts_with('{') {
            return Err(FrameError::Malformed("not a JSON object".into()));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match json::quote_numbers(frame.as_bytes(), &mut scratch) {
            Err(_) => Err(FrameError::Malformed("unterminated string".into())),
            Ok(()) => out.all_or_nothing(|out| {
                json::decode::<KrakenMessage<'_>>(self.backend, &mut scratch)
                    .and_then(|msg| self.handle(&msg, rx, out))
            }),
        };
        self.scratch = scratch;
        result
    }

    fn keepalive(&mut self) -> Option<String> {
        Some(serde_json::json!({"method": "ping", "req_id": self.req_id()}).to_string())
    }
}
