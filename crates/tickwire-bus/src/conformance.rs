//! The conformance suite every [`Bus`] implementation must pass: the
//! guarantees written on the trait, checked one by one.
//!
//! Use [`bus_conformance_tests!`](crate::bus_conformance_tests) with an
//! async factory building a fresh, empty bus (for a shared server, use a
//! unique key prefix per call) with `history_len` = 100 and room for at
//! least 64 pending updates per subscriber. The factory returns a
//! [`Fixture`]: the bus itself, or `(bus, keeper)` where the keeper (a
//! test server) must outlive the bus. [`run_all`] runs every check in turn
//! against one factory, for servers too costly to start per check.

use std::future::Future;
use std::time::Duration;

use tickwire_model::protocol::FeedState;
use tickwire_model::{
    Channel, Epoch, Event, Instrument, Payload, Quote, Side, Topic, Trade, Update, parse_decimal,
};

use crate::{BoxFuture, Bus, CatalogueEntry, Error, Received, Status, Subscription};

/// What a conformance factory returns: a bus, possibly with what must live
/// as long as it (dropped after the bus).
pub trait Fixture {
    /// The bus under test.
    fn bus(&self) -> &dyn Bus;
}

impl<B: Bus> Fixture for B {
    fn bus(&self) -> &dyn Bus {
        self
    }
}

impl<B: Bus, K> Fixture for (B, K) {
    fn bus(&self) -> &dyn Bus {
        &self.0
    }
}

/// History length the factory must configure.
pub const HISTORY_LEN: u64 = 100;

const WAIT: Duration = Duration::from_secs(5);

fn instrument(name: &str) -> Instrument {
    Instrument::parse(&format!("test:{name}-USD")).expect("test instrument")
}

fn epoch(name: &str) -> Epoch {
    Epoch::new(name).expect("test epoch")
}

/// A quote update for tests, with prices derived from `seq`.
pub fn quote(inst: &Instrument, seq: u64, ep: &Epoch) -> Update {
    let bid = parse_decimal(&format!("{seq}.00")).expect("decimal");
    let ask = parse_decimal(&format!("{seq}.50")).expect("decimal");
    let size = parse_decimal("1.0").expect("decimal");
    let ev = Event {
        instrument: inst.clone(),
        ts: 1_700_000_000_000_000 + seq,
        rx: 1_700_000_000_000_100 + seq,
        payload: Payload::Quote(Quote {
            bid,
            bid_size: size,
            ask,
            ask_size: size,
        }),
    };
    Update::encode(&ev, seq, ep)
}

/// A trade update for tests.
pub fn trade(inst: &Instrument, seq: u64, ep: &Epoch) -> Update {
    let ev = Event {
        instrument: inst.clone(),
        ts: 1_700_000_000_000_000 + seq,
        rx: 1_700_000_000_000_100 + seq,
        payload: Payload::Trade(Trade {
            price: parse_decimal("100.10").expect("decimal"),
            size: parse_decimal("0.010").expect("decimal"),
            side: Side::Buy,
            trade_id: seq.to_string(),
        }),
    };
    Update::encode(&ev, seq, ep)
}

async fn next(sub: &mut Subscription) -> Received {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => panic!("subscription closed"),
        Err(_) => panic!("no update within {WAIT:?}"),
    }
}

async fn next_update(sub: &mut Subscription) -> Update {
    match next(sub).await {
        Received::Update(u) => u,
        Received::Lagged(n) => panic!("unexpected lag of {n}"),
        Received::Resumed => panic!("unexpected resume without an outage"),
    }
}

/// `last` answers the newest published update; nothing before any publish.
pub async fn last_value(bus: &dyn Bus) {
    let i = instrument("LAST");
    let t = Topic::new(i.clone(), Channel::Quote);
    assert!(bus.last(&t).await.expect("last").is_none());
    let ep = epoch("e1");
    for seq in 1..=3 {
        bus.publish(quote(&i, seq, &ep)).expect("publish");
    }
    let last = bus.last(&t).await.expect("last").expect("a value");
    assert_eq!(last.seq(), 3);
    assert_eq!(last, quote(&i, 3, &ep), "same bytes and metadata come back");
}

/// Subscribers get every update of their topic in publish order, and
/// nothing of other topics.
pub async fn ordered_delivery_per_topic(bus: &dyn Bus) {
    let a = instrument("ORDA");
    let b = instrument("ORDB");
    let ta = Topic::new(a.clone(), Channel::Trade);
    let mut s1 = bus.subscribe(&ta).await.expect("subscribe");
    let mut s2 = bus.subscribe(&ta).await.expect("subscribe");
    let ep = epoch("e1");
    for seq in 1..=50 {
        bus.publish(trade(&a, seq, &ep)).expect("publish");
        bus.publish(trade(&b, seq, &ep)).expect("publish");
        bus.publish(quote(&a, seq, &ep)).expect("publish");
    }
    for sub in [&mut s1, &mut s2] {
        for seq in 1..=50 {
            let u = next_update(sub).await;
            assert_eq!((u.topic(), u.seq()), (&ta, seq));
        }
    }
}

