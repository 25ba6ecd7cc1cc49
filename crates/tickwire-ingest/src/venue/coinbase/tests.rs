//! Coinbase golden tests: raw frames in, exact canonical output out; book
//! integrity; the fake venue; the generated capture.

use rust_decimal::Decimal;
use tickwire_model::{BookTop, Channel, Event, Instrument, Payload, Quote, Side, Ticker, Trade};

use super::fake::{CoinbaseFake, generate};
use super::*;
use crate::FeedsConfig;
use crate::capture::{Capture, Source};
use crate::venue::FakeVenue;

const FEED: &str = include_str!("../../../../../feeds/coinbase/feed.toml");
const MATCH: &str = include_str!("../../../../../feeds/coinbase/fixtures/match.json");
const LAST_MATCH: &str = include_str!("../../../../../feeds/coinbase/fixtures/last_match.json");
const TICKER_FRAME: &str = include_str!("../../../../../feeds/coinbase/fixtures/ticker.json");
const SNAPSHOT: &str = include_str!("../../../../../feeds/coinbase/fixtures/snapshot.json");
const SNAPSHOT_NO_TIME: &str =
    include_str!("../../../../../feeds/coinbase/fixtures/snapshot_no_time.json");
const L2UPDATE: &str = include_str!("../../../../../feeds/coinbase/fixtures/l2update.json");
const L2UPDATE_CROSSING: &str =
    include_str!("../../../../../feeds/coinbase/fixtures/l2update_crossing.json");
const HEARTBEAT_FRAME: &str = include_str!("../../../../../feeds/coinbase/fixtures/heartbeat.json");
const SUBSCRIPTIONS: &str =
    include_str!("../../../../../feeds/coinbase/fixtures/subscriptions.json");
const SUBSCRIPTIONS_PARTIAL: &str =
    include_str!("../../../../../feeds/coinbase/fixtures/subscriptions_partial.json");
const ERROR: &str = include_str!("../../../../../feeds/coinbase/fixtures/error.json");
const ERROR_GENERIC: &str =
    include_str!("../../../../../feeds/coinbase/fixtures/error_generic.json");
const STATUS: &str = include_str!("../../../../../feeds/coinbase/fixtures/status.json");
const CAPTURE: &str = include_str!("../../../../../feeds/coinbase/capture.jsonl");

const RX: u64 = 1_790_000_000_000_000;

fn feed() -> VenueFeed {
    FeedsConfig::parse(FEED)
        .expect("feed.toml")
        .venue()
        .expect("a venue feed")
        .clone()
}

fn inst(s: &str) -> Instrument {
    Instrument::parse(s).expect("instrument")
}

fn d(s: &str) -> Decimal {
    tickwire_model::parse_decimal(s).expect("decimal")
}

fn levels(l: &[(&str, &str)]) -> Vec<Level> {
    l.iter().map(|&(p, s)| (d(p), d(s))).collect()
}

fn run(a: &mut CoinbaseAdapter, frame: &str) -> (Output, Result<(), FrameError>) {
    let mut out = Output::default();
    let r = a.on_text(frame.trim(), RX, &mut out);
    (out, r)
}

fn ok(a: &mut CoinbaseAdapter, frame: &str) -> Output {
    let (out, r) = run(a, frame);
    r.expect("frame accepted");
    out
}

fn err(a: &mut CoinbaseAdapter, frame: &str) -> (Output, FrameError) {
    let (out, r) = run(a, frame);
    (out, r.expect_err("frame refused"))
}

