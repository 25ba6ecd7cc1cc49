//! The synthetic Binance capture (`feeds/binance/capture.jsonl`): what a
//! `/ws` session subscribed to every channel of `feeds/binance/feed.toml`
//! records, with the integrity events a real session meets.
//!
//! Each symbol is an order book of 20–30 levels per side that changes by
//! trades, cancels and new orders, every change on the venue's update-id
//! sequence. `depthUpdate` frames batch 100 ms of changes, `bookTicker`
//! follows every change of the top, `24hrTicker` comes once a second.

use std::collections::BTreeMap;

use tickwire_model::Instrument;

use crate::adapter::parse_rfc3339_us;
use crate::capture::{Capture, CaptureFrame, CaptureHeader, Source};
use crate::feed::{FeedInstrument, VenueKind};
use crate::rng::Rng;

/// The seed of the synthetic market.
const SEED: u64 = 0xB1A4_CE00_2026_1102;

/// Decimal places of every price and quantity on the wire.
const SCALE: i64 = 100_000_000;

/// 100 ms: the `@depth@100ms` batching, and the generator's step.
const TICK_MS: u64 = 100;

/// Steps: 120 s.
const TICKS: u64 = 1200;

/// The instruments: venue name, canonical name, and the market's shape in
/// units of 1e-8.
pub(crate) const SYMBOLS: [Spec; 3] = [
    Spec {
        native: "BTCUSDT",
        symbol: "binance:BTC-USDT",
        // 70213.45
        price: 7_021_345_000_000,
        tick: 1_000_000,
        lot: 1_000,
        max_lots: 150_000,
        first_update_id: 58_392_216_000,
        first_trade_id: 4_102_556_000,
        // 21877.40316
        volume: 2_187_740_316_000,
    },
    Spec {
        native: "ETHUSDT",
        symbol: "binance:ETH-USDT",
        // 3512.34
        price: 351_234_000_000,
        tick: 1_000_000,
        lot: 10_000,
        max_lots: 200_000,
        first_update_id: 41_234_567_000,
        first_trade_id: 2_011_004_000,
        // 402118.5502
        volume: 40_211_855_020_000,
    },
    Spec {
        native: "DOGEUSDT",
        symbol: "binance:DOGE-USDT",
        // 0.16234
        price: 16_234_000,
        tick: 1_000,
        lot: 100_000_000,
        max_lots: 60_000,
        first_update_id: 12_345_678_000,
        first_trade_id: 987_650_000,
        // 1523114902
        volume: 152_311_490_200_000_000,
    },
];

/// One generated instrument.
pub(crate) struct Spec {
    pub(crate) native: &'static str,
    pub(crate) symbol: &'static str,
    price: i64,
    tick: i64,
    lot: i64,
    max_lots: i64,
    first_update_id: u64,
    first_trade_id: u64,
    volume: i64,
}

/// The symbol whose first REST snapshot is older than the stream (step 3
/// of the recipe: fetch again).
const OLD_SNAPSHOT: usize = 1;
/// The symbol that loses one `depthUpdate`, and the step it is lost at.
const GAP_SYMBOL: usize = 2;
const GAP_TICK: u64 = 600;
/// The step whose start carries `serverShutdown`.
const SHUTDOWN_TICK: u64 = 1180;
/// The steps after which REST snapshots are recorded.
const FIRST_REST_TICK: u64 = 4;
const SECOND_REST_TICK: u64 = 8;
const GAP_REST_TICK: u64 = GAP_TICK + 3;

/// Formats units of 1e-8 as Binance writes them: 8 decimals.
fn fmt8(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let s = SCALE.unsigned_abs();
    format!("{sign}{}.{:08}", a / s, a % s)
}

/// A price rounded down to the symbol's tick.
fn on_tick(spec: &Spec, price: i64) -> i64 {
    price / spec.tick * spec.tick
}

/// One symbol's market.
struct Market {
    spec: &'static Spec,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// The next update id to give a change.
    next_id: u64,
    /// Changes since the last `depthUpdate`, last write wins; 0 removes.
    pending_bids: BTreeMap<i64, i64>,
    pending_asks: BTreeMap<i64, i64>,
    first_pending: Option<u64>,
    top: (i64, i64, i64, i64),
    trade_id: u64,
    trades: u64,
    last: (i64, i64),
    open: i64,
    high: i64,
    low: i64,
    volume: i64,
    quote_volume: i128,
}

