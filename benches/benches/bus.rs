//! Bus throughput and latency, publish → subscriber receive, for every bus
//! implementation in the same run (so the ratios compare like with like on
//! this shared, noisy machine).
//!
//! Two scenarios per bus, each bounded in count and time:
//! - `burst`: N quotes published as fast as the bus takes them; the
//!   subscriber's receive rate is the throughput.
//! - `paced`: quotes at a fixed rate below saturation; latency percentiles
//!   from publish to receive.
//!
//! Run: `cargo bench -p tickwire-benches --bench bus` (prints a summary and
//! one JSON line per scenario).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickwire_bus::testkit::RedisServer;
use tickwire_bus::{
    Bus, MemoryBus, MemoryBusConfig, Received, RedisBus, RedisBusConfig, RedisTarget,
};
use tickwire_model::{Epoch, Event, Instrument, Payload, Quote, Topic, Update, parse_decimal};

const BURST: u64 = 200_000;
const PACED_RATE: u64 = 10_000;
const PACED_SECS: u64 = 3;
const LIMIT: Duration = Duration::from_secs(60);

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn quote(instrument: &Instrument, seq: u64, epoch: &Epoch) -> Update {
    let d = |s: &str| parse_decimal(s).unwrap_or_default();
    let now = now_us();
    let ev = Event {
        instrument: instrument.clone(),
        ts: now,
        rx: now,
        payload: Payload::Quote(Quote {
            bid: d("64000.12"),
            bid_size: d("0.51"),
            ask: d("64000.13"),
            ask_size: d("1.2"),
        }),
    };
    Update::encode(&ev, seq, epoch)
}

struct Outcome {
    received: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

/// Publishes `n` quotes at `rate` per second (0: as fast as accepted) and
/// receives them on a separate subscriber task.
async fn scenario(
    bus: Arc<dyn Bus>,
    sub_bus: Arc<dyn Bus>,
    name: &str,
    n: u64,
    rate: u64,
) -> Outcome {
    let instrument =
        Instrument::parse(&format!("bench:{name}-USD")).unwrap_or_else(|_| unreachable!("valid"));
    let topic = Topic::new(instrument.clone(), tickwire_model::Channel::Quote);
    let epoch = Epoch::new("bench").unwrap_or_else(|_| unreachable!("valid"));
    let mut sub = match sub_bus.subscribe(&topic).await {
        Ok(s) => s,
        Err(e) => panic!("subscribe: {e}"),
    };
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n as usize);
        let mut received = 0u64;
        let mut first = None;
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            match tokio::time::timeout_at(deadline, sub.recv()).await {
                Ok(Some(Received::Update(u))) => {
                    first.get_or_insert_with(Instant::now);
                    received += 1;
                    latencies.push(now_us().saturating_sub(u.rx()));
                    if u.seq() == n {
                        break;
                    }
                }
                Ok(Some(Received::Lagged(_) | Received::Resumed)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        (
            received,
            first.map_or(Duration::ZERO, |f| f.elapsed()),
            latencies,
        )
    });
    let start = Instant::now();
    let mut seq = 1;
    while seq <= n && start.elapsed() < LIMIT {
        if let Some(offset) = (seq * 1_000_000).checked_div(rate) {
            let due = start + Duration::from_micros(offset);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        match bus.publish(quote(&instrument, seq, &epoch)) {
            Ok(()) => seq += 1,
            Err(tickwire_bus::Error::Overloaded) => tokio::task::yield_now().await,
            Err(e) => panic!("publish: {e}"),
        }
    }
    let (received, elapsed, mut latencies_us) = receiver.await.unwrap_or_default();
    latencies_us.sort_unstable();
    Outcome {
        received,
        elapsed,
        latencies_us,
    }
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(bus: &str, scenario: &str, sent: u64, o: &Outcome) -> f64 {
    let rate = o.received as f64 / o.elapsed.as_secs_f64().max(1e-9);
    let l = &o.latencies_us;
    println!(
        "{{\"bench\":\"bus\",\"bus\":\"{bus}\",\"scenario\":\"{scenario}\",\"sent\":{sent},\"received\":{},\"recv_per_sec\":{rate:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        o.received,
        pct(l, 0.5),
        pct(l, 0.99),
        pct(l, 0.999),
        l.last().copied().unwrap_or(0)
    );
    println!(
        "  {bus:>6} {scenario:<6} received {:>7}/{sent:<7} {rate:>10.0}/s  p50 {:>6} µs  p99 {:>7} µs  p99.9 {:>7} µs  max {:>7} µs",
        o.received,
        pct(l, 0.5),
        pct(l, 0.99),
        pct(l, 0.999),
        l.last().copied().unwrap_or(0)
    );
    rate
}

async fn run_bus(label: &str, bus: Arc<dyn Bus>) -> (f64, u64) {
    run_split(label, bus.clone(), bus).await
}

/// Publishes on one bus handle and receives on another.
async fn run_split(label: &str, publisher: Arc<dyn Bus>, subscriber: Arc<dyn Bus>) -> (f64, u64) {
    let burst = scenario(
        publisher.clone(),
        subscriber.clone(),
        &format!("{label}B"),
        BURST,
        0,
    )
    .await;
    let rate = report(label, "burst", BURST, &burst);
    let paced_n = PACED_RATE * PACED_SECS;
    let paced = scenario(
        publisher,
        subscriber,
        &format!("{label}P"),
        paced_n,
        PACED_RATE,
    )
    .await;
    report(label, "paced", paced_n, &paced);
    (rate, pct(&paced.latencies_us, 0.99))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // we need: run a tiny smoke version then.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let Ok(runtime) = runtime else { return };
    runtime.block_on(async {
        println!(
            "bus bench: burst of {BURST} quotes, then {PACED_RATE}/s for {PACED_SECS} s, per bus"
        );
        let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new(MemoryBusConfig {
            subscriber_capacity: 1 << 16,
            ..MemoryBusConfig::default()
        }));
        let (mem_rate, mem_p99) = run_bus("memory", memory).await;

        // Publisher and subscriber on separate connections, as an ingest
        // process and a gateway process would be.
        let server = RedisServer::start();
        let config = |url: &str| RedisBusConfig {
            target: RedisTarget::parse(url).unwrap_or_else(|e| panic!("{e}")),
            prefix: "bench".into(),
            subscriber_capacity: 1 << 16,
            ..RedisBusConfig::default()
        };
        let publisher = RedisBus::connect(config(&server.url()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let subscriber = RedisBus::connect(config(&server.url()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (redis_rate, redis_p99) =
            run_split("redis", Arc::new(publisher), Arc::new(subscriber)).await;
        println!(
            "  redis vs memory: throughput {:.2}x, paced p99 {:.1}x",
            redis_rate / mem_rate.max(1.0),
            redis_p99 as f64 / mem_p99.max(1) as f64
        );
    });
}
