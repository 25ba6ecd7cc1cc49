//! The report of `tickwire loadgen`: what was measured, as one JSON line
//! (for scripts) and a readable summary (for people). The headline
//! figures are the normal clients'; slow consumers (--slow-fraction) are
//! reported apart, in `slow`, so they cannot hide or inflate the others'.

use std::time::Duration;

use serde_json::{Value, json};

use super::loadgen::{Group, LoadgenArgs, Shared};
use super::loadgen_stats::{self as stats, Histogram, MachineSample, ProcSample};

/// Everything measured, ready to print.
pub(super) struct Report<'a> {
    pub(super) args: &'a LoadgenArgs,
    pub(super) served: usize,
    pub(super) per_client: usize,
    pub(super) shared: &'a Shared,
    pub(super) connect: &'a Histogram,
    pub(super) connected: u64,
    pub(super) failed: u64,
    pub(super) connect_all: Duration,
    pub(super) window: Duration,
    pub(super) interrupted: bool,
    /// Deliveries the server owed the normal clients in the window, from
    /// seq progress.
    pub(super) published: u64,
    /// The same for the slow clients.
    pub(super) published_slow: u64,
    /// The server before the first connection.
    pub(super) server_before: Option<ProcSample>,
    /// Slow-consumer closes the server counted from before the first
    /// connection to the window's end (its /metrics), if it has them.
    pub(super) server_slow_closes: Option<u64>,
    pub(super) server: Option<(ProcSample, ProcSample)>,
    pub(super) myself: Option<(ProcSample, ProcSample)>,
    pub(super) machine: Option<(MachineSample, MachineSample)>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Delivery figures of one group of clients over the window.
struct Delivery {
    delivered: u64,
    rate: f64,
    client_min: f64,
    client_mean: f64,
    client_max: f64,
    skipped: u64,
    conflated: f64,
}

impl Delivery {
    /// From the per-client counts of the clients in the group (`mine`).
    fn of(group: &Group, per_client: &[u64], mine: impl Fn(usize) -> bool, secs: f64) -> Self {
        let counts: Vec<u64> = per_client
            .iter()
            .enumerate()
            .filter(|&(id, _)| mine(id))
            .map(|(_, &n)| n)
            .collect();
        let delivered: u64 = counts.iter().sum();
        let rate = delivered as f64 / secs;
        let connected = group.connected.get();
        // Per-client rates over the clients that subscribed.
        let active: Vec<f64> = counts
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| n as f64 / secs)
            .collect();
        let client_min = if (active.len() as u64) < connected {
            0.0
        } else {
            active.iter().copied().fold(f64::INFINITY, f64::min)
        };
        let skipped = group.skipped.get();
        Self {
            delivered,
            rate,
            client_min: if client_min.is_finite() {
                client_min
            } else {
                0.0
            },
            client_mean: if connected > 0 {
                rate / connected as f64
            } else {
                0.0
            },
            client_max: active.iter().copied().fold(0.0, f64::max),
            skipped,
            conflated: if delivered + skipped > 0 {
                skipped as f64 / (delivered + skipped) as f64
            } else {
                0.0
            },
        }
    }
}

fn latency_json(h: &Histogram) -> Value {
    json!({
        "count": h.len(),
        "p50": h.quantile(0.5),
        "p99": h.quantile(0.99),
        "p999": h.quantile(0.999),
        "max": h.max(),
    })
}

fn ratio(part: u64, whole: u64) -> Value {
    if whole > 0 {
        Value::from(round(part as f64 / whole as f64, 4))
    } else {
        Value::Null
    }
}

/// The loadgen's CPU share at or above which its own queueing is part of
/// the latency it measures (one thread: frames wait for it).
const SATURATED_PERCENT: f64 = 90.0;

