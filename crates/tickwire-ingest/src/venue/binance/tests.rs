//! Binance adapter tests: golden frames in, exact canonical output out;
//! the book sync's faults; the subscription frames and their replies.

use rust_decimal::Decimal;
use tickwire_model::{Event, Instrument, Payload};

use super::*;
use crate::FeedsConfig;
use crate::adapter::{Action, Adapter, FrameError, Note, Output};
use crate::feed::{FeedInstrument, VenueFeed};
use crate::json::Backend;

pub(super) const FEED: &str = include_str!("../../../../../feeds/binance/feed.toml");
pub(super) const TRADE: &str = include_str!("../../../../../feeds/binance/fixtures/trade.json");
const AGG_TRADE: &str = include_str!("../../../../../feeds/binance/fixtures/agg_trade.json");
const BOOK_TICKER: &str = include_str!("../../../../../feeds/binance/fixtures/book_ticker.json");
const TICKER: &str = include_str!("../../../../../feeds/binance/fixtures/ticker.json");
pub(super) const DEPTH_UPDATE: &str =
    include_str!("../../../../../feeds/binance/fixtures/depth_update.json");
pub(super) const DEPTH_SNAPSHOT: &str =
    include_str!("../../../../../feeds/binance/fixtures/depth_snapshot.json");
const COMBINED_TRADE: &str =
    include_str!("../../../../../feeds/binance/fixtures/combined_trade.json");
const ACK: &str = include_str!("../../../../../feeds/binance/fixtures/subscribe_ack.json");
const ERROR: &str = include_str!("../../../../../feeds/binance/fixtures/subscribe_error.json");
const SHUTDOWN: &str = include_str!("../../../../../feeds/binance/fixtures/server_shutdown.json");
const SHUTDOWN_EVENT: &str =
    include_str!("../../../../../feeds/binance/fixtures/server_shutdown_event.json");
const KLINE: &str = include_str!("../../../../../feeds/binance/fixtures/kline.json");

pub(super) fn feed() -> VenueFeed {
    FeedsConfig::parse(FEED)
        .expect("feed.toml parses")
        .venue()
        .expect("a venue feed")
        .clone()
}

pub(super) fn inst(s: &str) -> Instrument {
    Instrument::parse(s).expect("instrument")
}

fn dec(d: Decimal) -> String {
    d.to_string()
}

