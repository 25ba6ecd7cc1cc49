//! Binance Spot: one connection's protocol state. Live `SUBSCRIBE` on
//! `/ws`, raw or combined payloads, books from the `@depth@100ms` diff
//! stream synced with REST snapshots (the 2024 recipe, [`BinanceSync`]).
//!
//! Channel mapping: `trade` ← `<sym>@trade` (`@aggTrade` is understood
//! too), `quote` ← `<sym>@bookTicker` (no venue time: `ts` = `rx`),
//! `ticker` ← `<sym>@ticker`, `book` ← `<sym>@depth@100ms` + REST
//! `/api/v3/depth`.

pub mod fake;
mod generate;
mod messages;
mod parse;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_capture;

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use tickwire_model::{Channel, Event, Instrument, Payload};

use self::messages::{
    BinanceAggTrade, BinanceBookTicker, BinanceCombined, BinanceDepthSnapshot, BinanceDepthUpdate,
    BinanceError, BinanceEvent, BinanceEventWrapper, BinanceProbe, BinanceResponse, BinanceTicker,
    BinanceTrade,
};
use self::parse::{Kind, Peek};
use crate::adapter::{Action, Adapter, FrameError, Limits, Note, Output};
use crate::book::{BinanceDiff, BinanceResync, BinanceSync, BinanceVerdict};
use crate::feed::VenueFeed;
use crate::json::{Backend, Decoder};
use crate::venue::books::{BAD_UPDATE, Books, SEQUENCE_GAP};

/// What Binance allows and expects of a connection (reference §1.1–1.2):
/// 5 incoming messages per second (pings and control frames count), 1024
/// streams, a forced close at 24 h. The server pings every 20 s and drops
/// a client that has not answered within a minute; tungstenite answers
/// pings, so the app sends no keepalive of its own.
pub const LIMITS: Limits = Limits {
    messages_per_sec: 5,
    max_streams: 1024,
    // trade, bookTicker, ticker, depth@100ms.
    streams_per_instrument: 4,
    // Three missed 20 s pings: the connection is gone.
    silence: Duration::from_secs(60),
    // Unused: `keepalive()` is `None` (WebSocket pings do the job).
    keepalive: Duration::from_secs(20),
    max_lifetime: Some(Duration::from_secs(24 * 3600)),
};

/// Streams one `SUBSCRIBE` may carry: Binance caps the params of a request
/// (reference §1.3, error code 2 "too many params"); 200 keeps a frame
/// small and far below that cap.
pub const MAX_STREAMS_PER_REQUEST: usize = 200;

/// Levels asked of the REST snapshot: the current recipe's `limit=5000`.
pub const SNAPSHOT_LIMIT: u32 = 5000;

/// Above this many instruments a hash map beats a scan of the names.
const SCAN_LIMIT: usize = 16;

/// One instrument's book sync and whether a snapshot is on its way.
#[derive(Debug, Default)]
struct BookSync {
    sync: BinanceSync,
    /// A `Fetch` is outstanding: more buffered diffs do not ask again.
    fetching: bool,
}

/// One Binance connection's protocol state.
pub struct BinanceAdapter {
    feed: VenueFeed,
    /// The parser and its reused working memory.
    decoder: Decoder,
    /// The frame copied for the parser, which rewrites it in place.
    scratch: Vec<u8>,
    /// Upper-case venue name → position in `feed.instruments`, for feeds
    /// too large to scan.
    index: HashMap<String, usize>,
    wants: [bool; 4],
    books: Books,
    /// Per instrument, in feed order.
    syncs: Vec<BookSync>,
    /// `SUBSCRIBE` ids not yet answered → the instruments they carried.
    pending: HashMap<u64, Vec<usize>>,
    next_id: u64,
}

impl BinanceAdapter {
    /// A fresh adapter for a connection of `feed`, decoding with simd-json.
    pub fn new(feed: &VenueFeed) -> Self {
        Self::with_backend(feed, Backend::Simd)
    }

