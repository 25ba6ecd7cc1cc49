//! Coinbase Exchange `ws-feed` adapter.
//!
//! Channels: `trade` ← `matches` (`match`, and the `last_match` replay sent
//! after subscribing: the shell dedups it by trade id); `ticker` ←
//! `ticker`; `book` ← `level2_batch` (an in-band snapshot, then
//! `l2update`s with absolute sizes); `quote` ← the top of that same book,
//! because the Exchange `ticker` only refreshes its BBO on trades. So a
//! feed with `quote` subscribes `level2_batch` even without `book` (and
//! then publishes no book). `heartbeat` is always subscribed: the venue
//! has no ping, its 1/s/product heartbeats are what proves the link alive.
//!
//! `level2_batch` has no sequence numbers, so the only integrity check
//! left is the book itself: an update that crosses it means something was
//! lost, and the product's `level2_batch` is resubscribed for a fresh
//! snapshot.

pub mod fake;
mod generate;
mod messages;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use tickwire_model::{Channel, Event, Instrument, Level, Payload};

use self::messages::CoinbaseMessage;
use self::parse::BookSide;
use crate::adapter::{Action, Adapter, FrameError, Limits, Note, Output};
use crate::feed::VenueFeed;
use crate::json::{self, Backend};
use crate::venue::books::{BAD_UPDATE, Books, CROSSED};

/// What Coinbase allows and expects of a connection.
pub const LIMITS: Limits = Limits {
    // The docs allow 100 client messages/s per IP (another page: 10/s with
    // bursts); our frames are few, and several connections share the IP.
    messages_per_sec: 8,
    // Not documented for public channels (authenticated: 10 subscriptions
    // per product per channel); a conservative choice from memory.
    max_streams: 100,
    // matches, ticker, level2_batch, heartbeat.
    streams_per_instrument: 4,
    // `heartbeat` arrives once a second per product: five missed is dead.
    silence: Duration::from_secs(5),
    // Unused: the venue has no application ping (`keepalive` is `None`).
    keepalive: Duration::from_secs(30),
    // No documented forced cutoff.
    max_lifetime: None,
};

/// `ws-feed` channel names.
const MATCHES: &str = "matches";
const TICKER: &str = "ticker";
const LEVEL2: &str = "level2_batch";
const HEARTBEAT: &str = "heartbeat";

/// One Coinbase connection's protocol state.
pub struct CoinbaseAdapter {
    feed: VenueFeed,
    backend: Backend,
    /// The frame copy the decoder rewrites in place, kept between frames.
    scratch: Vec<u8>,
    books: Books,
    /// The (channel, product) pairs each unanswered subscribe or
    /// unsubscribe asked for, oldest first: replies come in request order,
    /// and each lists everything subscribed, so a pair missing from the
    /// answer to its own request was refused.
    pending: VecDeque<Vec<(&'static str, String)>>,
}

impl CoinbaseAdapter {
    /// A fresh adapter for a connection of `feed`, decoding with simd-json.
    pub fn new(feed: &VenueFeed) -> Self {
        Self::with_backend(feed, Backend::Simd)
    }

    /// A fresh adapter decoding with `backend` (benchmarks compare them).
    pub fn with_backend(feed: &VenueFeed, backend: Backend) -> Self {
        Self {
            feed: feed.clone(),
            backend,
            scratch: Vec::new(),
            books: Books::new(feed.book_depth),
            pending: VecDeque::new(),
        }
    }

    /// The venue channels this feed needs, in subscribe order.
    fn venue_channels(&self) -> Vec<&'static str> {
        let mut channels = Vec::with_capacity(4);
        if self.feed.wants(Channel::Book) || self.feed.wants(Channel::Quote) {
            channels.push(LEVEL2);
        }
        if self.feed.wants(Channel::Trade) {
            channels.push(MATCHES);
        }
        if self.feed.wants(Channel::Ticker) {
            channels.push(TICKER);
        }
        channels.push(HEARTBEAT);
        channels
    }

