//! OKX adapter tests: golden frames in, exact canonical output out; the
//! `seqId` chain (gap, keep-alive, post-maintenance reset); the fake; the
//! generated capture.

use rust_decimal::Decimal;
use tickwire_model::{
    BookTop, Event, Instrument, Payload, Quote, Side, Ticker, Trade, parse_decimal,
};

use super::fake::{OkxFake, generate};
use super::*;
use crate::FeedsConfig;
use crate::adapter::{Action, Adapter, FrameError, Note, Output};
use crate::capture::{Capture, Source};
use crate::venue::FakeVenue;

const FEED: &str = include_str!("../../../../../feeds/okx/feed.toml");
const TRADE: &str = include_str!("../../../../../feeds/okx/fixtures/trade.json");
const TICKER: &str = include_str!("../../../../../feeds/okx/fixtures/ticker.json");
const SNAPSHOT: &str = include_str!("../../../../../feeds/okx/fixtures/book_snapshot.json");
const UPDATE: &str = include_str!("../../../../../feeds/okx/fixtures/book_update.json");
const KEEPALIVE: &str = include_str!("../../../../../feeds/okx/fixtures/book_keepalive.json");
const RESET: &str = include_str!("../../../../../feeds/okx/fixtures/book_reset.json");
const ACK: &str = include_str!("../../../../../feeds/okx/fixtures/subscribe_ack.json");
const UNSUB_ACK: &str = include_str!("../../../../../feeds/okx/fixtures/unsubscribe_ack.json");
const ERROR: &str = include_str!("../../../../../feeds/okx/fixtures/error.json");
const NOTICE: &str = include_str!("../../../../../feeds/okx/fixtures/notice.json");
const PONG: &str = include_str!("../../../../../feeds/okx/fixtures/pong.txt");
const CAPTURE: &str = include_str!("../../../../../feeds/okx/capture.jsonl");

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
    inst("okx:BTC-USDT")
}

fn eth() -> Instrument {
    inst("okx:ETH-USDT")
}

fn ev(instrument: &Instrument, ts: u64, payload: Payload) -> Event {
    Event {
        instrument: instrument.clone(),
        ts,
        rx: RX,
        payload,
    }
}

fn levels(pairs: &[(&str, &str)]) -> Vec<(Decimal, Decimal)> {
    pairs.iter().map(|(p, q)| (d(p), d(q))).collect()
}

fn run(adapter: &mut OkxAdapter, frame: &str) -> (Result<(), FrameError>, Output) {
    let mut out = Output::default();
    let r = adapter.on_text(frame, RX, &mut out);
    (r, out)
}

