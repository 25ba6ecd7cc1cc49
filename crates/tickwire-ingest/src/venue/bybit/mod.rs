//! Bybit v5 public spot adapter.
//!
//! Channels: `trade` ← `publicTrade.{symbol}` (`S` is the taker's side);
//! `quote` ← `orderbook.1.{symbol}` (the best level, re-sent every 3 s
//! unchanged with the same `u`: not a gap, and no new quote); `ticker` ←
//! `tickers.{symbol}` (spot: `prevPrice24h` is the open, no BBO);
//! `book` ← `orderbook.50.{symbol}`, kept with [`BybitSeq`]: every snapshot
//! resets it, `u == 1` means the venue's service restarted (the book is
//! overwritten and reported reset), a skipped `u` means lost updates and
//! the topic is resubscribed for a fresh snapshot.

pub mod fake;
mod generate;
mod messages;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use tickwire_model::{Channel, Event, Instrument, Payload, Ticker};

use self::messages::{BybitData, BybitMessage, BybitObject};
use crate::adapter::{Action, Adapter, FrameError, Limits, Note, Output, ms_to_us};
use crate::book::{BybitSeq, SeqVerdict};
use crate::feed::VenueFeed;
use crate::json::{self, Backend};
use crate::venue::books::{BAD_UPDATE, Books, CROSSED, SEQUENCE_GAP, VENUE_RESET};

/// What Bybit allows and expects of a connection.
pub const LIMITS: Limits = Limits {
    // From memory, not re-read in the docs: keep under 10 requests/s.
    messages_per_sec: 10,
    // From memory: spot caps the topics of one connection; 200 is safe.
    max_streams: 200,
    // publicTrade, orderbook.1, tickers, orderbook.50.
    streams_per_instrument: 4,
    // Pongs every 20 s at the least, trades and books far more often.
    silence: Duration::from_secs(30),
    // The docs ask for `{"op":"ping"}` about every 20 s.
    keepalive: Duration::from_secs(20),
    // No documented forced cutoff for public streams.
    max_lifetime: None,
};

/// Topics one subscribe request may carry on spot (from memory: 10).
const MAX_ARGS: usize = 10;

/// The venue channels of a canonical one.
const TRADE_TOPIC: &str = "publicTrade";
const QUOTE_TOPIC: &str = "orderbook.1";
const TICKER_TOPIC: &str = "tickers";
const BOOK_TOPIC: &str = "orderbook.50";

/// One Bybit connection's protocol state.
pub struct BybitAdapter {
    feed: VenueFeed,
    backend: Backend,
    /// The frame copy the decoder rewrites in place, kept between frames.
    scratch: Vec<u8>,
    /// `orderbook.50` books.
    books: Books,
    book_seq: HashMap<Instrument, BybitSeq>,
    /// `orderbook.1` books: just the best level each, for quotes.
    bbo: Books,
    bbo_seq: HashMap<Instrument, BybitSeq>,
    /// The last ticker per instrument, for deltas that leave fields out.
    tickers: HashMap<Instrument, Ticker>,
    /// Numbers our requests' `req_id`s.
    requests: u64,
}

