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
            let slot = ob.open(topic.clone(), Duration::ZERO, None);
            let mut out = Vec::new();
            let mut i = 0usize;
            b.iter(|| {
                let (u, f) = &input[i % input.len()];
                i += 1;
                if i % input.len() == 0 {
                    // Keep seqs rising and the trade queue from overflowing.
                    ob.remove(slot);
                    out.clear();
                }
                ob.offer(slot, black_box(u), black_box(f));
            });
            ob.drain(Instant::now(), &mut out);
        });
    }
    group.finish();
}

fn drain(c: &mut Criterion) {
    let input = updates("quote", 1);
    let (u, f) = &input[0];
    let epoch = u.epoch().clone();
    let _ = epoch;
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

criterion_group!(benches, offer, drain);
criterion_main!(benches);
