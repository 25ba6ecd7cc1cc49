//! The fake Binance and the generated capture: replies, REST snapshots
//! from the tape's books, and a whole session through a fresh adapter.

use std::collections::{BTreeMap, HashMap, HashSet};

use tickwire_model::{Channel, Instrument, Payload};

use super::fake::{BinanceFake, generate};
use super::generate::{SYMBOLS, generate_with_faults};
use super::tests::{DEPTH_UPDATE, feed, inst};
use super::*;
use crate::adapter::{Action, Adapter, Note, Output};
use crate::capture::{Capture, Source};
use crate::feed::VenueKind;
use crate::venue::FakeVenue;

const CAPTURE: &str = include_str!("../../../../../feeds/binance/capture.jsonl");

fn natives() -> Vec<String> {
    feed()
        .instruments
        .iter()
        .map(|i| i.native.clone())
        .collect()
}

#[test]
fn fake_answers_requests_in_binances_shapes() {
    let mut fake = BinanceFake::new(&natives());
    assert!(fake.greeting().is_empty());
    let mut out = Vec::new();
    fake.on_client(
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@depth@100ms"],"id":1}"#,
        &mut out,
    );
    fake.on_client(
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","xrpusdt@trade"],"id":2}"#,
        &mut out,
    );
    fake.on_client(r#"{"method":"LIST_SUBSCRIPTIONS","id":"q"}"#, &mut out);
    fake.on_client(
        r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":4}"#,
        &mut out,
    );
    fake.on_client(r#"{"method":"NOPE","id":5}"#, &mut out);
    fake.on_client("{nope", &mut out);
    assert_eq!(
        out,
        vec![
            r#"{"result":null,"id":1}"#,
            r#"{"code":2,"msg":"Invalid symbol.","id":2}"#,
            r#"{"result":["btcusdt@trade","ethusdt@depth@100ms"],"id":"q"}"#,
            r#"{"result":null,"id":4}"#,
            r#"{"code":2,"msg":"Invalid request: unknown method","id":5}"#,
            r#"{"code":3,"msg":"Invalid JSON","id":null}"#,
        ]
    );
}

#[test]
fn adapter_and_fake_agree_on_subscribe_and_rejection() {
    let mut a = BinanceAdapter::new(&feed());
    // The fake lists only two of the three symbols.
    let mut fake = BinanceFake::new(&["BTCUSDT".to_owned(), "ETHUSDT".to_owned()]);
    let mut replies = Vec::new();
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut replies);
    }
    let mut out = Output::default();
    for r in &replies {
        a.on_text(r, 1, &mut out).expect("reply");
    }
    // One request carried all three: Binance refuses it whole.
    assert_eq!(out.notes.len(), 3);
    assert!(
        out.notes
            .iter()
            .all(|n| matches!(n, Note::Rejected { instrument: Some(_), reason } if reason.starts_with("Invalid symbol.")))
    );
    let mut fake = BinanceFake::new(&natives());
    let mut a = BinanceAdapter::new(&feed());
    replies.clear();
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut replies);
    }
    out.clear();
    for r in &replies {
        a.on_text(r, 1, &mut out).expect("reply");
    }
    assert_eq!(out.notes, vec![Note::Ack]);
}