#[test]
fn subscribe_is_one_frame_with_every_channel_and_heartbeat() {
    let mut a = CoinbaseAdapter::new(&feed());
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"channels":["level2_batch","matches","ticker","heartbeat"],"product_ids":["BTC-USD","ETH-USD","SOL-USD"],"type":"subscribe"}"#
        ]
    );
    // Quote alone still needs the book's channel; trade alone does not.
    let mut f = feed();
    f.channels = vec![Channel::Quote];
    let frames = CoinbaseAdapter::new(&f).subscribe();
    assert!(
        frames[0].contains(r#""channels":["level2_batch","heartbeat"]"#),
        "{frames:?}"
    );
    f.channels = vec![Channel::Trade];
    let frames = CoinbaseAdapter::new(&f).subscribe();
    assert!(
        frames[0].contains(r#""channels":["matches","heartbeat"]"#),
        "{frames:?}"
    );
    assert_eq!(a.keepalive(), None);
}

#[test]
fn golden_trades_and_tickers() {
    struct Case {
        frame: &'static str,
        expected: Event,
    }
    let cases = [
        Case {
            // Maker sold: the taker bought.
            frame: MATCH,
            expected: Event {
                instrument: inst("coinbase:BTC-USD"),
                ts: 1_790_689_558_484_212,
                rx: RX,
                payload: Payload::Trade(Trade {
                    price: d("84149.24"),
                    size: d("0.00004104"),
                    side: Side::Buy,
                    trade_id: "1099995624".into(),
                }),
            },
        },
        Case {
            // The replay after subscribing is a trade like any other.
            frame: LAST_MATCH,
            expected: Event {
                instrument: inst("coinbase:ETH-USD"),
                ts: 1_790_689_557_998_001,
                rx: RX,
                payload: Payload::Trade(Trade {
                    price: d("3050.10"),
                    size: d("1.50000000"),
                    side: Side::Sell,
                    trade_id: "1099995623".into(),
                }),
            },
        },
        Case {
            frame: TICKER_FRAME,
            expected: Event {
                instrument: inst("coinbase:ETH-USD"),
                ts: 1_666_222_102_061_769,
                rx: RX,
                payload: Payload::Ticker(Ticker {
                    last: d("1285.22"),
                    open_24h: d("1310.79"),
                    high_24h: d("1313.8"),
                    low_24h: d("1280.52"),
                    volume_24h: d("245532.79269678"),
                }),
            },
        },
    ];
    for case in cases {
        let mut a = CoinbaseAdapter::new(&feed());
        let out = ok(&mut a, case.frame);
        assert_eq!(out.events, vec![case.expected], "{}", case.frame);
        assert!(out.notes.is_empty() && out.books.is_empty() && out.actions.is_empty());
    }
    // Scales are the wire's.
    let mut a = CoinbaseAdapter::new(&feed());
    let out = ok(&mut a, LAST_MATCH);
    let Payload::Trade(t) = &out.events[0].payload else {
        panic!("trade");
    };
    assert_eq!(
        (t.price.to_string(), t.price.scale()),
        ("3050.10".into(), 2)
    );
    assert_eq!(
        (t.size.to_string(), t.size.scale()),
        ("1.50000000".into(), 8)
    );
    let out = ok(&mut a, TICKER_FRAME);
    let Payload::Ticker(t) = &out.events[0].payload else {
        panic!("ticker");
    };
    assert_eq!(t.high_24h.scale(), 1);
    assert_eq!(t.volume_24h.to_string(), "245532.79269678");
}

#[test]
fn golden_notes() {
    let sol = Some(inst("coinbase:SOL-USD"));
    let cases: [(&str, Vec<Note>); 4] = [
        (HEARTBEAT_FRAME, vec![Note::Heartbeat]),
        (STATUS, vec![Note::Unknown]),
        (
            ERROR,
            vec![Note::Rejected {
                instrument: sol,
                reason: "Failed to subscribe: SOL-USD is not a valid product".into(),
            }],
        ),
        (
            ERROR_GENERIC,
            vec![Note::Rejected {
                instrument: None,
                reason: "Failed to subscribe: You need to specify at least one product ID for channel heartbeat".into(),
            }],
        ),
    ];
    for (frame, notes) in cases {
        let mut a = CoinbaseAdapter::new(&feed());
        let out = ok(&mut a, frame);
        assert_eq!(out.notes, notes, "{frame}");
        assert!(out.events.is_empty() && out.books.is_empty() && out.actions.is_empty());
    }
}

#[test]
fn a_subscriptions_reply_acks_and_names_what_it_left_out() {
    let mut a = CoinbaseAdapter::new(&feed());
    a.subscribe();
    assert_eq!(ok(&mut a, SUBSCRIPTIONS).notes, vec![Note::Ack]);
    // An unsolicited reply (a recorded reconnect) is just an ack.
    assert_eq!(ok(&mut a, SUBSCRIPTIONS_PARTIAL).notes, vec![Note::Ack]);

    let mut a = CoinbaseAdapter::new(&feed());
    a.subscribe();
    assert_eq!(
        ok(&mut a, SUBSCRIPTIONS_PARTIAL).notes,
        vec![
            Note::Ack,
            Note::Rejected {
                instrument: Some(inst("coinbase:SOL-USD")),
                reason: "level2_batch SOL-USD missing from the subscriptions reply".into(),
            }
        ]
    );

    // An error answers the request: the partial reply after it is not
    // counted against it a second time.
    let mut a = CoinbaseAdapter::new(&feed());
    a.subscribe();
    assert_eq!(ok(&mut a, ERROR).notes.len(), 1);
    assert_eq!(ok(&mut a, SUBSCRIPTIONS_PARTIAL).notes, vec![Note::Ack]);
    // `BTC-USDC` does not name `BTC-USD`.
    let out = ok(
        &mut a,
        r#"{"type":"error","message":"Failed to subscribe","reason":"BTC-USDC is not a valid product"}"#,
    );
    assert!(matches!(
        &out.notes[..],
        [Note::Rejected {
            instrument: None,
            ..
        }]
    ));
}

#[test]
fn golden_errors() {
    let mut a = CoinbaseAdapter::new(&feed());
    let cases: Vec<(String, FrameError)> = vec![
        (
            "{\"type\":\"match\"".into(),
            FrameError::Malformed(String::new()),
        ),
        ("[1,2]".into(), FrameError::Malformed(String::new())),
        (
            MATCH.replace("\"84149.24\"", "\"84,149.24\""),
            FrameError::Decimal {
                field: "price",
                text: "84,149.24".into(),
            },
        ),
        (
            MATCH.replace("BTC-USD", "DOGE-USD"),
            FrameError::UnknownInstrument("DOGE-USD".into()),
        ),
        (
            MATCH.replace("\"trade_id\":1099995624,", ""),
            FrameError::Field("trade_id"),
        ),
        (
            MATCH.replace("\"side\":\"sell\"", "\"side\":\"up\""),
            FrameError::Field("side"),
        ),
        (
            MATCH.replace("2026-09-29T13:45:58.484212Z", "yesterday"),
            FrameError::Time {
                field: "time",
                text: "yesterday".into(),
            },
        ),
        (
            TICKER_FRAME.replace("\"open_24h\":\"1310.79\",", ""),
            FrameError::Field("open_24h"),
        ),
        (
            TICKER_FRAME.replace("\"245532.79269678\"", "\"1e5\""),
            FrameError::Decimal {
                field: "volume_24h",
                text: "1e5".into(),
            },
        ),
        (
            r#"{"type":"subscriptions"}"#.into(),
            FrameError::Field("channels"),
        ),
        (
            MATCH.replace("1099995624", "\"1099995624\""),
            FrameError::Malformed(String::new()),
        ),
    ];
    for (frame, expected) in cases {
        let (out, e) = err(&mut a, &frame);
        match (&e, &expected) {
            (FrameError::Malformed(_), FrameError::Malformed(_)) => {}
            _ => assert_eq!(e, expected, "{frame}"),
        }
        assert!(out.is_empty(), "{frame}: {out:?}");
    }
}

fn btc_top() -> BookTop {
    BookTop {
        bids: levels(&[
            ("84149.23", "0.45054140"),
            ("84149.00", "1.20000000"),
            ("84148.10", "0.00500000"),
        ]),
        asks: levels(&[
            ("84149.24", "0.57753524"),
            ("84150.00", "2.00000000"),
            ("84151.55", "0.31000000"),
        ]),
    }
}

#[test]
fn golden_book_snapshot_update_and_quote() {
    let btc = inst("coinbase:BTC-USD");
    let mut a = CoinbaseAdapter::new(&feed());
    let out = ok(&mut a, SNAPSHOT);
    let ts = 1_790_689_558_101_234;
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(
        out.events,
        vec![
            Event {
                instrument: btc.clone(),
                ts,
                rx: RX,
                payload: Payload::Book(btc_top()),
            },
            Event {
                instrument: btc.clone(),
                ts,
                rx: RX,
                payload: Payload::Quote(Quote {
                    bid: d("84149.23"),
                    bid_size: d("0.45054140"),
                    ask: d("84149.24"),
                    ask_size: d("0.57753524"),
                }),
            },
        ]
    );
    let out = ok(&mut a, L2UPDATE);
    let ts = 1_790_689_558_150_758;
    let top = BookTop {
        bids: levels(&[
            ("84149.10", "1.00000000"),
            ("84149.00", "1.20000000"),
            ("84148.10", "0.00500000"),
        ]),
        asks: levels(&[
            ("84149.24", "0.12000000"),
            ("84150.00", "2.00000000"),
            ("84151.55", "0.31000000"),
        ]),
    };
    assert!(out.books.is_empty() && out.actions.is_empty() && out.notes.is_empty());
    assert_eq!(
        out.events,
        vec![
            Event {
                instrument: btc.clone(),
                ts,
                rx: RX,
                payload: Payload::Book(top),
            },
            Event {
                instrument: btc.clone(),
                ts,
                rx: RX,
                payload: Payload::Quote(Quote {
                    bid: d("84149.10"),
                    bid_size: d("1.00000000"),
                    ask: d("84149.24"),
                    ask_size: d("0.12000000"),
                }),
            },
        ]
    );
    // A snapshot without `time` is stamped with the receive time.
    let out = ok(&mut a, SNAPSHOT_NO_TIME);
    assert_eq!(out.events.len(), 2);
    assert!(out.events.iter().all(|e| e.ts == RX));
    assert_eq!(out.books, vec![(inst("coinbase:SOL-USD"), None)]);
}

#[test]
fn a_crossed_book_is_never_published_and_is_resubscribed() {
    let btc = inst("coinbase:BTC-USD");
    let mut a = CoinbaseAdapter::new(&feed());
    a.subscribe();
    ok(&mut a, SUBSCRIPTIONS);
    ok(&mut a, SNAPSHOT);
    let out = ok(&mut a, L2UPDATE_CROSSING);
    assert!(out.events.is_empty(), "{out:?}");
    assert_eq!(out.books, vec![(btc.clone(), Some("crossed_book"))]);
    assert_eq!(
        out.actions,
        vec![
            Action::Send(
                r#"{"channels":["level2_batch"],"product_ids":["BTC-USD"],"type":"unsubscribe"}"#
                    .into()
            ),
            Action::Send(
                r#"{"channels":["level2_batch"],"product_ids":["BTC-USD"],"type":"subscribe"}"#
                    .into()
            ),
        ]
    );
    // Until the snapshot: stale.
    assert_eq!(ok(&mut a, L2UPDATE).notes, vec![Note::Stale]);
    // The unsubscribe's reply lacks the book, the subscribe's has it: acks
    // only.
    let without_btc = SUBSCRIPTIONS.replacen(
        "[\"BTC-USD\",\"ETH-USD\",\"SOL-USD\"]",
        "[\"ETH-USD\",\"SOL-USD\"]",
        1,
    );
    assert_eq!(ok(&mut a, &without_btc).notes, vec![Note::Ack]);
    assert_eq!(ok(&mut a, SUBSCRIPTIONS).notes, vec![Note::Ack]);
    let out = ok(&mut a, SNAPSHOT);
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(out.events[0].payload, Payload::Book(btc_top()));
    // A snapshot that is itself crossed is refused too.
    let crossed = SNAPSHOT.replace("84151.55", "84100.00");
    let out = ok(&mut a, &crossed);
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc, Some("crossed_book"))]);
    assert_eq!(out.actions.len(), 2);
}

