//! OKX v5 public: the adapter, its limits and the subscription mapping.
//!
//! Canonical channel → OKX channel:
//! - `trade` → `trades` (`side` is the taker's; `tradeId` is text);
//! - `quote` and/or `ticker` → `tickers` (one subscription; each push
//!   yields a `Quote` from `bidPx/bidSz/askPx/askSz` and/or a `Ticker`
//!   from `last/open24h/high24h/low24h/vol24h`, whichever the feed wants);
//! - `book` → `books` (400 levels: a snapshot, then 100 ms increments),
//!   kept with the `seqId`/`prevSeqId` chain ([`OkxSeq`]).
//!
//! The keepalive is the bare text `ping`, answered by the bare text `pong`
//! (not JSON), which is recognised before decoding.

pub mod fake;
mod generate;
mod messages;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use tickwire_model::{Channel, Event, Instrument, Level, Payload};

use self::messages::{OkxData, OkxMessage};
use crate::adapter::{Action, Adapter, FrameError, Limits, Note, Output};
use crate::book::{OKX_SNAPSHOT_PREV_SEQ_ID, OkxSeq, SeqVerdict};
use crate::feed::VenueFeed;
use crate::json;
use crate::venue::books::{BAD_MESSAGE, Books, SEQUENCE_GAP};

/// What OKX allows and expects of a connection.
///
/// - `messages_per_sec` 3 [memory]: OKX budgets subscribe/unsubscribe/login
///   requests per connection (about 480 an hour); a slow pace keeps bursts
///   of resubscribes well inside it.
/// - `max_streams` 90, `streams_per_instrument` 3 (`trades`, `tickers`,
///   `books`): OKX asks to keep a connection under ~30 deep-book channels,
///   so 30 instruments per connection.
/// - `keepalive` 20 s and `silence` 35 s: OKX closes a connection that
///   received nothing for 30 s and pushes only on change, so a quiet
///   market is kept alive by our `ping` (answered by `pong`) every 20 s;
///   35 s without even a pong is a dead link.
/// - no forced lifetime.
pub const LIMITS: Limits = Limits {
    messages_per_sec: 3,
    max_streams: 90,
    streams_per_instrument: 3,
    silence: Duration::from_secs(35),
    keepalive: Duration::from_secs(20),
    max_lifetime: None,
};

/// Arguments per subscribe request [memory: OKX caps a request's total
/// length (64 KB), not its count; 30 keeps requests and ack bursts small].
const ARGS_PER_REQUEST: usize = 30;

/// The notice code OKX sends before closing connections for a service
/// upgrade [memory].
const NOTICE_SERVICE_UPGRADE: &str = "64008";

/// One OKX connection's protocol state.
pub struct OkxAdapter {
    feed: VenueFeed,
    backend: json::Backend,
    /// A copy of the frame, decoded in place.
    scratch: Vec<u8>,
    books: Books,
    seqs: HashMap<Instrument, OkxSeq>,
    quote: bool,
    ticker: bool,
    next_id: u64,
}

impl OkxAdapter {
    /// A fresh adapter for a connection of `feed`, decoding with simd-json.
    pub fn new(feed: &VenueFeed) -> Self {
        Self::with_backend(feed, json::Backend::Simd)
    }

    /// A fresh adapter decoding with `backend` (benchmarks compare them).
    pub fn with_backend(feed: &VenueFeed, backend: json::Backend) -> Self {
        Self {
            feed: feed.clone(),
            backend,
            scratch: Vec::new(),
            books: Books::new(feed.book_depth),
            seqs: HashMap::new(),
            quote: feed.wants(Channel::Quote),
            ticker: feed.wants(Channel::Ticker),
            next_id: 1,
        }
    }

    fn request(&mut self, op: &str, args: Vec<serde_json::Value>) -> String {
        let id = self.next_id;
        self.next_id += 1;
        serde_json::json!({"id": id.to_string(), "op": op, "args": args}).to_string()
    }

