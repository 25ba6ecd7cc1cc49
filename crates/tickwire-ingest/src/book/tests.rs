//! Tests of order-book upkeep: the book's level rules, Kraken's documented
//! checksum vector, one table per sequence checker (a row per rule), and
//! property tests against a naive Vec-of-levels model.

use proptest::prelude::*;
use tickwire_model::parse_decimal;

use super::*;

fn dec(text: &str) -> Decimal {
    parse_decimal(text).unwrap()
}

fn level(price: &str, size: &str) -> Level {
    (dec(price), dec(size))
}

/// Levels as text, so scale is compared too (`Decimal`'s `==` ignores it).
fn text(levels: &[Level]) -> Vec<(String, String)> {
    levels
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

fn book_of(bids: &[Level], asks: &[Level]) -> Book {
    let mut book = Book::new();
    for &(p, s) in bids {
        book.apply_bid(p, s);
    }
    for &(p, s) in asks {
        book.apply_ask(p, s);
    }
    book
}

// ---- Book ----

#[test]
fn zero_size_of_any_scale_removes_the_level() {
    for zero in ["0", "0.0", "0.00000000"] {
        let mut book = Book::new();
        book.apply_bid(dec("100.5"), dec("1.00000000"));
        book.apply_ask(dec("101.5"), dec("2"));
        book.apply_bid(dec("100.5"), dec(zero));
        book.apply_ask(dec("101.5"), dec(zero));
        assert!(book.is_empty(), "{zero}");
    }
}

#[test]
fn removing_an_absent_level_is_a_no_op() {
    let mut book = book_of(&[level("100", "1")], &[]);
    book.apply_bid(dec("99"), dec("0"));
    book.apply_ask(dec("101"), dec("0.00"));
    assert_eq!(text(&book.top(5).bids), text(&[level("100", "1")]));
    assert_eq!((book.bid_len(), book.ask_len()), (1, 0));
}

#[test]
fn a_level_keeps_the_text_it_was_last_given() {
    let mut book = Book::new();
    book.apply_ask(dec("45283.5"), dec("0.1"));
    book.apply_ask(dec("45283.50"), dec("0.10000000"));
    assert_eq!(book.ask_len(), 1);
    assert_eq!(
        text(&book.top(1).asks),
        text(&[level("45283.50", "0.10000000")])
    );
}

#[test]
fn top_orders_bids_down_and_asks_up() {
    let book = book_of(
        &[level("99", "1"), level("101", "2"), level("100", "3")],
        &[level("104", "1"), level("102", "2"), level("103", "3")],
    );
    let top = book.top(2);
    assert_eq!(top.bids, vec![level("101", "2"), level("100", "3")]);
    assert_eq!(top.asks, vec![level("102", "2"), level("103", "3")]);
    assert_eq!(book.best_bid(), Some(level("101", "2")));
    assert_eq!(book.best_ask(), Some(level("102", "2")));
    assert_eq!(book.top(10).bids.len(), 3);
}

#[test]
fn truncate_keeps_the_best_levels_per_side() {
    let mut book = book_of(
        &[level("99", "1"), level("101", "2"), level("100", "3")],
        &[level("104", "1"), level("102", "2"), level("103", "3")],
    );
    book.truncate(2);
    assert_eq!(book.bids().collect::<Vec<_>>(), book.top(2).bids);
    assert_eq!(book.asks().collect::<Vec<_>>(), book.top(2).asks);
    assert_eq!((book.bid_len(), book.ask_len()), (2, 2));
    assert_eq!(book.best_bid(), Some(level("101", "2")));
    book.truncate(0);
    assert!(book.is_empty());
}

#[test]
fn crossed_means_best_bid_at_or_above_best_ask() {
    let cases = [
        ("empty", book_of(&[], &[]), false),
        ("one side", book_of(&[level("100", "1")], &[]), false),
        (
            "spread",
            book_of(&[level("100", "1")], &[level("101", "1")]),
            false,
        ),
        (
            "locked",
            book_of(&[level("100", "1")], &[level("100.00", "1")]),
            true,
        ),
        (
            "crossed",
            book_of(&[level("102", "1")], &[level("101", "1")]),
            true,
        ),
    ];
    for (name, book, crossed) in cases {
        assert_eq!(book.is_crossed(), crossed, "{name}");
    }
}

#[test]
fn clear_empties_both_sides() {
    let mut book = book_of(&[level("1", "1")], &[level("2", "1")]);
    book.clear();
    assert!(book.is_empty());
    assert_eq!(book.best_bid(), None);
    assert_eq!(book.best_ask(), None);
}

// ---- Kraken checksum ----

/// Kraken's documented BTC/USD example (`price:qty`, best first).
const KRAKEN_ASKS: &str = "45285.2:0.00100000 45286.4:1.54571953 45286.6:1.54571109 45289.6:1.54560911 45290.2:0.15890660 45291.8:1.54553491 45294.7:0.04454749 45296.1:0.35380000 45297.5:0.09945542 45299.5:0.18772827";
const KRAKEN_BIDS: &str = "45283.5:0.10000000 45283.4:1.54582015 45282.1:0.10000000 45281.0:0.10000000 45280.3:1.54592586 45279.0:0.07990000 45277.6:0.03310103 45277.5:0.30000000 45277.3:1.54602737 45276.6:0.15445238";

fn levels(list: &str) -> Vec<Level> {
    list.split(' ')
        .map(|pair| {
            let (p, q) = pair.split_once(':').unwrap();
            level(p, q)
        })
        .collect()
}

#[test]
fn kraken_checksum_matches_documented_vector() {
    let book = book_of(&levels(KRAKEN_BIDS), &levels(KRAKEN_ASKS));
    assert_eq!(kraken_checksum(&book), 3_310_070_434);
}

#[test]
fn kraken_checksum_differs_without_trailing_zeros() {
    // As a float renderer writes them: `0.1`, but `45281.0` keeps one zero.
    let float_text = |(p, q): Level| {
        let shorten = |d: Decimal| {
            let mut d = d.normalize();
            if d.scale() == 0 {
                d.rescale(1);
            }
            d
        };
        (shorten(p), shorten(q))
    };
    let bids: Vec<Level> = levels(KRAKEN_BIDS).into_iter().map(float_text).collect();
    let asks: Vec<Level> = levels(KRAKEN_ASKS).into_iter().map(float_text).collect();
    assert_eq!(bids[0].1.to_string(), "0.1");
    assert_eq!(bids[3].0.to_string(), "45281.0");
    assert_eq!(kraken_checksum(&book_of(&bids, &asks)), 1_604_409_348);
}

#[test]
fn kraken_checksum_covers_only_the_top_ten() {
    let mut book = book_of(&levels(KRAKEN_BIDS), &levels(KRAKEN_ASKS));
    book.apply_bid(dec("45000.0"), dec("9.00000000"));
    book.apply_ask(dec("46000.0"), dec("9.00000000"));
    assert_eq!(kraken_checksum(&book), 3_310_070_434);
    book.apply_bid(dec("45283.5"), dec("0.20000000"));
    assert_ne!(kraken_checksum(&book), 3_310_070_434);
}

#[test]
fn kraken_checksum_of_an_empty_book_is_crc_of_nothing() {
    assert_eq!(kraken_checksum(&Book::new()), 0);
}

// ---- Binance ----

fn diff(first: u64, last: u64) -> BinanceDiff {
    BinanceDiff {
        first_update_id: first,
        final_update_id: last,
        // The bid at `last` tells which diffs reached the book.
        bids: vec![(Decimal::from(last), Decimal::ONE)],
        asks: vec![],
    }
}

fn snapshot(last_update_id: u64) -> BinanceSnapshot {
    BinanceSnapshot {
        last_update_id,
        bids: vec![(Decimal::from(last_update_id), Decimal::TWO)],
        asks: vec![(Decimal::from(1_000_000u64), Decimal::ONE)],
    }
}

enum In {
    Diff(u64, u64),
    Snap(u64),
}

use BinanceResync::{Gap, Overflow, SnapshotTooOld};
use BinanceVerdict::{Applied, Buffered, Resync, Stale};
use In::{Diff, Snap};

struct BinanceCase {
    rule: &'static str,
    max_buffered: usize,
    steps: Vec<(In, BinanceVerdict)>,
    /// `last_update_id()` after the steps.
    local: Option<u64>,
    buffered: usize,
    /// Bid prices in the book after the steps (snapshot and diff markers).
    bids: Vec<u64>,
}

#[test]
fn binance_sync_rules() {
    let too_old = |last_update_id, first_update_id| {
        Resync(SnapshotTooOld {
            last_update_id,
            first_update_id,
        })
    };
    let gap = |expected, first_update_id| {
        Resync(Gap {
            expected,
            first_update_id,
        })
    };
    let cases = [
        BinanceCase {
            rule: "1: diffs before a snapshot are buffered",
            max_buffered: 10,
            steps: vec![(Diff(101, 105), Buffered), (Diff(106, 110), Buffered)],
            local: None,
            buffered: 2,
            bids: vec![],
        },
        BinanceCase {
            rule: "1: overflow drops the buffer and keeps the newest diff",
            max_buffered: 2,
            steps: vec![
                (Diff(101, 105), Buffered),
                (Diff(106, 110), Buffered),
                (Diff(111, 115), Resync(Overflow { max_buffered: 2 })),
                (Snap(108), too_old(108, 111)),
                (Snap(112), Applied),
            ],
            local: Some(115),
            buffered: 0,
            bids: vec![115, 112],
        },
        BinanceCase {
            rule: "2: a snapshot older than the first buffered U is refused, buffer kept",
            max_buffered: 10,
            steps: vec![(Diff(101, 105), Buffered), (Snap(99), too_old(99, 101))],
            local: None,
            buffered: 1,
            bids: vec![],
        },
        BinanceCase {
            rule: "2: a snapshot at U - 1 is not too old (it straddles)",
            max_buffered: 10,
            steps: vec![(Diff(101, 105), Buffered), (Snap(100), Applied)],
            local: Some(105),
            buffered: 0,
            bids: vec![105, 100],
        },
        BinanceCase {
            rule: "3: buffered diffs with u <= lastUpdateId drop; the first survivor straddles",
            max_buffered: 10,
            steps: vec![
                (Diff(90, 95), Buffered),
                (Diff(96, 100), Buffered),
                (Diff(101, 105), Buffered),
                (Diff(106, 110), Buffered),
                (Snap(103), Applied),
            ],
            local: Some(110),
            buffered: 0,
            bids: vec![110, 105, 103],
        },
        BinanceCase {
            rule: "3: every buffered diff stale leaves the snapshot book, not yet bridged",
            max_buffered: 10,
            steps: vec![
                (Diff(96, 100), Buffered),
                (Snap(120), Applied),
                (Diff(122, 125), too_old(120, 122)),
            ],
            local: None,
            buffered: 1,
            bids: vec![],
        },
        BinanceCase {
            rule: "3: a skip inside the buffer is a gap; the rest stays buffered",
            max_buffered: 10,
            steps: vec![
                (Diff(101, 105), Buffered),
                (Diff(110, 112), Buffered),
                (Diff(113, 114), Buffered),
                (Snap(100), gap(106, 110)),
                (Snap(111), Applied),
            ],
            local: Some(114),
            buffered: 0,
            bids: vec![114, 112, 111],
        },
        BinanceCase {
            rule: "3: a snapshot with an empty buffer loads; the first diff must straddle",
            max_buffered: 10,
            steps: vec![(Snap(100), Applied), (Diff(99, 101), Applied)],
            local: Some(101),
            buffered: 0,
            bids: vec![101, 100],
        },
        BinanceCase {
            rule: "4: before bridging, U > local + 1 means the snapshot is too old",
            max_buffered: 10,
            steps: vec![
                (Snap(100), Applied),
                (Diff(102, 103), too_old(100, 102)),
                (Diff(104, 104), Buffered),
            ],
            local: None,
            buffered: 2,
            bids: vec![],
        },
        BinanceCase {
            rule: "4: contiguous and overlapping diffs apply",
            max_buffered: 10,
            steps: vec![
                (Snap(100), Applied),
                (Diff(101, 105), Applied),
                (Diff(106, 106), Applied),
                (Diff(104, 108), Applied),
            ],
            local: Some(108),
            buffered: 0,
            bids: vec![108, 106, 105, 100],
        },
        BinanceCase {
            rule: "4: u <= local is stale",
            max_buffered: 10,
            steps: vec![
                (Snap(100), Applied),
                (Diff(90, 100), Stale),
                (Diff(101, 105), Applied),
                (Diff(103, 105), Stale),
            ],
            local: Some(105),
            buffered: 0,
            bids: vec![105, 100],
        },
        BinanceCase {
            rule: "4: after bridging, U > local + 1 is a gap; the diff starts a new buffer",
            max_buffered: 10,
            steps: vec![
                (Snap(100), Applied),
                (Diff(101, 105), Applied),
                (Diff(107, 110), gap(106, 107)),
                (Diff(111, 112), Buffered),
                (Snap(106), Applied),
            ],
            local: Some(112),
            buffered: 0,
            bids: vec![112, 110, 106],
        },
        BinanceCase {
            rule: "5: a snapshot no newer than the book is stale; a newer one replaces it",
            max_buffered: 10,
            steps: vec![
                (Snap(100), Applied),
                (Diff(101, 105), Applied),
                (Snap(105), Stale),
                (Snap(120), Applied),
                (Diff(110, 120), Stale),
                (Diff(121, 121), Applied),
            ],
            local: Some(121),
            buffered: 0,
            bids: vec![121, 120],
        },
    ];
    for case in cases {
        let mut sync = BinanceSync::with_max_buffered(case.max_buffered);
        for (i, (input, expected)) in case.steps.into_iter().enumerate() {
            let got = match input {
                Diff(first, last) => sync.feed_diff(diff(first, last)),
                Snap(id) => sync.feed_snapshot(snapshot(id)),
            };
            assert_eq!(got, expected, "{}: step {i}", case.rule);
        }
        assert_eq!(sync.last_update_id(), case.local, "{}", case.rule);
        assert_eq!(sync.buffered(), case.buffered, "{}", case.rule);
        let bids: Vec<Decimal> = sync.book().bids().map(|(p, _)| p).collect();
        let expected: Vec<Decimal> = case.bids.into_iter().map(Decimal::from).collect();
        assert_eq!(bids, expected, "{}", case.rule);
    }
}

#[test]
fn binance_sync_applies_levels_in_order_and_resets() {
    let mut sync = BinanceSync::new();
    let snap = BinanceSnapshot {
        last_update_id: 10,
        bids: vec![level("70213.44000000", "1.10000000")],
        asks: vec![level("70213.45000000", "0.00421000")],
    };
    let update = BinanceDiff {
        first_update_id: 11,
        final_update_id: 12,
        bids: vec![
            level("70213.44000000", "1.20800000"),
            level("70210.00000000", "0.00000000"),
        ],
        asks: vec![
            level("70213.46000000", "2.00000000"),
            level("70213.45000000", "0.00000000"),
        ],
    };
    assert_eq!(sync.feed_diff(update), Buffered);
    assert_eq!(sync.feed_snapshot(snap), Applied);
    let top = sync.book().top(5);
    assert_eq!(
        text(&top.bids),
        text(&[level("70213.44000000", "1.20800000")])
    );
    assert_eq!(
        text(&top.asks),
        text(&[level("70213.46000000", "2.00000000")])
    );
    sync.reset();
    assert!(sync.book().is_empty());
    assert_eq!(sync.last_update_id(), None);
    assert_eq!(sync.feed_diff(diff(13, 14)), Buffered);
}

// ---- OKX and Bybit ----

#[test]
fn okx_seq_rules() {
    use SeqVerdict::{Apply, Gap, Ignore, Reset};
    let gap = |last_seq_id, prev_seq_id| {
        Gap(SeqGap::Okx {
            last_seq_id,
            prev_seq_id,
        })
    };
    // (rule, [(prevSeqId, seqId, verdict)], last seqId after)
    let cases = [
        (
            "2: an update before a snapshot is ignored",
            vec![(10, 15, Ignore)],
            None,
        ),
        (
            "1: a snapshot (prevSeqId -1) resets",
            vec![(-1, 10, Reset)],
            Some(10),
        ),
        (
            "3: prevSeqId == last applies (ids need not be consecutive)",
            vec![(-1, 10, Reset), (10, 15, Apply), (15, 40, Apply)],
            Some(40),
        ),
        (
            "3: the empty keep-alive (prevSeqId == seqId == last) applies",
            vec![
                (-1, 10, Reset),
                (10, 15, Apply),
                (15, 15, Apply),
                (15, 16, Apply),
            ],
            Some(16),
        ),
        (
            "3: a reset (seqId < prevSeqId) continues from the new seqId",
            vec![
                (-1, 10, Reset),
                (10, 15, Apply),
                (15, 3, Apply),
                (3, 5, Apply),
            ],
            Some(5),
        ),
        (
            "4: any other prevSeqId is a gap; updates are ignored until a snapshot",
            vec![
                (-1, 10, Reset),
                (12, 20, gap(10, 12)),
                (20, 21, Ignore),
                (-1, 30, Reset),
                (30, 31, Apply),
            ],
            Some(31),
        ),
        (
            "4: a keep-alive that does not match last is a gap",
            vec![(-1, 15, Reset), (14, 14, gap(15, 14))],
            None,
        ),
        (
            "4: a reset whose prevSeqId does not match last is a gap",
            vec![(-1, 15, Reset), (16, 3, gap(15, 16))],
            None,
        ),
    ];
    for (rule, steps, last) in cases {
        let mut seq = OkxSeq::new();
        for (i, (prev, id, expected)) in steps.into_iter().enumerate() {
            assert_eq!(seq.feed(prev, id), expected, "{rule}: step {i}");
        }
        assert_eq!(seq.last_seq_id(), last, "{rule}");
    }
}

#[test]
fn bybit_seq_rules() {
    use SeqVerdict::{Apply, Gap, Ignore, Reset};
    #[derive(Clone, Copy)]
    enum Msg {
        Snap(u64),
        Delta(u64),
    }
    use Msg::{Delta, Snap};
    let gap = |last_u, u| Gap(SeqGap::Bybit { last_u, u });
    let cases = [
        (
            "3: a delta before a snapshot is ignored",
            vec![(Delta(5), Ignore)],
            None,
        ),
        (
            "1: every snapshot resets",
            vec![(Snap(100), Reset), (Delta(101), Apply), (Snap(50), Reset)],
            Some(50),
        ),
        (
            "1: a re-sent snapshot with the same u is fine",
            vec![(Snap(100), Reset), (Snap(100), Reset), (Delta(101), Apply)],
            Some(101),
        ),
        (
            "2: u == 1 resets, with or without a snapshot before",
            vec![
                (Delta(1), Reset),
                (Delta(2), Apply),
                (Delta(1), Reset),
                (Delta(2), Apply),
            ],
            Some(2),
        ),
        (
            "4: u == last + 1 applies",
            vec![(Snap(100), Reset), (Delta(101), Apply), (Delta(102), Apply)],
            Some(102),
        ),
        (
            "4: a skipped u is a gap; deltas are ignored until a snapshot",
            vec![
                (Snap(100), Reset),
                (Delta(102), gap(100, 102)),
                (Delta(103), Ignore),
                (Snap(103), Reset),
                (Delta(104), Apply),
            ],
            Some(104),
        ),
        (
            "4: a repeated delta is a gap",
            vec![
                (Snap(100), Reset),
                (Delta(101), Apply),
                (Delta(101), gap(101, 101)),
            ],
            None,
        ),
        (
            "4: an older delta is a gap",
            vec![(Snap(100), Reset), (Delta(99), gap(100, 99))],
            None,
        ),
    ];
    for (rule, steps, last) in cases {
        let mut seq = BybitSeq::new();
        for (i, (msg, expected)) in steps.into_iter().enumerate() {
            let got = match msg {
                Snap(u) => seq.feed_snapshot(u),
                Delta(u) => seq.feed_delta(u),
            };
            assert_eq!(got, expected, "{rule}: step {i}");
        }
        assert_eq!(seq.last_u(), last, "{rule}");
    }
}

#[test]
fn seq_reset_forgets_the_chain() {
    let mut okx = OkxSeq::new();
    okx.feed(-1, 10);
    okx.reset();
    assert_eq!(okx.feed(10, 11), SeqVerdict::Ignore);
    let mut bybit = BybitSeq::new();
    bybit.feed_snapshot(10);
    bybit.reset();
    assert_eq!(bybit.feed_delta(11), SeqVerdict::Ignore);
}

// ---- Properties, against a naive model ----

/// The book as two unordered Vecs: the obvious, slow semantics.
#[derive(Default)]
struct Naive {
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Naive {
    fn apply(&mut self, op: Op) {
        let side = if op.bid {
            &mut self.bids
        } else {
            &mut self.asks
        };
        side.retain(|(p, _)| *p != op.price);
        if !op.size.is_zero() {
            side.push((op.price, op.size));
        }
    }

    fn sorted(&self) -> (Vec<Level>, Vec<Level>) {
        let mut bids = self.bids.clone();
        bids.sort_by_key(|l| std::cmp::Reverse(l.0));
        let mut asks = self.asks.clone();
        asks.sort_by_key(|l| l.0);
        (bids, asks)
    }

    fn truncate(&mut self, depth: usize) {
        let (mut bids, mut asks) = self.sorted();
        bids.truncate(depth);
        asks.truncate(depth);
        (self.bids, self.asks) = (bids, asks);
    }

    /// Kraken's recipe on text, independently of `kraken_checksum`.
    fn kraken_checksum(&self) -> u32 {
        let (bids, asks) = self.sorted();
        let mut s = String::new();
        for (p, q) in asks.iter().take(10).chain(bids.iter().take(10)) {
            for v in [p, q] {
                s.push_str(v.to_string().replace('.', "").trim_start_matches('0'));
            }
        }
        crc32fast::hash(s.as_bytes())
    }
}

#[derive(Clone, Copy, Debug)]
struct Op {
    bid: bool,
    price: Decimal,
    size: Decimal,
}

fn apply_op(book: &mut Book, op: Op) {
    if op.bid {
        book.apply_bid(op.price, op.size);
    } else {
        book.apply_ask(op.price, op.size);
    }
}

/// A price in tenths from `ticks`, written with 1 to 3 decimals, so the same
/// value comes back with different scales.
fn price(ticks: std::ops::Range<i64>) -> impl Strategy<Value = Decimal> {
    (ticks, 1u32..4).prop_map(|(t, scale)| {
        let mut d = Decimal::new(t, 1);
        d.rescale(scale);
        d
    })
}

/// A size, zero (with any scale) about a quarter of the time.
fn size() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        1 => (0u32..9).prop_map(|scale| Decimal::new(0, scale)),
        3 => (1i64..100_000, 0u32..9).prop_map(|(m, scale)| Decimal::new(m, scale)),
    ]
}