#[test]
fn golden_frames() {
    struct Case {
        name: &'static str,
        frame: &'static str,
        events: Vec<Event>,
        notes: Vec<Note>,
        actions: Vec<Action>,
    }
    let case = |name, frame, events, notes| Case {
        name,
        frame,
        events,
        notes,
        actions: vec![],
    };
    let cases = vec![
        case(
            "trade",
            TRADE,
            vec![ev(
                &btc(),
                1_630_048_897_897_000,
                Payload::Trade(Trade {
                    price: d("42219.9"),
                    size: d("0.12060306"),
                    side: Side::Buy,
                    trade_id: "130639474".into(),
                }),
            )],
            vec![],
        ),
        case(
            "ticker: a quote and a ticker",
            TICKER,
            vec![
                ev(
                    &btc(),
                    1_774_805_577_108_000,
                    Payload::Quote(Quote {
                        bid: d("66260.2"),
                        bid_size: d("0.43439376"),
                        ask: d("66260.3"),
                        ask_size: d("0.22152927"),
                    }),
                ),
                ev(
                    &btc(),
                    1_774_805_577_108_000,
                    Payload::Ticker(Ticker {
                        last: d("66256.8"),
                        open_24h: d("66724.9"),
                        high_24h: d("67124.6"),
                        low_24h: d("66159.7"),
                        volume_24h: d("3074.77151423"),
                    }),
                ),
            ],
            vec![],
        ),
        case(
            "sell trade of ETH, instId from the item",
            r#"{"arg":{"channel":"trades","instId":"ETH-USDT"},"data":[{"instId":"ETH-USDT","tradeId":"2","px":"3400.60","sz":"1.500000","side":"sell","ts":"1793577600001"}]}"#,
            vec![ev(
                &eth(),
                1_793_577_600_001_000,
                Payload::Trade(Trade {
                    price: d("3400.60"),
                    size: d("1.500000"),
                    side: Side::Sell,
                    trade_id: "2".into(),
                }),
            )],
            vec![],
        ),
        case("subscribe ack", ACK, vec![], vec![Note::Ack]),
        case("unsubscribe ack", UNSUB_ACK, vec![], vec![Note::Ack]),
        case(
            "error naming an instrument not in the feed",
            ERROR,
            vec![],
            vec![Note::Rejected {
                instrument: None,
                reason: "60018: Wrong URL or channel:books,instId:XYZ-USDT doesn't exist".into(),
            }],
        ),
        case(
            "error naming a feed instrument",
            r#"{"id":"4","event":"error","code":"60018","msg":"Wrong URL or channel:candle1s,instId:ETH-USDT doesn't exist","connId":"a4d3ae55"}"#,
            vec![],
            vec![Note::Rejected {
                instrument: Some(eth()),
                reason: "60018: Wrong URL or channel:candle1s,instId:ETH-USDT doesn't exist".into(),
            }],
        ),
        case(
            "error naming no instrument",
            r#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}"#,
            vec![],
            vec![Note::Rejected {
                instrument: None,
                reason: r#"60012: Invalid request: {"op": "subscribe"}"#.into(),
            }],
        ),
        case("pong (not JSON)", PONG, vec![], vec![Note::Pong]),
        case(
            "channel-conn-count",
            r#"{"event":"channel-conn-count","channel":"books","connCount":"2","connId":"a4d3ae55"}"#,
            vec![],
            vec![Note::Heartbeat],
        ),
        case(
            "unknown channel",
            r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1597026383085","8533.02","8553.74","8527.17","8548.26","45247","529.5858061","5.29","0"]]}"#,
            vec![],
            vec![Note::Unknown],
        ),
        case(
            "unknown event",
            r#"{"event":"login","code":"0","msg":""}"#,
            vec![],
            vec![Note::Unknown],
        ),
        case(
            "no event, no arg",
            r#"{"hello":1}"#,
            vec![],
            vec![Note::Unknown],
        ),
        Case {
            name: "service upgrade notice: rotate",
            frame: NOTICE,
            events: vec![],
            notes: vec![Note::Heartbeat],
            actions: vec![Action::Rotate],
        },
    ];
    for backend in [json::Backend::Simd, json::Backend::Serde] {
        for case in &cases {
            let mut a = OkxAdapter::with_backend(&feed(), backend);
            let (r, out) = run(&mut a, case.frame);
            assert_eq!(r, Ok(()), "{}", case.name);
            assert_eq!(out.events, case.events, "{} ({backend:?})", case.name);
            assert_eq!(out.notes, case.notes, "{}", case.name);
            assert_eq!(out.actions, case.actions, "{}", case.name);
            assert!(out.books.is_empty(), "{}", case.name);
        }
    }
}

#[test]
fn decimals_keep_the_wire_scale() {
    let mut a = OkxAdapter::new(&feed());
    let (_, out) = run(&mut a, TICKER);
    let Payload::Ticker(t) = &out.events[1].payload else {
        panic!("ticker")
    };
    assert_eq!(
        (t.volume_24h.to_string().as_str(), t.volume_24h.scale()),
        ("3074.77151423", 8)
    );
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let (_, out) = run(&mut a, UPDATE);
    let Payload::Book(top) = &out.events[0].payload else {
        panic!("book")
    };
    assert_eq!(top.asks[0].1.to_string(), "415.50");
    assert_eq!(top.asks[1].0.to_string(), "8477");
}

