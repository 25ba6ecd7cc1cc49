//! Fixed-bucket histograms that cost a few relaxed atomic adds to record,
//! for the metrics recorded once per update (latency per stage, outbox
//! depth), and their Prometheus text.
//!
//! The Prometheus recorder's own histograms append each sample to a
//! shared queue (about 25 ns, plus memory until the next upkeep); these
//! find the bucket with a short binary search and add to three counters
//! (about as cheap as a counter handle). They are handed out as ordinary
//! [`metrics::Histogram`] handles, so call sites do not know the
//! difference, and rendered after the recorder's own text by
//! [`render_into`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Latency buckets, seconds: 10 µs to 10 s, 1-2.5-5 per decade.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for counts of queued things (frames, updates).
pub const DEPTH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// One histogram series: a count per bucket (not cumulative; summed when
/// rendered, which also gives the total count) and the samples' sum in
/// fixed point.
#[derive(Debug)]
pub struct FixedHistogram {
    bounds: &'static [f64],
    /// `bounds.len() + 1` counters; the last is `+Inf`.
    buckets: Box<[AtomicU64]>,
    /// The sum times `scale`, rounded: an integer add instead of a
    /// compare-and-swap loop on an `f64`.
    sum_scaled: AtomicU64,
    scale: f64,
}

impl FixedHistogram {
    /// An empty histogram with these upper bounds (ascending) whose sum
    /// keeps `1 / scale` resolution (1e9 for seconds: nanoseconds).
    pub fn new(bounds: &'static [f64], scale: f64) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_scaled: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one sample. Negative and NaN samples count in the lowest
    /// bucket and add nothing to the sum.
    pub fn observe(&self, value: f64) {
        // `le` is inclusive: a value equal to a bound belongs to it.
        let index = self.bounds.partition_point(|b| *b < value);
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // Rounded half up; `as` saturates absurd values and maps NaN and
        // negatives to 0, which adds nothing.
        let scaled = (value * self.scale + 0.5) as u64;
        if scaled > 0 {
            self.sum_scaled.fetch_add(scaled, Ordering::Relaxed);
        }
    }

    /// Samples recorded so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The sum of the samples (at the histogram's resolution).
    pub fn sum(&self) -> f64 {
        self.sum_scaled.load(Ordering::Relaxed) as f64 / self.scale
    }

    /// Cumulative counts per upper bound, `+Inf` last.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                total += b.load(Ordering::Relaxed);
                (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total)
            })
            .collect()
    }
}

impl metrics::HistogramFn for FixedHistogram {
    fn record(&self, value: f64) {
        self.observe(value);
    }
}

/// Label pairs of one series, in the order given.
type Labels = Vec<(&'static str, String)>;

/// A family: name, description and its labelled series.
struct Family {
    name: &'static str,
    help: &'static str,
    series: Vec<(Labels, Arc<FixedHistogram>)>,
}

fn registry() -> &'static Mutex<Vec<Family>> {
    static REGISTRY: OnceLock<Mutex<Vec<Family>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The series `name{labels}` (created on first use with `bounds` and
/// `scale`; later calls get the same series), as a handle for the `metrics`
/// facade. Resolve it once, off the hot path.
pub fn histogram(
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &str)],
    bounds: &'static [f64],
    scale: f64,
) -> metrics::Histogram {
    metrics::Histogram::from_arc(series(name, help, labels, bounds, scale))
}

/// As [`histogram`], the series itself (for tests and inspection).
pub fn series(
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &str)],
    bounds: &'static [f64],
    scale: f64,
) -> Arc<FixedHistogram> {
    let labels: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let mut all = registry().lock().unwrap_or_else(|e| e.into_inner());
    let family = match all.iter().position(|f| f.name == name) {
        Some(i) => &mut all[i],
        None => {
            all.push(Family {
                name,
                help,
                series: Vec::new(),
            });
            let last = all.len() - 1;
            &mut all[last]
        }
    };
    if let Some((_, h)) = family.series.iter().find(|(l, _)| *l == labels) {
        return h.clone();
    }
    let h = Arc::new(FixedHistogram::new(bounds, scale));
    family.series.push((labels, h.clone()));
    h
}

