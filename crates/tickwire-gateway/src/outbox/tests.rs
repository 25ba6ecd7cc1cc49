//! Outbox invariants: newest value wins, bounded memory, exact gaps,
//! control first, fairness, throttle, replay seam.

use super::*;
use proptest::prelude::*;
use tickwire_bus::conformance::{quote, trade};
use tickwire_model::Instrument;

fn inst(name: &str) -> Instrument {
    Instrument::parse(&format!("test:{name}-USD")).expect("instrument")
}

fn ep() -> Epoch {
    Epoch::new("e1").expect("epoch")
}

fn frame(u: &Update) -> Frame {
    Frame::try_from(u.bytes().clone()).expect("utf8")
}

fn open_released(ob: &Outbox, topic: Topic, throttle: Duration) -> SlotId {
    let id = ob.open(topic, throttle, None);
    ob.release(id);
    id
}

fn offer(ob: &Outbox, id: SlotId, u: &Update) {
    ob.offer(id, u, &frame(u));
}

fn json(f: &Frame) -> serde_json::Value {
    serde_json::from_str(f.as_str()).expect("json")
}

fn drain_all(ob: &Outbox, now: Instant) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        ob.drain(now, &mut batch);
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.iter().map(json));
    }
}

#[test]
fn conflation_keeps_newest_and_bounds_depth() {
    let ob = Outbox::new(OutboxConfig::default());
    let ids: Vec<SlotId> = (0..3)
        .map(|i| {
            open_released(
                &ob,
                Topic::new(inst(&format!("Q{i}")), Channel::Quote),
                Duration::ZERO,
            )
        })
        .collect();
    for seq in 1..=100_000u64 {
        let id = ids[(seq % 3) as usize];
        let i = inst(&format!("Q{}", seq % 3));
        offer(&ob, id, &quote(&i, seq, &ep()));
        assert!(ob.depth() <= 3, "depth bounded by subscriptions");
    }
    let got = drain_all(&ob, Instant::now());
    let mut seqs: Vec<u64> = got
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        vec![99_998, 99_999, 100_000],
        "the newest value of each topic"
    );
    assert_eq!(got.len(), 3);
    assert!(seqs.iter().all(|s| *s >= 99_998));
    assert_eq!(ob.depth(), 0);
    assert_eq!(ob.take_tally().conflated, 100_000 - 3);
}

#[test]
fn trade_overflow_gives_one_exact_gap_per_episode() {
    let ob = Outbox::new(OutboxConfig {
        trade_queue_len: 10,
        ..OutboxConfig::default()
    });
    let i = inst("T");
    let id = open_released(&ob, Topic::new(i.clone(), Channel::Trade), Duration::ZERO);
    for seq in 1..=25 {
        offer(&ob, id, &trade(&i, seq, &ep()));
    }
    assert_eq!(ob.depth(), 10);
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got[0]["type"], "gap");
    assert_eq!(
        (got[0]["from_seq"].as_u64(), got[0]["to_seq"].as_u64()),
        (Some(1), Some(15))
    );
    assert_eq!(got[0]["reason"], "slow_consumer");
    let rest: Vec<u64> = got[1..]
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(rest, (16..=25).collect::<Vec<_>>());
    // A second episode gets its own gap.
    for seq in 26..=40 {
        offer(&ob, id, &trade(&i, seq, &ep()));
    }
    let got = drain_all(&ob, Instant::now());
    assert_eq!(
        (got[0]["from_seq"].as_u64(), got[0]["to_seq"].as_u64()),
        (Some(26), Some(30))
    );
    assert_eq!(got.iter().filter(|v| v["type"] == "gap").count(), 1);
    assert_eq!(ob.take_tally().gaps, 2);
}

#[test]
fn control_goes_before_data() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("C");
    let id = open_released(&ob, Topic::new(i.clone(), Channel::Quote), Duration::ZERO);
    offer(&ob, id, &quote(&i, 1, &ep()));
    assert!(ob.push_control(Frame::from("{\"type\":\"pong\"}")));
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got[0]["type"], "pong");
    assert_eq!(got[1]["type"], "quote");
}

