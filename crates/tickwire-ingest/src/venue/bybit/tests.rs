//! Bybit golden tests: raw frames in, exact canonical output out; book
//! integrity (`u` gaps, the `u = 1` restart); the fake venue; the
//! generated capture.

use rust_decimal::Decimal;
use tickwire_model::{
    BookTop, Channel, Event, Instrument, Level, Payload, Quote, Side, Ticker, Trade,
};

use super::fake::{BybitFake, generate};
use super::*;
use crate::FeedsConfig;
use crate::capture::{Capture, Source};
use crate::venue::FakeVenue;

const FEED: &str = include_str!("../../../../../feeds/bybit/feed.toml");
const TRADE: &str = include_str!("../../../../../feeds/bybit/fixtures/trade.json");
const BBO: &str = include_str!("../../../../../feeds/bybit/fixtures/orderbook_1.json");
const TICKERS: &str = include_str!("../../../../../feeds/bybit/fixtures/tickers.json");
const SNAPSHOT: &str = include_str!("../../../../../feeds/bybit/fixtures/orderbook_snapshot.json");
const DELTA: &str = include_str!("../../../../../feeds/bybit/fixtures/orderbook_delta.json");
const DELTA_GAP: &str =
    include_str!("../../../../../feeds/bybit/fixtures/orderbook_delta_gap.json");
const RESTART: &str = include_str!("../../../../../feeds/bybit/fixtures/orderbook_restart.json");
const ACK: &str = include_str!("../../../../../feeds/bybit/fixtures/subscribe_ack.json");
const REFUSED: &str = include_str!("../../../../../feeds/bybit/fixtures/subscribe_refused.json");
const PONG: &str = include_str!("../../../../../feeds/bybit/fixtures/pong.json");
const PONG_LINEAR: &str = include_str!("../../../../../feeds/bybit/fixtures/pong_linear.json");
const UNKNOWN_TOPIC: &str = include_str!("../../../../../feeds/bybit/fixtures/unknown_topic.json");
const CAPTURE: &str = include_str!("../../../../../feeds/bybit/capture.jsonl");

const RX: u64 = 1_793_577_601_500_000;

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

fn run(a: &mut BybitAdapter, frame: &str) -> (Output, Result<(), FrameError>) {
    let mut out = Output::default();
    let r = a.on_text(frame.trim(), RX, &mut out);
    (out, r)
}

fn ok(a: &mut BybitAdapter, frame: &str) -> Output {
    let (out, r) = run(a, frame);
    r.expect("frame accepted");
    out
}

fn err(a: &mut BybitAdapter, frame: &str) -> (Output, FrameError) {
    let (out, r) = run(a, frame);
    (out, r.expect_err("frame refused"))
}