/// A latency series in seconds with [`LATENCY_BUCKETS`] (nanosecond sum).
pub fn latency(
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &str)],
) -> metrics::Histogram {
    histogram(name, help, labels, LATENCY_BUCKETS, 1e9)
}

/// Appends every registered family in the Prometheus text format.
pub fn render_into(out: &mut String) {
    let all = registry().lock().unwrap_or_else(|e| e.into_inner());
    for family in all.iter() {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} histogram", family.name);
        for (labels, h) in &family.series {
            let mut base = String::new();
            for (k, v) in labels {
                let _ = write!(base, "{k}=\"{}\",", escape(v));
            }
            // One read of the buckets, so `_count` equals the `+Inf` bucket.
            let cumulative = h.cumulative();
            for &(bound, total) in &cumulative {
                let le = if bound.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    bound.to_string()
                };
                let _ = writeln!(out, "{}_bucket{{{base}le=\"{le}\"}} {total}", family.name);
            }
            let plain = base.trim_end_matches(',');
            let braces = if plain.is_empty() {
                String::new()
            } else {
                format!("{{{plain}}}")
            };
            let _ = writeln!(out, "{}_sum{braces} {}", family.name, h.sum());
            let count = cumulative.last().map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "{}_count{braces} {count}", family.name);
        }
        out.push('\n');
    }
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_rest_goes_to_inf() {
        let h = FixedHistogram::new(&[1.0, 2.0], 1.0);
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, -1.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative(), vec![(1.0, 3), (2.0, 5), (f64::INFINITY, 6)]);
        assert_eq!(h.count(), 6);
        // 0.5 rounds to 1 at scale 1; -1 adds nothing.
        assert_eq!(h.sum(), 1.0 + 1.0 + 2.0 + 2.0 + 3.0);
    }

    #[test]
    fn latency_sums_keep_nanoseconds() {
        let h = FixedHistogram::new(LATENCY_BUCKETS, 1e9);
        h.observe(0.000_012_345);
        h.observe(2.0);
        assert_eq!(h.sum(), 2.000_012_345);
        let c = h.cumulative();
        assert_eq!(c[0], (0.00001, 0));
        assert_eq!(c[1], (0.000025, 1));
        assert_eq!(c.last(), Some(&(f64::INFINITY, 2)));
    }

    #[test]
    fn renders_each_series_with_cumulative_buckets() {
        let h = histogram(
            "tickwire_test_render_seconds",
            "A test family",
            &[("venue", "a\"b")],
            &[0.1, 1.0],
            1e9,
        );
        h.record(0.05);
        h.record(0.5);
        let same = series(
            "tickwire_test_render_seconds",
            "A test family",
            &[("venue", "a\"b")],
            &[0.1, 1.0],
            1e9,
        );
        assert_eq!(same.count(), 2, "the same labels give the same series");
        let mut text = String::new();
        render_into(&mut text);
        let expected = "# HELP tickwire_test_render_seconds A test family\n\
            # TYPE tickwire_test_render_seconds histogram\n\
            tickwire_test_render_seconds_bucket{venue=\"a\\\"b\",le=\"0.1\"} 1\n\
            tickwire_test_render_seconds_bucket{venue=\"a\\\"b\",le=\"1\"} 2\n\
            tickwire_test_render_seconds_bucket{venue=\"a\\\"b\",le=\"+Inf\"} 2\n\
            tickwire_test_render_seconds_sum{venue=\"a\\\"b\"} 0.55\n\
            tickwire_test_render_seconds_count{venue=\"a\\\"b\"} 2\n";
        assert!(text.contains(expected), "{text}");
    }
}
