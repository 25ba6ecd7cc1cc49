//! Outbox hot path: `offer` (what the fan-out pays per subscriber) and a
//! writer's `drain` pass.

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::sample_events;
use tickwire_gateway::outbox::{Frame, Outbox, OutboxConfig};
use tickwire_model::{Channel, Epoch, Topic, Update};

fn updates(channel: &str, n: u64) -> Vec<(Update, Frame)> {
    let epoch = Epoch::new("k3x9").unwrap_or_else(|_| unreachable!("valid literal"));
    let (_, event) = sample_events()
        .into_iter()
        .find(|(c, _)| *c == channel)
        .unwrap_or_else(|| unreachable!("known channel"));
    (1..=n)
        .map(|seq| {
            let u = Update::encode(&event, seq, &epoch);
            let f = Frame::try_from(u.bytes().clone()).unwrap_or_else(|_| unreachable!("utf8"));
            (u, f)
        })
        .collect()
}

fn offer(c: &mut Criterion) {
    let mut group = c.benchmark_group("outbox_offer");
    for (channel, name) in [("quote", "conflating"), ("trade", "trade_queue")] {
        let input = updates(channel, 1024);
        let topic = input[0].0.topic().clone();
        group.bench_function(name, |b| {
            let ob = Outbox::new(OutboxConfig::default());
            let open = || {
                let slot = ob.open(topic.clone(), Duration::ZERO, None);
                ob.release(slot);
                slot
            };
            let mut slot = open();
            let mut i = 0usize;
            b.iter(|| {
                let (u, f) = &input[i];
                ob.offer(slot, black_box(u), black_box(f));
                i += 1;
                if i == input.len() {
                    // A fresh slot keeps seqs rising and the trade queue
                    // below its bound, so every offer does real work.
                    i = 0;
                    ob.remove(slot);
                    slot = open();
                }
            });
        });
    }
    group.finish();
}

/// What a fast client costs per update: one offer, one drain pass.
fn offer_then_drain(c: &mut Criterion) {
    let input = updates("quote", 1024);
    let topic = input[0].0.topic().clone();
    c.bench_function("outbox_offer_then_drain", |b| {
        let ob = Outbox::new(OutboxConfig::default());
        let mut slot = ob.open(topic.clone(), Duration::ZERO, None);
        ob.release(slot);
        let mut out = Vec::with_capacity(8);
        let mut i = 0usize;
        b.iter(|| {
            let (u, f) = &input[i];
            ob.offer(slot, u, f);
            ob.drain(Instant::now(), &mut out);
            black_box(out.len());
            out.clear();
            i += 1;
            if i == input.len() {
                i = 0;
                ob.remove(slot);
                slot = ob.open(topic.clone(), Duration::ZERO, None);
                ob.release(slot);
            }
        });
    });
}

fn drain(c: &mut Criterion) {
    let input = updates("quote", 1);
    let (u, f) = &input[0];
    c.bench_function("outbox_drain_100_ready_topics", |b| {
        b.iter_batched(
            || {
                let ob = Outbox::new(OutboxConfig::default());
                for k in 0..100 {
                    let topic = Topic::new(
                        tickwire_model::Instrument::parse(&format!("bench:T{k}-USD"))
                            .unwrap_or_else(|_| unreachable!("valid")),
                        Channel::Quote,
                    );
                    let slot = ob.open(topic, Duration::ZERO, None);
                    ob.release(slot);
                    ob.offer(slot, u, f);
                }
                ob
            },
            |ob| {
                let mut out = Vec::with_capacity(128);
                ob.drain(Instant::now(), &mut out);
                black_box(out.len())
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, offer, offer_then_drain, drain);
criterion_main!(benches);