#[test]
fn subscribe_splits_topics_by_ten_and_pings() {
    let mut a = BybitAdapter::new(&feed());
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"args":["publicTrade.BTCUSDT","orderbook.1.BTCUSDT","tickers.BTCUSDT","orderbook.50.BTCUSDT","publicTrade.ETHUSDT","orderbook.1.ETHUSDT","tickers.ETHUSDT","orderbook.50.ETHUSDT"],"op":"subscribe","req_id":"subscribe-1"}"#
        ]
    );
    assert_eq!(
        a.keepalive().as_deref(),
        Some(r#"{"req_id":"ping-2","op":"ping"}"#)
    );
    let mut f = feed();
    f.instruments = (0..3)
        .map(|i| crate::feed::FeedInstrument {
            native: format!("X{i}USDT"),
            instrument: inst(&format!("bybit:X{i}-USDT")),
        })
        .collect();
    let frames = BybitAdapter::new(&f).subscribe();
    assert_eq!(frames.len(), 2, "12 topics: 10 + 2");
    assert!(
        frames[1].contains(r#""args":["tickers.X2USDT","orderbook.50.X2USDT"]"#),
        "{frames:?}"
    );
    f.channels = vec![Channel::Trade];
    let frames = BybitAdapter::new(&f).subscribe();
    assert!(
        frames[0]
            .contains(r#""args":["publicTrade.X0USDT","publicTrade.X1USDT","publicTrade.X2USDT"]"#)
    );
}

#[test]
fn golden_pushes() {
    let btc = inst("bybit:BTC-USDT");
    let eth = inst("bybit:ETH-USDT");
    let trade = |price: &str, size: &str, id: &str| Event {
        instrument: btc.clone(),
        ts: 1_793_577_601_232_000,
        rx: RX,
        payload: Payload::Trade(Trade {
            price: d(price),
            size: d(size),
            side: Side::Buy,
            trade_id: id.into(),
        }),
    };
    let cases: Vec<(&str, Vec<Event>)> = vec![
        (
            TRADE,
            vec![
                trade("84012.50", "0.001200", "2290000000245000002"),
                trade("84012.51", "0.250000", "2290000000245000003"),
            ],
        ),
        (
            BBO,
            vec![Event {
                instrument: eth.clone(),
                ts: 1_793_577_601_299_000,
                rx: RX,
                payload: Payload::Quote(Quote {
                    bid: d("3051.20"),
                    bid_size: d("1.25000"),
                    ask: d("3051.21"),
                    ask_size: d("0.04570"),
                }),
            }],
        ),
        (
            TICKERS,
            vec![Event {
                instrument: btc.clone(),
                ts: 1_793_577_601_000_000,
                rx: RX,
                payload: Payload::Ticker(Ticker {
                    last: d("84012.50"),
                    open_24h: d("83500.00"),
                    high_24h: d("85120.00"),
                    low_24h: d("82990.01"),
                    volume_24h: d("12873.230551"),
                }),
            }],
        ),
    ];
    for (frame, expected) in cases {
        let mut a = BybitAdapter::new(&feed());
        let out = ok(&mut a, frame);
        assert_eq!(out.events, expected, "{frame}");
        assert!(out.notes.is_empty() && out.books.is_empty() && out.actions.is_empty());
        for e in &out.events {
            if let Payload::Quote(q) = &e.payload {
                assert_eq!(
                    (q.ask_size.to_string(), q.ask_size.scale()),
                    ("0.04570".into(), 5)
                );
            }
            if let Payload::Trade(t) = &e.payload {
                assert_eq!(t.size.scale(), 6);
            }
        }
    }
    // The 3 s re-send of an unchanged best level is no new quote.
    let mut a = BybitAdapter::new(&feed());
    ok(&mut a, BBO);
    let out = ok(&mut a, BBO);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn golden_replies() {
    let unsubscribed = ACK.replace("\"subscribe\"", "\"unsubscribe\"");
    let unknown_symbol = REFUSED.replace("orderbook.50.ETHUSDT", "orderbook.50.XYZUSDT");
    let unnamed = REFUSED.replace("Invalid topic :[orderbook.50.ETHUSDT]", "too many args");
    let cases: Vec<(&str, Vec<Note>)> = vec![
        (ACK, vec![Note::Ack]),
        (&unsubscribed, vec![Note::Ack]),
        (PONG, vec![Note::Pong]),
        (PONG_LINEAR, vec![Note::Pong]),
        (UNKNOWN_TOPIC, vec![Note::Unknown]),
        (r#"{"hello":"world"}"#, vec![Note::Unknown]),
        (
            REFUSED,
            vec![Note::Rejected {
                instrument: Some(inst("bybit:ETH-USDT")),
                reason: "Invalid topic :[orderbook.50.ETHUSDT]".into(),
            }],
        ),
        (
            &unknown_symbol,
            vec![Note::Rejected {
                instrument: None,
                reason: "Invalid topic :[orderbook.50.XYZUSDT]".into(),
            }],
        ),
        (
            &unnamed,
            vec![Note::Rejected {
                instrument: None,
                reason: "too many args".into(),
            }],
        ),
    ];
    for (frame, notes) in cases {
        let mut a = BybitAdapter::new(&feed());
        let out = ok(&mut a, frame);
        assert_eq!(out.notes, notes, "{frame}");
        assert!(out.events.is_empty() && out.books.is_empty() && out.actions.is_empty());
    }
}

#[test]
fn golden_errors() {
    let mut a = BybitAdapter::new(&feed());
    let cases: Vec<(String, FrameError)> = vec![
        ("{\"topic\":".into(), FrameError::Malformed(String::new())),
        (
            TRADE.replace("\"0.001200\"", "\"0,0012\""),
            FrameError::Decimal {
                field: "v",
                text: "0,0012".into(),
            },
        ),
        (
            TRADE.replace(
                "\"BTCUSDT\",\"S\":\"Buy\",\"v\":\"0.001200\"",
                "\"DOGEUSDT\",\"S\":\"Buy\",\"v\":\"0.001200\"",
            ),
            FrameError::UnknownInstrument("DOGEUSDT".into()),
        ),
        (
            TRADE.replace(
                "\"S\":\"Buy\",\"v\":\"0.001200\"",
                "\"S\":\"Up\",\"v\":\"0.001200\"",
            ),
            FrameError::Field("S"),
        ),
        (
            TRADE.replace(",\"i\":\"2290000000245000002\"", ""),
            FrameError::Field("i"),
        ),
        (
            TICKERS.replace("\"prevPrice24h\":\"83500.00\",", ""),
            FrameError::Field("prevPrice24h"),
        ),
        (
            TICKERS.replace("\"85120.00\"", "\"high\""),
            FrameError::Decimal {
                field: "highPrice24h",
                text: "high".into(),
            },
        ),
        (
            BBO.replace("\"ETHUSDT\",\"b\"", "\"ETHBTC\",\"b\""),
            FrameError::UnknownInstrument("ETHBTC".into()),
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","ts":1,"type":"snapshot","data":[]}"#.into(),
            FrameError::Field("data"),
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","ts":1,"type":"snapshot"}"#.into(),
            FrameError::Field("data"),
        ),
        (
            TRADE.replace("\"T\":1793577601232", "\"T\":\"soon\""),
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

fn snapshot_top() -> BookTop {
    BookTop {
        bids: levels(&[
            ("84012.50", "0.421000"),
            ("84012.00", "1.000000"),
            ("84011.10", "0.005000"),
        ]),
        asks: levels(&[
            ("84012.51", "1.050000"),
            ("84013.00", "2.000000"),
            ("84014.55", "0.310000"),
        ]),
    }
}

#[test]
fn golden_book_snapshot_and_delta() {
    let btc = inst("bybit:BTC-USDT");
    let mut a = BybitAdapter::new(&feed());
    // Deltas before any snapshot have no book to go to.
    assert_eq!(ok(&mut a, DELTA).notes, vec![Note::Stale]);
    let out = ok(&mut a, SNAPSHOT);
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(
        out.events,
        vec![Event {
            instrument: btc.clone(),
            ts: 1_793_577_601_397_000,
            rx: RX,
            payload: Payload::Book(snapshot_top()),
        }]
    );
    let out = ok(&mut a, DELTA);
    assert!(out.books.is_empty() && out.actions.is_empty() && out.notes.is_empty());
    assert_eq!(
        out.events,
        vec![Event {
            instrument: btc.clone(),
            ts: 1_793_577_601_418_000,
            rx: RX,
            payload: Payload::Book(BookTop {
                bids: levels(&[
                    ("84012.20", "0.800000"),
                    ("84012.00", "1.000000"),
                    ("84011.10", "0.005000")
                ]),
                asks: levels(&[
                    ("84012.51", "0.050000"),
                    ("84013.00", "2.000000"),
                    ("84014.55", "0.310000")
                ]),
            }),
        }]
    );
}

#[test]
fn a_u_gap_breaks_the_book_and_resubscribes_until_a_snapshot() {
    let btc = inst("bybit:BTC-USDT");
    let mut a = BybitAdapter::new(&feed());
    a.subscribe();
    ok(&mut a, SNAPSHOT);
    ok(&mut a, DELTA);
    let out = ok(&mut a, DELTA_GAP);
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("sequence_gap"))]);
    assert_eq!(
        out.actions,
        vec![
            Action::Send(
                r#"{"args":["orderbook.50.BTCUSDT"],"op":"unsubscribe","req_id":"unsubscribe-2"}"#
                    .into()
            ),
            Action::Send(
                r#"{"args":["orderbook.50.BTCUSDT"],"op":"subscribe","req_id":"subscribe-3"}"#
                    .into()
            ),
        ]
    );
    // The next deltas (even contiguous ones) wait for the snapshot.
    let next = DELTA_GAP.replace("31337005", "31337006");
    assert_eq!(ok(&mut a, &next).notes, vec![Note::Stale]);
    assert_eq!(ok(&mut a, ACK).notes, vec![Note::Ack]);
    let out = ok(&mut a, SNAPSHOT);
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(out.events[0].payload, Payload::Book(snapshot_top()));
    // A repeated `u` is a gap too.
    ok(&mut a, DELTA);
    let out = ok(&mut a, DELTA);
    assert_eq!(out.books, vec![(btc, Some("sequence_gap"))]);
}

#[test]
fn a_u_of_1_is_a_venue_restart_that_overwrites_the_book() {
    let btc = inst("bybit:BTC-USDT");
    let mut a = BybitAdapter::new(&feed());
    ok(&mut a, SNAPSHOT);
    let out = ok(&mut a, RESTART);
    assert_eq!(
        out.books,
        vec![(btc.clone(), Some("venue_reset")), (btc.clone(), None)]
    );
    assert!(out.actions.is_empty());
    assert_eq!(
        out.events[0].payload,
        Payload::Book(BookTop {
            bids: levels(&[("84010.00", "0.100000")]),
            asks: levels(&[("84011.00", "0.200000")]),
        })
    );
    // The chain goes on from 1; a delta with `u = 1` restarts the same way.
    let two = DELTA
        .replace("31337002", "2")
        .replace("84012.20", "84009.20");
    assert!(ok(&mut a, &two).books.is_empty());
    let one = DELTA.replace("31337002", "1");
    let out = ok(&mut a, &one);
    assert_eq!(
        out.books,
        vec![(btc.clone(), Some("venue_reset")), (btc, None)]
    );
}

#[test]
fn bad_and_crossed_books_are_never_published() {
    let btc = inst("bybit:BTC-USDT");
    let mut a = BybitAdapter::new(&feed());
    ok(&mut a, SNAPSHOT);
    let (out, e) = err(&mut a, &DELTA.replace("\"0.800000\"", "\"0.8.0\""));
    assert_eq!(
        e,
        FrameError::Decimal {
            field: "b",
            text: "0.8.0".into()
        }
    );
    assert!(out.events.is_empty() && out.notes.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("bad_update"))]);
    assert_eq!(out.actions.len(), 2);
    // Not applied: the chain restarts from the next snapshot.
    assert_eq!(ok(&mut a, DELTA).notes, vec![Note::Stale]);
    ok(&mut a, SNAPSHOT);
    let crossing = DELTA.replace("[\"84012.20\",\"0.800000\"]", "[\"84013.50\",\"0.800000\"]");
    let out = ok(&mut a, &crossing);
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("crossed_book"))]);
    assert_eq!(out.actions.len(), 2);
    assert_eq!(
        ok(&mut a, &DELTA_GAP.replace("31337005", "31337003")).notes,
        vec![Note::Stale]
    );
    // A crossed best level is no quote either, and reports no book break.
    let crossed = BBO.replace("3051.21", "3051.00");
    let out = ok(&mut a, &crossed);
    assert!(out.events.is_empty() && out.books.is_empty());
    assert_eq!(out.actions.len(), 2);
    assert!(
        out.actions
            .iter()
            .all(|x| matches!(x, Action::Send(s) if s.contains("orderbook.1.ETHUSDT")))
    );
}

