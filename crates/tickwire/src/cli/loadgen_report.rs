//! The report of `tickwire loadgen`: what was measured, as one JSON line
//! (for scripts) and a readable summary (for people).

use std::time::Duration;

use serde_json::{Value, json};

use super::loadgen::{LoadgenArgs, Shared};
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
    /// Deliveries the server owed in the window, from seq progress.
    pub(super) published: u64,
    pub(super) server: Option<(ProcSample, ProcSample)>,
    pub(super) myself: Option<(ProcSample, ProcSample)>,
    pub(super) machine: Option<(MachineSample, MachineSample)>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl Report<'_> {
    /// The one JSON line.
    pub(super) fn json(&self) -> Value {
        let secs = self.window.as_secs_f64().max(1e-9);
        let per_client = self.shared.per_client.borrow();
        let delivered: u64 = per_client.iter().sum();
        let rate = delivered as f64 / secs;
        // Per-client rates over the clients that subscribed.
        let active: Vec<f64> = per_client
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| n as f64 / secs)
            .collect();
        let client_min = if (active.len() as u64) < self.connected {
            0.0
        } else {
            active.iter().copied().fold(f64::INFINITY, f64::min)
        };
        let client_max = active.iter().copied().fold(0.0, f64::max);
        let client_mean = if self.connected > 0 {
            rate / self.connected as f64
        } else {
            0.0
        };
        let skipped = self.shared.skipped.get();
        let conflated = if delivered + skipped > 0 {
            skipped as f64 / (delivered + skipped) as f64
        } else {
            0.0
        };
        let latency = self.shared.latency.borrow();
        let subscriptions = self.connected as f64 * self.per_client as f64;
        let (ideal, ratio) = match self.args.expected_rate {
            Some(r) if r > 0.0 => (
                Value::from(round(r * subscriptions, 1)),
                Value::from(round(rate / (r * subscriptions), 4)),
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
        json!({
            "url": self.args.url,
            "channel": self.args.channel.as_str(),
            "batch": self.args.batch,
            "clients": self.args.clients,
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
            "delivered": delivered,
            "delivered_per_sec": round(rate, 1),
            "per_client_per_sec": {
                "min": round(if client_min.is_finite() { client_min } else { 0.0 }, 1),
                "mean": round(client_mean, 1),
                "max": round(client_max, 1),
            },
            "expected_rate_per_topic": self.args.expected_rate,
            "published_per_sec": round(self.published as f64 / secs, 1),
            "delivered_ratio_seq": if self.published > 0 {
                Value::from(round(delivered as f64 / self.published as f64, 4))
            } else {
                Value::Null
            },
            "ideal_per_sec": ideal,
            "delivered_ratio": ratio,
            "latency_us": {
                "count": latency.len(),
                "p50": latency.quantile(0.5),
                "p99": latency.quantile(0.99),
                "p999": latency.quantile(0.999),
                "max": latency.max(),
            },
            "skipped": skipped,
            "conflated_fraction": round(conflated, 5),
            "gaps": self.shared.gaps.get(),
            "errors": self.shared.errors.get(),
            "disconnected": self.shared.disconnected.get(),
            "frames": self.shared.frames.get(),
            "bytes": self.shared.bytes.get(),
            "first_problem": *self.shared.first_problem.borrow(),
            "server": server,
            "loadgen": cpu(&self.myself),
            "machine": machine,
        })
    }

    /// The readable summary of `v` (what [`Report::json`] made).
    pub(super) fn summary(&self, v: &Value) -> String {
        let lat = &v["latency_us"];
        let us = |key: &str| stats::human_us(lat[key].as_u64().unwrap_or(0));
        let mut s = format!(
            "loadgen: {} clients × {} of {} symbols ({}), {:.1} s window{}\n\
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
             conflated {:.3} %, gaps {}, errors {}, disconnected {}",
            us("p50"),
            us("p99"),
            us("p999"),
            us("max"),
            v["conflated_fraction"].as_f64().unwrap_or(0.0) * 100.0,
            v["gaps"],
            v["errors"],
            v["disconnected"],
        ));
        for (name, key) in [("server", "server"), ("loadgen", "loadgen")] {
            let p = &v[key];
            if p.is_object() {
                s.push_str(&format!(
                    "\n{name}: CPU {} % ({} s), RSS {} → {} KiB",
                    p["cpu_percent"], p["cpu_s"], p["rss_kib_start"], p["rss_kib_end"]
                ));
            }
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