/// A `seq` not above the topic's last one is refused; a new epoch restarts.
pub async fn refuses_out_of_order(bus: &dyn Bus) {
    let i = instrument("OOO");
    let ep = epoch("e1");
    bus.publish(trade(&i, 5, &ep)).expect("publish");
    for seq in [5, 4] {
        match bus.publish(trade(&i, seq, &ep)) {
            Err(Error::OutOfOrder {
                seq: s, last: 5, ..
            }) => assert_eq!(s, seq),
            other => panic!("seq {seq}: expected OutOfOrder, got {other:?}"),
        }
    }
    let t = Topic::new(i.clone(), Channel::Trade);
    let ep2 = epoch("e2");
    bus.publish(trade(&i, 1, &ep2))
        .expect("a new epoch may restart seq");
    let last = bus.last(&t).await.expect("last").expect("value");
    assert_eq!((last.seq(), last.epoch()), (1, &ep2));
    let hist = bus.history(&t, 0).await.expect("history");
    assert!(
        hist.iter().all(|u| u.epoch() == &ep2),
        "history holds one epoch only"
    );
}

/// Trade history keeps the newest trades, contiguous, for resume.
pub async fn bounded_trade_history(bus: &dyn Bus) {
    let i = instrument("HIST");
    let t = Topic::new(i.clone(), Channel::Trade);
    let ep = epoch("e1");
    for seq in 1..=150 {
        bus.publish(trade(&i, seq, &ep)).expect("publish");
    }
    let all = bus.history(&t, 1).await.expect("history");
    let seqs: Vec<u64> = all.iter().map(Update::seq).collect();
    let first = *seqs.first().expect("non-empty");
    assert!(
        first > 1 && first <= 150 - HISTORY_LEN + 1,
        "trimmed to about history_len: first {first}"
    );
    assert_eq!(
        seqs,
        (first..=150).collect::<Vec<_>>(),
        "contiguous up to the newest"
    );
    let tail: Vec<u64> = bus
        .history(&t, 120)
        .await
        .expect("history")
        .iter()
        .map(Update::seq)
        .collect();
    assert_eq!(tail, (120..=150).collect::<Vec<_>>());
    assert!(bus.history(&t, 151).await.expect("history").is_empty());
    let q = Topic::new(i.clone(), Channel::Quote);
    bus.publish(quote(&i, 1, &ep)).expect("publish");
    assert!(
        bus.history(&q, 0).await.expect("history").is_empty(),
        "only trades keep history"
    );
}

/// Subscribe, then `last`, then skip `seq <= last`: every update exactly once,
/// even while a publisher runs concurrently.
pub async fn subscribe_then_last_has_no_hole(bus: &dyn Bus) {
    let i = instrument("SEAM");
    let t = Topic::new(i.clone(), Channel::Trade);
    let ep = epoch("e1");
    for seq in 1..=10 {
        bus.publish(trade(&i, seq, &ep)).expect("publish");
    }
    let mut sub = bus.subscribe(&t).await.expect("subscribe");
    let last = bus.last(&t).await.expect("last").map_or(0, |u| u.seq());
    for seq in 11..=40 {
        bus.publish(trade(&i, seq, &ep)).expect("publish");
    }
    let mut expect = last + 1;
    while expect <= 40 {
        let u = next_update(&mut sub).await;
        if u.seq() <= last {
            continue;
        }
        assert_eq!(u.seq(), expect);
        expect += 1;
    }
}

/// A subscriber that does not read loses the oldest updates, is told how
/// many, and never blocks the publisher.
pub async fn lagging_subscriber_is_told(bus: &dyn Bus) {
    let i = instrument("LAG");
    let t = Topic::new(i.clone(), Channel::Quote);
    let mut slow = bus.subscribe(&t).await.expect("subscribe");
    // A remote bus delivers asynchronously: `slow` is only surely behind
    // once a reader on the same topic has seen the newest update.
    let mut probe = bus.subscribe(&t).await.expect("subscribe");
    let ep = epoch("e1");
    let n = 5_000;
    for seq in 1..=n {
        bus.publish(quote(&i, seq, &ep))
            .expect("publish never blocks");
    }
    loop {
        match next(&mut probe).await {
            Received::Update(u) if u.seq() == n => break,
            Received::Resumed => panic!("unexpected resume without an outage"),
            _ => {}
        }
    }
    let mut lagged = 0;
    let mut seen = 0;
    loop {
        match next(&mut slow).await {
            Received::Lagged(k) => lagged += k,
            Received::Resumed => panic!("unexpected resume without an outage"),
            Received::Update(u) => {
                seen += 1;
                if u.seq() == n {
                    break;
                }
            }
        }
    }
    assert!(lagged > 0, "a subscriber this far behind must lag");
    assert_eq!(
        lagged + seen,
        n,
        "every update is either seen or counted as lagged"
    );
}