#[test]
fn a_bad_book_message_breaks_the_book_and_leaves_no_event() {
    let btc = inst("coinbase:BTC-USD");
    let mut a = CoinbaseAdapter::new(&feed());
    ok(&mut a, SNAPSHOT);
    let bad = L2UPDATE.replace("\"0.12000000\"", "\"0.12.0\"");
    let (out, e) = err(&mut a, &bad);
    assert_eq!(
        e,
        FrameError::Decimal {
            field: "changes",
            text: "0.12.0".into()
        }
    );
    assert!(out.events.is_empty() && out.notes.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("bad_update"))]);
    assert_eq!(out.actions.len(), 2);
    // Until the snapshot, updates are stale (not even parsed).
    let out = ok(&mut a, &L2UPDATE.replace("\"buy\"", "\"bid\""));
    assert_eq!(out.notes, vec![Note::Stale]);
    ok(&mut a, SNAPSHOT);
    let (out, e) = err(&mut a, &L2UPDATE.replace("\"buy\"", "\"bid\""));
    assert_eq!(e, FrameError::Field("changes"));
    assert_eq!(out.books, vec![(btc.clone(), Some("bad_update"))]);
    ok(&mut a, SNAPSHOT);
    let (out, e) = err(
        &mut a,
        &L2UPDATE.replace(",\"time\":\"2026-09-29T13:45:58.150758Z\"", ""),
    );
    assert_eq!(e, FrameError::Field("time"));
    assert_eq!(out.books, vec![(btc, Some("bad_update"))]);
}

