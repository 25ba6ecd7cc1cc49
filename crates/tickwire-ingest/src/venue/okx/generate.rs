//! The synthetic OKX capture (`feeds/okx/capture.jsonl`): what an OKX v5
//! public session for `feeds/okx/feed.toml` looks like after connect and
//! subscribe, generated from a fixed seed.
//!
//! Each instrument keeps a book 25 levels deep per side (a thin `books`
//! channel: OKX sends up to 400) and pushes one increment per 100 ms in
//! which it changed, chained by `prevSeqId`/`seqId` (ids rise by uneven
//! steps, as OKX's do). Injected, as a real session sees them: one empty
//! keep-alive update (`prevSeqId == seqId`), one lost increment (the next
//! one's `prevSeqId` breaks the chain) followed by the client's resubscribe
//! (unsubscribe ack, subscribe ack, fresh snapshot), and one
//! post-maintenance reset (`seqId < prevSeqId` once, then the chain goes
//! on). Numbers are strings without trailing zeros, as OKX writes them.

use std::collections::BTreeMap;

use tickwire_model::Instrument;

use super::fake::books_frame;
use crate::adapter::parse_rfc3339_us;
use crate::capture::{Capture, CaptureFrame, CaptureHeader, Source};
use crate::feed::{FeedInstrument, VenueKind};
use crate::rng::Rng;

const SEED: u64 = 0x6f6b_7800_0000_0005;
const START: &str = "2026-11-02T00:00:00Z";
const DURATION_US: u64 = 120_000_000;
/// OKX pushes `books` increments every 100 ms.
const STEP_US: u64 = 100_000;
const DEEP: usize = 25;
/// The empty keep-alive update (ETH-USDT).
const KEEPALIVE_AT_US: u64 = 30_000_000;
/// The lost increment (ETH-USDT).
const GAP_AT_US: u64 = 50_000_000;
/// The post-maintenance sequence reset (BTC-USDT).
const RESET_AT_US: u64 = 80_000_000;
/// Our client pings every 20 s; OKX answers `pong`.
const PING_EVERY_US: u64 = 20_000_000;
const CONN_ID: &str = "a4d3ae55";

/// price ticks → (size units, order count)
type Side = BTreeMap<i64, (i64, u32)>;

struct Pair {
    inst_id: &'static str,
    /// Decimals of prices and of sizes.
    px_dp: u32,
    sz_dp: u32,
    bids: Side,
    asks: Side,
    lot: i64,
    seq_id: i64,
    last: i64,
    last_sz: i64,
    open: i64,
    high: i64,
    low: i64,
    volume: i64,
    trade_id: u64,
}

impl Pair {
    fn new(
        inst_id: &'static str,
        px_dp: u32,
        sz_dp: u32,
        mid: i64,
        lot: i64,
        seq_id: i64,
        rng: &mut Rng,
    ) -> Self {
        let mut p = Self {
            inst_id,
            px_dp,
            sz_dp,
            bids: Side::new(),
            asks: Side::new(),
            lot,
            seq_id,
            last: mid,
            last_sz: lot,
            open: mid + mid / 150,
            high: mid + mid / 60,
            low: mid - mid / 80,
            volume: lot * 150_000,
            trade_id: 530_639_474,
        };
        let (s, n) = p.level(rng);
        p.bids.insert(mid - 1, (s, n));
        let (s, n) = p.level(rng);
        p.asks.insert(mid, (s, n));
        p.replenish(rng);
        p
    }

    fn level(&self, rng: &mut Rng) -> (i64, u32) {
        (
            rng.range(self.lot / 40, self.lot * 5).max(1),
            rng.range(1, 12) as u32,
        )
    }

    fn replenish(&mut self, rng: &mut Rng) {
        while self.bids.len() < DEEP {
            let deepest = self.bids.keys().next().copied().unwrap_or(self.last);
            let l = self.level(rng);
            self.bids.insert(deepest - rng.range(1, 3), l);
        }
        while self.asks.len() < DEEP {
            let deepest = self.asks.keys().next_back().copied().unwrap_or(self.last);
            let l = self.level(rng);
            self.asks.insert(deepest + rng.range(1, 3), l);
        }
    }

