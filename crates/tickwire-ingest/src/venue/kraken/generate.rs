//! The synthetic Kraken capture (`feeds/kraken/capture.jsonl`): what a
//! Kraken v2 session for `feeds/kraken/feed.toml` looks like after connect
//! and subscribe, generated from a fixed seed.
//!
//! The market: each pair keeps a true book about 20 levels deep per side,
//! and the client sees its top 10 the way Kraken sends a depth-10
//! subscription: levels that change or come into the window are sent,
//! levels removed from the book are sent with qty 0, levels merely pushed
//! out of the window are not sent (the client truncates). Every book frame
//! carries the correct checksum except one, deliberately wrong, which a
//! real session follows with the client's resubscribe: an unsubscribe
//! ack, a subscribe ack and a fresh snapshot.

use std::collections::BTreeMap;

use tickwire_model::{Instrument, parse_decimal};

use super::fake::{book_frame, status_frame};
use crate::adapter::parse_rfc3339_us;
use crate::book::{Book, kraken_checksum};
use crate::capture::{Capture, CaptureFrame, CaptureHeader, Source};
use crate::feed::{FeedInstrument, VenueKind};
use crate::rng::Rng;

const SEED: u64 = 0x6b72_616b_656e_0002;
const START: &str = "2026-11-02T00:00:00Z";
/// Length of the trading part, µs.
const DURATION_US: u64 = 120_000_000;
const STEP_US: u64 = 50_000;
/// Levels per side of the true book.
const DEEP: usize = 20;
/// The subscribed depth: what the client sees.
const DEPTH: usize = 10;
/// When the deliberately wrong checksum goes out, µs after start.
const FAULT_AT_US: u64 = 45_000_000;
/// A quiet spell (no trading) during which Kraken sends heartbeats.
const QUIET_US: (u64, u64) = (70_000_000, 73_500_000);

struct Pair {
    native: &'static str,
    /// Decimals of prices (BTC/USD 1, ETH/EUR 2).
    dp: u32,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// Typical level size, in 1e-8 units.
    lot: i64,
    last: i64,
    open: i64,
    high: i64,
    low: i64,
    volume: i64,
    trade_id: u64,
    last_bbo: Option<(i64, i64, i64, i64)>,
}

type Top = Vec<(i64, i64)>;

impl Pair {
    fn new(native: &'static str, dp: u32, mid: i64, lot: i64, rng: &mut Rng) -> Self {
        let mut p = Self {
            native,
            dp,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            lot,
            last: mid,
            open: mid - mid / 120,
            high: mid + mid / 70,
            low: mid - mid / 90,
            volume: lot * 77_161 + 12_345_678,
            trade_id: 84_411_203,
            last_bbo: None,
        };
        p.bids.insert(mid - 1, p.size(rng));
        p.asks.insert(mid + 1, p.size(rng));
        p.replenish(rng);
        p
    }

    fn size(&self, rng: &mut Rng) -> i64 {
        // Some round sizes, as real books have (they keep trailing zeros).
        if rng.chance(250) {
            return self.lot * rng.range(1, 20) / 2;
        }
        rng.range(self.lot / 50, self.lot * 4).max(1)
    }

    fn replenish(&mut self, rng: &mut Rng) {
        while self.bids.len() < DEEP {
            let deepest = self.bids.keys().next().copied().unwrap_or(self.last);
            let s = self.size(rng);
            self.bids.insert(deepest - rng.range(1, 4), s);
        }
        while self.asks.len() < DEEP {
            let deepest = self.asks.keys().next_back().copied().unwrap_or(self.last);
            let s = self.size(rng);
            self.asks.insert(deepest + rng.range(1, 4), s);
        }
    }

    fn tops(&self) -> (Top, Top) {
        (
            self.bids
                .iter()
                .rev()
                .take(DEPTH)
                .map(|(&p, &q)| (p, q))
                .collect(),
            self.asks
                .iter()
                .take(DEPTH)
                .map(|(&p, &q)| (p, q))
                .collect(),
        )
    }

