//! Wire encoding cost per channel: the one encoding each update gets.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::sample_events;
use tickwire_model::{Epoch, Update};

fn encode(c: &mut Criterion) {
    let epoch = Epoch::new("k3x9").unwrap_or_else(|_| unreachable!("valid literal"));
    let mut group = c.benchmark_group("wire_encode");
    for (name, event) in sample_events() {
        group.bench_function(name, |b| {
            let mut seq = 0u64;
            b.iter(|| {
                seq += 1;
                black_box(Update::encode(black_box(&event), seq, &epoch))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
