//! What recording a metric costs on the hot path, with the real Prometheus
//! recorder installed: a pre-resolved counter handle and a fixed-bucket
//! histogram (what the hub, the writers and ingest's publisher hold)
//! against a bare atomic increment (the baseline), the recorder's own
//! histogram (what the hot path used before), and resolving a handle by
//! name and labels on every call (what the hot path never does).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};

const COUNTER: &str = "tickwire_gateway_updates_out_total";
const HISTOGRAM: &str = "tickwire_gateway_socket_write_seconds";

fn record(c: &mut Criterion) {
    if tickwire_gateway::install_metrics().is_none() {
        unreachable!("the bench process installs the only recorder");
    }
    let mut group = c.benchmark_group("metric_record");
    let atomic = AtomicU64::new(0);
    group.bench_function("baseline_atomic_fetch_add", |b| {
        b.iter(|| atomic.fetch_add(black_box(1), Ordering::Relaxed))
    });
    let counter = metrics::counter!(COUNTER, "channel" => "quote");
    group.bench_function("counter_handle_increment", |b| {
        b.iter(|| counter.increment(black_box(1)))
    });
    let histogram = metrics::histogram!("tickwire_bench_recorder_seconds");
    group.bench_function("recorder_histogram_record", |b| {
        b.iter(|| histogram.record(black_box(0.000_123)))
    });
    let fixed = tickwire_metrics::latency(HISTOGRAM, "bench", &[]);
    group.bench_function("fixed_histogram_record", |b| {
        b.iter(|| fixed.record(black_box(0.000_123)))
    });
    group.bench_function("counter_by_name_and_label", |b| {
        b.iter(|| metrics::counter!(COUNTER, "channel" => black_box("quote")).increment(1))
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
