//! The synthetic market: a pure, seeded generator of plausible trades,
//! quotes, tickers and book tops for many instruments, for the demo and for
//! load tests.
//!
//! No clock and no I/O: the caller passes the time in. Prices are integers
//! of ticks and sizes integers of lots, turned into `Decimal`s with the
//! instrument's scale only when an event is built, so every price is exact
//! and written with the same number of decimals.
//!
//! The model, in short: each base asset (BTC, ETH, ...) has one shared
//! random walk, so the same asset on different venues moves together; each
//! instrument adds a small mean-reverting venue offset. Events are driven by
//! one timer per (instrument, channel) with jittered intervals, so every
//! instrument gets its share of the rate with bounded gaps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use rust_decimal::Decimal;
use tickwire_model::{
    BookTop, Channel, Event, Instrument, Level, Payload, Quote, Side, Ticker, Trade,
};

use crate::rng::Rng;
use crate::{Error, Result};

/// Parts per billion: the unit of the walk, so it stays in integers.
const PPB: i64 = 1_000_000_000;
/// The shared walks move on a fixed grid of simulated time, so price
/// dynamics do not depend on the event rate.
const STEP_NS: u64 = 100_000_000;
/// Steps for an asset walk to forget about half of its distance from the
/// configured price (about 2.8 h): long enough to look free, short enough
/// that a load test running for days does not drift to absurd prices.
const ASSET_REVERSION_STEPS: i64 = 100_000;
/// Steps for a venue offset to revert (5 s): venues stay within a few
/// basis points of each other.
const OFFSET_REVERSION_STEPS: i64 = 50;
/// At most this much simulated time is generated after a long pause
/// (a suspended laptop, a stalled runtime); older due events are skipped
/// instead of being produced in one huge burst.
const MAX_CATCH_UP_NS: u64 = 1_000_000_000;
/// Largest spread in ticks.
const MAX_SPREAD_TICKS: i64 = 3;
/// Largest gap in ticks between two book levels.
const MAX_LEVEL_GAP_TICKS: i64 = 3;
/// Largest mantissa a `Decimal` holds (96 bits); volumes saturate there.
const MAX_MANTISSA: i128 = (1 << 96) - 1;
/// Largest scale accepted for prices and sizes.
const MAX_SCALE: u32 = 12;
/// Largest price or size mantissa accepted, leaving room for the walk
/// (5x) and deep book levels within `i64`.
const MAX_CONFIG_MANTISSA: i64 = 1_000_000_000_000_000;
/// Events per second per instrument when no rate is given.
pub const DEFAULT_RATE_PER_INSTRUMENT: u32 = 25;

/// Relative weights of the channels in the event rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelMix {
    /// Trades. Default 15: at 25 events/s per instrument, about 4 trades/s.
    pub trade: u32,
    /// Quotes. Default 50: the liveliest channel, as on real venues.
    pub quote: u32,
    /// Tickers. Default 10.
    pub ticker: u32,
    /// Book tops. Default 25; each costs two `Vec`s of `book_depth` levels.
    pub book: u32,
}

impl Default for ChannelMix {
    fn default() -> Self {
        Self {
            trade: 15,
            quote: 50,
            ticker: 10,
            book: 25,
        }
    }
}

impl ChannelMix {
    /// The weight of one channel.
    pub fn weight(&self, channel: Channel) -> u32 {
        match channel {
            Channel::Trade => self.trade,
            Channel::Quote => self.quote,
            Channel::Ticker => self.ticker,
            Channel::Book => self.book,
        }
    }

    fn total(&self) -> u64 {
        Channel::ALL
            .iter()
            .map(|&c| u64::from(self.weight(c)))
            .sum()
    }
}

/// One generated instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticInstrument {
    /// The instrument, e.g. `coinbase:BTC-USD`. Instruments with the same
    /// base asset share one random walk. Key `symbol` in a feeds file.
    pub symbol: Instrument,
    /// Starting mid price; a multiple of `tick`.
    pub price: Decimal,
    /// Price increment. Its scale is the scale of every price written for
    /// this instrument (`0.01` writes `64000.10`).
    pub tick: Decimal,
    /// Decimal places of sizes and volume (8 writes `0.01234567`).
    pub size_scale: u32,
    /// A typical trade size; quotes and book levels are a few times larger.
    /// Must be representable with `size_scale` decimals.
    pub typical_size: Decimal,
}