impl BybitAdapter {
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
            book_seq: HashMap::new(),
            bbo: Books::new(1),
            bbo_seq: HashMap::new(),
            tickers: HashMap::new(),
            requests: 0,
        }
    }

    /// The venue topics of the feed's channels for one symbol.
    fn topics(&self, native: &str) -> Vec<String> {
        let mut topics = Vec::with_capacity(4);
        for (channel, topic) in [
            (Channel::Trade, TRADE_TOPIC),
            (Channel::Quote, QUOTE_TOPIC),
            (Channel::Ticker, TICKER_TOPIC),
            (Channel::Book, BOOK_TOPIC),
        ] {
            if self.feed.wants(channel) {
                topics.push(format!("{topic}.{native}"));
            }
        }
        topics
    }

    fn request(&mut self, op: &str, args: &[String]) -> String {
        self.requests += 1;
        serde_json::json!({"req_id": format!("{op}-{}", self.requests), "op": op, "args": args})
            .to_string()
    }

    fn instrument(&self, symbol: &str) -> Result<Instrument, FrameError> {
        self.feed
            .canonical(symbol)
            .cloned()
            .ok_or_else(|| FrameError::UnknownInstrument(symbol.to_owned()))
    }

    fn handle(&mut self, buf: &mut [u8], rx: u64, out: &mut Output) -> Result<(), FrameError> {
        let msg: BybitMessage<'_> = json::decode(self.backend, buf)?;
        if let Some(topic) = msg.topic {
            return self.push(topic, &msg, rx, out);
        }
        let ret_msg = msg.ret_msg.as_deref().unwrap_or("");
        match (msg.op, msg.success) {
            (Some("pong"), _) | (Some("ping"), Some(true)) => out.notes.push(Note::Pong),
            (_, _) if ret_msg == "pong" => out.notes.push(Note::Pong),
            (Some("subscribe" | "unsubscribe"), Some(true)) => out.notes.push(Note::Ack),
            (Some(_), Some(false)) => self.refused(ret_msg, out),
            _ => out.notes.push(Note::Unknown),
        }
        Ok(())
    }

    /// A refused request: one note per topic it names (the others in the
    /// request go on), or one without an instrument.
    fn refused(&self, ret_msg: &str, out: &mut Output) {
        let symbols = parse::named_symbols(ret_msg);
        if symbols.is_empty() {
            out.notes.push(Note::Rejected {
                instrument: None,
                reason: ret_msg.to_owned(),
            });
        }
        for symbol in symbols {
            out.notes.push(Note::Rejected {
                instrument: self.feed.canonical(symbol).cloned(),
                reason: ret_msg.to_owned(),
            });
        }
    }

    fn push(
        &mut self,
        topic: &str,
        msg: &BybitMessage<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let Some((channel, _)) = parse::split_topic(topic) else {
            out.notes.push(Note::Unknown);
            return Ok(());
        };
        match (channel, parse::required(msg.data.as_ref(), "data")?) {
            (TRADE_TOPIC, BybitData::Trades(fills)) => {
                let mut events = Vec::with_capacity(fills.len());
                for fill in fills {
                    let (symbol, trade, ts) = parse::trade(fill)?;
                    events.push(Event {
                        instrument: self.instrument(symbol)?,
                        ts,
                        rx,
                        payload: Payload::Trade(trade),
                    });
                }
                out.events.extend(events);
            }
            (TICKER_TOPIC, BybitData::Object(o)) => {
                let instrument = self.instrument(parse::required(o.symbol, "symbol")?)?;
                let ticker = parse::ticker(o, self.tickers.get(&instrument))?;
                self.tickers.insert(instrument.clone(), ticker.clone());
                out.events.push(Event {
                    instrument,
                    ts: ms_to_us(parse::required(msg.ts, "ts")?),
                    rx,
                    payload: Payload::Ticker(ticker),
                });
            }
            (QUOTE_TOPIC | BOOK_TOPIC, BybitData::Object(o)) => {
                let instrument = self.instrument(parse::required(o.s, "s")?)?;
                if channel == QUOTE_TOPIC {
                    // `out.books` speaks of the `book` channel's book: the
                    // best-level stream breaks and heals on its own.
                    let mark = out.books.len();
                    let result = self.book(true, instrument, msg, o, rx, out);
                    out.books.truncate(mark);
                    result?;
                } else {
                    self.book(false, instrument, msg, o, rx, out)?;
                }
            }
            (TRADE_TOPIC | TICKER_TOPIC | QUOTE_TOPIC | BOOK_TOPIC, _) => {
                return Err(FrameError::Field("data"));
            }
            _ => out.notes.push(Note::Unknown),
        }
        Ok(())
    }

    /// An `orderbook.50` (book) or `orderbook.1` (quote) push.
    fn book(
        &mut self,
        quote: bool,
        instrument: Instrument,
        msg: &BybitMessage<'_>,
        o: &BybitObject<'_>,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        // Everything is parsed before the sequence moves, so a bad message
        // cannot leave the checker ahead of the book.
        let parsed = (|| {
            let snapshot = match parse::required(msg.kind, "type")? {
                "snapshot" => true,
                "delta" => false,
                _ => return Err(FrameError::Field("type")),
            };
            let u = parse::required(o.u, "u")?;
            let ts = ms_to_us(parse::required(msg.cts.or(msg.ts), "ts")?);
            let bids = parse::levels("b", o.b.as_deref())?;
            let asks = parse::levels("a", o.a.as_deref())?;
            Ok((snapshot, u, ts, bids, asks))
        })();
        let (snapshot, u, ts, bids, asks) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.break_book(quote, &instrument, BAD_UPDATE, out);
                return Err(e);
            }
        };
        let (books, seqs) = if quote {
            (&mut self.bbo, &mut self.bbo_seq)
        } else {
            (&mut self.books, &mut self.book_seq)
        };
        let seq = seqs.entry(instrument.clone()).or_default();
        let was_synced = books.is_synced(&instrument);
        let verdict = if snapshot {
            seq.feed_snapshot(u)
        } else {
            seq.feed_delta(u)
        };
        let book = match verdict {
            SeqVerdict::Reset => {
                if u == 1 && was_synced {
                    // The venue restarted: what was published is gone.
                    books.invalidate(&instrument, VENUE_RESET, out);
                }
                Some(books.begin_snapshot(&instrument))
            }
            SeqVerdict::Apply => books.synced_mut(&instrument),
            SeqVerdict::Ignore => {
                out.notes.push(Note::Stale);
                return Ok(());
            }
            SeqVerdict::Gap(_) => {
                self.break_book(quote, &instrument, SEQUENCE_GAP, out);
                return Ok(());
            }
        };
        let Some(book) = book else {
            // Applying to a book broken some other way (a crossed top):
            // wait for the resubscribe's snapshot.
            seqs.entry(instrument).or_default().reset();
            out.notes.push(Note::Stale);
            return Ok(());
        };
        for (price, size) in bids {
            book.apply_bid(price, size);
        }
        for (price, size) in asks {
            book.apply_ask(price, size);
        }
        let recovered = verdict == SeqVerdict::Reset;
        if quote {
            if books.get(&instrument).is_some_and(|t| t.book.is_crossed()) {
                self.break_book(true, &instrument, CROSSED, out);
                return Ok(());
            }
            books.publish_quote(&instrument, ts, rx, out);
        } else {
            books.publish(&instrument, ts, rx, recovered, out);
            if !books.is_synced(&instrument) {
                // Crossed: `publish` invalidated it.
                self.book_seq.entry(instrument.clone()).or_default().reset();
                self.resync(BOOK_TOPIC, &instrument, out);
            }
        }
        Ok(())
    }

    /// Marks a book broken and resubscribes its topic for a snapshot.
    fn break_book(
        &mut self,
        quote: bool,
        instrument: &Instrument,
        reason: &'static str,
        out: &mut Output,
    ) {
        let (books, seqs, topic) = if quote {
            (&mut self.bbo, &mut self.bbo_seq, QUOTE_TOPIC)
        } else {
            (&mut self.books, &mut self.book_seq, BOOK_TOPIC)
        };
        books.invalidate(instrument, reason, out);
        seqs.entry(instrument.clone()).or_default().reset();
        self.resync(topic, instrument, out);
    }

    fn resync(&mut self, topic: &str, instrument: &Instrument, out: &mut Output) {
        let Some(native) = self.feed.native(instrument) else {
            return;
        };
        let args = [format!("{topic}.{native}")];
        let unsubscribe = self.request("unsubscribe", &args);
        let subscribe = self.request("subscribe", &args);
        out.actions.push(Action::Send(unsubscribe));
        out.actions.push(Action::Send(subscribe));
    }
}

impl Adapter for BybitAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let topics: Vec<String> = self
            .feed
            .instruments
            .iter()
            .flat_map(|i| self.topics(&i.native))
            .collect();
        topics
            .chunks(MAX_ARGS)
            .map(|args| self.request("subscribe", args))
            .collect()
    }

    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(frame.as_bytes());
        let result = out.all_or_nothing(|out| self.handle(&mut scratch, rx, out));
        self.scratch = scratch;
        result
    }

    fn keepalive(&mut self) -> Option<String> {
        self.requests += 1;
        Some(format!(
            r#"{{"req_id":"ping-{}","op":"ping"}}"#,
            self.requests
        ))
    }
}