#[test]
fn bad_frames_are_errors_of_the_right_kind_and_leave_nothing() {
    let trade = |item: &str| {
        format!(r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{item}]}}"#)
    };
    let cases: Vec<(&str, String, FrameError)> = vec![
        (
            "not json",
            "pongs".into(),
            FrameError::Malformed(String::new()),
        ),
        (
            "truncated",
            r#"{"arg":{"channel":"trades""#.into(),
            FrameError::Malformed(String::new()),
        ),
        (
            "an array",
            "[1]".into(),
            FrameError::Malformed(String::new()),
        ),
        (
            "bad decimal",
            trade(
                r#"{"instId":"BTC-USDT","tradeId":"1","px":"42,219.9","sz":"1","side":"buy","ts":"1"}"#,
            ),
            FrameError::Decimal {
                field: "px",
                text: "42,219.9".into(),
            },
        ),
        (
            "unknown instrument",
            trade(r#"{"instId":"XYZ-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}"#),
            FrameError::UnknownInstrument("XYZ-USDT".into()),
        ),
        (
            "missing tradeId",
            trade(r#"{"instId":"BTC-USDT","px":"1","sz":"1","side":"buy","ts":"1"}"#),
            FrameError::Field("tradeId"),
        ),
        (
            "bad ts",
            trade(
                r#"{"instId":"BTC-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"yesterday"}"#,
            ),
            FrameError::Time {
                field: "ts",
                text: "yesterday".into(),
            },
        ),
        (
            "second item bad: the first is not published either",
            trade(
                r#"{"instId":"BTC-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"},{"instId":"BTC-USDT","tradeId":"2","px":"1","sz":"1","side":"up","ts":"1"}"#,
            ),
            FrameError::Field("side"),
        ),
        (
            "books without action",
            r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[]}"#.into(),
            FrameError::Field("action"),
        ),
        (
            "books without instId",
            r#"{"arg":{"channel":"books"},"action":"update","data":[]}"#.into(),
            FrameError::Field("arg.instId"),
        ),
        (
            "books of an unknown instrument",
            r#"{"arg":{"channel":"books","instId":"XYZ-USDT"},"action":"update","data":[]}"#.into(),
            FrameError::UnknownInstrument("XYZ-USDT".into()),
        ),
    ];
    for (name, frame, want) in cases {
        let mut a = OkxAdapter::new(&feed());
        let (r, out) = run(&mut a, &frame);
        let err = r.expect_err(name);
        match (&err, &want) {
            (FrameError::Malformed(_), FrameError::Malformed(_)) => {}
            _ => assert_eq!(err, want, "{name}"),
        }
        assert!(out.is_empty(), "{name}: {out:?}");
    }
}

