//! Kraken adapter tests: golden frames in, exact canonical output out; book
//! integrity (checksums, truncation, resync); the fake; the generated
//! capture.

use rust_decimal::Decimal;
use tickwire_model::{
    BookTop, Event, Instrument, Payload, Quote, Side, Ticker, Trade, parse_decimal,
};

use super::fake::{KrakenFake, generate};
use super::*;
use crate::FeedsConfig;
use crate::adapter::{Action, Adapter, FrameError, Note, Output};
use crate::book::{Book, kraken_checksum};
use crate::capture::{Capture, Source};
use crate::venue::FakeVenue;

const FEED: &str = include_str!("../../../../../feeds/kraken/feed.toml");
const TRADE: &str = include_str!("../../../../../feeds/kraken/fixtures/trade.json");
const TICKER: &str = include_str!("../../../../../feeds/kraken/fixtures/ticker.json");
const SNAPSHOT: &str = include_str!("../../../../../feeds/kraken/fixtures/book_snapshot.json");
const UPDATE: &str = include_str!("../../../../../feeds/kraken/fixtures/book_update.json");
const HEARTBEAT: &str = include_str!("../../../../../feeds/kraken/fixtures/heartbeat.json");
const STATUS: &str = include_str!("../../../../../feeds/kraken/fixtures/status.json");
const ACK: &str = include_str!("../../../../../feeds/kraken/fixtures/subscribe_ack.json");
const UNSUB_ACK: &str = include_str!("../../../../../feeds/kraken/fixtures/unsubscribe_ack.json");
const REJECT: &str = include_str!("../../../../../feeds/kraken/fixtures/subscribe_error.json");
const PONG: &str = include_str!("../../../../../feeds/kraken/fixtures/pong.json");
const CAPTURE: &str = include_str!("../../../../../feeds/kraken/capture.jsonl");

const RX: u64 = 1_800_000_000_000_000;

fn feed() -> VenueFeed {
    FeedsConfig::parse(FEED)
        .expect("feed.toml")
        .venue()
        .cloned()
        .expect("a venue feed")
}

fn d(s: &str) -> Decimal {
    parse_decimal(s).expect("decimal")
}

fn inst(s: &str) -> Instrument {
    Instrument::parse(s).expect("instrument")
}

fn btc() -> Instrument {
    inst("kraken:BTC-USD")
}

fn ev(instrument: &Instrument, ts: u64, payload: Payload) -> Event {
    Event {
        instrument: instrument.clone(),
        ts,
        rx: RX,
        payload,
    }
}

fn us(text: &str) -> u64 {
    crate::adapter::parse_rfc3339_us(text).expect("time")
}

fn levels(pairs: &[(&str, &str)]) -> Vec<(Decimal, Decimal)> {
    pairs.iter().map(|(p, q)| (d(p), d(q))).collect()
}

/// The documented checksum vector (reference §3.4), best first.
const VECTOR_ASKS: [(&str, &str); 10] = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
];
const VECTOR_BIDS: [(&str, &str); 10] = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
];

fn run(adapter: &mut KrakenAdapter, frame: &str) -> (Result<(), FrameError>, Output) {
    let mut out = Output::default();
    let r = adapter.on_text(frame, RX, &mut out);
    (r, out)
}