#[test]
fn quote_without_book_publishes_no_book() {
    let mut f = feed();
    f.channels = vec![Channel::Quote];
    let mut a = CoinbaseAdapter::new(&f);
    let out = ok(&mut a, SNAPSHOT);
    assert_eq!(out.events.len(), 1);
    assert!(matches!(out.events[0].payload, Payload::Quote(_)));
    let out = ok(&mut a, L2UPDATE);
    assert_eq!(out.events.len(), 1);
    assert!(matches!(out.events[0].payload, Payload::Quote(_)));
    let out = ok(&mut a, L2UPDATE_CROSSING);
    assert!(out.events.is_empty());
    assert_eq!(out.actions.len(), 2);
}

#[test]
fn both_backends_agree() {
    let frames = [
        SNAPSHOT,
        L2UPDATE,
        MATCH,
        LAST_MATCH,
        TICKER_FRAME,
        HEARTBEAT_FRAME,
        ERROR,
    ];
    let mut simd = CoinbaseAdapter::with_backend(&feed(), Backend::Simd);
    let mut serde = CoinbaseAdapter::with_backend(&feed(), Backend::Serde);
    for frame in frames {
        let (a, b) = (ok(&mut simd, frame), ok(&mut serde, frame));
        assert_eq!(a.events, b.events, "{frame}");
        assert_eq!(a.notes, b.notes, "{frame}");
    }
}