/// What the synthetic market generates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Total events per second over all instruments and channels, above 0.
    /// Default 25 per instrument (lively: several quotes and trades per
    /// second each); load tests use 10 000 to 100 000.
    pub rate: u32,
    /// Levels per side in `book` events, 1 to 1000. Default 10; deeper
    /// books cost more bytes per update on every hop.
    pub book_depth: usize,
    /// Largest move of an asset's shared walk per 100 ms, in basis points,
    /// 0 to 1000. Default 1: visibly moving, without wild swings.
    pub volatility_bp: Decimal,
    /// How the rate is split between channels.
    pub mix: ChannelMix,
    /// The instruments, at least one, each once.
    pub instruments: Vec<SyntheticInstrument>,
}

impl SyntheticConfig {
    /// A configuration with the defaults for everything but the instruments.
    pub fn new(instruments: Vec<SyntheticInstrument>) -> Self {
        let n = u32::try_from(instruments.len()).unwrap_or(u32::MAX);
        Self {
            rate: DEFAULT_RATE_PER_INSTRUMENT.saturating_mul(n.max(1)),
            book_depth: 10,
            volatility_bp: Decimal::ONE,
            mix: ChannelMix::default(),
            instruments,
        }
    }

    /// Sets the total rate in events per second; 0 is refused.
    pub fn set_rate(&mut self, events_per_sec: u32) -> Result<()> {
        if events_per_sec == 0 {
            return Err(Error::invalid("rate", "must be above 0 events per second"));
        }
        self.rate = events_per_sec;
        Ok(())
    }

    /// The same configuration at another total rate (events per second);
    /// 0 is refused.
    pub fn with_rate(mut self, events_per_sec: u32) -> Result<Self> {
        self.set_rate(events_per_sec)?;
        Ok(self)
    }

    /// Checks every value; the error names the offending key
    /// (`instruments[2].tick`).
    pub fn validate(&self) -> Result<()> {
        self.specs().map(|_| ())
    }

    /// Validates and converts every instrument to integer ticks and lots.
    fn specs(&self) -> Result<Vec<Spec>> {
        if self.rate == 0 {
            return Err(Error::invalid("rate", "must be above 0 events per second"));
        }
        if !(1..=1000).contains(&self.book_depth) {
            return Err(Error::invalid("book_depth", "must be between 1 and 1000"));
        }
        if self.volatility_bp.is_sign_negative() || self.volatility_bp > Decimal::from(1000) {
            return Err(Error::invalid(
                "volatility_bp",
                "must be between 0 and 1000 basis points",
            ));
        }
        if self.mix.total() == 0 {
            return Err(Error::invalid(
                "mix",
                "at least one channel weight must be above 0",
            ));
        }
        if let Some(c) = Channel::ALL
            .into_iter()
            .find(|&c| self.mix.weight(c) > 1_000_000)
        {
            return Err(Error::invalid(
                format!("mix.{c}"),
                "must be at most 1000000",
            ));
        }
        if self.instruments.is_empty() {
            return Err(Error::invalid(
                "instruments",
                "at least one instrument is needed",
            ));
        }
        let mut seen = HashMap::new();
        let mut specs = Vec::with_capacity(self.instruments.len());
        for (i, inst) in self.instruments.iter().enumerate() {
            if let Some(first) = seen.insert(inst.symbol.clone(), i) {
                return Err(Error::invalid(
                    format!("instruments[{i}].symbol"),
                    format!("{} is already defined by instruments[{first}]", inst.symbol),
                ));
            }
            specs.push(Spec::new(inst).map_err(|(field, reason)| {
                Error::invalid(format!("instruments[{i}].{field}"), reason)
            })?);
        }
        Ok(specs)
    }
}

/// One instrument's configuration in integers.
#[derive(Clone, Copy, Debug)]
struct Spec {
    tick_mantissa: i64,
    tick_scale: u32,
    base_ticks: i64,
    size_scale: u32,
    typical_lots: i64,
}