#[test]
fn busy_trade_topic_does_not_starve_others() {
    let ob = Outbox::new(OutboxConfig {
        trade_batch: 4,
        ..OutboxConfig::default()
    });
    let busy = inst("BUSY");
    let calm = inst("CALM");
    let b = open_released(
        &ob,
        Topic::new(busy.clone(), Channel::Trade),
        Duration::ZERO,
    );
    let c = open_released(
        &ob,
        Topic::new(calm.clone(), Channel::Quote),
        Duration::ZERO,
    );
    for seq in 1..=100 {
        offer(&ob, b, &trade(&busy, seq, &ep()));
    }
    offer(&ob, c, &quote(&calm, 1, &ep()));
    let mut first = Vec::new();
    ob.drain(Instant::now(), &mut first);
    let types: Vec<String> = first
        .iter()
        .map(|f| json(f)["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        types,
        vec!["trade", "trade", "trade", "trade", "quote"],
        "one batch per topic per pass"
    );
}

#[test]
fn throttle_sends_at_most_once_per_interval_and_newest_wins() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("THR");
    let id = open_released(
        &ob,
        Topic::new(i.clone(), Channel::Quote),
        Duration::from_millis(250),
    );
    let t0 = Instant::now();
    offer(&ob, id, &quote(&i, 1, &ep()));
    let mut out = Vec::new();
    ob.drain(t0, &mut out);
    assert_eq!(out.len(), 1);
    for seq in 2..=50 {
        offer(&ob, id, &quote(&i, seq, &ep()));
    }
    out.clear();
    let d = ob.drain(t0 + Duration::from_millis(100), &mut out);
    assert!(out.is_empty(), "throttled");
    assert_eq!(d.next_timer, Some(t0 + Duration::from_millis(250)));
    ob.drain(t0 + Duration::from_millis(250), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(json(&out[0])["seq"], 50);
}

#[test]
fn removed_slot_sends_nothing_and_stale_ids_are_ignored() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("RM");
    let id = open_released(&ob, Topic::new(i.clone(), Channel::Quote), Duration::ZERO);
    offer(&ob, id, &quote(&i, 1, &ep()));
    ob.remove(id);
    assert_eq!(ob.depth(), 0);
    let id2 = open_released(
        &ob,
        Topic::new(inst("OTHER"), Channel::Quote),
        Duration::ZERO,
    );
    offer(&ob, id, &quote(&i, 2, &ep()));
    assert!(
        drain_all(&ob, Instant::now()).is_empty(),
        "old id does not reach the new slot"
    );
    offer(&ob, id2, &quote(&inst("OTHER"), 1, &ep()));
    assert_eq!(drain_all(&ob, Instant::now()).len(), 1);
}

#[test]
fn replay_merges_history_and_live_without_duplicate_or_hole() {
    let ob = Outbox::new(OutboxConfig {
        trade_queue_len: 8,
        ..OutboxConfig::default()
    });
    let i = inst("RP");
    let id = ob.open(
        Topic::new(i.clone(), Channel::Trade),
        Duration::ZERO,
        Some(5),
    );
    // Live trades arrive while history is fetched; history overlaps them.
    for seq in 18..=22 {
        offer(&ob, id, &trade(&i, seq, &ep()));
    }
    assert!(
        drain_all(&ob, Instant::now()).is_empty(),
        "held during replay"
    );
    let history: Vec<Update> = (3..=20).map(|s| trade(&i, s, &ep())).collect();
    ob.finish_replay(id, 5, &history);
    offer(&ob, id, &trade(&i, 23, &ep()));
    let seqs: Vec<u64> = drain_all(&ob, Instant::now())
        .iter()
        .map(|v| v["seq"].as_u64().expect("trade"))
        .collect();
    assert_eq!(
        seqs,
        (5..=23).collect::<Vec<_>>(),
        "longer than the queue, yet nothing dropped"
    );
}

