//! The books of one connection, shared by every adapter: which instruments
//! have a consistent book, publishing the top N only when it is usable and
//! changed, and reporting breaks and recoveries to the shell.

use std::collections::HashMap;

use tickwire_model::{BookTop, Event, Instrument, Payload, Quote};

use crate::adapter::Output;
use crate::book::Book;

// Why a book broke: the reason clients see in `status` and the label of
// the resync metric. One list, so every venue names a cause the same way.

/// An update would have crossed the book.
pub(crate) const CROSSED: &str = "crossed_book";
/// The venue's update ids or sequence numbers skipped.
pub(crate) const SEQUENCE_GAP: &str = "sequence_gap";
/// The book no longer matches the venue's checksum.
pub(crate) const CHECKSUM_MISMATCH: &str = "checksum_mismatch";
/// The venue restarted its book service (Bybit `u == 1`).
pub(crate) const VENUE_RESET: &str = "venue_reset";
/// A book update could not be parsed (Binance, Coinbase, Bybit).
pub(crate) const BAD_UPDATE: &str = "bad_update";
/// A book message could not be parsed (Kraken, OKX; the same cause as
/// [`BAD_UPDATE`] under its first name there).
pub(crate) const BAD_MESSAGE: &str = "bad_message";

/// Every break reason above, for metrics that register each label up
/// front.
pub(crate) const BREAK_REASONS: [&str; 6] = [
    CROSSED,
    SEQUENCE_GAP,
    CHECKSUM_MISMATCH,
    VENUE_RESET,
    BAD_UPDATE,
    BAD_MESSAGE,
];

/// One instrument's book and whether it can be trusted.
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    /// The levels.
    pub(crate) book: Book,
    /// Whether a snapshot was applied and nothing broke since.
    pub(crate) synced: bool,
    /// The top last published, to skip updates that did not change it.
    last_top: Option<BookTop>,
    /// The best bid/offer last published as a quote (venues whose quote
    /// comes from the book).
    last_quote: Option<Quote>,
}

/// Every book of one connection.
#[derive(Debug)]
pub(crate) struct Books {
    depth: usize,
    books: HashMap<Instrument, Tracked>,
}

impl Books {
    /// Books publishing `depth` levels per side.
    pub(crate) fn new(depth: usize) -> Self {
        Self {
            depth,
            books: HashMap::new(),
        }
    }

    /// The levels published per side.
    // Not every adapter needs it (those whose venue sends the whole book).
    #[allow(dead_code)]
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Starts an instrument over from a snapshot: the book is emptied and
    /// marked synced; the caller applies the snapshot's levels, then calls
    /// [`Books::publish`].
    pub(crate) fn begin_snapshot(&mut self, instrument: &Instrument) -> &mut Book {
        let t = self.books.entry(instrument.clone()).or_default();
        t.book.clear();
        t.synced = true;
        t.last_top = None;
        &mut t.book
    }

    /// The book of an instrument while it is synced, to apply an update to.
    pub(crate) fn synced_mut(&mut self, instrument: &Instrument) -> Option<&mut Book> {
        self.books
            .get_mut(instrument)
            .filter(|t| t.synced)
            .map(|t| &mut t.book)
    }

    /// Whether an instrument's book is synced.
    pub(crate) fn is_synced(&self, instrument: &Instrument) -> bool {
        self.books.get(instrument).is_some_and(|t| t.synced)
    }

    /// The tracked state of an instrument, if any.
    pub(crate) fn get(&self, instrument: &Instrument) -> Option<&Tracked> {
        self.books.get(instrument)
    }

    /// After a snapshot or an update was applied: a crossed book breaks
    /// (never published); otherwise the top N is published if it changed.
    /// A snapshot (`recovered`) also reports the book usable again.
    pub(crate) fn publish(
        &mut self,
        instrument: &Instrument,
        ts: u64,
        rx: u64,
        recovered: bool,
        out: &mut Output,
    ) {
        let Some(t) = self.books.get_mut(instrument) else {
            return;
        };
        if !t.synced {
            return;
        }
        if t.book.is_crossed() {
            self.invalidate(instrument, CROSSED, out);
            return;
        }
        if recovered {
            out.books.push((instrument.clone(), None));
        }
        // An empty book says nothing a client can use (a venue's snapshot
        // of a market not yet trading); the first levels will.
        if t.book.is_empty() {
            return;
        }
        let top = t.book.top(self.depth);
        if t.last_top.as_ref() == Some(&top) {
            return;
        }
        t.last_top = Some(top.clone());
        out.events.push(Event {
            instrument: instrument.clone(),
            ts,
            rx,
            payload: Payload::Book(top),
        });
    }