impl Spec {
    fn new(inst: &SyntheticInstrument) -> Result<Self, (&'static str, String)> {
        let tick = inst.tick;
        if tick <= Decimal::ZERO || tick.scale() > MAX_SCALE {
            return Err((
                "tick",
                format!("must be above 0 with at most {MAX_SCALE} decimals"),
            ));
        }
        let tick_mantissa = i64::try_from(tick.mantissa())
            .ok()
            .filter(|&m| m <= MAX_CONFIG_MANTISSA)
            .ok_or(("tick", "is too large".to_owned()))?;
        if inst.price <= Decimal::ZERO {
            return Err(("price", "must be above 0".to_owned()));
        }
        let ticks = inst
            .price
            .checked_div(tick)
            .filter(|q| q.fract().is_zero())
            .ok_or(("price", format!("must be a multiple of the tick {tick}")))?;
        let base_ticks = i64::try_from(ticks)
            .ok()
            .filter(|&t| {
                t.checked_mul(tick_mantissa)
                    .is_some_and(|m| m <= MAX_CONFIG_MANTISSA)
            })
            .ok_or(("price", "is too large for its tick".to_owned()))?;
        if inst.size_scale > MAX_SCALE {
            return Err(("size_scale", format!("must be at most {MAX_SCALE}")));
        }
        let lot = Decimal::new(1, inst.size_scale);
        if inst.typical_size <= Decimal::ZERO {
            return Err(("typical_size", "must be above 0".to_owned()));
        }
        let typical_lots = inst
            .typical_size
            .checked_div(lot)
            .filter(|q| q.fract().is_zero())
            .and_then(|q| i64::try_from(q).ok())
            .filter(|&l| l <= MAX_CONFIG_MANTISSA)
            .ok_or((
                "typical_size",
                format!(
                    "must fit {} decimals and be at most 10^15 of them",
                    inst.size_scale
                ),
            ))?;
        Ok(Self {
            tick_mantissa,
            tick_scale: tick.scale(),
            base_ticks,
            size_scale: inst.size_scale,
            typical_lots,
        })
    }

    fn price(&self, ticks: i64) -> Decimal {
        Decimal::new(ticks.saturating_mul(self.tick_mantissa), self.tick_scale)
    }

    fn size(&self, lots: i64) -> Decimal {
        Decimal::new(lots, self.size_scale)
    }

    /// `ppb` parts per billion of the starting price, in ticks.
    fn ticks_of_ppb(&self, ppb: i64) -> i64 {
        clamp_i64(i128::from(self.base_ticks) * i128::from(ppb) / i128::from(PPB))
    }
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Best bid/offer in ticks and lots.
#[derive(Clone, Copy, Debug)]
struct Touch {
    bid: i64,
    bid_lots: i64,
    ask: i64,
    ask_lots: i64,
}

/// 24 h statistics in ticks and lots.
#[derive(Clone, Copy, Debug)]
struct Stats {
    last: i64,
    open: i64,
    high: i64,
    low: i64,
    volume_lots: i128,
}

#[derive(Debug)]
struct InstrumentState {
    symbol: Instrument,
    spec: Spec,
    /// Index of the base asset's shared walk.
    asset: usize,
    /// This venue's deviation from the shared walk, in ppb.
    offset_ppb: i64,
    touch: Touch,
    stats: Stats,
    next_trade_id: u64,
}

/// A due event: when, and for which instrument and channel. `order` breaks
/// ties so the output is fully determined by the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at_ns: u64,
    order: u64,
    inst: u32,
    channel: u8,
}

/// A running synthetic market. Pure: all time comes from the caller.
#[derive(Debug)]
pub struct SyntheticMarket {
    insts: Vec<InstrumentState>,
    /// Shared walk per base asset, in ppb of each instrument's start price.
    assets: Vec<i64>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Mean interval between two events of one instrument on a channel, by
    /// channel index; `None` when the channel's weight is 0.
    mean_ns: [Option<u64>; 4],
    rng: Rng,
    book_depth: usize,
    volatility_ppb: i64,
    rate: u32,
    start_us: u64,
    now_ns: u64,
    next_step_ns: u64,
    snapshot_due: bool,
    timer_order: u64,
}