#[test]
fn both_backends_agree() {
    let frames = [SNAPSHOT, DELTA, TRADE, BBO, TICKERS, PONG, REFUSED, ACK];
    let mut simd = BybitAdapter::with_backend(&feed(), Backend::Simd);
    let mut serde = BybitAdapter::with_backend(&feed(), Backend::Serde);
    for frame in frames {
        let (a, b) = (ok(&mut simd, frame), ok(&mut serde, frame));
        assert_eq!(a.events, b.events, "{frame}");
        assert_eq!(a.notes, b.notes, "{frame}");
        assert_eq!(a.books, b.books, "{frame}");
    }
}

fn natives() -> Vec<String> {
    ["BTCUSDT", "ETHUSDT"].map(String::from).to_vec()
}

#[test]
fn fake_acks_pongs_refuses_and_snapshots_its_books() {
    let mut fake = BybitFake::new(&natives());
    assert!(fake.greeting().is_empty());
    assert!(
        !fake.observe(SNAPSHOT.trim()),
        "a subscription's snapshot is the fake's to make"
    );
    assert!(fake.observe(DELTA.trim()));
    assert!(fake.observe(BBO.trim()), "depth 1 is all snapshots");
    assert!(fake.observe(TRADE.trim()));
    assert!(!fake.observe(ACK.trim()));
    assert!(!fake.observe(PONG.trim()));

    let mut out = Vec::new();
    fake.on_client(r#"{"req_id":"ping-7","op":"ping"}"#, &mut out);
    assert_eq!(
        out,
        vec![
            r#"{"success":true,"ret_msg":"pong","conn_id":"7a3c9e1f-2b4d-4e6a-8c0b-1d2e3f4a5b6c","req_id":"ping-7","op":"ping"}"#
        ]
    );
    out.clear();
    fake.on_client(
        r#"{"req_id":"s","op":"subscribe","args":["orderbook.50.XYZUSDT","publicTrade.ETHUSDT"]}"#,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            r#"{"success":false,"ret_msg":"Invalid topic :[orderbook.50.XYZUSDT]","conn_id":"7a3c9e1f-2b4d-4e6a-8c0b-1d2e3f4a5b6c","req_id":"s","op":"subscribe"}"#
        ]
    );
    out.clear();
    fake.on_client(
        r#"{"req_id":"u","op":"unsubscribe","args":["publicTrade.ETHUSDT"]}"#,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            r#"{"success":true,"ret_msg":"","conn_id":"7a3c9e1f-2b4d-4e6a-8c0b-1d2e3f4a5b6c","req_id":"u","op":"unsubscribe"}"#
        ]
    );

    // A fresh adapter subscribing gets an ack and snapshots with the
    // fake's current `u`, and publishes the fake's books.
    let mut a = BybitAdapter::new(&feed());
    out.clear();
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut out);
    }
    assert!(
        out[0].contains(r#""success":true,"ret_msg":"subscribe""#),
        "{}",
        out[0]
    );
    let snap = out
        .iter()
        .find(|f| f.starts_with(r#"{"topic":"orderbook.50.BTCUSDT""#))
        .expect("snapshot");
    assert!(snap.contains(r#""u":31337002,"seq":44939063590"#), "{snap}");
    let mut events = Vec::new();
    for frame in &out {
        let mut o = Output::default();
        a.on_text(frame, RX, &mut o)
            .expect("the fake's frames parse");
        events.extend(o.events);
    }
    let btc = inst("bybit:BTC-USDT");
    let book = events.iter().find_map(|e| match &e.payload {
        Payload::Book(b) if e.instrument == btc => Some(b.clone()),
        _ => None,
    });
    assert_eq!(
        book.expect("BTC book").bids[0],
        (d("84012.20"), d("0.800000")),
        "snapshot plus the delta"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.payload, Payload::Quote(q) if q.bid == d("3051.20")))
    );
    // And the adapter's next delta continues the fake's chain.
    let mut o = Output::default();
    a.on_text(DELTA_GAP.replace("31337005", "31337003").trim(), RX, &mut o)
        .expect("delta");
    assert!(o.books.is_empty() && o.notes.is_empty(), "{o:?}");
    assert_eq!(fake.rest("/v5/market/orderbook"), None);
}

/// Rewrites `feeds/bybit/capture.jsonl` from [`generate`]:
/// `cargo test -p tickwire-ingest --lib bybit::tests::regenerate -- --ignored`.
#[test]
#[ignore = "writes feeds/bybit/capture.jsonl"]
fn regenerate_capture_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../feeds/bybit/capture.jsonl"
    );
    std::fs::write(path, generate()).expect("write the capture");
}

