//! Shared inputs for the tickwire benchmarks: realistic events per channel.

use tickwire_model::{
    BookTop, Decimal, Event, Instrument, Payload, Quote, Side, Ticker, Trade, parse_decimal,
};

fn d(s: &str) -> Decimal {
    parse_decimal(s).unwrap_or_default()
}

/// One representative event per channel, as ingest would produce them.
pub fn sample_events() -> Vec<(&'static str, Event)> {
    let instrument =
        Instrument::parse("coinbase:BTC-USD").unwrap_or_else(|_| unreachable!("valid literal"));
    let ev = |payload| Event {
        instrument: instrument.clone(),
        ts: 1_764_000_000_123_456,
        rx: 1_764_000_000_124_001,
        payload,
    };
    let levels = |start: i64, step: i64| -> Vec<(Decimal, Decimal)> {
        (0..10)
            .map(|k| (Decimal::new(start + k * step, 2), d("0.51230000")))
            .collect()
    };
    vec![
        (
            "trade",
            ev(Payload::Trade(Trade {
                price: d("64000.10"),
                size: d("0.01200000"),
                side: Side::Buy,
                trade_id: "3141592653".into(),
            })),
        ),
        (
            "quote",
            ev(Payload::Quote(Quote {
                bid: d("64000.12"),
                bid_size: d("0.51"),
                ask: d("64000.13"),
                ask_size: d("1.2"),
            })),
        ),
        (
            "ticker",
            ev(Payload::Ticker(Ticker {
                last: d("64001.0"),
                open_24h: d("63000.0"),
                high_24h: d("64500.0"),
                low_24h: d("62800.5"),
                volume_24h: d("1234.5678"),
            })),
        ),
        (
            "book",
            ev(Payload::Book(BookTop {
                bids: levels(6_400_012, -1),
                asks: levels(6_400_013, 1),
            })),
        ),
    ]
}