    /// A subscribe or unsubscribe frame.
    fn request(kind: &str, products: &[&str], channels: &[&str]) -> String {
        serde_json::json!({"type": kind, "product_ids": products, "channels": channels}).to_string()
    }

    fn instrument(&self, msg: &CoinbaseMessage<'_>) -> Result<Instrument, FrameError> {
        let product = parse::required(msg.product_id, "product_id")?;
        self.feed
            .canonical(product)
            .cloned()
            .ok_or_else(|| FrameError::UnknownInstrument(product.to_owned()))
    }

    fn handle(&mut self, buf: &mut [u8], rx: u64, out: &mut Output) -> Result<(), FrameError> {
        let msg: CoinbaseMessage<'_> = json::decode(self.backend, buf)?;
        match msg.kind {
            "match" | "last_match" => {
                let instrument = self.instrument(&msg)?;
                let (trade, ts) = parse::trade(&msg)?;
                out.events.push(Event {
                    instrument,
                    ts,
                    rx,
                    payload: Payload::Trade(trade),
                });
            }
            "ticker" => {
                let instrument = self.instrument(&msg)?;
                let (ticker, ts) = parse::ticker(&msg, rx)?;
                out.events.push(Event {
                    instrument,
                    ts,
                    rx,
                    payload: Payload::Ticker(ticker),
                });
            }
            "snapshot" => self.snapshot(&msg, rx, out)?,
            "l2update" => self.l2update(&msg, rx, out)?,
            "heartbeat" => out.notes.push(Note::Heartbeat),
            "subscriptions" => self.subscriptions(&msg, out)?,
            "error" => self.error(&msg, out),
            _ => out.notes.push(Note::Unknown),
        }
        Ok(())
    }