    /// A fresh adapter decoding with `backend` (the benches compare them).
    pub fn with_backend(feed: &VenueFeed, backend: Backend) -> Self {
        let index = feed
            .instruments
            .iter()
            .enumerate()
            .map(|(i, fi)| (fi.native.to_ascii_uppercase(), i))
            .collect();
        let wants = [
            feed.wants(Channel::Trade),
            feed.wants(Channel::Quote),
            feed.wants(Channel::Ticker),
            feed.wants(Channel::Book),
        ];
        Self {
            feed: feed.clone(),
            decoder: Decoder::new(backend),
            scratch: Vec::with_capacity(1024),
            index,
            wants,
            books: Books::new(feed.book_depth),
            syncs: feed
                .instruments
                .iter()
                .map(|_| BookSync::default())
                .collect(),
            pending: HashMap::new(),
            next_id: 1,
        }
    }

    fn wants(&self, channel: Channel) -> bool {
        self.wants[match channel {
            Channel::Trade => 0,
            Channel::Quote => 1,
            Channel::Ticker => 2,
            Channel::Book => 3,
        }]
    }

    fn instrument(&self, position: usize) -> &Instrument {
        &self.feed.instruments[position].instrument
    }

    /// The REST path of an instrument's snapshot.
    fn snapshot_path(&self, position: usize) -> String {
        format!(
            "/api/v3/depth?symbol={}&limit={SNAPSHOT_LIMIT}",
            self.feed.instruments[position].native
        )
    }

    /// Asks the shell for a snapshot of an instrument's book.
    fn fetch(&mut self, position: usize, out: &mut Output) {
        self.syncs[position].fetching = true;
        out.actions.push(Action::Fetch {
            instrument: self.instrument(position).clone(),
            path: self.snapshot_path(position),
        });
    }

    /// Copies the frame into the scratch buffer and decodes it as `T`
    /// (inside the combined wrapper when `combined`).
    fn decode<'s, T: Deserialize<'s>>(
        decoder: &mut Decoder,
        scratch: &'s mut Vec<u8>,
        frame: &str,
        peek: Peek,
    ) -> Result<T, String> {
        let decoded = if peek.combined {
            decoder
                .decode::<BinanceCombined<T>>(frame.as_bytes(), scratch)
                .map(|c| c.data)
        } else {
            decoder.decode::<T>(frame.as_bytes(), scratch)
        };
        decoded.map_err(|e| match e {
            FrameError::Malformed(m) => m,
            other => other.to_string(),
        })
    }

    /// The error for a frame of kind `peek` that did not decode as its wire
    /// type: the field at fault, or `Malformed` when it is not JSON.
    fn diagnose(&mut self, frame: &str, peek: Peek, parser: String) -> FrameError {
        let value = self
            .decoder
            .decode::<serde_json::Value>(frame.as_bytes(), &mut self.scratch)
            .ok();
        parse::diagnose(peek, value.as_ref(), parser)
    }

    /// Whether the frame is JSON at all (for kinds this adapter ignores).
    fn well_formed(&mut self, frame: &str) -> Result<(), FrameError> {
        self.decoder
            .decode::<IgnoredAny>(frame.as_bytes(), &mut self.scratch)
            .map(|_| ())
    }

    /// The kind of a frame the peek could not place, by parsing it.
    fn probe(&mut self, frame: &str) -> Result<Peek, FrameError> {
        match self
            .decoder
            .decode::<BinanceProbe<'_>>(frame.as_bytes(), &mut self.scratch)
        {
            Ok(p) => Ok(parse::probe_kind(&p)),
            // JSON, but not an object of the shapes above (`!ticker@arr`
            // arrays, a `data` that is not an object): not ours.
            Err(e) => self.well_formed(frame).map_err(|_| e).map(|()| Peek {
                combined: false,
                kind: Kind::Other,
            }),
        }
    }