fn natives() -> Vec<String> {
    ["BTC-USD", "ETH-USD", "SOL-USD"].map(String::from).to_vec()
}

#[test]
fn fake_answers_subscribe_with_subscriptions_snapshot_and_last_match() {
    let mut fake = CoinbaseFake::new(&natives());
    assert!(fake.greeting().is_empty());
    assert!(
        !fake.observe(SNAPSHOT.trim()),
        "the tape's snapshots are not broadcast"
    );
    assert!(fake.observe(L2UPDATE.trim()));
    assert!(fake.observe(MATCH.trim()));
    assert!(fake.observe(HEARTBEAT_FRAME.trim()));
    assert!(!fake.observe(SUBSCRIPTIONS.trim()));
    // A crossing update is played but does not corrupt the fake's book.
    assert!(fake.observe(L2UPDATE_CROSSING.trim()));

    let mut a = CoinbaseAdapter::new(&feed());
    let mut out = Vec::new();
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut out);
    }
    let all = r#"["BTC-USD","ETH-USD","SOL-USD"]"#;
    assert_eq!(
        out[0],
        format!(
            r#"{{"type":"subscriptions","channels":[{{"name":"heartbeat","product_ids":{all}}},{{"name":"level2_batch","product_ids":{all}}},{{"name":"matches","product_ids":{all}}},{{"name":"ticker","product_ids":{all}}}]}}"#
        )
    );
    // subscriptions, 3 snapshots, one last_match (only BTC traded).
    assert_eq!(out.len(), 5, "{out:#?}");
    assert!(out[1].starts_with(r#"{"type":"snapshot","product_id":"BTC-USD","bids":[["84149.10","1.00000000"],["84149.00","1.20000000"]"#), "{}", out[1]);
    assert!(
        out[1].ends_with(r#""time":"2026-09-29T13:45:58.201000Z"}"#),
        "{}",
        out[1]
    );
    assert!(
        out[4].starts_with(r#"{"type":"last_match","trade_id":1099995624,"#),
        "{}",
        out[4]
    );

    let mut events = Vec::new();
    let mut acks = 0;
    for frame in &out {
        let mut o = Output::default();
        a.on_text(frame, RX, &mut o)
            .expect("the fake's frames parse");
        acks += o.notes.iter().filter(|n| **n == Note::Ack).count();
        assert!(!o.notes.iter().any(|n| matches!(n, Note::Rejected { .. })));
        events.extend(o.events);
    }
    assert_eq!(acks, 1);
    // BTC's book is the fake's: the snapshot plus the update, not the
    // crossing one.
    let btc = inst("coinbase:BTC-USD");
    let book = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::Book(b) if e.instrument == btc => Some(b.clone()),
            _ => None,
        })
        .expect("BTC book published");
    assert_eq!(book.bids[0], (d("84149.10"), d("1.00000000")));
    assert_eq!(book.asks[0], (d("84149.24"), d("0.12000000")));
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id == "1099995624"))
    );
}