#[test]
fn subscribe_frames_and_keepalive() {
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"args":[{"channel":"trades","instId":"BTC-USDT"},{"channel":"tickers","instId":"BTC-USDT"},{"channel":"books","instId":"BTC-USDT"},{"channel":"trades","instId":"ETH-USDT"},{"channel":"tickers","instId":"ETH-USDT"},{"channel":"books","instId":"ETH-USDT"}],"id":"1","op":"subscribe"}"#
        ]
    );
    assert_eq!(a.keepalive().as_deref(), Some("ping"));
    // Quote alone still needs `tickers`; 17 instruments × 2 channels are
    // split 30 + 4.
    let mut f = feed();
    f.channels = vec![Channel::Quote, Channel::Book];
    let template = f.instruments[0].clone();
    f.instruments = (0..16)
        .map(|i| crate::feed::FeedInstrument {
            native: format!("C{i}-USDT"),
            instrument: inst(&format!("okx:C{i}-USDT")),
        })
        .collect();
    f.instruments.push(template);
    let mut a = OkxAdapter::new(&f);
    let frames = a.subscribe();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].matches("instId").count(), 30);
    assert_eq!(frames[1].matches("instId").count(), 4);
    assert!(frames[1].ends_with(r#""id":"2","op":"subscribe"}"#));
    assert!(!frames[0].contains("trades"));
}

fn snapshot_top() -> BookTop {
    BookTop {
        bids: levels(&[("8476.97", "256"), ("8475.55", "101"), ("8475.54", "100")]),
        asks: levels(&[("8476.98", "415"), ("8477", "7"), ("8477.34", "85")]),
    }
}

fn resync_actions(id: u64, inst_id: &str) -> Vec<Action> {
    vec![
        Action::Send(format!(
            r#"{{"args":[{{"channel":"books","instId":"{inst_id}"}}],"id":"{id}","op":"unsubscribe"}}"#
        )),
        Action::Send(format!(
            r#"{{"args":[{{"channel":"books","instId":"{inst_id}"}}],"id":"{}","op":"subscribe"}}"#,
            id + 1
        )),
    ]
}

#[test]
fn books_chain_keepalive_and_reset() {
    let mut a = OkxAdapter::new(&feed());
    let (r, out) = run(&mut a, SNAPSHOT);
    assert_eq!(r, Ok(()), "a non-zero (deprecated) checksum is ignored");
    assert_eq!(out.books, vec![(btc(), None)]);
    assert_eq!(
        out.events,
        vec![ev(
            &btc(),
            1_597_026_383_085_000,
            Payload::Book(snapshot_top())
        )]
    );
    let (r, out) = run(&mut a, UPDATE);
    assert_eq!(r, Ok(()));
    assert!(out.books.is_empty() && out.actions.is_empty() && out.notes.is_empty());
    let top = BookTop {
        bids: levels(&[("8476.10", "3"), ("8475.55", "101"), ("8475.54", "100")]),
        asks: levels(&[("8476.98", "415.50"), ("8477", "7")]),
    };
    assert_eq!(
        out.events,
        vec![ev(
            &btc(),
            1_597_026_383_185_000,
            Payload::Book(top.clone())
        )]
    );
    // The keep-alive changes nothing and says nothing.
    let (r, out) = run(&mut a, KEEPALIVE);
    assert_eq!(r, Ok(()));
    assert!(out.is_empty(), "{out:?}");
    // The post-maintenance reset (seqId < prevSeqId) applies once...
    let (r, out) = run(&mut a, RESET);
    assert_eq!(r, Ok(()));
    assert!(out.books.is_empty() && out.actions.is_empty());
    let Payload::Book(after) = &out.events[0].payload else {
        panic!("book")
    };
    assert_eq!(after.asks[1], (d("8477"), d("9")));
    // ...and the chain continues from the new id.
    let next = KEEPALIVE.replace(
        r#""prevSeqId":123461,"seqId":123461"#,
        r#""prevSeqId":1002,"seqId":1010"#,
    );
    let (r, out) = run(&mut a, &next);
    assert_eq!(r, Ok(()));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(a.seqs[&btc()].last_seq_id(), Some(1010));
}

#[test]
fn a_sequence_gap_invalidates_resubscribes_and_recovers() {
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let gap = UPDATE.replace(r#""prevSeqId":123456"#, r#""prevSeqId":123450"#);
    let (r, out) = run(&mut a, &gap);
    assert_eq!(r, Ok(()));
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("sequence_gap"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC-USDT"));
    // Until the fresh snapshot, increments are dropped.
    let (_, out) = run(&mut a, UPDATE);
    assert_eq!(out.notes, vec![Note::Stale]);
    assert!(out.events.is_empty() && out.actions.is_empty() && out.books.is_empty());
    let (_, out) = run(&mut a, UNSUB_ACK);
    assert_eq!(out.notes, vec![Note::Ack]);
    let (r, out) = run(&mut a, SNAPSHOT);
    assert_eq!(r, Ok(()));
    assert_eq!(out.books, vec![(btc(), None)], "recovered");
    assert_eq!(out.events.len(), 1);
    // And the chain holds again.
    let (_, out) = run(&mut a, UPDATE);
    assert_eq!(out.events.len(), 1);
}

#[test]
fn a_crossed_book_is_never_published() {
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let crossed = UPDATE.replace(r#"["8476.10","3","0","1"]"#, r#"["8477.00","3","0","1"]"#);
    let (r, out) = run(&mut a, &crossed);
    assert_eq!(r, Ok(()));
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("crossed_book"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC-USDT"));
    let next = KEEPALIVE.replace(
        r#""prevSeqId":123461,"seqId":123461"#,
        r#""prevSeqId":123461,"seqId":123470"#,
    );
    let (_, out) = run(&mut a, &next);
    assert_eq!(out.notes, vec![Note::Stale], "waits for the snapshot");
}

#[test]
fn a_book_update_that_does_not_parse_breaks_the_book_and_resyncs() {
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let bad = UPDATE.replace("415.50", "415.5.0");
    let (r, out) = run(&mut a, &bad);
    assert_eq!(
        r,
        Err(FrameError::Decimal {
            field: "asks.sz",
            text: "415.5.0".into()
        })
    );
    assert!(out.events.is_empty() && out.notes.is_empty());
    assert_eq!(out.books, vec![(btc(), Some("bad_message"))]);
    assert_eq!(out.actions, resync_actions(1, "BTC-USDT"));
    let (_, out) = run(&mut a, UPDATE);
    assert_eq!(out.notes, vec![Note::Stale]);
    // Missing seqId on a synced book: the same.
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(run(&mut a, SNAPSHOT).0, Ok(()));
    let (r, out) = run(&mut a, &UPDATE.replace(r#","seqId":123461"#, ""));
    assert_eq!(r, Err(FrameError::Field("seqId")));
    assert_eq!(out.books, vec![(btc(), Some("bad_message"))]);
    // Before any snapshot: an update is stale; a bad one only an error.
    let mut a = OkxAdapter::new(&feed());
    assert_eq!(run(&mut a, UPDATE).1.notes, vec![Note::Stale]);
    let (r, out) = run(&mut a, &bad);
    assert!(matches!(r, Err(FrameError::Decimal { .. })));
    assert!(out.is_empty());
}

#[test]
fn the_fake_acks_refuses_pongs_and_snapshots() {
    let natives = vec!["BTC-USDT".to_owned(), "ETH-USDT".to_owned()];
    let mut fake = OkxFake::new(&natives);
    assert!(fake.greeting().is_empty());
    assert!(
        !fake.observe(SNAPSHOT),
        "the tape's snapshots are not broadcast"
    );
    assert!(fake.observe(UPDATE));
    assert!(!fake.observe(ACK) && !fake.observe(PONG));
    assert!(fake.observe(TRADE) && fake.observe(TICKER));
    let mut replies = Vec::new();
    fake.on_client("ping", &mut replies);
    assert_eq!(replies, vec!["pong"]);
    replies.clear();
    fake.on_client(
        r#"{"id":"7","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},{"channel":"books","instId":"XYZ-USDT"}]}"#,
        &mut replies,
    );
    assert_eq!(replies.len(), 3, "{replies:#?}");
    assert_eq!(
        replies[0],
        r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55","event":"subscribe","id":"7"}"#
    );
    assert_eq!(
        replies[1],
        r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98","415.50","0","14"],["8477","7","0","2"]],"bids":[["8476.10","3","0","1"],["8475.55","101","0","1"],["8475.54","100","0","1"]],"ts":"1774805577108","checksum":0,"prevSeqId":-1,"seqId":123461}]}"#
    );
    assert_eq!(
        replies[2],
        r#"{"code":"60018","connId":"a4d3ae55","event":"error","id":"7","msg":"Wrong URL or channel:books,instId:XYZ-USDT doesn't exist"}"#
    );
    let mut a = OkxAdapter::new(&feed());
    let (r, out) = run(&mut a, &replies[1]);
    assert_eq!(r, Ok(()));
    assert_eq!(out.books, vec![(btc(), None)]);
    // The next tape update chains onto the fake's snapshot.
    let next = KEEPALIVE.replace(
        r#""prevSeqId":123461,"seqId":123461"#,
        r#""prevSeqId":123461,"seqId":123462"#,
    );
    assert!(fake.observe(&next));
    let (_, out) = run(&mut a, &next);
    assert!(out.books.is_empty() && out.notes.is_empty());
    let (_, out) = run(&mut a, &replies[2]);
    assert!(matches!(
        &out.notes[..],
        [Note::Rejected {
            instrument: None,
            ..
        }]
    ));
    replies.clear();
    fake.on_client("{nope", &mut replies);
    let (_, out) = run(&mut a, &replies[0]);
    assert!(matches!(
        &out.notes[..],
        [Note::Rejected {
            instrument: None,
            ..
        }]
    ));
    assert_eq!(fake.rest("/api/v5/market/books"), None);
}

#[derive(Default, Debug)]
struct Tally {
    errors: usize,
    invalidations: Vec<(Instrument, &'static str)>,
    recoveries: usize,
    resyncs: usize,
    stale: usize,
    pongs: usize,
    acks: usize,
    seen: std::collections::HashSet<(Instrument, Channel)>,
}

fn tally(a: &mut OkxAdapter, frames: impl Iterator<Item = (u64, String)>) -> Tally {
    let mut t = Tally::default();
    for (rx, text) in frames {
        let mut out = Output::default();
        if a.on_text(&text, rx, &mut out).is_err() {
            t.errors += 1;
        }
        for e in &out.events {
            assert!(e.ts <= rx, "venue time before receive time");
            if let Payload::Book(top) = &e.payload {
                assert!(top.bids.len() == 10 && top.asks.len() == 10, "depth 10");
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
                Note::Ack => t.acks += 1,
                other => panic!("unexpected note {other:?}"),
            }
        }
    }
    t
}

#[test]
fn the_generated_capture_replays_cleanly_with_its_faults() {
    let text = generate();
    assert!(text.len() < 1_500_000, "{} bytes", text.len());
    let capture = Capture::parse(&text).expect("capture");
    assert!(capture.header.synthetic);
    assert!(capture.header.note.starts_with("synthetic:"));
    assert_eq!(capture.header.instruments, feed().instruments);
    assert!(capture.frames.windows(2).all(|w| w[0].rx < w[1].rx));
    assert!(capture.frames.iter().all(|f| f.source == Source::Ws));
    // The injected keep-alive and reset are there.
    let books: Vec<serde_json::Value> = capture
        .frames
        .iter()
        .filter(|f| f.text.contains(r#""action":"update""#))
        .map(|f| serde_json::from_str(&f.text).expect("json"))
        .collect();
    let ids = |v: &serde_json::Value| {
        (
            v["data"][0]["prevSeqId"].as_i64(),
            v["data"][0]["seqId"].as_i64(),
        )
    };
    assert_eq!(
        books.iter().filter(|v| ids(v).0 == ids(v).1).count(),
        1,
        "one keep-alive"
    );
    assert_eq!(
        books.iter().filter(|v| ids(v).1 < ids(v).0).count(),
        1,
        "one reset"
    );
    let mut a = OkxAdapter::new(&feed());
    let t = tally(
        &mut a,
        capture.frames.iter().map(|f| (f.rx, f.text.clone())),
    );
    assert_eq!(t.errors, 0);
    assert_eq!(t.invalidations, vec![(eth(), "sequence_gap")]);
    assert_eq!(
        t.recoveries, 3,
        "two first snapshots and the one after the gap"
    );
    assert_eq!(t.resyncs, 2, "one unsubscribe, one subscribe");
    assert!(
        t.stale >= 1,
        "increments between the gap and the fresh snapshot are dropped"
    );
    assert_eq!(t.pongs, 5);
    assert_eq!(
        t.acks,
        6 + 2,
        "per-argument acks, then the resubscribe's two"
    );
    for i in [btc(), eth()] {
        for c in Channel::ALL {
            assert!(t.seen.contains(&(i.clone(), c)), "{i} {c:?}");
        }
    }
}

#[test]
fn a_client_joining_the_fake_mid_tape_sees_consistent_books() {
    let capture = Capture::parse(&generate()).expect("capture");
    let natives: Vec<String> = feed()
        .instruments
        .iter()
        .map(|i| i.native.clone())
        .collect();
    let mut fake = OkxFake::new(&natives);
    // Join after the gap's recovery: the fake's books are whole again.
    let join = capture.frames.len() * 3 / 5;
    for f in &capture.frames[..join] {
        fake.observe(&f.text);
    }
    let mut a = OkxAdapter::new(&feed());
    let rx = capture.frames[join].rx;
    let mut frames = Vec::new();
    for s in a.subscribe() {
        let mut replies = Vec::new();
        fake.on_client(&s, &mut replies);
        frames.extend(replies.into_iter().map(|r| (rx, r)));
    }
    let mut pong = Vec::new();
    fake.on_client("ping", &mut pong);
    frames.extend(pong.into_iter().map(|p| (rx, p)));
    for f in &capture.frames[join..] {
        if fake.observe(&f.text) {
            frames.push((f.rx, f.text.clone()));
        }
    }
    let t = tally(&mut a, frames.into_iter());
    assert_eq!(t.errors, 0);
    assert!(t.invalidations.is_empty(), "{:?}", t.invalidations);
    assert_eq!(t.recoveries, 2);
    assert_eq!(t.acks, 6);
    assert_eq!(t.pongs, 1, "the tape's pongs are not the client's");
    assert_eq!(t.seen.len(), 8);
}

#[test]
fn capture_file_is_generated() {
    if std::env::var_os("TICKWIRE_WRITE_CAPTURES").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/okx/capture.jsonl");
        std::fs::write(path, generate()).expect("write the capture");
        return;
    }
    assert!(
        CAPTURE == generate(),
        "feeds/okx/capture.jsonl is stale: rerun with TICKWIRE_WRITE_CAPTURES=1"
    );
}