    fn best(&self) -> (i64, i64) {
        let bid = self
            .bids
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.last - 1);
        let ask = self.asks.keys().next().copied().unwrap_or(self.last + 1);
        (bid, ask)
    }

    /// One random change to the book (adds, cancels, size changes).
    fn churn(&mut self, rng: &mut Rng) {
        let bid_side = rng.chance(500);
        let (bid, ask) = self.best();
        let spread = ask - bid;
        let r = rng.below(100);
        if spread > 1 && (spread > 8 || r < 20) {
            // Someone improves the price.
            let s = self.size(rng);
            if bid_side {
                self.bids.insert(rng.range(bid + 1, ask - 1), s);
            } else {
                self.asks.insert(rng.range(bid + 1, ask - 1), s);
            }
            return;
        }
        let side = if bid_side {
            &mut self.bids
        } else {
            &mut self.asks
        };
        let top: Vec<i64> = if bid_side {
            side.keys().rev().take(DEPTH).copied().collect()
        } else {
            side.keys().take(DEPTH).copied().collect()
        };
        let pick = top[rng.below(top.len() as u64) as usize];
        if r < 55 {
            let s = self.size(rng);
            let side = if bid_side {
                &mut self.bids
            } else {
                &mut self.asks
            };
            side.insert(pick, s);
        } else if r < 80 {
            side.remove(&pick);
        } else {
            // A new level between the best and the 10th.
            let (lo, hi) = (
                top[0].min(top[top.len() - 1]),
                top[0].max(top[top.len() - 1]),
            );
            let price = rng.range(lo, hi);
            let s = self.size(rng);
            let side = if bid_side {
                &mut self.bids
            } else {
                &mut self.asks
            };
            side.entry(price).or_insert(s);
        }
        self.replenish(rng);
    }

    /// A taker trade against the best level; returns (buy, price, qty).
    fn trade(&mut self, rng: &mut Rng) -> (bool, i64, i64) {
        let buy = rng.chance(500);
        let side = if buy { &mut self.asks } else { &mut self.bids };
        let entry = if buy {
            side.iter().next()
        } else {
            side.iter().next_back()
        };
        let (price, avail) = entry.map(|(&p, &q)| (p, q)).unwrap_or((self.last, 1));
        let qty = if rng.chance(300) {
            avail
        } else {
            rng.range(1, avail.max(1))
        };
        if qty >= avail {
            side.remove(&price);
        } else {
            side.insert(price, avail - qty);
        }
        self.trade_id += 1;
        self.last = price;
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += qty;
        self.replenish(rng);
        (buy, price, qty)
    }

    fn price(&self, ticks: i64) -> String {
        fixed(ticks, self.dp)
    }

    /// The checksum of the visible top 10 (via the adapter's own book, so
    /// the text is exactly what the frame says).
    fn checksum(&self) -> u32 {
        let mut book = Book::new();
        let (bids, asks) = self.tops();
        for (p, q) in bids {
            book.apply_bid(dec(&self.price(p)), dec(&fixed(q, 8)));
        }
        for (p, q) in asks {
            book.apply_ask(dec(&self.price(p)), dec(&fixed(q, 8)));
        }
        kraken_checksum(&book)
    }

    fn levels_json(&self, levels: &[(i64, i64)]) -> String {
        let items: Vec<String> = levels
            .iter()
            .map(|&(p, q)| format!(r#"{{"price":{},"qty":{}}}"#, self.price(p), fixed(q, 8)))
            .collect();
        items.join(",")
    }

    fn update_frame(
        &self,
        bids: &[(i64, i64)],
        asks: &[(i64, i64)],
        checksum: u32,
        ts: u64,
    ) -> String {
        format!(
            r#"{{"channel":"book","type":"update","data":[{{"symbol":"{}","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"{}"}}]}}"#,
            self.native,
            self.levels_json(bids),
            self.levels_json(asks),
            rfc3339(ts)
        )
    }

    fn snapshot_frame(&self, ts: u64) -> String {
        let (bids, asks) = self.tops();
        let conv = |l: Top| -> Vec<(rust_decimal::Decimal, rust_decimal::Decimal)> {
            l.into_iter()
                .map(|(p, q)| (dec(&self.price(p)), dec(&fixed(q, 8))))
                .collect()
        };
        book_frame(
            "snapshot",
            self.native,
            conv(bids).into_iter(),
            conv(asks).into_iter(),
            self.checksum(),
            &rfc3339(ts),
        )
    }

    /// A ticker frame if the best bid/offer changed since the last one.
    fn ticker_frame(&mut self, kind: &str, ts: u64) -> Option<String> {
        let (bids, asks) = self.tops();
        let bbo = (
            bids.first()?.0,
            bids.first()?.1,
            asks.first()?.0,
            asks.first()?.1,
        );
        if kind == "update" && self.last_bbo == Some(bbo) {
            return None;
        }
        self.last_bbo = Some(bbo);
        let change = self.last - self.open;
        let pct = change * 10_000 / self.open;
        Some(format!(
            r#"{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"{}","bid":{},"bid_qty":{},"ask":{},"ask_qty":{},"last":{},"volume":{},"vwap":{},"low":{},"high":{},"change":{},"change_pct":{},"timestamp":"{}"}}]}}"#,
            self.native,
            self.price(bbo.0),
            fixed(bbo.1, 8),
            self.price(bbo.2),
            fixed(bbo.3, 8),
            self.price(self.last),
            fixed(self.volume, 8),
            self.price((self.open + self.last) / 2),
            self.price(self.low),
            self.price(self.high),
            self.price(change),
            fixed(pct, 2),
            rfc3339(ts)
        ))
    }

    fn trade_frame(&self, buy: bool, price: i64, qty: i64, ts: u64, rng: &mut Rng) -> String {
        format!(
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{}","side":"{}","price":{},"qty":{},"ord_type":"{}","trade_id":{},"timestamp":"{}"}}]}}"#,
            self.native,
            if buy { "buy" } else { "sell" },
            self.price(price),
            fixed(qty, 8),
            if rng.chance(700) { "market" } else { "limit" },
            self.trade_id,
            rfc3339(ts)
        )
    }
}

fn dec(text: &str) -> rust_decimal::Decimal {
    // The generator writes these itself: always valid.
    parse_decimal(text).unwrap_or_default()
}

/// An integer of units written with `dp` decimals (`fixed(-5, 1)` is `-0.5`).
fn fixed(units: i64, dp: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let n = units.unsigned_abs();
    if dp == 0 {
        return format!("{sign}{n}");
    }
    let scale = 10u64.pow(dp);
    format!(
        "{sign}{}.{:0width$}",
        n / scale,
        n % scale,
        width = dp as usize
    )
}

/// The levels of the visible window that a depth-10 client must be sent:
/// removed levels as qty 0, new or changed ones with their size.
fn diff(before: &[(i64, i64)], side: &BTreeMap<i64, i64>, after: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = before
        .iter()
        .filter(|(p, _)| !side.contains_key(p))
        .map(|&(p, _)| (p, 0))
        .collect();
    out.extend(after.iter().filter(|l| !before.contains(l)));
    out
}

/// RFC 3339 with µs, UTC (`2026-11-02T00:00:01.708706Z`).
pub(crate) fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        us % 1_000_000
    )
}