impl Market {
    fn new(spec: &'static Spec, rng: &mut Rng) -> Self {
        let mut m = Market {
            spec,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            next_id: spec.first_update_id,
            pending_bids: BTreeMap::new(),
            pending_asks: BTreeMap::new(),
            first_pending: None,
            top: (0, 0, 0, 0),
            trade_id: spec.first_trade_id,
            trades: 1_800_000 + rng.below(600_000),
            last: (spec.price, spec.lot * 10),
            open: on_tick(spec, spec.price - spec.price / 80),
            high: on_tick(spec, spec.price + spec.price / 60),
            low: on_tick(spec, spec.price - spec.price / 50),
            volume: spec.volume,
            quote_volume: i128::from(spec.volume) * i128::from(spec.price) / i128::from(SCALE),
        };
        for i in 0..25 {
            let bid = spec.price - spec.tick * (1 + i * 2 + rng.range(0, 1));
            let ask = spec.price + spec.tick * (i * 2 + rng.range(0, 1));
            m.bids.insert(bid, m.size(rng));
            m.asks.insert(ask, m.size(rng));
        }
        m.top = m.top_now();
        m
    }

    fn size(&self, rng: &mut Rng) -> i64 {
        // Mostly small orders, now and then a large one.
        let lots = if rng.chance(100) {
            rng.range(self.spec.max_lots / 4, self.spec.max_lots)
        } else {
            rng.range(1, self.spec.max_lots / 20)
        };
        lots * self.spec.lot
    }

    fn top_now(&self) -> (i64, i64, i64, i64) {
        let (bp, bq) = self
            .bids
            .iter()
            .next_back()
            .map_or((0, 0), |(p, q)| (*p, *q));
        let (ap, aq) = self.asks.iter().next().map_or((0, 0), |(p, q)| (*p, *q));
        (bp, bq, ap, aq)
    }

    /// Sets a level (0 removes), on the update-id sequence. Returns the
    /// change's id.
    fn set(&mut self, bid: bool, price: i64, qty: i64, rng: &mut Rng) -> u64 {
        let (side, pending) = if bid {
            (&mut self.bids, &mut self.pending_bids)
        } else {
            (&mut self.asks, &mut self.pending_asks)
        };
        if qty == 0 {
            side.remove(&price);
        } else {
            side.insert(price, qty);
        }
        pending.insert(price, qty);
        let id = self.next_id;
        self.first_pending.get_or_insert(id);
        // Ids the venue spends on changes this stream does not show.
        self.next_id += 1 + if rng.chance(150) { rng.below(3) } else { 0 };
        id
    }

    /// Keeps 22 to 30 levels per side, adding or dropping far ones.
    fn refill(&mut self, rng: &mut Rng) {
        for bid in [true, false] {
            loop {
                let side = if bid { &self.bids } else { &self.asks };
                let len = side.len();
                let far = if bid {
                    side.keys().next().copied()
                } else {
                    side.keys().next_back().copied()
                };
                let Some(far) = far else { break };
                if len < 22 {
                    let step = self.spec.tick * rng.range(1, 3);
                    let price = if bid { far - step } else { far + step };
                    let qty = self.size(rng);
                    self.set(bid, price, qty, rng);
                } else if len > 30 {
                    self.set(bid, far, 0, rng);
                } else {
                    break;
                }
            }
        }
    }