impl SyntheticMarket {
    /// A market starting at `now_us` (µs since the Unix epoch), fully
    /// determined by `config` and `seed`. Fails if the configuration is
    /// invalid, naming the key.
    pub fn new(config: SyntheticConfig, seed: u64, now_us: u64) -> Result<Self> {
        let specs = config.specs()?;
        let mut rng = Rng::new(seed);
        let mut asset_index: HashMap<&str, usize> = HashMap::new();
        let mut insts = Vec::with_capacity(specs.len());
        let volatility_ppb = (config.volatility_bp * Decimal::from(100_000))
            .trunc()
            .try_into()
            .unwrap_or(0i64);
        for (inst, spec) in config.instruments.iter().zip(specs) {
            let next = asset_index.len();
            let asset = *asset_index.entry(inst.symbol.base()).or_insert(next);
            let offset_ppb = rng.range(-volatility_ppb, volatility_ppb);
            let mut state = InstrumentState {
                symbol: inst.symbol.clone(),
                spec,
                asset,
                offset_ppb,
                touch: Touch {
                    bid: 0,
                    bid_lots: 0,
                    ask: 0,
                    ask_lots: 0,
                },
                stats: Stats {
                    last: 0,
                    open: 0,
                    high: 0,
                    low: 0,
                    volume_lots: 0,
                },
                next_trade_id: 1 + rng.below(9_000_000) + 1_000_000,
            };
            state.touch = new_touch(&mut rng, &spec, fair_ticks(&state, PPB));
            state.stats = seed_stats(&mut rng, &spec, &state.touch);
            insts.push(state);
        }
        let n = insts.len() as u128;
        let total = u128::from(config.mix.total());
        let mean_ns = Channel::ALL.map(|c| {
            let w = u128::from(config.mix.weight(c));
            (w > 0).then(|| {
                let ns = 1_000_000_000 * total * n / (u128::from(config.rate) * w);
                u64::try_from(ns).unwrap_or(u64::MAX).max(1)
            })
        });
        let start_ns = now_us.saturating_mul(1000);
        let mut market = Self {
            assets: vec![PPB; asset_index.len()],
            insts,
            timers: BinaryHeap::new(),
            mean_ns,
            rng,
            book_depth: config.book_depth,
            volatility_ppb,
            rate: config.rate,
            start_us: now_us,
            now_ns: start_ns,
            next_step_ns: start_ns.saturating_add(STEP_NS),
            snapshot_due: true,
            timer_order: 0,
        };
        for inst in 0..market.insts.len() {
            for channel in Channel::ALL {
                if let Some(mean) = market.mean_ns[channel.index()] {
                    // First trades come anywhere in the first interval, so a
                    // fresh market trades at once; the other channels start
                    // with the snapshot and continue one interval later.
                    let first = match channel {
                        Channel::Trade => market.rng.below(mean) + 1,
                        _ => market.jitter(mean),
                    };
                    market.push_timer(start_ns.saturating_add(first), inst, channel);
                }
            }
        }
        Ok(market)
    }