/// Frames in venue time order; receive times are given at the end.
struct Tape {
    frames: Vec<(u64, String)>,
}

impl Tape {
    fn push(&mut self, ts: u64, frame: String) {
        self.frames.push((ts, frame));
    }
}

fn ack(method: &str, req_id: u64, result: &str, ts: u64) -> String {
    let t = rfc3339(ts);
    format!(
        r#"{{"method":"{method}","req_id":{req_id},"result":{result},"success":true,"time_in":"{t}","time_out":"{}"}}"#,
        rfc3339(ts + 73)
    )
}

fn pong(req_id: u64, ts: u64) -> String {
    format!(
        r#"{{"method":"pong","req_id":{req_id},"time_in":"{}","time_out":"{}"}}"#,
        rfc3339(ts),
        rfc3339(ts + 31)
    )
}

/// The synthetic capture (`feeds/kraken/capture.jsonl`).
pub fn generate() -> String {
    let t0 = parse_rfc3339_us(START).unwrap_or_default();
    let mut rng = Rng::new(SEED);
    let mut pairs = [
        Pair::new("BTC/USD", 1, 639_950, 2_000_000, &mut rng),
        Pair::new("ETH/EUR", 2, 312_800, 50_000_000, &mut rng),
    ];
    let mut tape = Tape { frames: Vec::new() };
    tape.push(t0 + 12_000, status_frame());
    // The adapter's subscribe requests: trade (req 1), ticker (req 2),
    // book (req 3); Kraken acks each symbol.
    let mut t = t0 + 61_000;
    for p in &pairs {
        let r = format!(
            r#"{{"channel":"trade","snapshot":false,"symbol":"{}"}}"#,
            p.native
        );
        tape.push(t, ack("subscribe", 1, &r, t));
        t += 300;
    }
    for p in &mut pairs {
        let r = format!(
            r#"{{"channel":"ticker","event_trigger":"bbo","snapshot":true,"symbol":"{}"}}"#,
            p.native
        );
        tape.push(t, ack("subscribe", 2, &r, t));
        t += 300;
        if let Some(f) = p.ticker_frame("snapshot", t) {
            tape.push(t, f);
        }
        t += 300;
    }
    for p in &pairs {
        let r = format!(
            r#"{{"channel":"book","depth":10,"snapshot":true,"symbol":"{}"}}"#,
            p.native
        );
        tape.push(t, ack("subscribe", 3, &r, t));
        t += 300;
        tape.push(t, p.snapshot_frame(t));
        t += 300;
    }
    let mut next_req = 4;
    let mut pings = [30_000_000u64, 60_000_000, 90_000_000]
        .into_iter()
        .peekable();
    let mut fault_done = false;
    let mut recovery_at: Option<u64> = None;
    let mut step = 200_000;
    while step < DURATION_US {
        let base = t0 + step;
        if pings.peek().is_some_and(|&p| step >= p) {
            pings.next();
            tape.push(base, pong(next_req, base));
            next_req += 1;
        }
        if recovery_at.is_some_and(|at| base >= at) {
            recovery_at = None;
            let p = &pairs[1];
            let r = format!(r#"{{"channel":"book","depth":10,"symbol":"{}"}}"#, p.native);
            tape.push(base, ack("unsubscribe", next_req, &r, base));
            let r = format!(
                r#"{{"channel":"book","depth":10,"snapshot":true,"symbol":"{}"}}"#,
                p.native
            );
            tape.push(base + 900, ack("subscribe", next_req + 1, &r, base + 900));
            next_req += 2;
            tape.push(base + 1_800, p.snapshot_frame(base + 1_800));
        }
        step += STEP_US;
        if (QUIET_US.0..QUIET_US.1).contains(&(step - STEP_US)) {
            continue;
        }
        for (i, p) in pairs.iter_mut().enumerate() {
            // Each pair's events within the step, in time order.
            let mut offsets = [
                rng.range(2_000, 15_000),
                rng.range(17_000, 30_000),
                rng.range(32_000, 46_000),
            ];
            offsets.sort_unstable();
            let mut k = 0;
            let mut at = || {
                let o = offsets[k.min(2)] as u64;
                k += 1;
                base + o
            };
            if rng.chance(80) {
                let ts = at();
                let before = p.tops();
                let (buy, price, qty) = p.trade(&mut rng);
                tape.push(ts, p.trade_frame(buy, price, qty, ts, &mut rng));
                emit_book(p, &before, ts + 400, &mut tape, None);
            }
            let changes = if rng.chance(350) {
                1 + usize::from(rng.chance(150))
            } else {
                0
            };
            for _ in 0..changes {
                let ts = at();
                let before = p.tops();
                p.churn(&mut rng);
                let corrupt = i == 1 && !fault_done && step >= FAULT_AT_US;
                if emit_book(p, &before, ts, &mut tape, corrupt.then_some(())) && corrupt {
                    fault_done = true;
                    // The client resubscribes after a round trip; Kraken
                    // answers a little later. Updates sent meanwhile reach
                    // a client whose book is already broken.
                    recovery_at = Some(ts + 150_000);
                }
            }
        }
    }
    finish(t0, tape)
}

/// Sends the visible change of one pair's book (and the ticker if the best
/// bid/offer moved); `corrupt` writes a wrong checksum. Returns whether a
/// book frame went out.
fn emit_book(
    p: &mut Pair,
    before: &(Top, Top),
    ts: u64,
    tape: &mut Tape,
    corrupt: Option<()>,
) -> bool {
    let (bids_after, asks_after) = p.tops();
    let bids = diff(&before.0, &p.bids, &bids_after);
    let asks = diff(&before.1, &p.asks, &asks_after);
    if bids.is_empty() && asks.is_empty() {
        return false;
    }
    let mut sum = p.checksum();
    if corrupt.is_some() {
        sum = sum.wrapping_add(1);
    }
    tape.push(ts, p.update_frame(&bids, &asks, sum, ts));
    if let Some(f) = p.ticker_frame("update", ts + 150) {
        tape.push(ts + 150, f);
    }
    true
}

/// Orders the tape, adds heartbeats where Kraken would send them (a second
/// without other traffic), gives receive times a few ms after venue times,
/// and writes the capture.
fn finish(t0: u64, mut tape: Tape) -> String {
    tape.frames.sort_by_key(|(ts, _)| *ts);
    let mut frames: Vec<(u64, String)> = Vec::with_capacity(tape.frames.len() + 16);
    let mut last = t0;
    for (ts, f) in tape.frames {
        while ts > last + 1_000_000 {
            last += 1_000_000;
            frames.push((last, r#"{"channel":"heartbeat"}"#.into()));
        }
        last = ts;
        frames.push((ts, f));
    }
    let mut rng = Rng::new(SEED ^ 0xff);
    let mut prev_rx = 0;
    let frames = frames
        .into_iter()
        .map(|(ts, text)| {
            let rx = (ts + 2_000 + rng.below(3_000)).max(prev_rx + 1);
            prev_rx = rx;
            CaptureFrame {
                rx,
                source: Source::Ws,
                text,
            }
        })
        .collect();
    let instruments = [("BTC/USD", "kraken:BTC-USD"), ("ETH/EUR", "kraken:ETH-EUR")]
        .into_iter()
        .filter_map(|(native, symbol)| {
            Some(FeedInstrument {
                native: native.into(),
                instrument: Instrument::parse(symbol).ok()?,
            })
        })
        .collect();
    let header = CaptureHeader {
        venue: VenueKind::Kraken,
        synthetic: true,
        note: "synthetic: generated by tickwire_ingest::venue::generate_capture (Kraken v2, seed fixed): \
               status, per-symbol acks, ticker (event_trigger bbo) and depth-10 book snapshots, then 120 s \
               of trades, bbo tickers and book updates with CRC-32 checksums; one ETH/EUR book update \
               near 45 s carries a wrong checksum and is followed by the resubscribe (unsubscribe ack, \
               subscribe ack, fresh snapshot); pongs every 30 s; heartbeats in a quiet spell at 70 s"
            .into(),
        instruments,
    };
    Capture { header, frames }.to_text()
}