    /// One random change; a trade when `trade` (returns its frame fields:
    /// price, qty, buyer-is-maker).
    fn step(&mut self, trade: bool, rng: &mut Rng) -> Option<(i64, i64, bool)> {
        let mut done = None;
        if trade {
            // The taker hits the best level of the side it sells into.
            let sell = rng.chance(500);
            let best = if sell {
                self.bids.iter().next_back()
            } else {
                self.asks.iter().next()
            };
            let (price, qty) = best.map(|(p, q)| (*p, *q))?;
            let take = if rng.chance(300) {
                qty
            } else {
                (rng.range(1, (qty / self.spec.lot).max(1))) * self.spec.lot
            }
            .min(qty);
            self.set(sell, price, qty - take, rng);
            done = Some((price, take, sell));
        } else {
            let bid = rng.chance(500);
            let (bp, _, ap, _) = self.top_now();
            match rng.below(10) {
                // A new best level inside the spread.
                0..=1 if ap - bp > self.spec.tick => {
                    let price = if bid {
                        bp + self.spec.tick
                    } else {
                        ap - self.spec.tick
                    };
                    let qty = self.size(rng);
                    self.set(bid, price, qty, rng);
                }
                // The best level resized (or cancelled).
                2..=4 => {
                    let price = if bid { bp } else { ap };
                    let qty = if rng.chance(200) { 0 } else { self.size(rng) };
                    self.set(bid, price, qty, rng);
                }
                // A deeper level changes.
                _ => {
                    let side = if bid { &self.bids } else { &self.asks };
                    let n = side.len().min(15) as u64;
                    let k = rng.below(n.max(1)) as usize;
                    let price = if bid {
                        side.keys().rev().nth(k).copied()
                    } else {
                        side.keys().nth(k).copied()
                    };
                    if let Some(price) = price {
                        let qty = if rng.chance(250) { 0 } else { self.size(rng) };
                        self.set(bid, price, qty, rng);
                    }
                }
            }
        }
        self.refill(rng);
        done
    }

    /// The `bookTicker` frame if the top changed since the last one.
    fn book_ticker(&mut self, id: u64) -> Option<String> {
        let top = self.top_now();
        if top == self.top {
            return None;
        }
        self.top = top;
        Some(format!(
            r#"{{"u":{id},"s":"{}","b":"{}","B":"{}","a":"{}","A":"{}"}}"#,
            self.spec.native,
            fmt8(top.0),
            fmt8(top.1),
            fmt8(top.2),
            fmt8(top.3)
        ))
    }

    /// Marks every level as changed: the first `depthUpdate` after the
    /// subscription carries the whole book (so a fake replaying the tape
    /// knows every level).
    fn touch_all(&mut self, rng: &mut Rng) {
        let bids: Vec<(i64, i64)> = self.bids.iter().map(|(p, q)| (*p, *q)).collect();
        let asks: Vec<(i64, i64)> = self.asks.iter().map(|(p, q)| (*p, *q)).collect();
        for (p, q) in bids {
            self.set(true, p, q, rng);
        }
        for (p, q) in asks {
            self.set(false, p, q, rng);
        }
    }

    /// Forgets changes made before the recording starts.
    fn drop_pending(&mut self) {
        self.pending_bids.clear();
        self.pending_asks.clear();
        self.first_pending = None;
    }