    fn best(&self) -> ((i64, i64), (i64, i64)) {
        let bid = self
            .bids
            .iter()
            .next_back()
            .map_or((0, 0), |(&p, &(s, _))| (p, s));
        let ask = self
            .asks
            .iter()
            .next()
            .map_or((0, 0), |(&p, &(s, _))| (p, s));
        (bid, ask)
    }

    fn churn(&mut self, rng: &mut Rng) {
        let bid_side = rng.chance(500);
        let ((bid, _), (ask, _)) = self.best();
        let r = rng.below(100);
        let l = self.level(rng);
        if ask - bid > 1 && (ask - bid > 6 || r < 20) {
            let price = rng.range(bid + 1, ask - 1);
            if bid_side {
                self.bids.insert(price, l);
            } else {
                self.asks.insert(price, l);
            }
            return;
        }
        let side = if bid_side {
            &mut self.bids
        } else {
            &mut self.asks
        };
        let near: Vec<i64> = if bid_side {
            side.keys().rev().take(12).copied().collect()
        } else {
            side.keys().take(12).copied().collect()
        };
        let pick = near[rng.below(near.len() as u64) as usize];
        if r < 60 {
            side.insert(pick, l);
        } else if r < 85 {
            side.remove(&pick);
        } else {
            let (lo, hi) = (
                near[0].min(near[near.len() - 1]),
                near[0].max(near[near.len() - 1]),
            );
            side.entry(rng.range(lo, hi)).or_insert(l);
        }
        self.replenish(rng);
    }

    /// A taker trade against the best level: (buy, price, size).
    fn trade(&mut self, rng: &mut Rng) -> (bool, i64, i64) {
        let buy = rng.chance(500);
        let side = if buy { &mut self.asks } else { &mut self.bids };
        let best = if buy {
            side.iter().next()
        } else {
            side.iter().next_back()
        };
        let (price, (avail, orders)) = best.map_or((self.last, (1, 1)), |(&p, &l)| (p, l));
        let size = if rng.chance(250) {
            avail
        } else {
            rng.range(1, avail.max(1))
        };
        if size >= avail {
            side.remove(&price);
        } else {
            side.insert(price, (avail - size, orders));
        }
        self.trade_id += 1 + rng.below(3);
        self.last = price;
        self.last_sz = size;
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += size;
        self.replenish(rng);
        (buy, price, size)
    }

    fn px(&self, ticks: i64) -> String {
        trimmed(ticks, self.px_dp)
    }

    fn sz(&self, units: i64) -> String {
        trimmed(units, self.sz_dp)
    }