#[test]
fn capture_file_is_generated() {
    assert!(
        CAPTURE == generate(),
        "feeds/bybit/capture.jsonl is stale: regenerate it from fake::generate()"
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
    let mut a = BybitAdapter::new(&f);
    a.subscribe();
    let mut fake = BybitFake::new(&natives());
    let mut out = Output::default();
    let mut seen = std::collections::HashSet::new();
    let (mut breaks, mut recoveries, mut resends, mut acks, mut pongs, mut stale) =
        (Vec::new(), 0, 0, 0, 0, 0);
    let mut bbo_resends = 0;
    let mut last_bbo = std::collections::HashMap::new();
    let mut last_rx = 0;
    for frame in &capture.frames {
        assert_eq!(frame.source, Source::Ws);
        assert!(frame.rx > last_rx, "rx increases");
        last_rx = frame.rx;
        fake.observe(&frame.text);
        if frame.text.starts_with(r#"{"topic":"orderbook.1."#) {
            let key = &frame.text[..30];
            let u = frame
                .text
                .split("\"u\":")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .expect("u");
            if last_bbo.insert(key.to_owned(), u.to_owned()).as_deref() == Some(u) {
                bbo_resends += 1;
            }
        }
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
            if let Payload::Quote(q) = &e.payload {
                assert!(q.bid < q.ask, "never crossed: {e:?}");
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
                Note::Pong => pongs += 1,
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
        vec![
            ("bybit:BTC-USDT".to_owned(), "sequence_gap"),
            ("bybit:ETH-USDT".to_owned(), "venue_reset")
        ]
    );
    // 2 at start, BTC after the resubscribe, ETH after the restart.
    assert_eq!(recoveries, 4);
    assert_eq!(resends, 2);
    // The subscribe, then the resync's unsubscribe and subscribe.
    assert_eq!(acks, 3);
    assert_eq!(pongs, 5);
    assert!(stale >= 1, "deltas between the gap and the unsubscribe");
    assert!(bbo_resends >= 2, "{bbo_resends}");
    // The fake kept up with the tape: a client joining now gets the
    // current `u`.
    let mut replies = Vec::new();
    fake.on_client(
        r#"{"req_id":"x","op":"subscribe","args":["orderbook.50.ETHUSDT"]}"#,
        &mut replies,
    );
    let mut b = BybitAdapter::new(&f);
    let mut o = Output::default();
    for r in &replies {
        b.on_text(r, last_rx, &mut o).expect("fake frames parse");
    }
    assert_eq!(o.books, vec![(inst("bybit:ETH-USDT"), None)]);
    assert!(CAPTURE.len() < 1_500_000, "{}", CAPTURE.len());
}
