//! Tests of the synthetic market: the invariants every event stream keeps
//! (property tests over seeds, rates and call patterns), liveliness at the
//! demo rate, rate accuracy, determinism and cross-venue coherence.

use std::collections::HashMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tickwire_model::{Event, Instrument, Payload, Quote};

use super::*;
use crate::FeedsConfig;

const START_US: u64 = 1_764_000_000_000_000;

fn demo() -> SyntheticConfig {
    FeedsConfig::demo().synthetic().expect("synthetic").clone()
}

/// Runs a market through `steps` (µs between calls) and returns all events.
fn run(config: SyntheticConfig, seed: u64, steps: &[u64]) -> Vec<Event> {
    let mut m = SyntheticMarket::new(config, seed, START_US).expect("valid config");
    let mut out = Vec::new();
    let mut now = START_US;
    for step in steps {
        now += step;
        m.advance(now, &mut out);
    }
    out
}

#[derive(Default)]
struct Seen {
    quote: Option<Quote>,
    trade_id: Option<u64>,
    volume: Option<Decimal>,
    traded_since_ticker: Decimal,
    quotes: usize,
    trades: usize,
}

/// Checks every invariant of the stream; the message names the event.
fn check(config: &SyntheticConfig, events: &[Event]) -> Result<(), String> {
    let specs: HashMap<&Instrument, &SyntheticInstrument> =
        config.instruments.iter().map(|i| (&i.symbol, i)).collect();
    let mut seen: HashMap<&Instrument, Seen> = HashMap::new();
    let mut last_ts = 0;
    for (n, ev) in events.iter().enumerate() {
        let fail = |what: &str| Err(format!("event {n} {ev:?}: {what}"));
        let spec = specs.get(&ev.instrument).ok_or("unknown instrument")?;
        let (ps, ss) = (spec.tick.scale(), spec.size_scale);
        if ev.ts < last_ts {
            return fail("ts went backwards");
        }
        if ev.ts > ev.rx {
            return fail("ts after rx");
        }
        last_ts = ev.ts;
        let s = seen.entry(&ev.instrument).or_default();
        match &ev.payload {
            Payload::Quote(q) => {
                if q.bid >= q.ask || q.bid <= Decimal::ZERO {
                    return fail("bid not below ask, or not positive");
                }
                if [q.bid, q.ask].iter().any(|p| p.scale() != ps)
                    || [q.bid_size, q.ask_size].iter().any(|z| z.scale() != ss)
                {
                    return fail("scale changed");
                }
                if q.bid_size <= Decimal::ZERO || q.ask_size <= Decimal::ZERO {
                    return fail("size not positive");
                }
                s.quote = Some(q.clone());
                s.quotes += 1;
            }
            Payload::Trade(t) => {
                let Some(q) = &s.quote else {
                    return fail("trade before any quote");
                };
                if t.price < q.bid || t.price > q.ask {
                    return fail("trade outside the touch");
                }
                if t.price.scale() != ps || t.size.scale() != ss || t.size <= Decimal::ZERO {
                    return fail("bad trade price/size scale");
                }
                let id: u64 = t.trade_id.parse().map_err(|_| "trade_id not a number")?;
                if s.trade_id.is_some_and(|last| id <= last) {
                    return fail("trade_id not rising");
                }
                s.trade_id = Some(id);
                s.traded_since_ticker += t.size;
                s.trades += 1;
            }
            Payload::Ticker(t) => {
                if !(t.low_24h <= t.last && t.last <= t.high_24h) {
                    return fail("last outside low..high");
                }
                if !(t.low_24h <= t.open_24h && t.open_24h <= t.high_24h) {
                    return fail("open outside low..high");
                }
                let prices = [t.last, t.open_24h, t.high_24h, t.low_24h];
                if prices.iter().any(|p| p.scale() != ps) || t.volume_24h.scale() != ss {
                    return fail("ticker scale changed");
                }
                if let Some(v) = s.volume {
                    if t.volume_24h != v + s.traded_since_ticker {
                        return fail("volume did not rise by the trades since the last ticker");
                    }
                }
                s.volume = Some(t.volume_24h);
                s.traded_since_ticker = Decimal::ZERO;
            }
            Payload::Book(b) => {
                let Some(q) = &s.quote else {
                    return fail("book before any quote");
                };
                if b.bids.first() != Some(&(q.bid, q.bid_size))
                    || b.asks.first() != Some(&(q.ask, q.ask_size))
                {
                    return fail("book top differs from the current quote");
                }
                if b.bids.len() > config.book_depth || b.asks.len() > config.book_depth {
                    return fail("book deeper than book_depth");
                }
                if b.bids.windows(2).any(|w| w[0].0 <= w[1].0) {
                    return fail("bids not strictly descending");
                }
                if b.asks.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return fail("asks not strictly ascending");
                }
                let levels = b.bids.iter().chain(&b.asks);
                if levels
                    .clone()
                    .any(|(p, z)| p.scale() != ps || z.scale() != ss || *p <= Decimal::ZERO)
                {
                    return fail("book level scale or sign");
                }
                if levels.clone().any(|(_, z)| *z <= Decimal::ZERO) {
                    return fail("book size not positive");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_hold_for_any_seed_rate_and_call_pattern(
        seed: u64,
        rate in 1u32..20_000,
        depth in 1usize..12,
        steps in prop::collection::vec(0u64..400_000, 1..40),
    ) {
        let mut config = demo().with_rate(rate).expect("rate");
        config.book_depth = depth;
        let events = run(config.clone(), seed, &steps);
        prop_assert!(events.len() >= 3 * config.instruments.len(), "snapshot missing");
        if let Err(e) = check(&config, &events) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn invariants_hold_for_tiny_prices_and_wild_walks(seed: u64, steps in prop::collection::vec(0u64..2_000_000, 1..20)) {
        let inst = SyntheticInstrument {
            symbol: Instrument::parse("test:PEPE-USD").expect("instrument"),
            price: Decimal::new(3, 6),
            tick: Decimal::new(1, 6),
            size_scale: 0,
            typical_size: Decimal::from(1),
        };
        let mut config = SyntheticConfig::new(vec![inst]).with_rate(5_000).expect("rate");
        config.volatility_bp = Decimal::from(1000);
        let events = run(config.clone(), seed, &steps);
        if let Err(e) = check(&config, &events) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn same_seed_same_market() {
    let steps = [7_000, 13_000, 250_000, 1, 0, 600_000];
    assert_eq!(run(demo(), 9, &steps), run(demo(), 9, &steps));
    assert_ne!(run(demo(), 9, &steps), run(demo(), 10, &steps));
}

#[test]
fn demo_is_lively_from_the_first_second() {
    for seed in 0..20 {
        let config = demo();
        let events = run(config.clone(), seed, &[10_000; 100]);
        check(&config, &events).expect("invariants");
        for inst in &config.instruments {
            let of = |want: fn(&Payload) -> bool| {
                events
                    .iter()
                    .filter(|e| e.instrument == inst.symbol && want(&e.payload))
                    .count()
            };
            let quotes = of(|p| matches!(p, Payload::Quote(_)));
            let trades = of(|p| matches!(p, Payload::Trade(_)));
            assert!(
                quotes >= 4,
                "seed {seed}: {} quoted {quotes} times",
                inst.symbol
            );
            assert!(
                trades >= 1,
                "seed {seed}: {} traded {trades} times",
                inst.symbol
            );
        }
    }
}

#[test]
fn no_instrument_goes_half_a_second_without_a_trade() {
    let config = demo();
    let events = run(config.clone(), 3, &[5_000; 2_000]);
    for inst in &config.instruments {
        let mut last = START_US;
        for e in events.iter().filter(|e| e.instrument == inst.symbol) {
            if matches!(e.payload, Payload::Trade(_)) {
                assert!(
                    e.ts - last <= 500_000,
                    "{} silent for {} µs",
                    inst.symbol,
                    e.ts - last
                );
                last = e.ts;
            }
        }
    }
}

#[test]
fn rate_is_the_total_events_per_second() {
    for rate in [200, 10_000, 100_000] {
        let config = demo().with_rate(rate).expect("rate");
        let snapshot = 3 * config.instruments.len();
        let events = run(config, 1, &[5_000; 400]);
        let generated = (events.len() - snapshot) as f64 / 2.0;
        let ratio = generated / f64::from(rate);
        assert!((0.9..1.1).contains(&ratio), "rate {rate}: {generated}/s");
    }
}

#[test]
fn scales_are_the_ticks_and_size_scales() {
    let events = run(demo(), 5, &[100_000; 20]);
    let price_of = |symbol: &str| {
        events
            .iter()
            .find_map(|e| match &e.payload {
                Payload::Trade(t) if e.instrument.as_str() == symbol => {
                    Some((t.price.to_string(), t.size.to_string()))
                }
                _ => None,
            })
            .expect("a trade")
    };
    let decimals = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
    for (symbol, price_decimals) in [
        ("coinbase:BTC-USD", 2),
        ("coinbase:ETH-USD", 2),
        ("binance:DOGE-USDT", 5),
        ("kraken:BTC-USD", 1),
    ] {
        let (price, size) = price_of(symbol);
        assert_eq!(decimals(&price), price_decimals, "{symbol} {price}");
        assert_eq!(decimals(&size), 8, "{symbol} {size}");
    }
}

#[test]
fn the_same_asset_stays_close_across_venues() {
    let config = demo();
    // Ten simulated minutes at the demo rate.
    let events = run(config, 11, &[50_000; 12_000]);
    let mid = |symbol: &str| {
        events
            .iter()
            .rev()
            .find_map(|e| match &e.payload {
                Payload::Quote(q) if e.instrument.as_str() == symbol => {
                    Some((q.bid + q.ask) / Decimal::TWO)
                }
                _ => None,
            })
            .expect("a quote")
    };
    let (a, b, c) = (
        mid("coinbase:BTC-USD"),
        mid("binance:BTC-USDT"),
        mid("kraken:BTC-USD"),
    );
    for (x, y) in [(a, b), (a, c), (b, c)] {
        let gap = ((x - y) / x).abs();
        assert!(
            gap < Decimal::new(3, 3),
            "BTC mids {x} and {y} differ by {gap}"
        );
    }
    // And the walk did move.
    assert_ne!(a, Decimal::new(6_400_000, 2));
}

#[test]
fn time_never_runs_backwards_and_long_pauses_are_bounded() {
    let config = demo();
    let n = config.instruments.len();
    let mut m = SyntheticMarket::new(config, 1, START_US).expect("valid");
    let mut out = Vec::new();
    m.advance(START_US + 100_000, &mut out);
    let first = out.len();
    assert!(first >= 3 * n);
    m.advance(START_US, &mut out);
    assert_eq!(out.len(), first, "an earlier time produced events");
    // An hour later: at most about one second of events, not an hour's.
    out.clear();
    m.advance(START_US + 3_600_000_000, &mut out);
    assert!(out.len() < 400, "{} events after a pause", out.len());
    assert!(out.iter().all(|e| e.ts >= START_US + 3_599_000_000));
}

#[test]
fn zero_weight_channels_stay_quiet_after_the_snapshot() {
    let mut config = demo();
    config.mix = ChannelMix {
        trade: 1,
        quote: 0,
        ticker: 0,
        book: 0,
    };
    let n = config.instruments.len();
    let events = run(config.clone(), 2, &[10_000; 100]);
    check(&config, &events).expect("invariants");
    assert!(
        events[3 * n..]
            .iter()
            .all(|e| matches!(e.payload, Payload::Trade(_)))
    );
}

#[test]
fn invalid_configs_name_the_key() {
    let e = demo().with_rate(0).expect_err("rate 0");
    assert_eq!(e.key(), Some("rate"));
    let mut config = demo();
    let n = config.instruments.len();
    config.instruments.push(config.instruments[0].clone());
    let e = SyntheticMarket::new(config, 0, 0).expect_err("duplicate");
    assert_eq!(
        e.key().map(str::to_owned),
        Some(format!("instruments[{n}].symbol"))
    );
    let mut config = demo();
    config.instruments[2].tick = Decimal::new(7, 2);
    let e = config
        .validate()
        .expect_err("price not a multiple of the tick");
    assert_eq!(e.key(), Some("instruments[2].price"));
    assert!(SyntheticConfig::new(Vec::new()).validate().is_err());
}