    fn on_depth(
        &mut self,
        frame: &str,
        peek: Peek,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let parsed = match Self::decode::<BinanceDepthUpdate<'_>>(
            &mut self.decoder,
            &mut self.scratch,
            frame,
            peek,
        ) {
            Ok(d) => lookup(&self.feed, &self.index, d.symbol).map(|p| (p, parse::diff(&d))),
            Err(m) => return Err(self.diagnose(frame, peek, m)),
        };
        let (position, diff) = parsed?;
        if !self.wants(Channel::Book) {
            out.notes.push(Note::Unknown);
            return Ok(());
        }
        let (ts, diff) = match diff {
            Ok(d) => d,
            Err(e) => {
                // The book can no longer follow the stream: drop it and
                // start over from a fresh snapshot.
                self.syncs[position].sync.reset();
                let inst = self.instrument(position).clone();
                self.books.invalidate(&inst, BAD_UPDATE, out);
                self.fetch(position, out);
                // A shell that drops `out` with the error loses this
                // request; the next diff then asks again.
                self.syncs[position].fetching = false;
                return Err(e);
            }
        };
        self.apply_diff(position, ts, rx, diff, out);
        Ok(())
    }

    fn apply_diff(
        &mut self,
        position: usize,
        ts: u64,
        rx: u64,
        diff: BinanceDiff,
        out: &mut Output,
    ) {
        let inst = self.feed.instruments[position].instrument.clone();
        let sync = &mut self.syncs[position].sync;
        // The sync keeps its own book; the published one follows it level
        // for level, so apply the diff here exactly when the sync will.
        let applies = sync.last_update_id().is_some_and(|local| {
            diff.final_update_id > local && diff.first_update_id <= local.saturating_add(1)
        });
        if applies && let Some(book) = self.books.synced_mut(&inst) {
            for &(price, size) in &diff.bids {
                book.apply_bid(price, size);
            }
            for &(price, size) in &diff.asks {
                book.apply_ask(price, size);
            }
        }
        match sync.feed_diff(diff) {
            BinanceVerdict::Applied => {
                self.books.publish(&inst, ts, rx, false, out);
                if !self.books.is_synced(&inst) {
                    // Crossed: the book is wrong somewhere; start over.
                    self.syncs[position].sync.reset();
                    self.fetch(position, out);
                }
            }
            BinanceVerdict::Buffered => {
                if !self.syncs[position].fetching {
                    self.fetch(position, out);
                }
            }
            BinanceVerdict::Stale => out.notes.push(Note::Stale),
            BinanceVerdict::Resync(why) => {
                if matches!(
                    why,
                    BinanceResync::Gap { .. } | BinanceResync::SnapshotTooOld { .. }
                ) {
                    self.books.invalidate(&inst, SEQUENCE_GAP, out);
                }
                self.fetch(position, out);
            }
        }
    }

    fn on_snapshot(
        &mut self,
        position: usize,
        body: &str,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        self.syncs[position].fetching = false;
        let decoded = self
            .decoder
            .decode::<BinanceDepthSnapshot<'_>>(body.as_bytes(), &mut self.scratch);
        let parsed = match decoded {
            Ok(s) => parse::snapshot(&s),
            Err(e) => {
                let parser = e.to_string();
                let value = self
                    .decoder
                    .decode::<serde_json::Value>(body.as_bytes(), &mut self.scratch)
                    .ok();
                Err(parse::diagnose_snapshot(value.as_ref(), parser))
            }
        };
        let snapshot = match parsed {
            Ok(s) => s,
            Err(e) => {
                self.fetch(position, out);
                return Err(e);
            }
        };
        let inst = self.instrument(position).clone();
        match self.syncs[position].sync.feed_snapshot(snapshot) {
            BinanceVerdict::Applied => {
                let sync = &self.syncs[position].sync;
                let book = self.books.begin_snapshot(&inst);
                for (price, size) in sync.book().bids() {
                    book.apply_bid(price, size);
                }
                for (price, size) in sync.book().asks() {
                    book.apply_ask(price, size);
                }
                // A REST body has no venue time.
                self.books.publish(&inst, rx, rx, true, out);
                if !self.books.is_synced(&inst) {
                    self.syncs[position].sync.reset();
                    self.fetch(position, out);
                }
            }
            BinanceVerdict::Stale => out.notes.push(Note::Stale),
            BinanceVerdict::Buffered => {}
            BinanceVerdict::Resync(_) => {
                // Older than the stream (or the buffered stream skips):
                // the recipe says fetch again.
                self.books.invalidate(&inst, SEQUENCE_GAP, out);
                self.fetch(position, out);
            }
        }
        Ok(())
    }

    /// One `Rejected` per instrument the failed request carried.
    fn rejected(&mut self, id: Option<u64>, reason: String, out: &mut Output) {
        let carried = id.and_then(|id| self.pending.remove(&id));
        match carried {
            Some(positions) if !positions.is_empty() => {
                for p in positions {
                    out.notes.push(Note::Rejected {
                        instrument: Some(self.instrument(p).clone()),
                        reason: reason.clone(),
                    });
                }
            }
            _ => out.notes.push(Note::Rejected {
                instrument: None,
                reason,
            }),
        }
    }
}