    fn levels_json<'a>(&self, levels: impl Iterator<Item = (&'a i64, &'a (i64, u32))>) -> String {
        let items: Vec<String> = levels
            .map(|(&p, &(s, n))| format!(r#"["{}","{}","0","{n}"]"#, self.px(p), self.sz(s)))
            .collect();
        items.join(",")
    }

    fn snapshot(&self, ts: u64) -> String {
        books_frame(
            "snapshot",
            self.inst_id,
            &self.levels_json(self.asks.iter()),
            &self.levels_json(self.bids.iter().rev()),
            &ms(ts),
            -1,
            self.seq_id,
        )
    }

    /// The increment from `before` to now (removed levels with size 0).
    fn update(&self, before: &(Side, Side), ts: u64, prev: i64) -> String {
        let changed = |old: &Side, new: &Side| -> Side {
            let mut out: Side = old
                .keys()
                .filter(|p| !new.contains_key(p))
                .map(|&p| (p, (0, 0)))
                .collect();
            out.extend(
                new.iter()
                    .filter(|(p, l)| old.get(p) != Some(l))
                    .map(|(&p, &l)| (p, l)),
            );
            out
        };
        let asks = changed(&before.1, &self.asks);
        let bids = changed(&before.0, &self.bids);
        books_frame(
            "update",
            self.inst_id,
            &self.levels_json(asks.iter()),
            &self.levels_json(bids.iter().rev()),
            &ms(ts),
            prev,
            self.seq_id,
        )
    }

    fn ticker(&self, ts: u64) -> String {
        let ((bid, bid_sz), (ask, ask_sz)) = self.best();
        // Quote volume: base volume × last, at the price's scale.
        let vol_ccy = self.volume as i128 * self.last as i128 / 10i128.pow(self.sz_dp);
        format!(
            r#"{{"arg":{{"channel":"tickers","instId":"{id}"}},"data":[{{"instType":"SPOT","instId":"{id}","last":"{}","lastSz":"{}","askPx":"{}","askSz":"{}","bidPx":"{}","bidSz":"{}","open24h":"{}","high24h":"{}","low24h":"{}","volCcy24h":"{}","vol24h":"{}","sodUtc0":"{}","sodUtc8":"{}","ts":"{}"}}]}}"#,
            self.px(self.last),
            self.sz(self.last_sz),
            self.px(ask),
            self.sz(ask_sz),
            self.px(bid),
            self.sz(bid_sz),
            self.px(self.open),
            self.px(self.high),
            self.px(self.low),
            trimmed(i64::try_from(vol_ccy).unwrap_or(i64::MAX), self.px_dp),
            self.sz(self.volume),
            self.px(self.open - self.open / 400),
            self.px(self.open + self.open / 500),
            ms(ts),
            id = self.inst_id,
        )
    }

    fn trade_frame(&self, buy: bool, price: i64, size: i64, ts: u64) -> String {
        format!(
            r#"{{"arg":{{"channel":"trades","instId":"{id}"}},"data":[{{"instId":"{id}","tradeId":"{}","px":"{}","sz":"{}","side":"{}","ts":"{}","count":"1","source":"0","seqId":{}}}]}}"#,
            self.trade_id,
            self.px(price),
            self.sz(size),
            if buy { "buy" } else { "sell" },
            ms(ts),
            self.seq_id,
            id = self.inst_id,
        )
    }
}

/// Units with `dp` decimals, without trailing zeros (`trimmed(31280, 2)`
/// is `312.8`, `trimmed(300, 2)` is `3`), as OKX writes numbers.
fn trimmed(units: i64, dp: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let n = units.unsigned_abs();
    let scale = 10u64.pow(dp);
    let frac = format!("{:0width$}", n % scale, width = dp as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", n / scale)
    } else {
        format!("{sign}{}.{frac}", n / scale)
    }
}

/// Epoch ms text of a µs time.
fn ms(us: u64) -> String {
    (us / 1_000).to_string()
}

fn ack(event: &str, id: u64, channel: &str, inst_id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"{event}","arg":{{"channel":"{channel}","instId":"{inst_id}"}},"connId":"{CONN_ID}"}}"#
    )
}