    /// Publishes the book's best bid and offer as a `quote` when both sides
    /// exist and it changed (for venues without a BBO stream). Call after
    /// [`Books::publish`]; does nothing for an unsynced or crossed book.
    pub(crate) fn publish_quote(
        &mut self,
        instrument: &Instrument,
        ts: u64,
        rx: u64,
        out: &mut Output,
    ) {
        let Some(t) = self.books.get_mut(instrument) else {
            return;
        };
        if !t.synced || t.book.is_crossed() {
            return;
        }
        let (Some((bid, bid_size)), Some((ask, ask_size))) = (t.book.best_bid(), t.book.best_ask())
        else {
            return;
        };
        let quote = Quote {
            bid,
            bid_size,
            ask,
            ask_size,
        };
        if t.last_quote.as_ref() == Some(&quote) {
            return;
        }
        t.last_quote = Some(quote.clone());
        out.events.push(Event {
            instrument: instrument.clone(),
            ts,
            rx,
            payload: Payload::Quote(quote),
        });
    }

    /// Marks an instrument's book broken with `reason` (reported once per
    /// break) and empties it until the next snapshot.
    pub(crate) fn invalidate(
        &mut self,
        instrument: &Instrument,
        reason: &'static str,
        out: &mut Output,
    ) {
        let t = self.books.entry(instrument.clone()).or_default();
        let was_synced = std::mem::replace(&mut t.synced, false);
        t.book.clear();
        t.last_top = None;
        t.last_quote = None;
        if was_synced {
            out.books.push((instrument.clone(), Some(reason)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_model::parse_decimal;

    fn d(s: &str) -> rust_decimal::Decimal {
        parse_decimal(s).expect("decimal")
    }

    #[test]
    fn publishes_changed_tops_and_breaks_on_cross() {
        let i = Instrument::parse("x:A-B").expect("instrument");
        let mut books = Books::new(2);
        let mut out = Output::default();
        let b = books.begin_snapshot(&i);
        b.apply_bid(d("1.00"), d("2"));
        b.apply_ask(d("1.10"), d("3"));
        books.publish(&i, 1, 2, true, &mut out);
        assert_eq!(out.books, vec![(i.clone(), None)]);
        assert_eq!(out.events.len(), 1);
        out.clear();
        // Same top again: nothing.
        books.publish(&i, 1, 2, false, &mut out);
        assert!(out.is_empty());
        books.publish_quote(&i, 1, 2, &mut out);
        assert!(matches!(&out.events[0].payload, Payload::Quote(q) if q.ask == d("1.10")));
        out.clear();
        let b = books.synced_mut(&i).expect("synced");
        b.apply_bid(d("1.20"), d("1"));
        books.publish(&i, 3, 4, false, &mut out);
        assert!(out.events.is_empty(), "a crossed book is never published");
        assert_eq!(out.books, vec![(i.clone(), Some(CROSSED))]);
        assert!(!books.is_synced(&i));
        assert!(books.synced_mut(&i).is_none());
        out.clear();
        books.invalidate(&i, "again", &mut out);
        assert!(out.books.is_empty(), "one report per break");
    }

    // ---- property: whatever the venue sends, no crossed book goes out ----

    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One step a venue adapter takes through the tracker.
    #[derive(Clone, Debug)]
    enum Step {
        /// A snapshot with these levels (price in tenths, size; bids then
        /// asks), then `publish(recovered)`.
        Snapshot(Vec<(i64, i64)>, Vec<(i64, i64)>),
        /// One level update (size 0 removes), then `publish` and
        /// `publish_quote`, as the adapters do per message.
        Level { bid: bool, price: i64, size: i64 },
        /// The adapter saw a sequence gap.
        Break,
    }

    fn levels() -> impl Strategy<Value = Vec<(i64, i64)>> {
        proptest::collection::vec((1i64..60, 0i64..5), 0..8)
    }

    /// Bid and ask prices overlap, so many updates would cross the book.
    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            1 => (levels(), levels()).prop_map(|(b, a)| Step::Snapshot(
                b,
                a.into_iter().map(|(p, s)| (p + 25, s)).collect(),
            )),
            8 => (any::<bool>(), 1i64..80, 0i64..5)
                .prop_map(|(bid, price, size)| Step::Level { bid, price, size }),
            1 => Just(Step::Break),
        ]
    }

    fn px(tenths: i64) -> rust_decimal::Decimal {
        rust_decimal::Decimal::new(tenths, 1)
    }

    fn apply(book: &mut Book, bid: bool, price: i64, size: i64) {
        let (p, s) = (px(price), rust_decimal::Decimal::from(size));
        if bid {
            book.apply_bid(p, s);
        } else {
            book.apply_ask(p, s);
        }
    }

    proptest! {
        /// Through the shared tracker, any sequence of snapshots, level
        /// updates and gaps: every published book top and quote is
        /// uncrossed, ordered and at most `depth` deep; the top is the
        /// model book's best `depth` levels; an update that crosses the book
        /// breaks it (`crossed_book`, reported once) instead of being
        /// published; and nothing is published between a break and the
        /// next snapshot.
        #[test]
        fn published_books_are_never_crossed(
            steps in proptest::collection::vec(step(), 1..200),
            depth in 1usize..6,
        ) {
            let i = Instrument::parse("x:A-B").expect("instrument");
            let mut books = Books::new(depth);
            // The model: price (tenths) -> size per side, while synced.
            let mut model: Option<(BTreeMap<i64, i64>, BTreeMap<i64, i64>)> = None;
            let mut out = Output::default();
            for step in steps {
                out.clear();
                match step {
                    Step::Snapshot(bids, asks) => {
                        let book = books.begin_snapshot(&i);
                        let (mut mb, mut ma) = (BTreeMap::new(), BTreeMap::new());
                        for (p, s) in bids {
                            apply(book, true, p, s);
                            if s == 0 { mb.remove(&p); } else { mb.insert(p, s); }
                        }
                        for (p, s) in asks {
                            apply(book, false, p, s);
                            if s == 0 { ma.remove(&p); } else { ma.insert(p, s); }
                        }
                        model = Some((mb, ma));
                        books.publish(&i, 1, 1, true, &mut out);
                        books.publish_quote(&i, 1, 1, &mut out);
                    }
                    Step::Level { bid, price, size } => {
                        if let Some(book) = books.synced_mut(&i) {
                            apply(book, bid, price, size);
                            if let Some((mb, ma)) = model.as_mut() {
                                let side = if bid { mb } else { ma };
                                if size == 0 { side.remove(&price); } else { side.insert(price, size); }
                            }
                        }
                        books.publish(&i, 1, 1, false, &mut out);
                        books.publish_quote(&i, 1, 1, &mut out);
                    }
                    Step::Break => {
                        books.invalidate(&i, SEQUENCE_GAP, &mut out);
                        model = None;
                    }
                }
                let crossed = model.as_ref().is_some_and(|(mb, ma)| {
                    matches!((mb.keys().next_back(), ma.keys().next()), (Some(b), Some(a)) if b >= a)
                });
                if crossed {
                    prop_assert!(out.events.is_empty(), "a crossed book published {:?}", out.events);
                    prop_assert_eq!(&out.books, &vec![(i.clone(), Some(CROSSED))]);
                    prop_assert!(!books.is_synced(&i));
                    model = None;
                    continue;
                }
                let Some((mb, ma)) = model.as_ref() else {
                    prop_assert!(out.events.is_empty(), "published while broken: {:?}", out.events);
                    prop_assert!(!books.is_synced(&i));
                    continue;
                };
                prop_assert!(books.is_synced(&i));
                for e in &out.events {
                    match &e.payload {
                        Payload::Book(top) => {
                            prop_assert!(top.bids.len() <= depth && top.asks.len() <= depth);
                            prop_assert!(top.bids.windows(2).all(|w| w[0].0 > w[1].0), "bids descend");
                            prop_assert!(top.asks.windows(2).all(|w| w[0].0 < w[1].0), "asks ascend");
                            if let (Some(b), Some(a)) = (top.bids.first(), top.asks.first()) {
                                prop_assert!(b.0 < a.0, "published top is crossed");
                            }
                            let want_bids: Vec<_> = mb.iter().rev().take(depth).map(|(p, s)| (px(*p), rust_decimal::Decimal::from(*s))).collect();
                            let want_asks: Vec<_> = ma.iter().take(depth).map(|(p, s)| (px(*p), rust_decimal::Decimal::from(*s))).collect();
                            prop_assert_eq!(&top.bids, &want_bids);
                            prop_assert_eq!(&top.asks, &want_asks);
                        }
                        Payload::Quote(q) => prop_assert!(q.bid < q.ask, "published quote is crossed"),
                        other => prop_assert!(false, "unexpected payload {:?}", other),
                    }
                }
            }
        }
    }
}