    /// The `depthUpdate` of the changes since the last one, if any.
    fn depth_update(&mut self, time_ms: u64) -> Option<String> {
        let first = self.first_pending.take()?;
        let last = self.next_id - 1;
        let levels = |m: &BTreeMap<i64, i64>| -> String {
            m.iter()
                .map(|(p, q)| format!(r#"["{}","{}"]"#, fmt8(*p), fmt8(*q)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let frame = format!(
            r#"{{"e":"depthUpdate","E":{time_ms},"s":"{}","U":{first},"u":{last},"b":[{}],"a":[{}]}}"#,
            self.spec.native,
            levels(&self.pending_bids),
            levels(&self.pending_asks)
        );
        self.pending_bids.clear();
        self.pending_asks.clear();
        Some(frame)
    }

    /// The REST snapshot body of the book as it is now.
    fn snapshot(&self) -> String {
        let bids: Vec<String> = self
            .bids
            .iter()
            .rev()
            .map(|(p, q)| format!(r#"["{}","{}"]"#, fmt8(*p), fmt8(*q)))
            .collect();
        let asks: Vec<String> = self
            .asks
            .iter()
            .map(|(p, q)| format!(r#"["{}","{}"]"#, fmt8(*p), fmt8(*q)))
            .collect();
        format!(
            r#"{{"lastUpdateId":{},"bids":[{}],"asks":[{}]}}"#,
            self.next_id - 1,
            bids.join(","),
            asks.join(",")
        )
    }

    fn trade_frame(&mut self, price: i64, qty: i64, sell: bool, t_ms: u64) -> String {
        self.trade_id += 1;
        self.trades += 1;
        self.last = (price, qty);
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += qty;
        self.quote_volume += i128::from(price) * i128::from(qty) / i128::from(SCALE);
        format!(
            r#"{{"e":"trade","E":{},"s":"{}","t":{},"p":"{}","q":"{}","T":{t_ms},"m":{sell},"M":true}}"#,
            t_ms + 1,
            self.spec.native,
            self.trade_id,
            fmt8(price),
            fmt8(qty)
        )
    }

    fn ticker_frame(&self, e_ms: u64) -> String {
        let (c, q) = self.last;
        let change = c - self.open;
        // Percent with 3 decimals, in integers.
        let pct = i128::from(change) * 100_000 / i128::from(self.open);
        let pct_text = format!(
            "{}{}.{:03}",
            if pct < 0 { "-" } else { "" },
            pct.unsigned_abs() / 1000,
            pct.unsigned_abs() % 1000
        );
        let weighted = (self.high + self.low) / 2 / self.spec.tick * self.spec.tick;
        let (bp, bq, ap, aq) = self.top_now();
        let quote_volume = i64::try_from(self.quote_volume).unwrap_or(i64::MAX);
        format!(
            concat!(
                r#"{{"e":"24hrTicker","E":{e},"s":"{s}","p":"{p}","P":"{pp}","w":"{w}","x":"{x}","c":"{c}","Q":"{q}","#,
                r#""b":"{b}","B":"{bq}","a":"{a}","A":"{aq}","o":"{o}","h":"{h}","l":"{l}","v":"{v}","q":"{qv}","#,
                r#""O":{oo},"C":{e},"F":{f},"L":{ll},"n":{n}}}"#
            ),
            e = e_ms,
            s = self.spec.native,
            p = fmt8(change),
            pp = pct_text,
            w = fmt8(weighted),
            x = fmt8(self.open - self.spec.tick),
            c = fmt8(c),
            q = fmt8(q),
            b = fmt8(bp),
            bq = fmt8(bq),
            a = fmt8(ap),
            aq = fmt8(aq),
            o = fmt8(self.open),
            h = fmt8(self.high),
            l = fmt8(self.low),
            v = fmt8(self.volume),
            qv = fmt8(quote_volume),
            oo = e_ms - 86_400_000,
            f = self.trade_id - self.trades + 1,
            ll = self.trade_id,
            n = self.trades,
        )
    }
}

/// Where the generator's choices landed, for the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Faults {
    /// `u` of the dropped `depthUpdate`'s predecessor and `U` of the one
    /// after it, for [`GAP_SYMBOL`].
    pub(crate) gap: Option<(u64, u64)>,
}

/// The synthetic capture (`feeds/binance/capture.jsonl`).
pub fn generate() -> String {
    generate_with_faults().0
}

/// The capture and where its faults are.
pub(crate) fn generate_with_faults() -> (String, Faults) {
    let mut rng = Rng::new(SEED);
    // A fixed, valid literal.
    let t0 = parse_rfc3339_us("2026-11-02T00:00:00Z").unwrap_or_default();
    let mut frames: Vec<(u64, Source, String)> = Vec::new();
    let mut faults = Faults::default();
    let mut markets: Vec<Market> = SYMBOLS.iter().map(|s| Market::new(s, &mut rng)).collect();

    // Before the connection: changes nobody recorded; the old snapshot is
    // taken part-way, so it is behind the first diff the client sees.
    let mut old_snapshot = String::new();
    for (i, m) in markets.iter_mut().enumerate() {
        for _ in 0..20 {
            m.step(false, &mut rng);
        }
        if i == OLD_SNAPSHOT {
            old_snapshot = m.snapshot();
        }
        for _ in 0..5 {
            m.step(false, &mut rng);
        }
        m.drop_pending();
        m.top = m.top_now();
        m.touch_all(&mut rng);
    }

    // The SUBSCRIBE went out at t0 + 100 ms; one request, one reply.
    frames.push((t0 + 121_337, Source::Ws, r#"{"result":null,"id":1}"#.into()));
    let latency = |rng: &mut Rng| 2_000 + rng.below(6_000);
    let start_ms = t0 / 1000 + 150;

    for tick in 0..TICKS {
        let tick_ms = start_ms + tick * TICK_MS;
        if tick == SHUTDOWN_TICK {
            let e = tick_ms + 3;
            frames.push((
                e * 1000 + latency(&mut rng),
                Source::Ws,
                format!(r#"{{"e":"serverShutdown","E":{e}}}"#),
            ));
        }
        for (i, m) in markets.iter_mut().enumerate() {
            // Changes of this step at random instants, in order.
            let mut instants: Vec<(u64, bool)> = Vec::new();
            for _ in 0..rng.below(3) {
                instants.push((rng.below(TICK_MS - 5), false));
            }
            if rng.chance(150) {
                instants.push((rng.below(TICK_MS - 5), true));
            }
            if tick == GAP_TICK + 1 && i == GAP_SYMBOL {
                // The stream must show the gap right after it.
                instants.push((10, false));
            }
            instants.sort_unstable();
            for (at, trade) in instants {
                let t_ms = tick_ms + at;
                if let Some((price, qty, sell)) = m.step(trade, &mut rng) {
                    let frame = m.trade_frame(price, qty, sell, t_ms);
                    frames.push((t_ms * 1000 + 1000 + latency(&mut rng), Source::Ws, frame));
                }
                let id = m.next_id - 1;
                if let Some(frame) = m.book_ticker(id) {
                    frames.push((t_ms * 1000 + latency(&mut rng), Source::Ws, frame));
                }
            }
            if tick % 10 == 3 * i as u64 {
                let e = tick_ms + 7;
                frames.push((e * 1000 + latency(&mut rng), Source::Ws, m.ticker_frame(e)));
            }
            let flush_ms = tick_ms + TICK_MS - 1;
            if let Some(frame) = m.depth_update(flush_ms) {
                frames.push((flush_ms * 1000 + latency(&mut rng), Source::Ws, frame));
            }
            if tick == GAP_TICK && i == GAP_SYMBOL {
                // A diff lost in transit: deep levels resized, nothing a
                // crossed book could come from.
                let before = m.next_id - 1;
                let deep: Vec<i64> = m.bids.keys().rev().skip(12).take(2).copied().collect();
                for price in deep {
                    let qty = m.size(&mut rng);
                    m.set(true, price, qty, &mut rng);
                }
                let _lost = m.depth_update(flush_ms + 50);
                faults.gap = Some((before, m.next_id));
            }
            let rest_ms = flush_ms + 30 + 20 * i as u64;
            let path = format!("/api/v3/depth?symbol={}&limit=5000", m.spec.native);
            let rest = |body: String| (rest_ms * 1000, Source::Rest(path.clone()), body);
            if tick == FIRST_REST_TICK {
                if i == OLD_SNAPSHOT {
                    frames.push(rest(std::mem::take(&mut old_snapshot)));
                } else {
                    frames.push(rest(m.snapshot()));
                }
            }
            if (tick == SECOND_REST_TICK && i == OLD_SNAPSHOT)
                || (tick == GAP_REST_TICK && i == GAP_SYMBOL)
            {
                frames.push(rest(m.snapshot()));
            }
        }
    }

    frames.sort_by_key(|f| f.0);
    let mut last_rx = 0;
    let frames = frames
        .into_iter()
        .map(|(rx, source, text)| {
            // Strictly increasing receive times.
            let rx = rx.max(last_rx + 1);
            last_rx = rx;
            CaptureFrame { rx, source, text }
        })
        .collect();
    let instruments = SYMBOLS
        .iter()
        .filter_map(|s| {
            Some(FeedInstrument {
                native: s.native.to_owned(),
                instrument: Instrument::parse(s.symbol).ok()?,
            })
        })
        .collect();
    let header = CaptureHeader {
        venue: VenueKind::Binance,
        synthetic: true,
        note: format!(
            "synthetic: generated by tickwire_ingest::venue::generate_capture(binance) \
             (seed {SEED:#x}, start 2026-11-02T00:00:00Z): a /ws session after one SUBSCRIBE \
             of trade, bookTicker, ticker and depth@100ms for BTCUSDT, ETHUSDT, DOGEUSDT, \
             120 s; REST depth snapshots as `rest` lines (the first ETHUSDT one older than \
             the stream, so it is fetched again), one DOGEUSDT depthUpdate lost at ~60 s \
             (U/u gap) and resynced by a REST snapshot, serverShutdown at ~118 s"
        ),
        instruments,
    };
    (Capture { header, frames }.to_text(), faults)
}