/// Every field of an event, decimals with their scale.
pub(super) fn describe(e: &Event) -> String {
    let body = match &e.payload {
        Payload::Trade(t) => format!(
            "trade {} {} {} id={}",
            dec(t.price),
            dec(t.size),
            t.side.as_str(),
            t.trade_id
        ),
        Payload::Quote(q) => format!(
            "quote {} {} / {} {}",
            dec(q.bid),
            dec(q.bid_size),
            dec(q.ask),
            dec(q.ask_size)
        ),
        Payload::Ticker(t) => format!(
            "ticker last={} open={} high={} low={} vol={}",
            dec(t.last),
            dec(t.open_24h),
            dec(t.high_24h),
            dec(t.low_24h),
            dec(t.volume_24h)
        ),
        Payload::Book(b) => {
            let side = |levels: &[(Decimal, Decimal)]| {
                levels
                    .iter()
                    .map(|(p, q)| format!("{p}x{q}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!("book bids={} asks={}", side(&b.bids), side(&b.asks))
        }
    };
    format!("{} ts={} rx={} {body}", e.instrument, e.ts, e.rx)
}

const RX: u64 = 1_730_419_200_125_777;

struct Case {
    name: &'static str,
    frame: &'static str,
    events: &'static [&'static str],
    notes: Vec<Note>,
    actions: Vec<Action>,
}

fn fetch(native: &str, symbol: &str) -> Action {
    Action::Fetch {
        instrument: inst(symbol),
        path: format!("/api/v3/depth?symbol={native}&limit=5000"),
    }
}

fn rejected(symbol: &str) -> Note {
    Note::Rejected {
        instrument: Some(inst(symbol)),
        reason: "Invalid symbol. (code 2)".into(),
    }
}

#[test]
fn golden_frames() {
    let cases = vec![
        Case {
            name: "trade: buyer maker => sell aggressor, ts = T",
            frame: TRADE,
            events: &[
                "binance:BTC-USDT ts=1730419200121000 rx=1730419200125777 trade 70213.45000000 0.01250000 sell id=4102556781",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "combined wrapper",
            frame: COMBINED_TRADE,
            events: &[
                "binance:BTC-USDT ts=1730419200121000 rx=1730419200125777 trade 70213.45000000 0.01250000 sell id=4102556781",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "aggTrade: id = a, taker bought",
            frame: AGG_TRADE,
            events: &[
                "binance:BTC-USDT ts=1730419200128000 rx=1730419200125777 trade 70213.44000000 0.30000000 buy id=3155102233",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "bookTicker: no venue time, ts = rx",
            frame: BOOK_TICKER,
            events: &[
                "binance:BTC-USDT ts=1730419200125777 rx=1730419200125777 quote 70213.44000000 1.20800000 / 70213.45000000 0.00421000",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "24hrTicker",
            frame: TICKER,
            events: &[
                "binance:BTC-USDT ts=1730419201000000 rx=1730419200125777 ticker last=70213.45000000 open=69401.35000000 high=70588.00000000 low=69011.20000000 vol=21877.40316000",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "keys in another order go through the parser",
            frame: r#"{"E":1730419200123,"s":"ETHUSDT","e":"trade","t":7,"p":"3512.34000000","q":"1.00000000","T":1730419200120,"m":false,"M":true}"#,
            events: &[
                "binance:ETH-USDT ts=1730419200120000 rx=1730419200125777 trade 3512.34000000 1.00000000 buy id=7",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "combined bookTicker with data first",
            frame: r#"{"data":{"u":1,"s":"DOGEUSDT","b":"0.16234000","B":"100.00000000","a":"0.16235000","A":"5.00000000"},"stream":"dogeusdt@bookTicker"}"#,
            events: &[
                "binance:DOGE-USDT ts=1730419200125777 rx=1730419200125777 quote 0.16234000 100.00000000 / 0.16235000 5.00000000",
            ],
            notes: vec![],
            actions: vec![],
        },
        Case {
            name: "depthUpdate before any snapshot: buffered, snapshot asked for",
            frame: DEPTH_UPDATE,
            events: &[],
            notes: vec![],
            actions: vec![fetch("BTCUSDT", "binance:BTC-USDT")],
        },
        Case {
            name: "ack",
            frame: ACK,
            events: &[],
            notes: vec![Note::Ack],
            actions: vec![],
        },
        Case {
            name: "ack with the id first",
            frame: r#"{"id":1,"result":null}"#,
            events: &[],
            notes: vec![Note::Ack],
            actions: vec![],
        },
        Case {
            name: "rejection: one per instrument the request carried",
            frame: ERROR,
            events: &[],
            notes: vec![
                rejected("binance:BTC-USDT"),
                rejected("binance:ETH-USDT"),
                rejected("binance:DOGE-USDT"),
            ],
            actions: vec![],
        },
        Case {
            name: "an error for a request we did not send",
            frame: r#"{"code":3,"msg":"Invalid JSON","id":null}"#,
            events: &[],
            notes: vec![Note::Rejected {
                instrument: None,
                reason: "Invalid JSON (code 3)".into(),
            }],
            actions: vec![],
        },
        Case {
            name: "serverShutdown: rotate",
            frame: SHUTDOWN,
            events: &[],
            notes: vec![],
            actions: vec![Action::Rotate],
        },
        Case {
            name: "serverShutdown, WebSocket-API form",
            frame: SHUTDOWN_EVENT,
            events: &[],
            notes: vec![],
            actions: vec![Action::Rotate],
        },
        Case {
            name: "serverShutdown in the combined wrapper",
            frame: r#"{"stream":"x","data":{"e":"serverShutdown","E":1}}"#,
            events: &[],
            notes: vec![],
            actions: vec![Action::Rotate],
        },
        Case {
            name: "unknown event type: noted",
            frame: KLINE,
            events: &[],
            notes: vec![Note::Unknown],
            actions: vec![],
        },
        Case {
            name: "an array (e.g. !ticker@arr): noted",
            frame: r#"[{"e":"24hrTicker"}]"#,
            events: &[],
            notes: vec![Note::Unknown],
            actions: vec![],
        },
        Case {
            name: "a partial-book payload (no symbol): noted",
            frame: r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#,
            events: &[],
            notes: vec![Note::Unknown],
            actions: vec![],
        },
    ];
    for backend in [Backend::Simd, Backend::Serde] {
        for case in &cases {
            let mut a = BinanceAdapter::with_backend(&feed(), backend);
            let _ = a.subscribe();
            let mut out = Output::default();
            a.on_text(case.frame, RX, &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let events: Vec<String> = out.events.iter().map(describe).collect();
            assert_eq!(events, case.events, "{} ({backend:?})", case.name);
            assert_eq!(out.notes, case.notes, "{} ({backend:?})", case.name);
            assert_eq!(out.actions, case.actions, "{} ({backend:?})", case.name);
            assert!(out.books.is_empty(), "{}", case.name);
        }
    }
}

#[test]
fn decimals_keep_their_wire_scale() {
    let mut a = BinanceAdapter::new(&feed());
    let mut out = Output::default();
    a.on_text(TRADE, RX, &mut out).expect("trade");
    let Payload::Trade(t) = &out.events[0].payload else {
        panic!("a trade")
    };
    assert_eq!((t.price.scale(), t.size.scale()), (8, 8));
    assert_eq!(t.size.to_string(), "0.01250000");
}

#[test]
fn bad_frames_are_errors_of_the_right_kind_and_leave_nothing() {
    let field = |name| Err(FrameError::Field(name));
    let cases: Vec<(&str, &str, Result<(), FrameError>)> = vec![
        (
            "not json",
            "hello",
            Err(FrameError::Malformed(String::new())),
        ),
        (
            "truncated",
            r#"{"e":"trade","E":1730419200123,"s":"BTC"#,
            Err(FrameError::Malformed(String::new())),
        ),
        (
            "truncated unknown",
            r#"{"e":"kline","k":{"#,
            Err(FrameError::Malformed(String::new())),
        ),
        (
            "missing q",
            r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0","T":1,"m":true}"#,
            field("q"),
        ),
        (
            "t of the wrong type",
            r#"{"e":"trade","E":1,"s":"BTCUSDT","t":"x","p":"1.0","q":"1","T":1,"m":true}"#,
            field("t"),
        ),
        (
            "combined bookTicker without A",
            r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2"}}"#,
            field("A"),
        ),
        (
            "depth levels not pairs",
            r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0"]],"a":[]}"#,
            field("b"),
        ),
        (
            "bad price",
            r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"70213.4x","q":"1","T":1,"m":true}"#,
            Err(FrameError::Decimal {
                field: "p",
                text: "70213.4x".into(),
            }),
        ),
        (
            "bad ticker volume",
            r#"{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"1","o":"1","h":"1","l":"1","v":"1e5"}"#,
            Err(FrameError::Decimal {
                field: "v",
                text: "1e5".into(),
            }),
        ),
        (
            "unknown instrument",
            r#"{"e":"trade","E":1,"s":"XRPUSDT","t":1,"p":"1.0","q":"1","T":1,"m":true}"#,
            Err(FrameError::UnknownInstrument("XRPUSDT".into())),
        ),
        (
            "unknown instrument in a quote",
            r#"{"u":1,"s":"XRPUSDT","b":"1","B":"1","a":"2","A":"1"}"#,
            Err(FrameError::UnknownInstrument("XRPUSDT".into())),
        ),
        (
            "error reply without msg",
            r#"{"code":2,"id":1}"#,
            field("msg"),
        ),
    ];
    for backend in [Backend::Simd, Backend::Serde] {
        for (name, frame, expected) in &cases {
            let mut a = BinanceAdapter::with_backend(&feed(), backend);
            let mut out = Output::default();
            let got = a.on_text(frame, RX, &mut out);
            match (&got, expected) {
                (Err(FrameError::Malformed(_)), Err(FrameError::Malformed(_))) => {}
                _ => assert_eq!(&got, expected, "{name} ({backend:?})"),
            }
            assert!(out.is_empty(), "{name}: nothing reaches out");
        }
    }
}

#[test]
fn subscribe_splits_requests_and_maps_rejections_back() {
    let mut a = BinanceAdapter::new(&feed());
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bookTicker","btcusdt@ticker","btcusdt@depth@100ms","ethusdt@trade","ethusdt@bookTicker","ethusdt@ticker","ethusdt@depth@100ms","dogeusdt@trade","dogeusdt@bookTicker","dogeusdt@ticker","dogeusdt@depth@100ms"],"id":1}"#
        ]
    );
    // 60 instruments x 4 streams: 50 per request (200 streams), then 10.
    let base = feed();
    let many: Vec<FeedInstrument> = (0..60)
        .map(|i| FeedInstrument {
            native: format!("C{i}USDT"),
            instrument: inst(&format!("binance:C{i}-USDT")),
        })
        .collect();
    let big = base.with_instruments(many);
    let mut a = BinanceAdapter::new(&big);
    let frames = a.subscribe();
    assert_eq!(frames.len(), 2);
    for (frame, (id, n)) in frames.iter().zip([(1, 200), (2, 40)]) {
        let v: serde_json::Value = serde_json::from_str(frame).expect("json");
        assert_eq!(v["method"], "SUBSCRIBE");
        assert_eq!(v["id"], id);
        assert_eq!(v["params"].as_array().expect("params").len(), n);
    }
    let mut out = Output::default();
    a.on_text(r#"{"code":2,"msg":"Invalid symbol.","id":2}"#, RX, &mut out)
        .expect("error reply");
    let named: Vec<String> = out
        .notes
        .iter()
        .map(|n| match n {
            Note::Rejected {
                instrument: Some(i),
                ..
            } => i.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        named,
        (50..60)
            .map(|i| format!("binance:C{i}-USDT"))
            .collect::<Vec<_>>()
    );
    // The first request is acked; a second reply to it is still an ack.
    out.clear();
    a.on_text(r#"{"result":null,"id":1}"#, RX, &mut out)
        .expect("ack");
    assert_eq!(out.notes, vec![Note::Ack]);
    // A large feed looks symbols up by hash, lower-case too.
    out.clear();
    a.on_text(
        r#"{"e":"trade","E":1,"s":"c42usdt","t":1,"p":"1.0","q":"1","T":1,"m":true}"#,
        RX,
        &mut out,
    )
    .expect("trade");
    assert_eq!(out.events[0].instrument, inst("binance:C42-USDT"));
}

#[test]
fn channels_the_feed_does_not_carry_are_not_published() {
    let mut only_trades = feed();
    only_trades.channels = vec![Channel::Trade];
    let mut a = BinanceAdapter::new(&only_trades);
    assert_eq!(
        a.subscribe(),
        vec![
            r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade","dogeusdt@trade"],"id":1}"#
        ]
    );
    let mut out = Output::default();
    for frame in [BOOK_TICKER, TICKER, DEPTH_UPDATE] {
        a.on_text(frame, RX, &mut out).expect("frame");
    }
    assert!(out.events.is_empty() && out.actions.is_empty());
    assert_eq!(out.notes, vec![Note::Unknown; 3]);
}

fn book_line(out: &Output) -> Vec<String> {
    out.events
        .iter()
        .filter(|e| matches!(e.payload, Payload::Book(_)))
        .map(describe)
        .collect()
}

fn depth(u0: u64, u1: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"e":"depthUpdate","E":1730419200300,"s":"BTCUSDT","U":{u0},"u":{u1},"b":[{bids}],"a":[{asks}]}}"#
    )
}

fn snapshot(id: u64) -> String {
    format!(
        r#"{{"lastUpdateId":{id},"bids":[["70213.44000000","1.10000000"],["70212.10000000","0.50000000"]],"asks":[["70213.45000000","0.00421000"],["70214.00000000","3.12500000"]]}}"#
    )
}

#[test]
fn book_syncs_from_buffered_diffs_and_a_snapshot_then_recovers_from_a_gap() {
    let btc = inst("binance:BTC-USDT");
    let mut a = BinanceAdapter::new(&feed());
    let mut out = Output::default();
    a.on_text(DEPTH_UPDATE, RX, &mut out).expect("diff");
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    // A second diff while the snapshot is on its way does not ask again.
    out.clear();
    a.on_text(
        &depth(
            58392217035,
            58392217040,
            r#"["70211.00000000","0.20000000"]"#,
            "",
        ),
        RX,
        &mut out,
    )
    .expect("diff");
    assert!(out.is_empty());
    // The snapshot: book := snapshot, then both diffs replay on it.
    a.on_rest(&btc, DEPTH_SNAPSHOT, RX + 1, &mut out)
        .expect("snapshot");
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(
        book_line(&out),
        vec![
            "binance:BTC-USDT ts=1730419200125778 rx=1730419200125778 book bids=70213.44000000x1.20800000,70212.10000000x0.50000000,70211.00000000x0.20000000 asks=70213.45000000x0.00421000,70214.00000000x3.12500000"
        ]
    );
    // Live diff, contiguous.
    out.clear();
    a.on_text(
        &depth(58392217041, 58392217041, "", r#"["70213.45000000","0"]"#),
        RX + 2,
        &mut out,
    )
    .expect("diff");
    assert_eq!(
        book_line(&out),
        vec![
            "binance:BTC-USDT ts=1730419200300000 rx=1730419200125779 book bids=70213.44000000x1.20800000,70212.10000000x0.50000000,70211.00000000x0.20000000 asks=70214.00000000x3.12500000"
        ]
    );
    // A stale one.
    out.clear();
    a.on_text(&depth(58392217030, 58392217041, "", ""), RX, &mut out)
        .expect("stale");
    assert_eq!(out.notes, vec![Note::Stale]);
    // A gap: the book is broken and a snapshot asked for.
    out.clear();
    a.on_text(
        &depth(
            58392217043,
            58392217050,
            r#"["70212.50000000","1.00000000"]"#,
            "",
        ),
        RX,
        &mut out,
    )
    .expect("gap");
    assert_eq!(out.books, vec![(btc.clone(), Some("sequence_gap"))]);
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    assert!(out.events.is_empty());
    // The new snapshot meets the diff that revealed the gap.
    out.clear();
    a.on_rest(&btc, &snapshot(58392217045), RX + 5, &mut out)
        .expect("snapshot");
    assert_eq!(out.books, vec![(btc.clone(), None)]);
    assert_eq!(
        book_line(&out),
        vec![
            "binance:BTC-USDT ts=1730419200125782 rx=1730419200125782 book bids=70213.44000000x1.10000000,70212.50000000x1.00000000,70212.10000000x0.50000000 asks=70213.45000000x0.00421000,70214.00000000x3.12500000"
        ]
    );
    // An old snapshot after that is stale.
    out.clear();
    a.on_rest(&btc, &snapshot(58392217045), RX, &mut out)
        .expect("stale snapshot");
    assert_eq!(out.notes, vec![Note::Stale]);
}

#[test]
fn a_snapshot_older_than_the_stream_is_fetched_again() {
    let btc = inst("binance:BTC-USDT");
    let mut a = BinanceAdapter::new(&feed());
    let mut out = Output::default();
    a.on_text(&depth(100, 105, "", ""), RX, &mut out)
        .expect("diff");
    out.clear();
    a.on_rest(&btc, &snapshot(50), RX, &mut out).expect("old");
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    assert!(out.books.is_empty() && out.events.is_empty());
    out.clear();
    a.on_rest(&btc, &snapshot(102), RX, &mut out).expect("good");
    assert_eq!(out.books, vec![(btc, None)]);
    assert_eq!(book_line(&out).len(), 1);
}

#[test]
fn a_crossed_book_is_never_published() {
    let btc = inst("binance:BTC-USDT");
    let mut a = BinanceAdapter::new(&feed());
    let mut out = Output::default();
    a.on_text(&depth(10, 11, "", ""), RX, &mut out)
        .expect("diff");
    a.on_rest(&btc, &snapshot(10), RX, &mut out)
        .expect("snapshot");
    out.clear();
    a.on_text(
        &depth(12, 12, r#"["70213.50000000","1.00000000"]"#, ""),
        RX,
        &mut out,
    )
    .expect("diff");
    assert!(out.events.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("crossed_book"))]);
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
}

#[test]
fn a_bad_book_update_breaks_the_book_and_resyncs() {
    let btc = inst("binance:BTC-USDT");
    let mut a = BinanceAdapter::new(&feed());
    let mut out = Output::default();
    a.on_text(&depth(10, 11, "", ""), RX, &mut out)
        .expect("diff");
    a.on_rest(&btc, &snapshot(10), RX, &mut out)
        .expect("snapshot");
    out.clear();
    let got = a.on_text(&depth(12, 12, r#"["70213.x","1.0"]"#, ""), RX, &mut out);
    assert_eq!(
        got,
        Err(FrameError::Decimal {
            field: "b",
            text: "70213.x".into()
        })
    );
    // No data from it; the break and the resync request are reported.
    assert!(out.events.is_empty() && out.notes.is_empty());
    assert_eq!(out.books, vec![(btc.clone(), Some("bad_update"))]);
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    // Even if the shell dropped that request with the error, the next
    // diff asks again.
    out.clear();
    a.on_text(&depth(13, 13, "", ""), RX, &mut out)
        .expect("diff");
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    // A bad snapshot body: an error, and asked again.
    out.clear();
    let got = a.on_rest(
        &btc,
        r#"{"lastUpdateId":"x","bids":[],"asks":[]}"#,
        RX,
        &mut out,
    );
    assert_eq!(got, Err(FrameError::Field("lastUpdateId")));
    assert_eq!(out.actions, vec![fetch("BTCUSDT", "binance:BTC-USDT")]);
    let got = a.on_rest(&btc, "<html>", RX, &mut out);
    assert!(matches!(got, Err(FrameError::Malformed(_))), "{got:?}");
    let got = a.on_rest(&inst("binance:XRP-USDT"), DEPTH_SNAPSHOT, RX, &mut out);
    assert_eq!(
        got,
        Err(FrameError::UnknownInstrument("binance:XRP-USDT".into()))
    );
}

#[test]
fn limits_are_the_venues() {
    assert_eq!(LIMITS.messages_per_sec, 5);
    assert_eq!(LIMITS.max_streams, 1024);
    assert_eq!(LIMITS.streams_per_instrument, 4);
    assert_eq!(LIMITS.silence, Duration::from_secs(60));
    assert_eq!(LIMITS.max_lifetime, Some(Duration::from_secs(86_400)));
    assert_eq!(BinanceAdapter::new(&feed()).keepalive(), None);
}