#[test]
fn fake_serves_rest_snapshots_from_the_tapes_books() {
    let mut fake = BinanceFake::new(&natives());
    assert!(fake.observe(DEPTH_UPDATE), "market data is broadcast");
    assert!(!fake.observe(r#"{"result":null,"id":1}"#), "acks are not");
    assert!(!fake.observe(r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#));
    assert!(fake.observe(
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":58392217035,"u":58392217036,"b":[["70212.00000000","0.10000000"]],"a":[]}}"#
    ));
    assert_eq!(
        fake.rest("/api/v3/depth?symbol=BTCUSDT&limit=5000")
            .as_deref(),
        Some(
            r#"{"lastUpdateId":58392217036,"bids":[["70213.44000000","1.20800000"],["70212.00000000","0.10000000"]],"asks":[["70213.45000000","0.00421000"]]}"#
        )
    );
    assert_eq!(
        fake.rest("/api/v3/depth?symbol=BTCUSDT&limit=1").as_deref(),
        Some(
            r#"{"lastUpdateId":58392217036,"bids":[["70213.44000000","1.20800000"]],"asks":[["70213.45000000","0.00421000"]]}"#
        )
    );
    assert_eq!(fake.rest("/api/v3/depth?symbol=XRPUSDT&limit=5000"), None);
    assert_eq!(fake.rest("/api/v3/ticker?symbol=BTCUSDT"), None);
    // A listed symbol the tape has not moved yet: an empty book.
    assert_eq!(
        fake.rest("/api/v3/depth?symbol=ETHUSDT").as_deref(),
        Some(r#"{"lastUpdateId":0,"bids":[],"asks":[]}"#)
    );
}

/// What a session produced, counted.
#[derive(Default, Debug)]
struct Session {
    events: HashMap<(Instrument, Channel), usize>,
    breaks: Vec<(Instrument, &'static str)>,
    recoveries: Vec<Instrument>,
    fetches: BTreeMap<String, usize>,
    rotates: Vec<usize>,
    acks: usize,
    unrequested_rest: usize,
    errors: usize,
}

/// Plays frames through an adapter the way the shell does: WebSocket
/// frames to `on_text`, a REST line to `on_rest` when it answers a fetch
/// the adapter asked for (by path); `rest` answers fetches at once instead
/// when given (a live fake).
fn play<'a>(
    a: &mut BinanceAdapter,
    frames: impl Iterator<Item = &'a crate::capture::CaptureFrame>,
    mut rest: Option<&mut BinanceFake>,
    mut each: impl FnMut(&crate::capture::CaptureFrame, &mut Option<&mut BinanceFake>),
) -> Session {
    let mut s = Session::default();
    let mut pending: HashMap<String, Instrument> = HashMap::new();
    let mut out = Output::default();
    for (n, f) in frames.enumerate() {
        each(f, &mut rest);
        out.clear();
        let result = match &f.source {
            Source::Ws => a.on_text(&f.text, f.rx, &mut out),
            Source::Rest(path) => match pending.remove(path) {
                Some(i) if rest.is_none() => a.on_rest(&i, &f.text, f.rx, &mut out),
                Some(i) => {
                    pending.insert(path.clone(), i);
                    Ok(())
                }
                None => {
                    s.unrequested_rest += 1;
                    Ok(())
                }
            },
        };
        if let Err(e) = result {
            s.errors += 1;
            panic!("frame {n} ({}): {e}", f.text);
        }
        let mut queue: Vec<Action> = out.actions.drain(..).collect();
        while let Some(action) = queue.pop() {
            match action {
                Action::Fetch { instrument, path } => {
                    *s.fetches.entry(instrument.to_string()).or_default() += 1;
                    if let Some(fake) = rest.as_deref_mut() {
                        let body = fake.rest(&path).expect("the fake serves it");
                        let mut more = Output::default();
                        a.on_rest(&instrument, &body, f.rx, &mut more)
                            .expect("snapshot");
                        queue.append(&mut more.actions);
                        tally(&mut s, &more);
                    } else {
                        pending.insert(path, instrument);
                    }
                }
                Action::Rotate => s.rotates.push(n),
                Action::Send(_) => panic!("binance resyncs over REST"),
            }
        }
        tally(&mut s, &out);
    }
    s
}

fn tally(s: &mut Session, out: &Output) {
    for e in &out.events {
        *s.events
            .entry((e.instrument.clone(), e.payload.channel()))
            .or_default() += 1;
        if let Payload::Book(b) = &e.payload {
            assert_eq!(b.bids.len(), 10, "ten levels");
            assert_eq!(b.asks.len(), 10, "ten levels");
            assert!(b.bids[0].0 < b.asks[0].0, "never crossed: {e:?}");
            assert!(b.bids.windows(2).all(|w| w[0].0 > w[1].0));
            assert!(b.asks.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
    for (i, why) in &out.books {
        match why {
            Some(r) => s.breaks.push((i.clone(), r)),
            None => s.recoveries.push(i.clone()),
        }
    }
    s.acks += out.notes.iter().filter(|n| **n == Note::Ack).count();
}

#[test]
fn capture_file_is_generated() {
    assert!(
        CAPTURE == generate(),
        "feeds/binance/capture.jsonl is stale: write generate()'s output to it"
    );
}

#[test]
fn generated_capture_plays_through_a_fresh_adapter() {
    let (text, faults) = generate_with_faults();
    assert!(text.len() < 1_500_000, "{} bytes", text.len());
    let capture = Capture::parse(&text).expect("capture");
    assert_eq!(capture.header.venue, VenueKind::Binance);
    assert!(capture.header.synthetic);
    assert!(capture.header.note.starts_with("synthetic:"));
    assert!(
        capture
            .header
            .note
            .contains("tickwire_ingest::venue::generate_capture")
    );
    assert_eq!(capture.header.instruments, feed().instruments);
    assert!(capture.frames.windows(2).all(|w| w[0].rx < w[1].rx));
    let (gap_before, gap_next) = faults.gap.expect("a gap was made");
    assert!(gap_next > gap_before + 1);

    let mut a = BinanceAdapter::new(&feed());
    assert_eq!(a.subscribe().len(), 1);
    let s = play(&mut a, capture.frames.iter(), None, |_, _| {});
    assert_eq!(s.errors, 0);
    assert_eq!(s.unrequested_rest, 0, "every REST line answers a fetch");
    assert_eq!(s.acks, 1);
    for fi in &feed().instruments {
        for channel in Channel::ALL {
            let n = s
                .events
                .get(&(fi.instrument.clone(), channel))
                .copied()
                .unwrap_or(0);
            assert!(n > 50, "{} {channel:?}: {n}", fi.instrument);
        }
    }
    // The one lost diff: one break, on DOGE, healed by its REST line.
    let doge = inst("binance:DOGE-USDT");
    assert_eq!(s.breaks, vec![(doge.clone(), "sequence_gap")]);
    let mut healed: Vec<String> = s.recoveries.iter().map(|i| i.to_string()).collect();
    healed.sort();
    assert_eq!(
        healed,
        [
            "binance:BTC-USDT",
            "binance:DOGE-USDT",
            "binance:DOGE-USDT",
            "binance:ETH-USDT"
        ]
    );
    // ETH's first snapshot was older than the stream: fetched twice.
    let fetches: Vec<(&str, usize)> = s.fetches.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        fetches,
        [
            ("binance:BTC-USDT", 1),
            ("binance:DOGE-USDT", 2),
            ("binance:ETH-USDT", 2)
        ]
    );
    // serverShutdown near the end.
    assert_eq!(s.rotates.len(), 1);
    assert!(s.rotates[0] > capture.frames.len() * 9 / 10);
}

#[test]
fn a_client_joining_mid_tape_syncs_from_the_fakes_snapshots() {
    let capture = Capture::parse(CAPTURE).expect("capture");
    let mut fake = BinanceFake::new(&natives());
    // The tape runs for a while before the client connects.
    let half = capture.frames.len() / 3;
    for f in &capture.frames[..half] {
        if f.source == Source::Ws {
            fake.observe(&f.text);
        }
    }
    let mut a = BinanceAdapter::new(&feed());
    let mut replies = Vec::new();
    for frame in a.subscribe() {
        fake.on_client(&frame, &mut replies);
    }
    let mut out = Output::default();
    for r in &replies {
        a.on_text(r, 1, &mut out).expect("ack");
    }
    assert_eq!(out.notes, vec![Note::Ack]);
    // Live: each tape frame goes through the fake, then (if broadcast) to
    // the client; the client's fetches are answered by the fake at once.
    let ws: Vec<_> = capture.frames[half..]
        .iter()
        .filter(|f| f.source == Source::Ws)
        .cloned()
        .collect();
    let mut broadcast = HashSet::new();
    let s = play(&mut a, ws.iter(), Some(&mut fake), |f, fake| {
        if let Some(fake) = fake.as_deref_mut() {
            if fake.observe(&f.text) {
                broadcast.insert(f.rx);
            }
        }
    });
    assert_eq!(broadcast.len(), ws.len(), "every market frame is broadcast");
    assert_eq!(s.errors, 0);
    // Every book synced from the fake's snapshot; DOGE's lost diff (at
    // ~60 s, after this client joined) breaks it once and the fake's next
    // snapshot heals it.
    let mut healed: Vec<String> = s.recoveries.iter().map(|i| i.to_string()).collect();
    healed.sort();
    assert_eq!(
        healed,
        [
            "binance:BTC-USDT",
            "binance:DOGE-USDT",
            "binance:DOGE-USDT",
            "binance:ETH-USDT"
        ]
    );
    assert_eq!(s.breaks, vec![(inst("binance:DOGE-USDT"), "sequence_gap")]);
    for fi in &feed().instruments {
        assert!(
            s.events
                .contains_key(&(fi.instrument.clone(), Channel::Book))
        );
    }
}

#[test]
fn feed_file_and_generator_name_the_same_instruments() {
    let names: Vec<(String, String)> = feed()
        .instruments
        .iter()
        .map(|i| (i.native.clone(), i.instrument.to_string()))
        .collect();
    let generated: Vec<(String, String)> = SYMBOLS
        .iter()
        .map(|s| (s.native.to_owned(), s.symbol.to_owned()))
        .collect();
    assert_eq!(names, generated);
    let f = feed();
    assert_eq!(f.url, "wss://stream.binance.com:9443/ws");
    assert_eq!(f.rest_url.as_deref(), Some("https://api.binance.com"));
    assert_eq!(f.book_depth, 10);
    assert_eq!(f.channels, Channel::ALL.to_vec());
}