#[test]
fn golden_frames() {
    let eth = inst("kraken:ETH-EUR");
    struct Case {
        name: &'static str,
        frame: &'static str,
        events: Vec<Event>,
        notes: Vec<Note>,
    }
    let cases = vec![
        Case {
            name: "trade",
            frame: TRADE,
            events: vec![
                ev(
                    &btc(),
                    us("2026-11-02T00:00:01.708706Z"),
                    Payload::Trade(Trade {
                        price: d("70213.4"),
                        size: d("0.01250000"),
                        side: Side::Sell,
                        trade_id: "4665906".into(),
                    }),
                ),
                ev(
                    &eth,
                    us("2026-11-02T00:00:01.709001Z"),
                    Payload::Trade(Trade {
                        price: d("3128.10"),
                        size: d("0.50000000"),
                        side: Side::Buy,
                        trade_id: "1022041".into(),
                    }),
                ),
            ],
            notes: vec![],
        },
        Case {
            name: "ticker: a quote and a ticker, open = last - change",
            frame: TICKER,
            events: vec![
                ev(
                    &btc(),
                    us("2026-10-31T12:00:00.123456Z"),
                    Payload::Quote(Quote {
                        bid: d("70213.4"),
                        bid_size: d("0.51200000"),
                        ask: d("70213.5"),
                        ask_size: d("1.02000000"),
                    }),
                ),
                ev(
                    &btc(),
                    us("2026-10-31T12:00:00.123456Z"),
                    Payload::Ticker(Ticker {
                        last: d("70213.5"),
                        open_24h: d("69401.4"),
                        high_24h: d("70588.0"),
                        low_24h: d("69011.2"),
                        volume_24h: d("1543.12345678"),
                    }),
                ),
            ],
            notes: vec![],
        },
        Case {
            name: "ticker without timestamp: ts is rx",
            frame: r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ETH/EUR","bid":3128.05,"bid_qty":2.00000000,"ask":3128.06,"ask_qty":0.10000000,"last":3128.06,"volume":812.5,"vwap":3100.01,"low":3001.00,"high":3130.00,"change":-1.1,"change_pct":-0.04}]}"#,
            events: vec![
                ev(
                    &eth,
                    RX,
                    Payload::Quote(Quote {
                        bid: d("3128.05"),
                        bid_size: d("2.00000000"),
                        ask: d("3128.06"),
                        ask_size: d("0.10000000"),
                    }),
                ),
                ev(
                    &eth,
                    RX,
                    Payload::Ticker(Ticker {
                        last: d("3128.06"),
                        open_24h: d("3129.16"),
                        high_24h: d("3130.00"),
                        low_24h: d("3001.00"),
                        volume_24h: d("812.5"),
                    }),
                ),
            ],
            notes: vec![],
        },
        Case {
            name: "heartbeat",
            frame: HEARTBEAT,
            events: vec![],
            notes: vec![Note::Heartbeat],
        },
        Case {
            name: "status",
            frame: STATUS,
            events: vec![],
            notes: vec![Note::Heartbeat],
        },
        Case {
            name: "subscribe ack",
            frame: ACK,
            events: vec![],
            notes: vec![Note::Ack],
        },
        Case {
            name: "unsubscribe ack",
            frame: UNSUB_ACK,
            events: vec![],
            notes: vec![Note::Ack],
        },
        Case {
            name: "rejection of a symbol not in the feed",
            frame: REJECT,
            events: vec![],
            notes: vec![Note::Rejected {
                instrument: None,
                reason: "Currency pair not supported BTC/XYZ".into(),
            }],
        },
        Case {
            name: "rejection of a feed symbol",
            frame: r#"{"error":"Already subscribed","method":"subscribe","req_id":2,"success":false,"symbol":"ETH/EUR","time_in":"2026-11-02T00:00:00.1Z","time_out":"2026-11-02T00:00:00.1Z"}"#,
            events: vec![],
            notes: vec![Note::Rejected {
                instrument: Some(eth.clone()),
                reason: "Already subscribed".into(),
            }],
        },
        Case {
            name: "pong",
            frame: PONG,
            events: vec![],
            notes: vec![Note::Pong],
        },
        Case {
            name: "unknown channel",
            frame: r#"{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","open":70000.0,"interval":1}]}"#,
            events: vec![],
            notes: vec![Note::Unknown],
        },
        Case {
            name: "unknown method",
            frame: r#"{"method":"edit_order","req_id":1,"success":true}"#,
            events: vec![],
            notes: vec![Note::Unknown],
        },
        Case {
            name: "empty trade update",
            frame: r#"{"channel":"trade","type":"update","data":[]}"#,
            events: vec![],
            notes: vec![],
        },
    ];
    for backend in [json::Backend::Simd, json::Backend::Serde] {
        for case in &cases {
            let mut a = KrakenAdapter::with_backend(&feed(), backend);
            let (r, out) = run(&mut a, case.frame);
            assert_eq!(r, Ok(()), "{}", case.name);
            assert_eq!(out.events, case.events, "{} ({backend:?})", case.name);
            assert_eq!(out.notes, case.notes, "{}", case.name);
            assert!(
                out.books.is_empty() && out.actions.is_empty(),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn decimals_keep_the_wire_scale() {
    let mut a = KrakenAdapter::new(&feed());
    let (_, out) = run(&mut a, TRADE);
    let Payload::Trade(t) = &out.events[1].payload else {
        panic!("a trade")
    };
    assert_eq!(
        (t.price.to_string().as_str(), t.price.scale()),
        ("3128.10", 2)
    );
    assert_eq!(
        (t.size.to_string().as_str(), t.size.scale()),
        ("0.50000000", 8)
    );
    let (_, out) = run(&mut a, TICKER);
    let Payload::Ticker(t) = &out.events[1].payload else {
        panic!("a ticker")
    };
    assert_eq!(t.high_24h.to_string(), "70588.0");
    assert_eq!(t.open_24h.scale(), 1);
}

#[test]
fn bad_frames_are_errors_of_the_right_kind_and_leave_nothing() {
    let cases: Vec<(&str, &str, FrameError)> = vec![
        ("not json", "hello", FrameError::Malformed(String::new())),
        (
            "truncated",
            r#"{"channel":"trade","data":[{"symbol":"BTC/USD""#,
            FrameError::Malformed(String::new()),
        ),
        (
            "unterminated string",
            r#"{"channel":"tra"#,
            FrameError::Malformed(String::new()),
        ),
        ("an array", "[1,2]", FrameError::Malformed(String::new())),
        (
            "bad decimal",
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1.2.3,"qty":0.1,"trade_id":1,"timestamp":"2026-11-02T00:00:01Z"}]}"#,
            FrameError::Decimal {
                field: "price",
                text: "1.2.3".into(),
            },
        ),
        (
            "exponent is not an exact decimal",
            r#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":7e4,"bid_qty":1,"ask":70001,"ask_qty":1,"last":1,"volume":1,"low":1,"high":1,"change":0}]}"#,
            FrameError::Decimal {
                field: "bid",
                text: "7e4".into(),
            },
        ),
        (
            "unknown instrument (second item: the first is not published either)",
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1.0,"qty":0.1,"trade_id":1,"timestamp":"2026-11-02T00:00:01Z"},{"symbol":"XBT/USD","side":"buy","price":1.0,"qty":0.1,"trade_id":2}]}"#,
            FrameError::UnknownInstrument("XBT/USD".into()),
        ),
        (
            "missing side",
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","price":1.0,"qty":0.1,"trade_id":1}]}"#,
            FrameError::Field("side"),
        ),
        (
            "bad side",
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"short","price":1.0,"qty":0.1,"trade_id":1}]}"#,
            FrameError::Field("side"),
        ),
        (
            "missing symbol",
            r#"{"channel":"ticker","type":"update","data":[{"bid":1.0}]}"#,
            FrameError::Field("symbol"),
        ),
        (
            "bad timestamp",
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1.0,"qty":0.1,"trade_id":1,"timestamp":"yesterday"}]}"#,
            FrameError::Time {
                field: "timestamp",
                text: "yesterday".into(),
            },
        ),
        (
            "book without a type",
            r#"{"channel":"book","data":[]}"#,
            FrameError::Field("type"),
        ),
        (
            "ack without success",
            r#"{"method":"subscribe","req_id":1}"#,
            FrameError::Field("success"),
        ),
    ];
    for (name, frame, want) in cases {
        let mut a = KrakenAdapter::new(&feed());
        let (r, out) = run(&mut a, frame);
        let err = r.expect_err(name);
        match (&err, &want) {
            (FrameError::Malformed(_), FrameError::Malformed(_)) => {}
            _ => assert_eq!(err, want, "{name}"),
        }
        assert!(out.is_empty(), "{name}: {out:?}");
    }
}

