//! Hub fan-out: one update published on the memory bus, received by the
//! topic's pump, offered to every subscriber's outbox and drained by each
//! (what a writer does before its socket write). Reported per update; the
//! cost per subscriber is the time divided by the subscriber count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickwire_benches::sample_events;
use tickwire_bus::{Bus, MemoryBus, MemoryBusConfig};
use tickwire_gateway::hub::{Hub, Start, Subscriber};
use tickwire_gateway::outbox::{Frame, Outbox, OutboxConfig};
use tickwire_model::{Epoch, Update};
use tokio_util::sync::CancellationToken;

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let epoch = Epoch::new("k3x9").unwrap_or_else(|_| unreachable!("valid literal"));
    let (_, event) = sample_events()
        .into_iter()
        .find(|(c, _)| *c == "quote")
        .unwrap_or_else(|| unreachable!("known channel"));
    let mut group = c.benchmark_group("hub_fan_out");
    for subscribers in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(subscribers as u64));
        let (bus, outboxes, shutdown) = runtime.block_on(async {
            let bus = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
            let dyn_bus: Arc<dyn Bus> = bus.clone();
            let shutdown = CancellationToken::new();
            let hub = Hub::new(dyn_bus, shutdown.clone());
            let first = Update::encode(&event, 1, &epoch);
            let topic = first.topic().clone();
            bus.publish(first)
                .unwrap_or_else(|e| panic!("publish: {e}"));
            let mut outboxes = Vec::new();
            for conn in 0..subscribers {
                let outbox = Arc::new(Outbox::new(OutboxConfig::default()));
                let slot = outbox.open(topic.clone(), Duration::ZERO, None);
                let sub = Subscriber {
                    conn: conn as u64,
                    outbox: outbox.clone(),
                    slot,
                };
                hub.subscribe(&topic, sub, Start::Live).await;
                outbox.release(slot);
                outboxes.push(outbox);
            }
            (bus, outboxes, shutdown)
        });
        let mut seq = 1u64;
        group.bench_function(format!("{subscribers}_subscribers"), |b| {
            b.iter_custom(|iters| {
                // Encoded outside the timed part: ingest pays for it, once
                // per update, not the hub.
                let updates: Vec<Update> = (0..iters)
                    .map(|i| Update::encode(&event, seq + 1 + i, &epoch))
                    .collect();
                seq += iters;
                runtime.block_on(async {
                    let mut frames: Vec<Frame> = Vec::with_capacity(4);
                    let (rest, last) = outboxes.split_at(outboxes.len() - 1);
                    let start = Instant::now();
                    for u in updates {
                        bus.publish(u).unwrap_or_else(|e| panic!("publish: {e}"));
                        // The pump runs when this task yields; the last
                        // subscriber has the update once it is done.
                        loop {
                            last[0].drain(start, &mut frames);
                            if !frames.is_empty() {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                        frames.clear();
                        for o in rest {
                            o.drain(start, &mut frames);
                            frames.clear();
                        }
                    }
                    start.elapsed()
                })
            });
        });
        shutdown.cancel();
    }
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