    /// Unsubscribe then subscribe one instrument's `books`: OKX's way to get
    /// a fresh snapshot.
    fn resync(&mut self, inst_id: &str, out: &mut Output) {
        let arg = || vec![serde_json::json!({"channel": "books", "instId": inst_id})];
        let frame = self.request("unsubscribe", arg());
        out.actions.push(Action::Send(frame));
        let frame = self.request("subscribe", arg());
        out.actions.push(Action::Send(frame));
    }

    fn instrument(
        &self,
        native: Option<&str>,
        name: &'static str,
    ) -> Result<Instrument, FrameError> {
        let native = native.ok_or(FrameError::Field(name))?;
        self.feed
            .canonical(native)
            .cloned()
            .ok_or_else(|| FrameError::UnknownInstrument(native.to_owned()))
    }

    fn handle(
        &mut self,
        msg: &OkxMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        if let Some(event) = msg.event {
            self.event(event, msg, out);
            return Ok(());
        }
        let Some(arg) = &msg.arg else {
            out.notes.push(Note::Unknown);
            return Ok(());
        };
        match arg.channel {
            "trades" => {
                for d in &msg.data {
                    let instrument = self.instrument(d.inst_id.or(arg.inst_id), "instId")?;
                    let trade = parse::trade(d)?;
                    out.events.push(Event {
                        instrument,
                        ts: parse::ts(d.ts)?,
                        rx,
                        payload: Payload::Trade(trade),
                    });
                }
                Ok(())
            }
            "tickers" => {
                for d in &msg.data {
                    let instrument = self.instrument(d.inst_id.or(arg.inst_id), "instId")?;
                    let ts = parse::ts(d.ts)?;
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
            "books" => {
                let inst_id = arg.inst_id.ok_or(FrameError::Field("arg.instId"))?;
                self.book(inst_id, msg, rx, out)
            }
            _ => {
                out.notes.push(Note::Unknown);
                Ok(())
            }
        }
    }

    /// `event` frames: acks, errors, notices.
    fn event(&self, event: &str, msg: &OkxMessage<'_>, out: &mut Output) {
        let note = match event {
            "subscribe" | "unsubscribe" => Note::Ack,
            "error" => {
                let text = msg.msg.as_deref().unwrap_or_default();
                // OKX errors carry no `arg`; the instrument is only in the
                // text, when it is there at all.
                let instrument = msg
                    .arg
                    .as_ref()
                    .and_then(|a| a.inst_id)
                    .or_else(|| parse::inst_id_in(text))
                    .and_then(|i| self.feed.canonical(i))
                    .cloned();
                let code = msg.code.as_deref().unwrap_or("?");
                Note::Rejected {
                    instrument,
                    reason: format!("{code}: {text}"),
                }
            }
            "notice" => {
                if msg.code.as_deref() == Some(NOTICE_SERVICE_UPGRADE) {
                    out.actions.push(Action::Rotate);
                }
                Note::Heartbeat
            }
            "channel-conn-count" => Note::Heartbeat,
            _ => Note::Unknown,
        };
        out.notes.push(note);
    }

    /// A `books` snapshot or update. The levels are parsed before the book
    /// or its chain is touched; a message that does not parse breaks the
    /// book (it may have missed levels) and resubscribes.
    fn book(
        &mut self,
        inst_id: &str,
        msg: &OkxMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let instrument = self.instrument(Some(inst_id), "arg.instId")?;
        let snapshot = match msg.action {
            Some("snapshot") => true,
            Some("update") => false,
            _ => return Err(FrameError::Field("action")),
        };
        let mut items = Vec::with_capacity(msg.data.len());
        for d in &msg.data {
            match parse_book(d) {
                Ok(item) => items.push(item),
                Err(e) => {
                    if snapshot || self.books.is_synced(&instrument) {
                        self.books.invalidate(&instrument, BAD_MESSAGE, out);
                        self.seqs.entry(instrument).or_default().reset();
                        self.resync(inst_id, out);
                    }
                    return Err(e);
                }
            }
        }
        for item in items {
            self.apply_book(inst_id, &instrument, item, snapshot, rx, out);
        }
        Ok(())
    }

    fn apply_book(
        &mut self,
        inst_id: &str,
        instrument: &Instrument,
        item: BookItem,
        snapshot: bool,
        rx: u64,
        out: &mut Output,
    ) {
        let seq = self.seqs.entry(instrument.clone()).or_default();
        let prev = if snapshot {
            OKX_SNAPSHOT_PREV_SEQ_ID
        } else {
            item.prev_seq_id
        };
        let book = match seq.feed(prev, item.seq_id) {
            SeqVerdict::Reset => self.books.begin_snapshot(instrument),
            SeqVerdict::Apply => match self.books.synced_mut(instrument) {
                Some(book) => book,
                None => {
                    // The chain holds but the book broke (crossed): wait
                    // for the snapshot already asked for.
                    seq.reset();
                    out.notes.push(Note::Stale);
                    return;
                }
            },
            SeqVerdict::Ignore => {
                out.notes.push(Note::Stale);
                return;
            }
            SeqVerdict::Gap(_) => {
                self.books.invalidate(instrument, SEQUENCE_GAP, out);
                self.resync(inst_id, out);
                return;
            }
        };
        for (price, size) in item.bids {
            book.apply_bid(price, size);
        }
        for (price, size) in item.asks {
            book.apply_ask(price, size);
        }
        self.books.publish(instrument, item.ts, rx, snapshot, out);
        if !self.books.is_synced(instrument) {
            // `publish` found the book crossed.
            if let Some(seq) = self.seqs.get_mut(instrument) {
                seq.reset();
            }
            self.resync(inst_id, out);
        }
    }
}

/// One parsed `books` item, not yet applied.
struct BookItem {
    bids: Vec<Level>,
    asks: Vec<Level>,
    prev_seq_id: i64,
    seq_id: i64,
    ts: u64,
}

fn parse_book(d: &OkxData<'_>) -> Result<BookItem, FrameError> {
    // `checksum` is deliberately not read: OKX deprecated it (always 0 from
    // June 2026) and the seqId chain is what keeps the book; a non-zero
    // value from before is not an error either.
    Ok(BookItem {
        bids: parse::levels(d.bids.as_deref(), "bids.px", "bids.sz")?,
        asks: parse::levels(d.asks.as_deref(), "asks.px", "asks.sz")?,
        prev_seq_id: d.prev_seq_id.ok_or(FrameError::Field("prevSeqId"))?,
        seq_id: d.seq_id.ok_or(FrameError::Field("seqId"))?,
        ts: parse::ts(d.ts)?,
    })
}

impl Adapter for OkxAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let mut args = Vec::new();
        let channels = [
            ("trades", self.feed.wants(Channel::Trade)),
            ("tickers", self.quote || self.ticker),
            ("books", self.feed.wants(Channel::Book)),
        ];
        for i in &self.feed.instruments {
            for (channel, wanted) in channels {
                if wanted {
                    args.push(serde_json::json!({"channel": channel, "instId": i.native}));
                }
            }
        }
        let mut frames = Vec::new();
        for chunk in args.chunks(ARGS_PER_REQUEST) {
            frames.push(self.request("subscribe", chunk.to_vec()));
        }
        frames
    }

    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError> {
        // The keepalive answer is not JSON.
        if frame == "pong" {
            out.notes.push(Note::Pong);
            return Ok(());
        }
        // serde would also take a JSON array as a struct (by position).
        if !frame.trim_start().starts_with('{') {
            return Err(FrameError::Malformed("not a JSON object".into()));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(frame.as_bytes());
        let result = out.all_or_nothing(|out| {
            json::decode::<OkxMessage<'_>>(self.backend, &mut scratch)
                .and_then(|msg| self.handle(&msg, rx, out))
        });
        self.scratch = scratch;
        result
    }

    fn keepalive(&mut self) -> Option<String> {
        Some("ping".into())
    }
}