/// Status changes reach subscribers once; the current state is queryable.
pub async fn statuses(bus: &dyn Bus) {
    let i = instrument("STAT");
    let mut sub = bus.statuses().expect("statuses");
    let stale = Status {
        instrument: i.clone(),
        state: FeedState::Stale,
        reason: "feed_disconnected".into(),
    };
    bus.publish_status(stale.clone()).expect("publish");
    bus.publish_status(stale.clone()).expect("publish again");
    let live = Status {
        instrument: i.clone(),
        state: FeedState::Live,
        reason: String::new(),
    };
    bus.publish_status(live.clone()).expect("publish");
    let got1 = tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("in time")
        .expect("open");
    let got2 = tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(
        (got1, got2),
        (stale, live.clone()),
        "an unchanged status is not sent twice"
    );
    let current = bus.current_statuses().await.expect("current");
    assert!(current.contains(&live));
}

/// Announcements merge into a sorted catalogue.
pub async fn catalogue(bus: &dyn Bus) {
    let a = instrument("CATA");
    let b = instrument("CATB");
    bus.announce(vec![CatalogueEntry {
        instrument: b.clone(),
        channels: vec![Channel::Quote],
    }])
    .await
    .expect("announce");
    bus.announce(vec![
        CatalogueEntry {
            instrument: a.clone(),
            channels: vec![Channel::Trade, Channel::Quote],
        },
        CatalogueEntry {
            instrument: b.clone(),
            channels: vec![Channel::Trade],
        },
    ])
    .await
    .expect("announce");
    let cat = bus.catalogue().await.expect("catalogue");
    let mine: Vec<_> = cat
        .into_iter()
        .filter(|e| e.instrument == a || e.instrument == b)
        .collect();
    assert_eq!(
        mine,
        vec![
            CatalogueEntry {
                instrument: a,
                channels: vec![Channel::Trade, Channel::Quote]
            },
            CatalogueEntry {
                instrument: b,
                channels: vec![Channel::Trade, Channel::Quote]
            },
        ]
    );
}

/// A bus that is up says so.
pub async fn healthy_when_up(bus: &dyn Bus) {
    let health = bus.health();
    assert!(*health.borrow(), "a freshly started bus is reachable");
}

/// One conformance check, by name.
pub type Case = (&'static str, for<'a> fn(&'a dyn Bus) -> BoxFuture<'a, ()>);

/// Every check, in the order [`bus_conformance_tests!`](crate::bus_conformance_tests)
/// lists them.
pub fn cases() -> Vec<Case> {
    macro_rules! list {
        ($($case:ident),*) => {
            vec![$((stringify!($case), |bus| Box::pin($case(bus)) as BoxFuture<'_, ()>)),*]
        };
    }
    list!(
        last_value,
        ordered_delivery_per_topic,
        refuses_out_of_order,
        bounded_trade_history,
        subscribe_then_last_has_no_hole,
        lagging_subscriber_is_told,
        statuses,
        catalogue,
        healthy_when_up
    )
}

/// Runs every check in turn, each on a fresh fixture from `factory`
/// (dropped before the next check starts).
pub async fn run_all<F, Fut, X>(mut factory: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture,
{
    for (name, case) in cases() {
        let fixture = factory().await;
        tracing::info!(case = name, "conformance");
        case(fixture.bus()).await;
    }
}

/// Generates one `#[tokio::test]` per conformance check for a bus factory:
/// `bus_conformance_tests!(|| async { MyBus::new(..) });`. The factory may
/// return `(bus, keeper)` to keep a test server alive as long as the bus
/// (see [`Fixture`]).
#[macro_export]
macro_rules! bus_conformance_tests {
    ($factory:expr) => {
        $crate::bus_conformance_tests!(@cases $factory;
            last_value, ordered_delivery_per_topic, refuses_out_of_order, bounded_trade_history,
            subscribe_then_last_has_no_hole, lagging_subscriber_is_told, statuses, catalogue,
            healthy_when_up);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let fixture = ($factory)().await;
                $crate::conformance::$case($crate::conformance::Fixture::bus(&fixture)).await;
            }
        )*
    };
}