/// The position of a venue symbol in the feed definition (payloads carry
/// it upper-case, stream names lower-case: both match, without
/// allocating). A feed's names are its only mapping to instruments.
fn lookup(
    feed: &VenueFeed,
    index: &HashMap<String, usize>,
    symbol: &str,
) -> Result<usize, FrameError> {
    let unknown = || FrameError::UnknownInstrument(symbol.to_owned());
    if feed.instruments.len() <= SCAN_LIMIT {
        return feed
            .instruments
            .iter()
            .position(|i| i.native.eq_ignore_ascii_case(symbol))
            .ok_or_else(unknown);
    }
    let mut upper = [0u8; 64];
    let bytes = symbol.as_bytes();
    let Some(slot) = upper.get_mut(..bytes.len()) else {
        return Err(unknown());
    };
    slot.copy_from_slice(bytes);
    slot.make_ascii_uppercase();
    let key = std::str::from_utf8(slot).map_err(|_| unknown())?;
    index.get(key).copied().ok_or_else(unknown)
}

/// Builds a market-data event for an instrument.
fn event(inst: &Instrument, ts: u64, rx: u64, payload: Payload) -> Event {
    Event {
        instrument: inst.clone(),
        ts,
        rx,
        payload,
    }
}

/// The stream of an instrument's channel (names are lower-case).
fn stream(native: &str, channel: Channel) -> String {
    let suffix = match channel {
        Channel::Trade => "@trade",
        Channel::Quote => "@bookTicker",
        Channel::Ticker => "@ticker",
        Channel::Book => "@depth@100ms",
    };
    let mut s = native.to_ascii_lowercase();
    s.push_str(suffix);
    s
}

