//! The per-subscriber cost of an update allocates nothing: `offer` into
//! conflating slots and trade queues, and the writer's `drain`, once the
//! outboxes reached their working size. Counted with a counting global
//! allocator on this thread, so other tests' threads do not interfere.

use std::time::{Duration, Instant};

use tickwire_bus::conformance::{quote, trade};
use tickwire_gateway::outbox::{Frame, Outbox, OutboxConfig, SlotId};
use tickwire_model::{Channel, Epoch, Instrument, Topic, Update};

const SUBSCRIBERS: usize = 200;
const UPDATES: u64 = 500;

struct Client {
    outbox: Outbox,
    quote: SlotId,
    trade: SlotId,
}

fn frames(updates: &[Update]) -> Vec<Frame> {
    updates
        .iter()
        .map(|u| Frame::try_from(u.bytes().clone()).expect("utf8"))
        .collect()
}

#[test]
fn fan_out_and_drain_allocate_nothing_per_subscriber() {
    let instrument = Instrument::parse("coinbase:BTC-USD").expect("instrument");
    let epoch = Epoch::new("alloc").expect("epoch");
    // Encoded once per update, as ingest does: not the gateway's cost.
    let quotes: Vec<Update> = (1..=2 * UPDATES)
        .map(|s| quote(&instrument, s, &epoch))
        .collect();
    let trades: Vec<Update> = (1..=2 * UPDATES)
        .map(|s| trade(&instrument, s, &epoch))
        .collect();
    let (quote_frames, trade_frames) = (frames(&quotes), frames(&trades));

    let clients: Vec<Client> = (0..SUBSCRIBERS)
        .map(|_| {
            let outbox = Outbox::new(OutboxConfig::default());
            let quote = outbox.open(
                Topic::new(instrument.clone(), Channel::Quote),
                Duration::ZERO,
                None,
            );
            let trade = outbox.open(
                Topic::new(instrument.clone(), Channel::Trade),
                Duration::ZERO,
                None,
            );
            outbox.release(quote);
            outbox.release(trade);
            Client {
                outbox,
                quote,
                trade,
            }
        })
        .collect();
    let mut out: Vec<Frame> = Vec::with_capacity(1024);
    let now = Instant::now();
    let round = |range: std::ops::Range<usize>, out: &mut Vec<Frame>| {
        for c in &clients {
            for i in range.clone() {
                c.outbox.offer(c.quote, &quotes[i], &quote_frames[i]);
                c.outbox.offer(c.trade, &trades[i], &trade_frames[i]);
            }
        }
        // The writer drains pass after pass until nothing is left.
        for c in &clients {
            loop {
                c.outbox.drain(now, out);
                if out.is_empty() {
                    break;
                }
                out.clear();
            }
        }
    };
    // Warm-up: queues and ready lists grow to their working size once.
    round(0..UPDATES as usize, &mut out);

    let info =
        allocation_counter::measure(|| round(UPDATES as usize..2 * UPDATES as usize, &mut out));
    assert_eq!(
        info.count_total,
        0,
        "{} allocations for {} offers and {} drains",
        info.count_total,
        2 * UPDATES as usize * SUBSCRIBERS,
        SUBSCRIBERS
    );
    // And the counter does count on this thread.
    let boxed = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(7u64))));
    assert_eq!(boxed.count_total, 1);
}