    /// The instruments, in configuration order.
    pub fn instruments(&self) -> impl ExactSizeIterator<Item = &Instrument> + '_ {
        self.insts.iter().map(|s| &s.symbol)
    }

    /// The total rate, events per second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Appends to `out`, in time order, every event due up to `now_us` since
    /// the previous call (or since the start). The first call also emits a
    /// snapshot (quote, book, ticker) of every instrument, stamped with the
    /// start time. Every event gets `ts` = its generation time and `rx` =
    /// `now_us`. A `now_us` earlier than a previous one produces nothing;
    /// after a pause longer than 1 s only the last second is generated.
    pub fn advance(&mut self, now_us: u64, out: &mut Vec<Event>) {
        let now_ns = now_us.saturating_mul(1000).max(self.now_ns);
        let rx = now_ns / 1000;
        if self.snapshot_due {
            self.snapshot_due = false;
            for inst in 0..self.insts.len() {
                // The snapshot's quote is the touch set up at creation.
                let state = &self.insts[inst];
                let q = Payload::Quote(quote(&state.spec, &state.touch));
                let book = Payload::Book(self.book(inst));
                let t = Payload::Ticker(ticker(&self.insts[inst]));
                for payload in [q, book, t] {
                    out.push(Event {
                        instrument: self.insts[inst].symbol.clone(),
                        ts: self.start_us,
                        rx,
                        payload,
                    });
                }
            }
        }
        let behind = now_ns - self.now_ns;
        if behind > MAX_CATCH_UP_NS {
            self.skip(behind - MAX_CATCH_UP_NS);
        }
        while let Some(&Reverse(timer)) = self.timers.peek() {
            if timer.at_ns > now_ns {
                break;
            }
            self.timers.pop();
            self.walk_to(timer.at_ns);
            let inst = timer.inst as usize;
            let channel = Channel::ALL[usize::from(timer.channel)];
            out.push(self.event(inst, channel, timer.at_ns / 1000, rx));
            if let Some(mean) = self.mean_ns[channel.index()] {
                let next = timer.at_ns.saturating_add(self.jitter(mean));
                self.push_timer(next, inst, channel);
            }
        }
        self.walk_to(now_ns);
        self.now_ns = now_ns;
    }

    /// A uniformly jittered interval, 0.5 to 1.5 times the mean, so bursts
    /// and lulls look natural while the longest gap stays bounded.
    fn jitter(&mut self, mean: u64) -> u64 {
        let factor = 500 + self.rng.below(1001);
        let ns = u128::from(mean) * u128::from(factor) / 1000;
        u64::try_from(ns).unwrap_or(u64::MAX).max(1)
    }

    fn push_timer(&mut self, at_ns: u64, inst: usize, channel: Channel) {
        self.timer_order += 1;
        self.timers.push(Reverse(Timer {
            at_ns,
            order: self.timer_order,
            inst: inst as u32,
            channel: channel.index() as u8,
        }));
    }

    /// Moves every timer and the walk grid `by_ns` later: the skipped time
    /// produces nothing.
    fn skip(&mut self, by_ns: u64) {
        let timers = std::mem::take(&mut self.timers);
        self.timers = timers
            .into_iter()
            .map(|Reverse(mut t)| {
                t.at_ns = t.at_ns.saturating_add(by_ns);
                Reverse(t)
            })
            .collect();
        self.next_step_ns = self.next_step_ns.saturating_add(by_ns);
        self.now_ns = self.now_ns.saturating_add(by_ns);
    }

    /// Runs the shared walks and venue offsets up to `t_ns`.
    fn walk_to(&mut self, t_ns: u64) {
        while self.next_step_ns <= t_ns {
            self.next_step_ns = self.next_step_ns.saturating_add(STEP_NS);
            let v = self.volatility_ppb;
            for factor in &mut self.assets {
                let pull = (*factor - PPB) / ASSET_REVERSION_STEPS;
                *factor = (*factor + self.rng.range(-v, v) - pull).clamp(PPB / 5, PPB * 5);
            }
            for inst in &mut self.insts {
                let pull = inst.offset_ppb / OFFSET_REVERSION_STEPS;
                inst.offset_ppb += self.rng.range(-v / 4, v / 4) - pull;
            }
        }
    }

    fn event(&mut self, inst: usize, channel: Channel, ts: u64, rx: u64) -> Event {
        let payload = match channel {
            Channel::Quote => {
                let fair = fair_ticks(&self.insts[inst], self.assets[self.insts[inst].asset]);
                let state = &mut self.insts[inst];
                state.touch = new_touch(&mut self.rng, &state.spec, fair);
                Payload::Quote(quote(&state.spec, &state.touch))
            }
            Channel::Trade => Payload::Trade(self.trade(inst)),
            Channel::Ticker => Payload::Ticker(ticker(&self.insts[inst])),
            Channel::Book => Payload::Book(self.book(inst)),
        };
        Event {
            instrument: self.insts[inst].symbol.clone(),
            ts,
            rx,
            payload,
        }
    }

    fn trade(&mut self, inst: usize) -> Trade {
        let rng = &mut self.rng;
        let state = &mut self.insts[inst];
        let Touch { bid, ask, .. } = state.touch;
        let side = if rng.chance(500) {
            Side::Buy
        } else {
            Side::Sell
        };
        // Mostly at the touch (a taker hitting the best price); sometimes
        // inside a wide spread (a hidden or mid-point order).
        let price = if ask - bid <= 1 || rng.chance(800) {
            match side {
                Side::Buy => ask,
                Side::Sell => bid,
            }
        } else {
            rng.range(bid + 1, ask - 1)
        };
        let typical = state.spec.typical_lots;
        let lots = rng.range(typical / 10, typical * 2).max(1);
        let stats = &mut state.stats;
        stats.last = price;
        stats.high = stats.high.max(price);
        stats.low = stats.low.min(price);
        stats.volume_lots = (stats.volume_lots + i128::from(lots)).min(MAX_MANTISSA);
        let trade_id = state.next_trade_id.to_string();
        state.next_trade_id += 1;
        Trade {
            price: state.spec.price(price),
            size: state.spec.size(lots),
            side,
            trade_id,
        }
    }

    fn book(&mut self, inst: usize) -> BookTop {
        let state = &self.insts[inst];
        let (spec, touch, depth) = (&state.spec, state.touch, self.book_depth);
        let mut bids: Vec<Level> = Vec::with_capacity(depth);
        let mut asks: Vec<Level> = Vec::with_capacity(depth);
        bids.push((spec.price(touch.bid), spec.size(touch.bid_lots)));
        asks.push((spec.price(touch.ask), spec.size(touch.ask_lots)));
        let (mut bid, mut ask) = (touch.bid, touch.ask);
        for level in 1..depth as i64 {
            let typical = spec.typical_lots;
            let deeper = typical.saturating_mul(4 + 2 * level);
            bid -= self.rng.range(1, MAX_LEVEL_GAP_TICKS);
            ask += self.rng.range(1, MAX_LEVEL_GAP_TICKS);
            let bid_lots = self.rng.range(typical / 2, deeper).max(1);
            let ask_lots = self.rng.range(typical / 2, deeper).max(1);
            // Prices stay positive: a book near zero is simply shallower.
            if bid >= 1 {
                bids.push((spec.price(bid), spec.size(bid_lots)));
            }
            asks.push((spec.price(ask), spec.size(ask_lots)));
        }
        BookTop { bids, asks }
    }
}