#[test]
fn live_trades_already_in_history_are_not_repeated() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("AHEAD");
    let id = ob.open(
        Topic::new(i.clone(), Channel::Trade),
        Duration::ZERO,
        Some(3),
    );
    // History was read before the hub fanned out 9 and 10.
    let history: Vec<Update> = (3..=10).map(|s| trade(&i, s, &ep())).collect();
    ob.finish_replay(id, 3, &history);
    for seq in 9..=11 {
        offer(&ob, id, &trade(&i, seq, &ep()));
    }
    let seqs: Vec<u64> = drain_all(&ob, Instant::now())
        .iter()
        .map(|v| v["seq"].as_u64().expect("trade"))
        .collect();
    assert_eq!(seqs, (3..=11).collect::<Vec<_>>());
}

fn seqs_and_gaps(got: &[serde_json::Value]) -> Vec<String> {
    got.iter()
        .map(|v| match v["type"].as_str() {
            Some("gap") => format!(
                "gap {}-{} {}",
                v["from_seq"],
                v["to_seq"],
                v["reason"].as_str().unwrap_or("")
            ),
            _ => v["seq"].to_string(),
        })
        .collect()
}

#[test]
fn replay_with_empty_history_still_announces_the_hole() {
    let i = inst("EMPTY");
    for (from, expected) in [
        (1, vec!["gap 1-150 history_expired", "151"]),
        (100, vec!["gap 100-150 history_expired", "151"]),
        (1000, vec![]),
    ] {
        let ob = Outbox::new(OutboxConfig::default());
        let id = ob.open(
            Topic::new(i.clone(), Channel::Trade),
            Duration::ZERO,
            Some(from),
        );
        // History unavailable (or a quiet topic): nothing replayed.
        ob.finish_replay(id, from, &[]);
        offer(&ob, id, &trade(&i, 151, &ep()));
        let got = drain_all(&ob, Instant::now());
        assert_eq!(seqs_and_gaps(&got), expected, "from_seq {from}");
    }
}

#[test]
fn replays_share_one_budget_per_connection() {
    let config = OutboxConfig {
        trade_queue_len: 8,
        replay_budget: 50,
        ..OutboxConfig::default()
    };
    let ob = Outbox::new(config);
    let (a, b) = (inst("BUDA"), inst("BUDB"));
    let sa = ob.open(
        Topic::new(a.clone(), Channel::Trade),
        Duration::ZERO,
        Some(1),
    );
    let sb = ob.open(
        Topic::new(b.clone(), Channel::Trade),
        Duration::ZERO,
        Some(1),
    );
    ob.finish_replay(
        sa,
        1,
        &(1..=100).map(|s| trade(&a, s, &ep())).collect::<Vec<_>>(),
    );
    ob.finish_replay(
        sb,
        1,
        &(1..=100).map(|s| trade(&b, s, &ep())).collect::<Vec<_>>(),
    );
    assert!(ob.depth() <= 50 + 8 + 2, "held {} frames", ob.depth());
    let got = drain_all(&ob, Instant::now());
    let first = |sym: &Instrument| {
        got.iter()
            .find(|v| v["symbol"] == sym.as_str())
            .map(|v| seqs_and_gaps(std::slice::from_ref(v)))
            .unwrap_or_default()
    };
    assert_eq!(first(&a), vec!["gap 1-50 history_expired"]);
    assert_eq!(
        first(&b),
        vec!["gap 1-92 history_expired"],
        "the budget was spent by the first replay"
    );
    // Drained: the budget is free again.
    let sc = ob.open(
        Topic::new(inst("BUDC"), Channel::Trade),
        Duration::ZERO,
        Some(1),
    );
    ob.finish_replay(
        sc,
        1,
        &(1..=40)
            .map(|s| trade(&inst("BUDC"), s, &ep()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        drain_all(&ob, Instant::now()).len(),
        40,
        "no gap once the budget is back"
    );
}

#[test]
fn replay_outside_history_gives_a_gap() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("RG");
    let id = ob.open(
        Topic::new(i.clone(), Channel::Trade),
        Duration::ZERO,
        Some(1),
    );
    let history: Vec<Update> = (50..=52).map(|s| trade(&i, s, &ep())).collect();
    ob.finish_replay(id, 1, &history);
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got[0]["type"], "gap");
    assert_eq!(
        (got[0]["from_seq"].as_u64(), got[0]["to_seq"].as_u64()),
        (Some(1), Some(49))
    );
    assert_eq!(got[0]["reason"], "history_expired");
    assert_eq!(got.len(), 4);
}