    fn snapshot(
        &mut self,
        msg: &CoinbaseMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let instrument = self.instrument(msg)?;
        let parsed = (|| {
            let ts = parse::time_or(msg, rx)?;
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            parse::levels(
                "bids",
                parse::required(msg.bids.as_deref(), "bids")?,
                &mut bids,
            )?;
            parse::levels(
                "asks",
                parse::required(msg.asks.as_deref(), "asks")?,
                &mut asks,
            )?;
            Ok((ts, bids, asks))
        })();
        let (ts, bids, asks) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.break_book(&instrument, BAD_UPDATE, out);
                return Err(e);
            }
        };
        let book = self.books.begin_snapshot(&instrument);
        for (price, size) in bids {
            book.apply_bid(price, size);
        }
        for (price, size) in asks {
            book.apply_ask(price, size);
        }
        self.settle(&instrument, ts, rx, true, out);
        Ok(())
    }

    fn l2update(
        &mut self,
        msg: &CoinbaseMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let instrument = self.instrument(msg)?;
        if !self.books.is_synced(&instrument) {
            // Waiting for the snapshot of a (re)subscribe.
            out.notes.push(Note::Stale);
            return Ok(());
        }
        let parsed = (|| {
            let ts = parse::time_us("time", parse::required(msg.time, "time")?)?;
            let mut changes: Vec<(BookSide, Level)> = Vec::new();
            parse::changes(
                parse::required(msg.changes.as_deref(), "changes")?,
                &mut changes,
            )?;
            Ok((ts, changes))
        })();
        let (ts, changes) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.break_book(&instrument, BAD_UPDATE, out);
                return Err(e);
            }
        };
        if let Some(book) = self.books.synced_mut(&instrument) {
            for (side, (price, size)) in changes {
                match side {
                    BookSide::Bid => book.apply_bid(price, size),
                    BookSide::Ask => book.apply_ask(price, size),
                }
            }
        }
        self.settle(&instrument, ts, rx, false, out);
        Ok(())
    }

    /// After a snapshot or update was applied: publishes the book (when the
    /// feed wants it) and the quote, or, if it crossed, resubscribes.
    fn settle(
        &mut self,
        instrument: &Instrument,
        ts: u64,
        rx: u64,
        recovered: bool,
        out: &mut Output,
    ) {
        if self.feed.wants(Channel::Book) {
            self.books.publish(instrument, ts, rx, recovered, out);
        } else if self
            .books
            .get(instrument)
            .is_some_and(|t| t.synced && t.book.is_crossed())
        {
            // Kept only for the quote: checked, never published.
            self.books.invalidate(instrument, CROSSED, out);
        } else if recovered && self.books.is_synced(instrument) {
            out.books.push((instrument.clone(), None));
        }
        if !self.books.is_synced(instrument) {
            // `publish` found it crossed and invalidated it.
            self.resync(instrument, out);
            return;
        }
        if self.feed.wants(Channel::Quote) {
            self.books.publish_quote(instrument, ts, rx, out);
        }
    }

    /// Marks a book broken and asks for a fresh snapshot.
    fn break_book(&mut self, instrument: &Instrument, reason: &'static str, out: &mut Output) {
        self.books.invalidate(instrument, reason, out);
        self.resync(instrument, out);
    }

    /// Unsubscribes and resubscribes the product's `level2_batch`: the new
    /// subscription starts with a snapshot.
    fn resync(&mut self, instrument: &Instrument, out: &mut Output) {
        let Some(native) = self.feed.native(instrument).map(str::to_owned) else {
            return;
        };
        out.actions.push(Action::Send(Self::request(
            "unsubscribe",
            &[&native],
            &[LEVEL2],
        )));
        out.actions.push(Action::Send(Self::request(
            "subscribe",
            &[&native],
            &[LEVEL2],
        )));
        self.pending.push_back(Vec::new());
        self.pending.push_back(vec![(LEVEL2, native)]);
    }

    fn subscriptions(
        &mut self,
        msg: &CoinbaseMessage<'_>,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let channels = parse::required(msg.channels.as_deref(), "channels")?;
        // A reply with no request outstanding (a recorded session's
        // reconnect) has nothing to check.
        let asked = self.pending.pop_front().unwrap_or_default();
        out.notes.push(Note::Ack);
        for (channel, product) in asked {
            let granted = channels.iter().any(|c| {
                c.name == channel
                    && c.product_ids
                        .as_ref()
                        .is_some_and(|p| p.contains(&product.as_str()))
            });
            if !granted {
                out.notes.push(Note::Rejected {
                    instrument: self.feed.canonical(&product).cloned(),
                    reason: format!("{channel} {product} missing from the subscriptions reply"),
                });
            }
        }
        Ok(())
    }

    fn error(&mut self, msg: &CoinbaseMessage<'_>, out: &mut Output) {
        let message = msg.message.as_deref().unwrap_or("");
        let reason = match msg.reason.as_deref() {
            Some(r) if !r.is_empty() => format!("{message}: {r}"),
            _ => message.to_owned(),
        };
        // An error answers the oldest request: Coinbase fails a subscribe
        // naming one bad product, and whatever it still subscribed is not
        // checked against that request.
        self.pending.pop_front();
        let named = parse::named_products(
            &reason,
            self.feed.instruments.iter().map(|i| i.native.as_str()),
        );
        if named.is_empty() {
            out.notes.push(Note::Rejected {
                instrument: None,
                reason,
            });
            return;
        }
        for product in named {
            out.notes.push(Note::Rejected {
                instrument: self.feed.canonical(product).cloned(),
                reason: reason.clone(),
            });
        }
    }
}

impl Adapter for CoinbaseAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let channels = self.venue_channels();
        let products: Vec<&str> = self
            .feed
            .instruments
            .iter()
            .map(|i| i.native.as_str())
            .collect();
        let frame = Self::request("subscribe", &products, &channels);
        let asked = channels
            .iter()
            .flat_map(|&c| products.iter().map(move |&p| (c, p.to_owned())))
            .collect();
        self.pending.push_back(asked);
        vec![frame]
    }

    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(frame.as_bytes());
        let result = out.all_or_nothing(|out| self.handle(&mut scratch, rx, out));
        self.scratch = scratch;
        result
    }
}