/// Bids mostly below asks, overlapping enough that about 40 % of books
/// built from 0-200 ops end up crossed.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (price(10..260), size()).prop_map(|(price, size)| Op {
            bid: true,
            price,
            size
        }),
        (price(250..500), size()).prop_map(|(price, size)| Op {
            bid: false,
            price,
            size
        }),
    ]
}

proptest! {
    #[test]
    fn top_equals_naive_recomputation(ops in prop::collection::vec(op(), 0..300), n in 0usize..30) {
        let mut book = Book::new();
        let mut naive = Naive::default();
        for op in ops {
            apply_op(&mut book, op);
            naive.apply(op);
        }
        let (bids, asks) = naive.sorted();
        let top = book.top(n);
        prop_assert_eq!(text(&top.bids), text(&bids[..n.min(bids.len())]));
        prop_assert_eq!(text(&top.asks), text(&asks[..n.min(asks.len())]));
        prop_assert_eq!((book.bid_len(), book.ask_len()), (bids.len(), asks.len()));
        let crossed = matches!((bids.first(), asks.first()), (Some(b), Some(a)) if b.0 >= a.0);
        prop_assert_eq!(book.is_crossed(), crossed);
    }

    #[test]
    fn kraken_checksum_incremental_equals_rebuilt(
        messages in prop::collection::vec(prop::collection::vec(op(), 1..8), 1..60),
        depth in 1usize..15,
    ) {
        let mut book = Book::new();
        let mut naive = Naive::default();
        for message in messages {
            for op in message {
                apply_op(&mut book, op);
                naive.apply(op);
            }
            book.truncate(depth);
            naive.truncate(depth);
        }
        // The same final levels, inserted from scratch in reverse order.
        let (bids, asks) = naive.sorted();
        let mut rebuilt = Book::new();
        for &(p, s) in bids.iter().rev() {
            rebuilt.apply_bid(p, s);
        }
        for &(p, s) in asks.iter().rev() {
            rebuilt.apply_ask(p, s);
        }
        prop_assert_eq!(kraken_checksum(&book), kraken_checksum(&rebuilt));
        prop_assert_eq!(kraken_checksum(&book), naive.kraken_checksum());
        prop_assert_eq!(text(&book.top(depth).bids), text(&bids));
        prop_assert_eq!(text(&book.top(depth).asks), text(&asks));
    }

    #[test]
    fn top_of_an_uncrossed_book_is_uncrossed_and_ordered(
        ops in prop::collection::vec(op(), 0..200),
        n in 1usize..20,
    ) {
        let mut book = Book::new();
        for op in ops {
            apply_op(&mut book, op);
        }
        let top = book.top(n);
        prop_assert!(top.bids.windows(2).all(|w| w[0].0 > w[1].0));
        prop_assert!(top.asks.windows(2).all(|w| w[0].0 < w[1].0));
        if !book.is_crossed() {
            if let (Some(bid), Some(ask)) = (top.bids.first(), top.asks.first()) {
                prop_assert!(bid.0 < ask.0);
            }
        }
    }
}