#[test]
fn status_notices_keep_the_newest_per_instrument_and_never_overflow() {
    let ob = Outbox::new(OutboxConfig {
        control_queue_len: 2,
        ..OutboxConfig::default()
    });
    for k in 0..100 {
        for state in ["stale", "live"] {
            let frame = Frame::from(format!(
                "{{\"type\":\"status\",\"symbol\":\"test:N{k}-USD\",\"state\":\"{state}\"}}"
            ));
            ob.push_notice(&inst(&format!("N{k}")), frame);
        }
    }
    assert_eq!(
        ob.closed(),
        None,
        "notices are not control frames: no slow-consumer close"
    );
    assert_eq!(ob.depth(), 100);
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got.len(), 100);
    assert!(
        got.iter().all(|v| v["state"] == "live"),
        "the newest status per instrument"
    );
}

#[test]
fn control_overflow_closes_as_slow_consumer() {
    let ob = Outbox::new(OutboxConfig {
        control_queue_len: 2,
        ..OutboxConfig::default()
    });
    assert!(ob.push_control(Frame::from("{}")));
    assert!(ob.push_control(Frame::from("{}")));
    assert!(!ob.push_control(Frame::from("{}")));
    assert_eq!(ob.closed(), Some(CloseReason::SlowConsumer));
}

#[test]
fn upstream_hole_is_announced() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("UP");
    let id = open_released(&ob, Topic::new(i.clone(), Channel::Trade), Duration::ZERO);
    ob.set_position(id, 10, &ep());
    offer(&ob, id, &trade(&i, 11, &ep()));
    offer(&ob, id, &trade(&i, 15, &ep()));
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got[1]["type"], "gap");
    assert_eq!(
        (got[1]["from_seq"].as_u64(), got[1]["to_seq"].as_u64()),
        (Some(12), Some(14))
    );
    assert_eq!(got[1]["reason"], "upstream_loss");
}

#[test]
fn held_slot_waits_for_release() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("HELD");
    let id = ob.open(Topic::new(i.clone(), Channel::Quote), Duration::ZERO, None);
    offer(&ob, id, &quote(&i, 1, &ep()));
    assert!(ob.push_control(Frame::from("{\"type\":\"subscribed\"}")));
    let mut out = Vec::new();
    ob.drain(Instant::now(), &mut out);
    assert_eq!(out.len(), 1, "only the ack: the value is held");
    ob.release(id);
    let got = drain_all(&ob, Instant::now());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["seq"], 1);
}