/// The synthetic capture (`feeds/okx/capture.jsonl`).
pub fn generate() -> String {
    let t0 = parse_rfc3339_us(START).unwrap_or_default();
    let mut rng = Rng::new(SEED);
    let mut pairs = [
        Pair::new(
            "BTC-USDT",
            1,
            8,
            640_123,
            2_000_000,
            18_120_550_117,
            &mut rng,
        ),
        Pair::new("ETH-USDT", 2, 6, 340_060, 500_000, 9_731_204_836, &mut rng),
    ];
    let mut tape: Vec<(u64, String)> = Vec::new();
    // The adapter's one subscribe request (id 1): per-argument acks, then
    // each books snapshot and the current ticker.
    let mut t = t0 + 64_000;
    for p in &pairs {
        for channel in ["trades", "tickers", "books"] {
            tape.push((t, ack("subscribe", 1, channel, p.inst_id)));
            t += 400;
        }
    }
    for p in &pairs {
        tape.push((t, p.snapshot(t)));
        t += 700;
        tape.push((t, p.ticker(t)));
        t += 300;
    }
    let mut step = 200_000;
    let mut recovery_at = None;
    let mut lost = false;
    while step < DURATION_US {
        let base = t0 + step;
        if step % PING_EVERY_US < STEP_US && step >= PING_EVERY_US {
            tape.push((base + 1_000, "pong".into()));
        }
        if recovery_at.is_some_and(|at| base >= at) {
            recovery_at = None;
            let p = &pairs[1];
            tape.push((base + 2_000, ack("unsubscribe", 2, "books", p.inst_id)));
            tape.push((base + 2_600, ack("subscribe", 3, "books", p.inst_id)));
            tape.push((base + 3_100, p.snapshot(base + 3_100)));
        }
        for (i, p) in pairs.iter_mut().enumerate() {
            let before = (p.bids.clone(), p.asks.clone());
            let bbo = p.best();
            let gap = i == 1 && (GAP_AT_US..GAP_AT_US + STEP_US).contains(&step);
            let reset = i == 0 && (RESET_AT_US..RESET_AT_US + STEP_US).contains(&step);
            // The keep-alive comes when a book did not change.
            let quiet = i == 1 && (KEEPALIVE_AT_US..KEEPALIVE_AT_US + STEP_US).contains(&step);
            let mut traded = false;
            if !quiet && rng.chance(150) {
                let ts = base + rng.range(5_000, 60_000) as u64;
                let (buy, price, size) = p.trade(&mut rng);
                tape.push((ts, p.trade_frame(buy, price, size, ts)));
                traded = true;
            }
            let churns = if quiet {
                0
            } else if gap || reset {
                1
            } else {
                rng.below(4)
            };
            for _ in 0..churns {
                p.churn(&mut rng);
            }
            let ts = base + 90_000 + rng.range(0, 6_000) as u64;
            let changed = before.0 != p.bids || before.1 != p.asks;
            if changed || gap || reset {
                let prev = p.seq_id;
                p.seq_id = if reset {
                    // After maintenance OKX restarts its ids lower, once.
                    3_000 + rng.range(0, 999)
                } else {
                    prev + rng.range(1, 40)
                };
                if gap {
                    // Lost on the way: the next increment will not chain.
                    lost = true;
                } else {
                    tape.push((ts, p.update(&before, ts, prev)));
                    if i == 1 && lost {
                        // The client sees the break here and resubscribes;
                        // OKX answers after a round trip.
                        lost = false;
                        recovery_at = Some(ts + 150_000);
                    }
                }
            } else if quiet {
                tape.push((
                    ts,
                    books_frame("update", p.inst_id, "", "", &ms(ts), p.seq_id, p.seq_id),
                ));
            }
            if traded || p.best() != bbo {
                tape.push((ts + 400, p.ticker(ts + 400)));
            }
        }
        step += STEP_US;
    }
    finish(tape)
}

/// Orders the tape, gives receive times a few ms after the venue times,
/// and writes the capture.
fn finish(mut tape: Vec<(u64, String)>) -> String {
    tape.sort_by_key(|(ts, _)| *ts);
    let mut rng = Rng::new(SEED ^ 0xff);
    let mut prev_rx = 0;
    let frames = tape
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
    let instruments = [("BTC-USDT", "okx:BTC-USDT"), ("ETH-USDT", "okx:ETH-USDT")]
        .into_iter()
        .filter_map(|(native, symbol)| {
            Some(FeedInstrument {
                native: native.into(),
                instrument: Instrument::parse(symbol).ok()?,
            })
        })
        .collect();
    let header = CaptureHeader {
        venue: VenueKind::Okx,
        synthetic: true,
        note: "synthetic: generated by tickwire_ingest::venue::generate_capture (OKX v5 public, seed fixed): \
               per-argument subscribe acks, books snapshots (25 levels) and tickers, then 120 s of trades, \
               tickers and 100 ms books increments chained by prevSeqId/seqId; injected: an empty keep-alive \
               update (prevSeqId == seqId, ETH-USDT, 30 s), a lost ETH-USDT increment at 50 s (the next \
               prevSeqId breaks the chain) followed by the resubscribe (unsubscribe ack, subscribe ack, fresh \
               snapshot), a post-maintenance seqId reset (seqId < prevSeqId once, BTC-USDT, 80 s); text pongs \
               every 20 s"
            .into(),
        instruments,
    };
    Capture { header, frames }.to_text()
}