#[test]
fn fake_refuses_unknown_products_and_unsubscribes() {
    let mut fake = CoinbaseFake::new(&natives());
    let mut out = Vec::new();
    fake.on_client(
        r#"{"type":"subscribe","product_ids":["BTC-USD","XYZ-USD"],"channels":["heartbeat",{"name":"ticker","product_ids":["ETH-USD"]}]}"#,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            r#"{"type":"error","message":"Failed to subscribe","reason":"XYZ-USD is not a valid product"}"#,
            r#"{"type":"subscriptions","channels":[{"name":"heartbeat","product_ids":["BTC-USD"]},{"name":"ticker","product_ids":["ETH-USD"]}]}"#,
        ]
    );
    out.clear();
    fake.on_client(
        r#"{"type":"unsubscribe","channels":["heartbeat"]}"#,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            r#"{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}"#
        ]
    );
    out.clear();
    fake.on_client("nope", &mut out);
    assert!(out[0].starts_with(r#"{"type":"error""#));
    assert_eq!(fake.rest("/products/BTC-USD/book"), None);
}

/// Rewrites `feeds/coinbase/capture.jsonl` from [`generate`]:
/// `cargo test -p tickwire-ingest --lib coinbase::tests::regenerate -- --ignored`.
#[test]
#[ignore = "writes feeds/coinbase/capture.jsonl"]
fn regenerate_capture_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../feeds/coinbase/capture.jsonl"
    );
    std::fs::write(path, generate()).expect("write the capture");
}

#[test]
fn capture_file_is_generated() {
    assert!(
        CAPTURE == generate(),
        "feeds/coinbase/capture.jsonl is stale: regenerate it from fake::generate()"
    );
}

#[test]
fn the_generated_capture_replays_cleanly_with_its_faults() {
    let capture = Capture::parse(&generate()).expect("capture");
    assert!(capture.header.synthetic);
    assert!(capture.header.note.starts_with("synthetic:"));
    assert!(
        capture
            .header
            .note
            .contains("tickwire_ingest::venue::generate_capture")
    );
    let f = feed();
    assert_eq!(capture.header.instruments, f.instruments);
    let mut a = CoinbaseAdapter::new(&f);
    a.subscribe();
    let mut out = Output::default();
    let mut seen = std::collections::HashSet::new();
    let (mut breaks, mut recoveries, mut resends, mut acks, mut heartbeats, mut stale) =
        (Vec::new(), 0, 0, 0, 0, 0);
    let mut last_rx = 0;
    for frame in &capture.frames {
        assert_eq!(frame.source, Source::Ws);
        assert!(frame.rx > last_rx, "rx increases");
        last_rx = frame.rx;
        out.clear();
        a.on_text(&frame.text, frame.rx, &mut out)
            .unwrap_or_else(|e| panic!("{e}: {}", frame.text));
        for e in &out.events {
            assert!(
                e.ts <= e.rx && e.rx - e.ts < 10_000_000,
                "ts before rx: {e:?}"
            );
            seen.insert((e.instrument.clone(), e.payload.channel()));
            if let Payload::Book(b) = &e.payload {
                assert!(b.bids.len() == 10 && b.asks.len() == 10, "depth 10");
                assert!(b.bids[0].0 < b.asks[0].0, "never crossed: {e:?}");
            }
        }
        for (i, reason) in &out.books {
            match reason {
                Some(r) => breaks.push((i.to_string(), *r)),
                None => recoveries += 1,
            }
        }
        resends += out.actions.len();
        for n in &out.notes {
            match n {
                Note::Ack => acks += 1,
                Note::Heartbeat => heartbeats += 1,
                Note::Stale => stale += 1,
                other => panic!("unexpected note {other:?}"),
            }
        }
    }
    for i in &f.instruments {
        for c in Channel::ALL {
            assert!(
                seen.contains(&(i.instrument.clone(), c)),
                "{} {c:?}",
                i.instrument
            );
        }
    }
    assert_eq!(
        breaks,
        vec![("coinbase:ETH-USD".to_owned(), "crossed_book")]
    );
    // 3 at start, ETH after the resubscribe, 3 after the reconnect.
    assert_eq!(recoveries, 7);
    assert_eq!(resends, 2);
    // The first reply, the resubscribe's two, the reconnect's.
    assert_eq!(acks, 4);
    assert!(heartbeats > 300, "{heartbeats}");
    assert!(stale >= 1, "updates between the cross and the unsubscribe");
    assert!(CAPTURE.len() < 1_500_000, "{}", CAPTURE.len());
}