#[test]
fn subscribe_frames() {
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"method":"subscribe","params":{"channel":"trade","snapshot":false,"symbol":["BTC/USD","ETH/EUR"]},"req_id":1}"#,
            r#"{"method":"subscribe","params":{"channel":"ticker","event_trigger":"bbo","symbol":["BTC/USD","ETH/EUR"]},"req_id":2}"#,
            r#"{"method":"subscribe","params":{"channel":"book","depth":10,"snapshot":true,"symbol":["BTC/USD","ETH/EUR"]},"req_id":3}"#,
        ]
    );
    assert_eq!(
        a.keepalive().as_deref(),
        Some(r#"{"method":"ping","req_id":4}"#)
    );
    // Ticker alone keeps Kraken's default trigger (on trades); depth 11
    // needs a depth-25 subscription.
    let mut f = feed();
    f.channels = vec![Channel::Ticker, Channel::Book];
    f.book_depth = 11;
    let mut a = KrakenAdapter::new(&f);
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD","ETH/EUR"]},"req_id":1}"#,
            r#"{"method":"subscribe","params":{"channel":"book","depth":25,"snapshot":true,"symbol":["BTC/USD","ETH/EUR"]},"req_id":2}"#,
        ]
    );
}

#[test]
fn subscription_depths() {
    for (want, sub) in [
        (1, 10),
        (10, 10),
        (11, 25),
        (25, 25),
        (26, 100),
        (50, 100),
        (2000, 1000),
    ] {
        assert_eq!(subscription_depth(want), sub, "{want}");
    }
}