#[test]
fn lifting_a_throttle_releases_the_held_value() {
    let ob = Outbox::new(OutboxConfig::default());
    let i = inst("LIFT");
    let id = open_released(
        &ob,
        Topic::new(i.clone(), Channel::Quote),
        Duration::from_secs(60),
    );
    let t0 = Instant::now();
    offer(&ob, id, &quote(&i, 1, &ep()));
    let mut out = Vec::new();
    ob.drain(t0, &mut out);
    offer(&ob, id, &quote(&i, 2, &ep()));
    out.clear();
    ob.drain(t0 + Duration::from_millis(1), &mut out);
    assert!(out.is_empty(), "held by the 60 s throttle");
    ob.set_throttle(id, Duration::ZERO);
    ob.drain(t0 + Duration::from_millis(2), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(json(&out[0])["seq"], 2);
}

#[derive(Clone, Debug)]
enum Op {
    Quote(u8),
    Trade(u8),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(Op::Quote),
        3 => (0u8..2).prop_map(Op::Trade),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    /// Whatever the interleaving of offers and drains: the depth stays
    /// bounded, the last value sent per quote topic is the newest offered,
    /// and every trade seq is either delivered exactly once, in order, or
    /// covered by exactly one gap.
    #[test]
    fn outbox_invariants(ops in proptest::collection::vec(op(), 1..400), qlen in 1usize..16) {
        let ob = Outbox::new(OutboxConfig { trade_queue_len: qlen, trade_batch: 3, ..OutboxConfig::default() });
        let quotes: Vec<(Instrument, SlotId)> = (0..3).map(|k| { let i = inst(&format!("PQ{k}")); let id = open_released(&ob, Topic::new(i.clone(), Channel::Quote), Duration::ZERO); (i, id) }).collect();
        let trades: Vec<(Instrument, SlotId)> = (0..2).map(|k| { let i = inst(&format!("PT{k}")); let id = open_released(&ob, Topic::new(i.clone(), Channel::Trade), Duration::ZERO); (i, id) }).collect();
        let mut qseq = [0u64; 3];
        let mut tseq = [0u64; 2];
        let mut delivered_q: [u64; 3] = [0; 3];
        let mut covered: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let now = Instant::now();
        let apply = |out: Vec<Frame>, delivered_q: &mut [u64; 3], covered: &mut [Vec<u64>; 2]| {
            for f in out {
                let v = json(&f);
                let sym = v["symbol"].as_str().unwrap_or("").to_owned();
                match v["type"].as_str() {
                    Some("quote") => {
                        let k = quotes.iter().position(|(i, _)| i.as_str() == sym).expect("known");
                        let s = v["seq"].as_u64().expect("seq");
                        assert!(s > delivered_q[k], "quote seq rises");
                        delivered_q[k] = s;
                    }
                    Some("trade") => {
                        let k = trades.iter().position(|(i, _)| i.as_str() == sym).expect("known");
                        covered[k].push(v["seq"].as_u64().expect("seq"));
                    }
                    Some("gap") => {
                        let k = trades.iter().position(|(i, _)| i.as_str() == sym).expect("known");
                        let (a, b) = (v["from_seq"].as_u64().expect("from"), v["to_seq"].as_u64().expect("to"));
                        covered[k].extend(a..=b);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        for op in ops {
            match op {
                Op::Quote(k) => { let k = k as usize; qseq[k] += 1; offer(&ob, quotes[k].1, &quote(&quotes[k].0, qseq[k], &ep())); }
                Op::Trade(k) => { let k = k as usize; tseq[k] += 1; offer(&ob, trades[k].1, &trade(&trades[k].0, tseq[k], &ep())); }
                Op::Drain => { let mut out = Vec::new(); ob.drain(now, &mut out); apply(out, &mut delivered_q, &mut covered); }
            }
            prop_assert!(ob.depth() <= 3 + 2 * qlen + 2);
        }
        loop {
            let mut out = Vec::new();
            ob.drain(now, &mut out);
            if out.is_empty() { break; }
            apply(out, &mut delivered_q, &mut covered);
        }
        for k in 0..3 {
            prop_assert_eq!(delivered_q[k], qseq[k], "newest quote delivered last");
        }
        for k in 0..2 {
            prop_assert_eq!(&covered[k], &(1..=tseq[k]).collect::<Vec<_>>(), "each trade delivered or in a gap, once, in order");
        }
        prop_assert_eq!(ob.depth(), 0);
    }
}

#[derive(Clone, Debug)]
enum LossyOp {
    Quote(u8),
    /// A trade whose seq jumps by this much (above 1: the bus lost some).
    Trade(u8, u8),
    Drain,
    /// The clock moves on by this many ms.
    Tick(u16),
}

fn lossy_op() -> impl Strategy<Value = LossyOp> {
    prop_oneof![
        3 => (0u8..3).prop_map(LossyOp::Quote),
        3 => (0u8..2, prop_oneof![4 => Just(1u8), 1 => 2u8..6]).prop_map(|(k, step)| LossyOp::Trade(k, step)),
        2 => Just(LossyOp::Drain),
        2 => (0u16..300).prop_map(LossyOp::Tick),
    ]
}

proptest! {
    /// With throttled quote topics, a moving clock and trades whose seqs
    /// skip (upstream loss): a throttled topic sends at most once per
    /// interval and its last value sent is the newest offered; every trade
    /// seq up to the last offered is either delivered or covered by a gap,
    /// exactly once and in order, so no trade is lost silently.
    #[test]
    fn outbox_invariants_with_throttles_and_upstream_loss(
        ops in proptest::collection::vec(lossy_op(), 1..400),
        qlen in 1usize..16,
        throttles in proptest::collection::vec(prop_oneof![Just(0u64), Just(50), Just(200)], 3),
    ) {
        let ob = Outbox::new(OutboxConfig { trade_queue_len: qlen, trade_batch: 3, ..OutboxConfig::default() });
        let quotes: Vec<(Instrument, SlotId, Duration)> = (0..3).map(|k| {
            let i = inst(&format!("LQ{k}"));
            let throttle = Duration::from_millis(throttles[k]);
            let id = open_released(&ob, Topic::new(i.clone(), Channel::Quote), throttle);
            (i, id, throttle)
        }).collect();
        let trades: Vec<(Instrument, SlotId)> = (0..2).map(|k| {
            let i = inst(&format!("LT{k}"));
            let id = open_released(&ob, Topic::new(i.clone(), Channel::Trade), Duration::ZERO);
            (i, id)
        }).collect();
        let mut qseq = [0u64; 3];
        let mut tseq = [0u64; 2];
        let mut delivered_q = [0u64; 3];
        let mut sent_at: [Option<Instant>; 3] = [None; 3];
        let mut covered: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let t0 = Instant::now();
        let mut now = t0;
        let mut apply = |out: Vec<Frame>, now: Instant| -> Result<(), TestCaseError> {
            for f in out {
                let v = json(&f);
                let sym = v["symbol"].as_str().unwrap_or("").to_owned();
                match v["type"].as_str() {
                    Some("quote") => {
                        let k = quotes.iter().position(|(i, _, _)| i.as_str() == sym).expect("known");
                        let s = v["seq"].as_u64().expect("seq");
                        prop_assert!(s > delivered_q[k], "quote seq rises");
                        if let Some(last) = sent_at[k] {
                            prop_assert!(now.duration_since(last) >= quotes[k].2, "at most once per throttle interval");
                        }
                        delivered_q[k] = s;
                        sent_at[k] = Some(now);
                    }
                    Some("trade") => {
                        let k = trades.iter().position(|(i, _)| i.as_str() == sym).expect("known");
                        covered[k].push(v["seq"].as_u64().expect("seq"));
                    }
                    Some("gap") => {
                        let k = trades.iter().position(|(i, _)| i.as_str() == sym).expect("known");
                        let (a, b) = (v["from_seq"].as_u64().expect("from"), v["to_seq"].as_u64().expect("to"));
                        prop_assert!(a <= b, "a gap range is ordered");
                        covered[k].extend(a..=b);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            Ok(())
        };
        for op in ops {
            match op {
                LossyOp::Quote(k) => { let k = k as usize; qseq[k] += 1; offer(&ob, quotes[k].1, &quote(&quotes[k].0, qseq[k], &ep())); }
                LossyOp::Trade(k, step) => {
                    let k = k as usize;
                    // The first trade is seq 1: the position starts there.
                    tseq[k] += if tseq[k] == 0 { 1 } else { u64::from(step) };
                    offer(&ob, trades[k].1, &trade(&trades[k].0, tseq[k], &ep()));
                }
                LossyOp::Drain => { let mut out = Vec::new(); ob.drain(now, &mut out); apply(out, now)?; }
                LossyOp::Tick(ms) => now += Duration::from_millis(u64::from(ms)),
            }
        }
        // Past every throttle interval: whatever is held goes out.
        for _ in 0..1000 {
            now += Duration::from_millis(250);
            let mut out = Vec::new();
            ob.drain(now, &mut out);
            if out.is_empty() && ob.depth() == 0 { break; }
            apply(out, now)?;
        }
        for k in 0..3 {
            prop_assert_eq!(delivered_q[k], qseq[k], "newest quote delivered last");
        }
        for k in 0..2 {
            prop_assert_eq!(&covered[k], &(1..=tseq[k]).collect::<Vec<_>>(), "each trade seq delivered or in a gap, once, in order");
        }
        prop_assert_eq!(ob.depth(), 0);
    }
}