impl Report<'_> {
    /// The `slow` object: the slow consumers' own figures.
    fn slow_json(&self, secs: f64) -> Value {
        let g = &self.shared.slow;
        let per_client = self.shared.per_client.borrow();
        let d = Delivery::of(g, &per_client, |id| self.args.is_slow(id), secs);
        json!({
            "fraction": self.args.slow_fraction,
            "clients": self.args.slow_clients(),
            "connected": g.connected.get(),
            "rcvbuf": self.args.slow_rcvbuf,
            "pause_ms": self.args.slow_pause_ms,
            "read_ms": self.args.slow_read_ms,
            "stop": self.args.slow_stop,
            "delivered": d.delivered,
            "delivered_per_sec": round(d.rate, 1),
            "per_client_per_sec": {
                "min": round(d.client_min, 1),
                "mean": round(d.client_mean, 1),
                "max": round(d.client_max, 1),
            },
            "published_per_sec": round(self.published_slow as f64 / secs, 1),
            "delivered_ratio_seq": ratio(d.delivered, self.published_slow),
            "conflated": d.skipped,
            "conflated_fraction": round(d.conflated, 5),
            "gaps": g.gaps.get(),
            "errors": g.errors.get(),
            "disconnected": g.disconnected.get(),
            "closes": *g.closes.borrow(),
            "latency_us": latency_json(&g.latency.borrow()),
            "frames": g.frames.get(),
            "bytes": g.bytes.get(),
            "first_problem": *g.first_problem.borrow(),
        })
    }

    /// The one JSON line.
    pub(super) fn json(&self) -> Value {
        let secs = self.window.as_secs_f64().max(1e-9);
        let normal = &self.shared.normal;
        let d = {
            let per_client = self.shared.per_client.borrow();
            Delivery::of(normal, &per_client, |id| !self.args.is_slow(id), secs)
        };
        let subscriptions = normal.connected.get() as f64 * self.per_client as f64;
        let (ideal, ideal_ratio) = match self.args.expected_rate {
            Some(r) if r > 0.0 && subscriptions > 0.0 => (
                Value::from(round(r * subscriptions, 1)),
                Value::from(round(d.rate / (r * subscriptions), 4)),
            ),
            _ => (Value::Null, Value::Null),
        };
        let cpu = |pair: &Option<(ProcSample, ProcSample)>| -> Value {
            match pair {
                Some((a, b)) => {
                    let cpu_s = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64
                        / stats::TICKS_PER_SEC as f64;
                    json!({
                        "rss_kib_start": a.rss_kib, "rss_kib_end": b.rss_kib,
                        "cpu_s": round(cpu_s, 2),
                        "cpu_percent": round(100.0 * cpu_s / secs, 1),
                    })
                }
                None => Value::Null,
            }
        };
        let mut server = cpu(&self.server);
        if let (Some(pid), Value::Object(map)) = (self.args.server_pid, &mut server) {
            map.insert("pid".into(), pid.into());
        }
        let mut loadgen = cpu(&self.myself);
        if let Value::Object(map) = &mut loadgen {
            let busy = map["cpu_percent"].as_f64().unwrap_or(0.0);
            map.insert("saturated".into(), (busy >= SATURATED_PERCENT).into());
        }
        // Growth from before our first connection to the window's start,
        // per client connected then: the per-connection memory (S3).
        let rss_before = self.server_before.map(|s| s.rss_kib);
        let rss_per_conn = match (rss_before, &self.server) {
            (Some(before), Some((start, _))) if self.connected > 0 => Value::from(round(
                (start.rss_kib as f64 - before as f64) / self.connected as f64,
                2,
            )),
            _ => Value::Null,
        };
        // Busy share of the whole machine (100 % = every core busy), so a
        // reader can see what else was running besides server and loadgen.
        let machine = match self.machine {
            Some((a, b)) if b.total > a.total => json!({
                "busy_percent": round(
                    100.0 * (b.busy - a.busy) as f64 / (b.total - a.total) as f64,
                    1,
                ),
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            }),
            _ => Value::Null,
        };
        let slow = if self.args.slow_clients() > 0 {
            self.slow_json(secs)
        } else {
            Value::Null
        };
        json!({
            "url": self.args.url,
            "channel": self.args.channel.as_str(),
            "batch": self.args.batch,
            "clients": self.args.clients,
            "normal_clients": u64::from(self.args.clients) - self.args.slow_clients(),
            "slow_clients": self.args.slow_clients(),
            "symbols_served": self.served,
            "symbols_per_client": self.per_client,
            "source_addrs": self.args.source_addrs,
            "window_s": round(secs, 3),
            "warmup_s": self.args.warmup_secs,
            "interrupted": self.interrupted,
            "connect": {
                "ok": self.connected,
                "failed": self.failed,
                "all_ms": round(self.connect_all.as_secs_f64() * 1e3, 1),
                "p50_ms": round(self.connect.quantile(0.5) as f64 / 1e3, 2),
                "p99_ms": round(self.connect.quantile(0.99) as f64 / 1e3, 2),
                "max_ms": round(self.connect.max() as f64 / 1e3, 2),
            },
            "delivered": d.delivered,
            "delivered_per_sec": round(d.rate, 1),
            "per_client_per_sec": {
                "min": round(d.client_min, 1),
                "mean": round(d.client_mean, 1),
                "max": round(d.client_max, 1),
            },
            "expected_rate_per_topic": self.args.expected_rate,
            "published_per_sec": round(self.published as f64 / secs, 1),
            "delivered_ratio_seq": ratio(d.delivered, self.published),
            "ideal_per_sec": ideal,
            "delivered_ratio": ideal_ratio,
            "latency_us": latency_json(&normal.latency.borrow()),
            "skipped": d.skipped,
            "conflated_fraction": round(d.conflated, 5),
            "gaps": normal.gaps.get(),
            "errors": normal.errors.get(),
            "disconnected": normal.disconnected.get(),
            "closes": *normal.closes.borrow(),
            "frames": normal.frames.get(),
            "bytes": normal.bytes.get(),
            "first_problem": *normal.first_problem.borrow(),
            "slow": slow,
            "server_slow_consumer_closes": self.server_slow_closes,
            "server_rss_before_kib": rss_before,
            "rss_per_conn_kib": rss_per_conn,
            "server": server,
            "loadgen": loadgen,
            "machine": machine,
        })
    }

    /// The readable summary of `v` (what [`Report::json`] made).
    pub(super) fn summary(&self, v: &Value) -> String {
        let lat = &v["latency_us"];
        let us = |key: &str| stats::human_us(lat[key].as_u64().unwrap_or(0));
        let slow = if v["slow_clients"].as_u64().unwrap_or(0) > 0 {
            format!(
                " ({} slow: headline figures are the {} others')",
                v["slow_clients"], v["normal_clients"]
            )
        } else {
            String::new()
        };
        let mut s = format!(
            "loadgen: {} clients{slow} × {} of {} symbols ({}), {:.1} s window{}\n\
             connect: {} ok, {} failed, all in {} ms (p99 {} ms)\n\
             delivered: {} updates/s ({} per client, min {})",
            self.args.clients,
            self.per_client,
            self.served,
            self.args.channel.as_str(),
            self.window.as_secs_f64(),
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            v["connect"]["ok"],
            v["connect"]["failed"],
            v["connect"]["all_ms"],
            v["connect"]["p99_ms"],
            v["delivered_per_sec"],
            v["per_client_per_sec"]["mean"],
            v["per_client_per_sec"]["min"],
        );
        if let Some(ratio) = v["delivered_ratio"].as_f64() {
            s.push_str(&format!(
                " = {:.1} % of ideal {}",
                ratio * 100.0,
                v["ideal_per_sec"]
            ));
        }
        if let Some(ratio) = v["delivered_ratio_seq"].as_f64() {
            s.push_str(&format!(
                ", {:.1} % of what the server published ({}/s, from seq)",
                ratio * 100.0,
                v["published_per_sec"]
            ));
        }
        s.push_str(&format!(
            "\nlatency rx→receipt: p50 {} p99 {} p99.9 {} max {}\n\
             conflated {:.3} %, gaps {}, errors {}, disconnected {} {}",
            us("p50"),
            us("p99"),
            us("p999"),
            us("max"),
            v["conflated_fraction"].as_f64().unwrap_or(0.0) * 100.0,
            v["gaps"],
            v["errors"],
            v["disconnected"],
            v["closes"],
        ));
        let sl = &v["slow"];
        if sl.is_object() {
            let us = |key: &str| stats::human_us(sl["latency_us"][key].as_u64().unwrap_or(0));
            s.push_str(&format!(
                "\nslow clients: {} of {} connected (rcvbuf {} B, {}): {} updates/s \
                 ({} per client), {:.1} % of what the server published; conflated {:.3} %, \
                 gaps {}, disconnected {}, closes {}; latency p50 {} p99 {} max {}",
                sl["connected"],
                sl["clients"],
                sl["rcvbuf"],
                if self.args.slow_stop {
                    "never read again".to_string()
                } else if self.args.slow_pause_ms == 0 {
                    "always reading".to_string()
                } else {
                    format!(
                        "pause {} ms / read {} ms",
                        self.args.slow_pause_ms, self.args.slow_read_ms
                    )
                },
                sl["delivered_per_sec"],
                sl["per_client_per_sec"]["mean"],
                sl["delivered_ratio_seq"].as_f64().unwrap_or(0.0) * 100.0,
                sl["conflated_fraction"].as_f64().unwrap_or(0.0) * 100.0,
                sl["gaps"],
                sl["disconnected"],
                sl["closes"],
                us("p50"),
                us("p99"),
                us("max"),
            ));
        }
        // Only where it can matter: slow clients, or closes nobody asked for.
        if let Some(n) = v["server_slow_consumer_closes"]
            .as_u64()
            .filter(|&n| n > 0 || sl.is_object())
        {
            s.push_str(&format!(
                "\nthe server closed {n} connections as slow consumers (4008, its /metrics)"
            ));
        }
        if let Some(before) = v["server_rss_before_kib"].as_u64() {
            s.push_str(&format!(
                "\nserver RSS before the first connect {before} KiB, {} KiB per connection \
                 (at the window's start)",
                v["rss_per_conn_kib"]
            ));
        }
        for (name, key) in [("server", "server"), ("loadgen", "loadgen")] {
            let p = &v[key];
            if p.is_object() {
                s.push_str(&format!(
                    "\n{name}: CPU {} % ({} s), RSS {} → {} KiB",
                    p["cpu_percent"], p["cpu_s"], p["rss_kib_start"], p["rss_kib_end"]
                ));
            }
        }
        if v["loadgen"]["saturated"].as_bool() == Some(true) {
            s.push_str(
                "\nloadgen saturated (one thread): its own queueing is part of the latency; \
                 use --batch or fewer clients per process",
            );
        }
        if let Some(busy) = v["machine"]["busy_percent"].as_f64() {
            s.push_str(&format!(
                "\nmachine: {busy:.1} % busy over {} cores (server + loadgen + anything else)",
                v["machine"]["cores"]
            ));
        }
        if let Some(problem) = v["first_problem"].as_str() {
            s.push_str(&format!("\nfirst problem: {problem}"));
        }
        s
    }
}