impl Adapter for BinanceAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let mut frames = Vec::new();
        let mut params: Vec<String> = Vec::new();
        let mut carried: Vec<usize> = Vec::new();
        let channels: Vec<Channel> = Channel::ALL
            .into_iter()
            .filter(|c| self.feed.wants(*c))
            .collect();
        let mut flush = |params: &mut Vec<String>, carried: &mut Vec<usize>, id: &mut u64| {
            if params.is_empty() {
                return;
            }
            // By hand, in the documented key order (serde_json sorts keys).
            let list = serde_json::Value::from(std::mem::take(params));
            frames.push(format!(
                r#"{{"method":"SUBSCRIBE","params":{list},"id":{id}}}"#
            ));
            self.pending.insert(*id, std::mem::take(carried));
            *id += 1;
        };
        let mut id = self.next_id;
        for (position, fi) in self.feed.instruments.iter().enumerate() {
            // An instrument's streams stay in one request, so a rejection
            // names whole instruments.
            if params.len() + channels.len() > MAX_STREAMS_PER_REQUEST {
                flush(&mut params, &mut carried, &mut id);
            }
            params.extend(channels.iter().map(|c| stream(&fi.native, *c)));
            carried.push(position);
        }
        flush(&mut params, &mut carried, &mut id);
        self.next_id = id;
        frames
    }

    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError> {
        let peek = match parse::peek(frame.as_bytes()) {
            Some(p) => p,
            None => self.probe(frame)?,
        };
        macro_rules! decode {
            ($t:ty) => {
                match Self::decode::<$t>(&mut self.decoder, &mut self.scratch, frame, peek) {
                    Ok(v) => v,
                    Err(m) => return Err(self.diagnose(frame, peek, m)),
                }
            };
        }
        match peek.kind {
            Kind::Trade | Kind::AggTrade => {
                let (position, ts, trade) = if peek.kind == Kind::Trade {
                    let t = decode!(BinanceTrade<'_>);
                    let position = lookup(&self.feed, &self.index, t.symbol)?;
                    let (ts, trade) = parse::trade(&t)?;
                    (position, ts, trade)
                } else {
                    let t = decode!(BinanceAggTrade<'_>);
                    let position = lookup(&self.feed, &self.index, t.symbol)?;
                    let (ts, trade) = parse::agg_trade(&t)?;
                    (position, ts, trade)
                };
                if self.wants(Channel::Trade) {
                    let inst = self.instrument(position);
                    out.events.push(event(inst, ts, rx, Payload::Trade(trade)));
                } else {
                    out.notes.push(Note::Unknown);
                }
            }
            Kind::BookTicker => {
                let b = decode!(BinanceBookTicker<'_>);
                let position = lookup(&self.feed, &self.index, b.symbol)?;
                let quote = parse::quote(&b)?;
                if self.wants(Channel::Quote) {
                    let inst = self.instrument(position);
                    out.events.push(event(inst, rx, rx, Payload::Quote(quote)));
                } else {
                    out.notes.push(Note::Unknown);
                }
            }
            Kind::Ticker => {
                let t = decode!(BinanceTicker<'_>);
                let position = lookup(&self.feed, &self.index, t.symbol)?;
                let (ts, ticker) = parse::ticker(&t)?;
                if self.wants(Channel::Ticker) {
                    let inst = self.instrument(position);
                    out.events
                        .push(event(inst, ts, rx, Payload::Ticker(ticker)));
                } else {
                    out.notes.push(Note::Unknown);
                }
            }
            Kind::Depth => return self.on_depth(frame, peek, rx, out),
            Kind::Shutdown => {
                let _ = decode!(BinanceEvent<'_>);
                out.actions.push(Action::Rotate);
            }
            Kind::EventWrapper => {
                let w = decode!(BinanceEventWrapper<'_>);
                if w.event.kind == "serverShutdown" {
                    out.actions.push(Action::Rotate);
                } else {
                    out.notes.push(Note::Unknown);
                }
            }
            Kind::Response => {
                let r = decode!(BinanceResponse);
                if let Some(id) = r.id.0 {
                    self.pending.remove(&id);
                }
                out.notes.push(Note::Ack);
            }
            Kind::Error => {
                let e = decode!(BinanceError<'_>);
                let reason = format!("{} (code {})", e.msg, e.code);
                let id = e.id.0;
                self.rejected(id, reason, out);
            }
            Kind::Other => {
                self.well_formed(frame)?;
                out.notes.push(Note::Unknown);
            }
        }
        Ok(())
    }

    fn on_rest(
        &mut self,
        instrument: &Instrument,
        body: &str,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let Some(position) = self
            .feed
            .instruments
            .iter()
            .position(|i| &i.instrument == instrument)
        else {
            return Err(FrameError::UnknownInstrument(instrument.to_string()));
        };
        if !self.wants(Channel::Book) {
            return Ok(());
        }
        self.on_snapshot(position, body, rx, out)
    }
}