/// The instrument's fair mid in ticks, for an asset walk at `factor_ppb`.
fn fair_ticks(state: &InstrumentState, factor_ppb: i64) -> i64 {
    state
        .spec
        .ticks_of_ppb(factor_ppb + state.offset_ppb)
        .max(1)
}

/// A fresh touch around `fair`: spread of 1 to 3 ticks, bid at least 1.
fn new_touch(rng: &mut Rng, spec: &Spec, fair: i64) -> Touch {
    let spread = rng.range(1, MAX_SPREAD_TICKS);
    let bid = (fair - spread / 2).max(1);
    let typical = spec.typical_lots;
    Touch {
        bid,
        bid_lots: rng.range(typical / 4, typical * 6).max(1),
        ask: bid + spread,
        ask_lots: rng.range(typical / 4, typical * 6).max(1),
    }
}

/// Plausible 24 h statistics at start: an open within ±3 %, a range a
/// little wider than open and mid, some thousands of typical trades.
fn seed_stats(rng: &mut Rng, spec: &Spec, touch: &Touch) -> Stats {
    let mid = touch.bid + (touch.ask - touch.bid) / 2;
    let open = spec
        .ticks_of_ppb(PPB + rng.range(-30_000_000, 30_000_000))
        .max(1);
    let high = open.max(touch.ask) + spec.ticks_of_ppb(rng.range(0, 20_000_000));
    let low = (open.min(touch.bid) - spec.ticks_of_ppb(rng.range(0, 20_000_000))).max(1);
    Stats {
        last: mid,
        open,
        high,
        low,
        volume_lots: i128::from(spec.typical_lots) * i128::from(rng.range(20_000, 60_000)),
    }
}

fn quote(spec: &Spec, t: &Touch) -> Quote {
    Quote {
        bid: spec.price(t.bid),
        bid_size: spec.size(t.bid_lots),
        ask: spec.price(t.ask),
        ask_size: spec.size(t.ask_lots),
    }
}

fn ticker(state: &InstrumentState) -> Ticker {
    let (spec, s) = (&state.spec, &state.stats);
    Ticker {
        last: spec.price(s.last),
        open_24h: spec.price(s.open),
        high_24h: spec.price(s.high),
        low_24h: spec.price(s.low),
        volume_24h: Decimal::from_i128_with_scale(s.volume_lots.min(MAX_MANTISSA), spec.size_scale),
    }
}

/// The venues of `config`'s instruments, each once, in first-seen order.
pub(crate) fn venues(config: &SyntheticConfig) -> Vec<&str> {
    let mut seen = HashSet::new();
    config
        .instruments
        .iter()
        .map(|i| i.symbol.venue())
        .filter(|v| seen.insert(*v))
        .collect()
}

#[cfg(test)]
mod tests;