#[test]
fn ticker_only_or_quote_only() {
    let mut f = feed();
    f.channels = vec![Channel::Quote];
    let mut a = KrakenAdapter::new(&f);
    let (_, out) = run(&mut a, TICKER);
    assert_eq!(out.events.len(), 1);
    assert!(matches!(out.events[0].payload, Payload::Quote(_)));
    f.channels = vec![Channel::Ticker];
    let mut a = KrakenAdapter::new(&f);
    let (_, out) = run(&mut a, TICKER);
    assert_eq!(out.events.len(), 1);
    assert!(matches!(out.events[0].payload, Payload::Ticker(_)));
}

fn vector_top() -> BookTop {
    BookTop {
        bids: levels(&VECTOR_BIDS),
        asks: levels(&VECTOR_ASKS),
    }
}

#[test]
fn the_documented_checksum_vector_verifies_through_the_parse_path() {
    for backend in [json::Backend::Simd, json::Backend::Serde] {
        let mut a = KrakenAdapter::with_backend(&feed(), backend);
        assert!(SNAPSHOT.contains(r#""checksum":3310070434"#));
        let (r, out) = run(&mut a, SNAPSHOT);
        assert_eq!(r, Ok(()));
        assert_eq!(
            out.books,
            vec![(btc(), None)],
            "verified: usable, not invalidated"
        );
        assert!(out.actions.is_empty());
        assert_eq!(
            out.events,
            vec![ev(
                &btc(),
                us("2023-10-06T17:35:55.440295Z"),
                Payload::Book(vector_top())
            )]
        );
        let Payload::Book(top) = &out.events[0].payload else {
            panic!("book")
        };
        assert_eq!(top.bids[0].1.to_string(), "0.10000000");
        assert_eq!(top.bids[0].1.scale(), 8);
        assert_eq!(top.asks[0].1.to_string(), "0.00100000");
        let book = &a.books.get(&btc()).expect("tracked").book;
        assert_eq!(kraken_checksum(book), 3_310_070_434);
    }
}

#[test]
fn an_update_applies_truncates_and_verifies() {
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let (r, out) = run(&mut a, UPDATE);
    assert_eq!(r, Ok(()));
    assert!(out.books.is_empty() && out.actions.is_empty() && out.notes.is_empty());
    let mut bids = vec![("45283.6", "0.25000000")];
    bids.extend_from_slice(&VECTOR_BIDS[..9]);
    let mut asks = VECTOR_ASKS[1..].to_vec();
    asks.push(("45301.0", "0.50000000"));
    assert_eq!(
        out.events,
        vec![ev(
            &btc(),
            us("2023-10-06T17:35:56.001234Z"),
            Payload::Book(BookTop {
                bids: levels(&bids),
                asks: levels(&asks)
            })
        )]
    );
    // 45276.6 was pushed out of the window without a delete: gone.
    let book = &a.books.get(&btc()).expect("tracked").book;
    assert_eq!((book.bid_len(), book.ask_len()), (10, 10));
}

fn resync_actions(unsub_id: u64, symbol: &str) -> Vec<Action> {
    vec![
        Action::Send(format!(
            r#"{{"method":"unsubscribe","params":{{"channel":"book","depth":10,"symbol":["{symbol}"]}},"req_id":{unsub_id}}}"#
        )),
        Action::Send(format!(
            r#"{{"method":"subscribe","params":{{"channel":"book","depth":10,"snapshot":true,"symbol":["{symbol}"]}},"req_id":{}}}"#,
            unsub_id + 1
        )),
    ]
}

#[test]
fn a_checksum_mismatch_invalidates_resubscribes_and_recovers() {
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let bad = UPDATE.replace("2160897081", "2160897082");
    let (r, out) = run(&mut a, &bad);
    assert_eq!(r, Ok(()));
    assert!(
        out.events.is_empty(),
        "a book that fails its checksum is not published"
    );
    assert_eq!(out.books, vec![(btc(), Some("checksum_mismatch"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC/USD"));
    // Updates until the fresh snapshot are dropped.
    let (r, out) = run(&mut a, UPDATE);
    assert_eq!(r, Ok(()));
    assert_eq!(out.notes, vec![Note::Stale]);
    assert!(out.events.is_empty() && out.books.is_empty() && out.actions.is_empty());
    let (_, out) = run(&mut a, UNSUB_ACK);
    assert_eq!(out.notes, vec![Note::Ack]);
    let (r, out) = run(&mut a, SNAPSHOT);
    assert_eq!(r, Ok(()));
    assert_eq!(out.books, vec![(btc(), None)], "recovered");
    assert_eq!(out.events.len(), 1);
    assert!(out.actions.is_empty());
}

#[test]
fn a_snapshot_with_a_wrong_checksum_is_not_published() {
    let mut a = KrakenAdapter::new(&feed());
    let (r, out) = run(&mut a, &SNAPSHOT.replace("3310070434", "1604409348"));
    assert_eq!(r, Ok(()));
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("checksum_mismatch"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC/USD"));
}

#[test]
fn a_crossed_book_is_never_published() {
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    // A bid at the best ask, with the checksum of the resulting (crossed)
    // book: the checksum passes, the cross check does not.
    let mut book = Book::new();
    for (p, q) in levels(&VECTOR_BIDS) {
        book.apply_bid(p, q);
    }
    for (p, q) in levels(&VECTOR_ASKS) {
        book.apply_ask(p, q);
    }
    book.apply_bid(d("45285.2"), d("1.00000000"));
    book.truncate(10);
    let frame = format!(
        r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","bids":[{{"price":45285.2,"qty":1.00000000}}],"asks":[],"checksum":{},"timestamp":"2023-10-06T17:35:57Z"}}]}}"#,
        kraken_checksum(&book)
    );
    let (r, out) = run(&mut a, &frame);
    assert_eq!(r, Ok(()));
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("crossed_book"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC/USD"));
}

#[test]
fn a_book_update_that_does_not_parse_breaks_the_book_and_resyncs() {
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let bad = UPDATE.replace("45301.0", "45301.0.0");
    let (r, out) = run(&mut a, &bad);
    assert_eq!(
        r,
        Err(FrameError::Decimal {
            field: "asks.price",
            text: "45301.0.0".into()
        })
    );
    assert!(out.events.is_empty() && out.notes.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("bad_message"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC/USD"));
    // A missing checksum is a field error, handled the same way.
    let mut a = KrakenAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let (r, out) = run(&mut a, &UPDATE.replace(r#""checksum":2160897081,"#, ""));
    assert_eq!(r, Err(FrameError::Field("checksum")));
    assert_eq!(out.books, vec![(btc(), Some("bad_message"))]);
    // An update for a book never synced: only the error.
    let mut a = KrakenAdapter::new(&feed());
    let (r, out) = run(&mut a, &bad);
    assert!(matches!(r, Err(FrameError::Decimal { .. })));
    assert!(out.is_empty());
    // Before any snapshot, a good update is stale.
    let (_, out) = run(&mut a, UPDATE);
    assert_eq!(out.notes, vec![Note::Stale]);
}

#[test]
fn the_fake_greets_acks_refuses_and_pongs() {
    let natives = vec!["BTC/USD".to_owned(), "ETH/EUR".to_owned()];
    let mut fake = KrakenFake::new(&natives);
    let greeting = fake.greeting();
    let mut a = KrakenAdapter::new(&feed());
    let (_, out) = run(&mut a, &greeting[0]);
    assert_eq!(out.notes, vec![Note::Heartbeat]);
    let mut replies = Vec::new();
    fake.on_client(
        r#"{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD","BTC/XYZ"],"snapshot":false},"req_id":7}"#,
        &mut replies,
    );
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[0],
        r#"{"method":"subscribe","req_id":7,"result":{"channel":"trade","snapshot":false,"symbol":"BTC/USD"},"success":true,"time_in":"2026-11-02T00:00:00.000000Z","time_out":"2026-11-02T00:00:00.000000Z"}"#
    );
    assert_eq!(
        replies[1],
        r#"{"error":"Currency pair not supported BTC/XYZ","method":"subscribe","req_id":7,"success":false,"symbol":"BTC/XYZ","time_in":"2026-11-02T00:00:00.000000Z","time_out":"2026-11-02T00:00:00.000000Z"}"#
    );
    let notes: Vec<Note> = replies
        .iter()
        .flat_map(|r| run(&mut a, r).1.notes)
        .collect();
    assert_eq!(
        notes,
        vec![
            Note::Ack,
            Note::Rejected {
                instrument: None,
                reason: "Currency pair not supported BTC/XYZ".into()
            }
        ]
    );
    replies.clear();
    fake.on_client(r#"{"method":"ping","req_id":9}"#, &mut replies);
    assert_eq!(
        replies,
        vec![
            r#"{"method":"pong","req_id":9,"time_in":"2026-11-02T00:00:00.000000Z","time_out":"2026-11-02T00:00:00.000000Z"}"#
        ]
    );
    assert_eq!(run(&mut a, &replies[0]).1.notes, vec![Note::Pong]);
    replies.clear();
    fake.on_client("{nope", &mut replies);
    assert_eq!(replies.len(), 1);
    assert!(matches!(
        run(&mut a, &replies[0]).1.notes[..],
        [Note::Rejected {
            instrument: None,
            ..
        }]
    ));
}

#[test]
fn the_fake_snapshot_follows_the_tape_and_verifies() {
    let natives = vec!["BTC/USD".to_owned(), "ETH/EUR".to_owned()];
    let mut fake = KrakenFake::new(&natives);
    assert!(
        !fake.observe(SNAPSHOT),
        "the tape's snapshots are not broadcast"
    );
    assert!(fake.observe(UPDATE), "updates are");
    assert!(!fake.observe(ACK) && !fake.observe(PONG) && !fake.observe(STATUS));
    assert!(fake.observe(HEARTBEAT) && fake.observe(TRADE));
    let mut replies = Vec::new();
    let mut a = KrakenAdapter::new(&feed());
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut replies);
    }
    // trade ×2, ticker ×2, book ×2 acks, and a snapshot after each book ack
    // (no ticker seen on the tape yet, so no ticker snapshot).
    assert_eq!(replies.len(), 8, "{replies:#?}");
    let mut events = Vec::new();
    let mut books = Vec::new();
    for r in &replies {
        let (res, out) = run(&mut a, r);
        assert_eq!(res, Ok(()), "{r}");
        events.extend(out.events);
        books.extend(out.books);
    }
    assert_eq!(
        books,
        vec![(btc(), None), (inst("kraken:ETH-EUR"), None)],
        "checksums verify"
    );
    // BTC/USD is the fixture snapshot after the fixture update.
    let Payload::Book(top) = &events[0].payload else {
        panic!("book")
    };
    assert_eq!(top.bids[0], (d("45283.6"), d("0.25000000")));
    assert_eq!(top.asks[9], (d("45301.0"), d("0.50000000")));
    // ETH/EUR has no book yet: an empty snapshot, synced but not
    // published (an empty top tells a client nothing).
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(fake.rest("/anything"), None);
}

#[derive(Default, Debug)]
struct Tally {
    errors: usize,
    invalidations: Vec<(Instrument, &'static str)>,
    recoveries: usize,
    resyncs: usize,
    stale: usize,
    pongs: usize,
    heartbeats: usize,
    acks: usize,
    seen: std::collections::HashSet<(Instrument, tickwire_model::Channel)>,
}

fn tally(a: &mut KrakenAdapter, frames: impl Iterator<Item = (u64, String)>) -> Tally {
    let mut t = Tally::default();
    for (rx, text) in frames {
        let mut out = Output::default();
        if a.on_text(&text, rx, &mut out).is_err() {
            t.errors += 1;
        }
        for e in &out.events {
            assert_eq!(e.rx, rx);
            assert!(e.ts <= rx, "venue time before receive time");
            if let Payload::Book(top) = &e.payload {
                assert!(
                    top.bids.len() == 10 && top.asks.len() == 10,
                    "depth 10 at all times"
                );
                assert!(top.bids[0].0 < top.asks[0].0, "never crossed");
            }
            t.seen.insert((e.instrument.clone(), e.payload.channel()));
        }
        for (i, b) in out.books {
            match b {
                None => t.recoveries += 1,
                Some(reason) => t.invalidations.push((i, reason)),
            }
        }
        t.resyncs += out.actions.len();
        for n in out.notes {
            match n {
                Note::Stale => t.stale += 1,
                Note::Pong => t.pongs += 1,
                Note::Heartbeat => t.heartbeats += 1,
                Note::Ack => t.acks += 1,
                other => panic!("unexpected note {other:?}"),
            }
        }
    }
    t
}

#[test]
fn the_generated_capture_replays_cleanly_with_one_checksum_fault() {
    let text = generate();
    assert!(text.len() < 1_500_000, "{} bytes", text.len());
    let capture = Capture::parse(&text).expect("capture");
    assert!(capture.header.synthetic);
    assert!(capture.header.note.starts_with("synthetic:"));
    assert_eq!(capture.header.instruments, feed().instruments);
    assert!(capture.frames.windows(2).all(|w| w[0].rx < w[1].rx));
    assert!(capture.frames.iter().all(|f| f.source == Source::Ws));
    let mut a = KrakenAdapter::new(&feed());
    let t = tally(
        &mut a,
        capture.frames.iter().map(|f| (f.rx, f.text.clone())),
    );
    assert_eq!(t.errors, 0);
    assert_eq!(
        t.invalidations,
        vec![(inst("kraken:ETH-EUR"), "checksum_mismatch")]
    );
    assert_eq!(
        t.recoveries, 3,
        "two first snapshots and the one after the fault"
    );
    assert_eq!(t.resyncs, 2, "one unsubscribe, one subscribe");
    assert!(
        t.stale >= 1,
        "updates between the fault and the fresh snapshot are dropped"
    );
    assert_eq!(t.pongs, 3);
    assert!(
        t.heartbeats >= 3,
        "status and idle heartbeats: {}",
        t.heartbeats
    );
    assert_eq!(
        t.acks,
        2 * 3 + 2,
        "per-symbol acks, then the resubscribe's two"
    );
    for i in [btc(), inst("kraken:ETH-EUR")] {
        for c in tickwire_model::Channel::ALL {
            assert!(t.seen.contains(&(i.clone(), c)), "{i} {c:?}");
        }
    }
    // Numbers keep trailing zeros on the wire.
    assert!(text.contains("0000,\"") || text.contains("0000}"));
}

#[test]
fn a_client_joining_the_fake_mid_tape_sees_consistent_books() {
    let capture = Capture::parse(&generate()).expect("capture");
    let natives: Vec<String> = feed()
        .instruments
        .iter()
        .map(|i| i.native.clone())
        .collect();
    let mut fake = KrakenFake::new(&natives);
    let half = capture.frames.len() / 2;
    for f in &capture.frames[..half] {
        fake.observe(&f.text);
    }
    let mut a = KrakenAdapter::new(&feed());
    let mut frames = Vec::new();
    let rx = capture.frames[half].rx;
    for g in fake.greeting() {
        frames.push((rx, g));
    }
    for s in a.subscribe() {
        let mut replies = Vec::new();
        fake.on_client(&s, &mut replies);
        frames.extend(replies.into_iter().map(|r| (rx, r)));
    }
    for f in &capture.frames[half..] {
        if fake.observe(&f.text) {
            frames.push((f.rx, f.text.clone()));
        }
    }
    let t = tally(&mut a, frames.into_iter());
    assert_eq!(t.errors, 0);
    assert!(t.invalidations.is_empty(), "{:?}", t.invalidations);
    assert_eq!(t.recoveries, 2);
    assert_eq!(t.seen.len(), 8);
}

#[test]
fn capture_file_is_generated() {
    if std::env::var_os("TICKWIRE_WRITE_CAPTURES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../feeds/kraken/capture.jsonl"
        );
        std::fs::write(path, generate()).expect("write the capture");
        return;
    }
    assert!(
        CAPTURE == generate(),
        "feeds/kraken/capture.jsonl is stale: rerun with TICKWIRE_WRITE_CAPTURES=1"
    );
}

// ---- property: the checksum kept through the adapter is the venue's ----

mod checksum_upkeep {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The venue's side: the book as text levels (price in tenths, size in
    /// 1e-8), bids all below asks, truncated to the subscribed depth.
    #[derive(Default)]
    struct VenueBook {
        bids: BTreeMap<i64, i64>,
        asks: BTreeMap<i64, i64>,
    }

    fn price_text(tenths: i64) -> String {
        format!("{}.{}", tenths / 10, tenths % 10)
    }

    fn size_text(units: i64) -> String {
        format!("{}.{:08}", units / 100_000_000, units % 100_000_000)
    }

    impl VenueBook {
        fn apply(&mut self, bid: bool, price: i64, size: i64) {
            let side = if bid { &mut self.bids } else { &mut self.asks };
            if size == 0 {
                side.remove(&price);
            } else {
                side.insert(price, size);
            }
        }

        /// Once per message, after all its levels: a level can enter and
        /// leave the window within one message.
        fn truncate(&mut self, depth: usize) {
            while self.bids.len() > depth {
                self.bids.pop_first();
            }
            while self.asks.len() > depth {
                self.asks.pop_last();
            }
        }

        /// Kraken's recipe, from scratch on the text: top 10 asks then top
        /// 10 bids, price then size, without `.` and leading zeros.
        fn checksum(&self) -> u32 {
            let mut text = String::new();
            let asks = self.asks.iter().take(10);
            let bids = self.bids.iter().rev().take(10);
            for (p, s) in asks.chain(bids) {
                for t in [price_text(*p), size_text(*s)] {
                    text.push_str(t.replace('.', "").trim_start_matches('0'));
                }
            }
            crc32fast::hash(text.as_bytes())
        }

        fn levels(side: &[(bool, i64, i64)], bid: bool) -> String {
            let items: Vec<String> = side
                .iter()
                .filter(|l| l.0 == bid)
                .map(|(_, p, s)| {
                    format!(r#"{{"price":{},"qty":{}}}"#, price_text(*p), size_text(*s))
                })
                .collect();
            format!("[{}]", items.join(","))
        }

        fn frame(kind: &str, changes: &[(bool, i64, i64)], checksum: u32) -> String {
            format!(
                r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":{},"asks":{},"checksum":{checksum},"timestamp":"2023-10-06T17:35:57Z"}}]}}"#,
                Self::levels(changes, true),
                Self::levels(changes, false)
            )
        }
    }

    /// A level change: bids at 100.0-149.9, asks at 150.0-199.9 (never
    /// crossed), a delete about a quarter of the time.
    fn change() -> impl Strategy<Value = (bool, i64, i64)> {
        (
            any::<bool>(),
            0i64..500,
            prop_oneof![1 => Just(0i64), 3 => 1i64..300_000_000],
        )
            .prop_map(|(bid, p, s)| (bid, if bid { 1000 + p } else { 1500 + p }, s))
    }

    proptest! {
        /// Any snapshot and sequence of updates, each carrying the checksum
        /// the venue computes from scratch on its text levels: the adapter's
        /// incrementally kept (and truncated) book always verifies and
        /// holds exactly the venue's levels; an update whose checksum is off
        /// breaks the book (`checksum_mismatch`) and publishes nothing.
        #[test]
        fn incremental_checksum_equals_the_venues_recomputation(
            snapshot in proptest::collection::vec(change(), 0..40),
            updates in proptest::collection::vec((proptest::collection::vec(change(), 1..6), 0u8..20), 1..60),
        ) {
            let mut a = KrakenAdapter::new(&feed());
            let depth = a.book_depth;
            let mut venue = VenueBook::default();
            let snapshot: Vec<_> = snapshot.into_iter().filter(|c| c.2 != 0).collect();
            for &(bid, p, s) in &snapshot {
                venue.apply(bid, p, s);
            }
            venue.truncate(depth);
            let (r, out) = run(&mut a, &VenueBook::frame("snapshot", &snapshot, venue.checksum()));
            prop_assert_eq!(r, Ok(()));
            prop_assert_eq!(&out.books, &vec![(btc(), None)]);
            for (changes, corrupt) in updates {
                for &(bid, p, s) in &changes {
                    venue.apply(bid, p, s);
                }
                venue.truncate(depth);
                let sum = venue.checksum();
                // One update in twenty carries a wrong checksum.
                let sent = if corrupt == 0 { sum ^ 1 } else { sum };
                let (r, out) = run(&mut a, &VenueBook::frame("update", &changes, sent));
                prop_assert_eq!(r, Ok(()));
                if sent != sum {
                    prop_assert!(out.events.is_empty(), "a mismatching book was published");
                    prop_assert_eq!(&out.books, &vec![(btc(), Some("checksum_mismatch"))]);
                    return Ok(());
                }
                prop_assert!(out.books.is_empty(), "a verifying update broke the book: {:?}", out.books);
                let book = &a.books.get(&btc()).expect("tracked").book;
                prop_assert_eq!(kraken_checksum(book), sum);
                let bids: Vec<_> = venue.bids.iter().rev().map(|(p, s)| (d(&price_text(*p)), d(&size_text(*s)))).collect();
                let asks: Vec<_> = venue.asks.iter().map(|(p, s)| (d(&price_text(*p)), d(&size_text(*s)))).collect();
                prop_assert_eq!(book.bids().collect::<Vec<_>>(), bids);
                prop_assert_eq!(book.asks().collect::<Vec<_>>(), asks);
            }
        }
    }
}
