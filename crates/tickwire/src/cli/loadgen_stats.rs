//! The pure side of `tickwire loadgen`: scanning a server frame for the few
//! integers it needs (no JSON parse per update), a log-bucketed latency
//! histogram, reading a process's RSS and CPU time from /proc, and one
//! counter from a Prometheus `/metrics` answer.

use std::fmt::Write as _;

/// What one line of a server frame is, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// An update: its symbol, `seq` and `rx` (µs since the epoch).
    Update {
        /// The symbol's bytes as written in the frame.
        symbol: &'a [u8],
        /// The topic's sequence number.
        seq: u64,
        /// When ingest received it, µs since the epoch.
        rx: u64,
    },
    /// A `gap` notice (trades lost to a slow consumer).
    Gap,
    /// The reply to our subscribe.
    Subscribed,
    /// An `error` notice.
    Error,
    /// Anything else (hello, status, pong, symbols, ...).
    Other,
}

const TYPE_PREFIX: &[u8] = br#"{"type":""#;

/// Classifies one line (one JSON object as the server writes it: `type`
/// first, `rx` last on updates). Byte searches only; a line in another
/// shape is [`Line::Other`].
pub(crate) fn scan(line: &[u8]) -> Line<'_> {
    let Some(rest) = line.strip_prefix(TYPE_PREFIX) else {
        return Line::Other;
    };
    let kind_end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    match &rest[..kind_end] {
        b"gap" => return Line::Gap,
        b"subscribed" => return Line::Subscribed,
        b"error" => return Line::Error,
        b"quote" | b"trade" | b"ticker" | b"book" => {}
        _ => return Line::Other,
    }
    let rest = &rest[kind_end..];
    let (Some(symbol), Some(seq), Some(rx)) = (
        string_after(rest, br#""symbol":""#),
        int_after(rest, br#""seq":"#),
        rfind(rest, br#""rx":"#).and_then(|at| leading_int(&rest[at + 5..])),
    ) else {
        return Line::Other;
    };
    Line::Update { symbol, seq, rx }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn string_after<'a>(hay: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(hay, key)? + key.len();
    let len = hay[start..].iter().position(|&b| b == b'"')?;
    Some(&hay[start..start + len])
}

fn int_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let start = find(hay, key)? + key.len();
    leading_int(&hay[start..])
}

fn leading_int(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        bytes[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

/// Sub-buckets per power of two: values are kept within 1/64 (1.6 %).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the linear range: up to 2^(6+40) µs.
const MAJORS: usize = 41;

/// A log-bucketed histogram of µs values (HDR style: exact below 64, then
/// 64 linear sub-buckets per power of two). Fixed size, no allocation per
/// record.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; (MAJORS + 1) * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(value: u64) -> usize {
        if value < SUB {
            return value as usize;
        }
        let major = 63 - value.leading_zeros() - SUB_BITS + 1;
        let sub = (value >> (major - 1)) - SUB;
        let index = major as usize * SUB as usize + sub as usize;
        index.min((MAJORS + 1) * SUB as usize - 1)
    }

    /// The highest value that lands in bucket `index`.
    fn upper(index: usize) -> u64 {
        let major = (index / SUB as usize) as u32;
        let sub = (index % SUB as usize) as u64;
        if major == 0 {
            return sub;
        }
        ((SUB + sub + 1) << (major - 1)) - 1
    }

    /// Counts one value.
    pub(crate) fn record(&mut self, value: u64) {
        self.counts[Self::index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// How many values were recorded.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact), 0 when empty.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the top of its bucket, never more
    /// than the maximum; 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                if index == self.counts.len() - 1 {
                    return self.max;
                }
                return Self::upper(index).min(self.max);
            }
        }
        self.max
    }
}

/// A process's memory and CPU, from /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcSample {
    /// Resident set size, KiB (`VmRSS`).
    pub(crate) rss_kib: u64,
    /// User + system CPU time, clock ticks.
    pub(crate) cpu_ticks: u64,
}

/// Clock ticks per second of /proc/PID/stat times: 100 on every Linux
/// this runs on (USER_HZ); read without libc.
pub(crate) const TICKS_PER_SEC: u64 = 100;

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat` (`pid` may be
/// `self`); `None` when the process is gone or the files are unreadable.
pub(crate) fn sample(pid: &str) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcSample {
        rss_kib: vm_rss(&status)?,
        cpu_ticks: cpu_ticks(&stat)?,
    })
}

/// The machine's CPU time so far (the `cpu` line of /proc/stat), clock
/// ticks summed over all cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MachineSample {
    /// Ticks spent busy (everything but idle and iowait).
    pub(crate) busy: u64,
    /// All ticks.
    pub(crate) total: u64,
}

/// Reads /proc/stat; `None` when unreadable.
pub(crate) fn machine() -> Option<MachineSample> {
    machine_from(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn machine_from(stat: &str) -> Option<MachineSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice,
    // already counted in user and nice].
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(MachineSample {
        busy: total - idle,
        total,
    })
}

/// `VmRSS:   1234 kB` → 1234.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the
/// `(comm)` field, which may itself hold spaces.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// tickwire's count of connections closed as slow consumers (4008).
pub(crate) const SLOW_CONSUMER_CLOSES: &str = "tickwire_gateway_slow_consumer_closes_total";

/// The sum of metric `name` (over all its label sets) in a raw HTTP
/// answer to `GET /metrics`: 0 when a 200 answer lacks it (a counter
/// appears only once counted), `None` unless the status is 200.
pub(crate) fn metric_from_http(answer: &[u8], name: &str) -> Option<u64> {
    let text = std::str::from_utf8(answer).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    if status.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let mut found = 0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name 3` or `name{label="x"} 3`, not `name_other 3`.
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        found += value as u64;
    }
    Some(found)
}

/// µs as a short human figure (`850 µs`, `2.31 ms`, `1.20 s`).
pub(crate) fn human_us(us: u64) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = if us < 1_000 {
        write!(s, "{us} µs")
    } else if us < 1_000_000 {
        write!(s, "{:.2} ms", us as f64 / 1e3)
    } else {
        write!(s, "{:.2} s", us as f64 / 1e6)
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_updates_by_bytes() {
        let quote = br#"{"type":"quote","symbol":"coinbase:BTC-USD","seq":1042,"epoch":"k3x9","bid":"64000.12","bid_size":"0.51","ask":"64000.13","ask_size":"1.2","ts":1764000000123456,"rx":1764000000124001}"#;
        assert_eq!(
            scan(quote),
            Line::Update {
                symbol: b"coinbase:BTC-USD",
                seq: 1042,
                rx: 1764000000124001
            }
        );
        let snapshot = br#"{"type":"trade","symbol":"x:A-B","seq":7,"epoch":"e","trade_id":"1","ts":1,"rx":99,"snapshot":true}"#;
        assert_eq!(
            scan(snapshot),
            Line::Update {
                symbol: b"x:A-B",
                seq: 7,
                rx: 99
            }
        );
        let gap = br#"{"type":"gap","channel":"trade","symbol":"x:A-B","from_seq":1,"to_seq":3,"reason":"slow_consumer"}"#;
        assert_eq!(scan(gap), Line::Gap);
        assert_eq!(
            scan(br#"{"type":"subscribed","id":1,"channel":"quote","symbols":[]}"#),
            Line::Subscribed
        );
        assert_eq!(
            scan(br#"{"type":"error","code":"unknown_symbol"}"#),
            Line::Error
        );
        assert_eq!(scan(br#"{"type":"hello","version":1}"#), Line::Other);
        assert_eq!(scan(br#"{"type":"quote","symbol":"x:A-B"}"#), Line::Other);
        assert_eq!(scan(b"not json"), Line::Other);
        assert_eq!(scan(b""), Line::Other);
    }

    #[test]
    fn histogram_quantiles_stay_within_a_bucket() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=10_000u64 {
            h.record(v);
        }
        assert_eq!(h.len(), 10_000);
        assert_eq!(h.max(), 10_000);
        for (q, exact) in [(0.5, 5_000u64), (0.99, 9_900), (0.999, 9_990)] {
            let got = h.quantile(q);
            assert!(got >= exact, "q{q}: {got} < {exact}");
            assert!(got <= exact + exact / 60, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile(1.0), 10_000);
        let mut small = Histogram::default();
        small.record(3);
        assert_eq!(small.quantile(0.99), 3);
        let mut huge = Histogram::default();
        huge.record(u64::MAX);
        assert_eq!(huge.quantile(0.5), u64::MAX);
    }

    #[test]
    fn histogram_holds_seconds_of_a_million_deliveries_per_second() {
        // 10 s at 1 M/s: 99 % near 2 ms, 0.9 % near 40 ms, 0.1 % at 3 s
        // (a stalled client). Counts are u64 and the buckets fixed, so
        // volume changes nothing but the counts.
        let mut h = Histogram::default();
        let n = 10_000_000u64;
        for i in 0..n {
            let v = match i % 1000 {
                0 => 3_000_000,
                1..=9 => 40_000 + i % 7,
                _ => 2_000 + i % 101,
            };
            h.record(v);
        }
        assert_eq!(h.len(), n);
        assert_eq!(h.max(), 3_000_000);
        let p50 = h.quantile(0.5);
        assert!((2_000..=2_100 + 2_100 / 60).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((2_000..=2_100 + 2_100 / 60).contains(&p99), "{p99}");
        let p995 = h.quantile(0.995);
        assert!((40_000..=40_006 + 40_006 / 60).contains(&p995), "{p995}");
        assert_eq!(h.quantile(0.9995), 3_000_000);
    }

    #[test]
    fn bucket_bounds_cover_their_values() {
        for v in [0u64, 63, 64, 65, 127, 128, 1_000, 123_456, 1 << 40] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "{v}");
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "{v}");
            }
        }
    }

    #[test]
    fn reads_one_metric_from_an_http_answer() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n\
            # HELP tickwire_gateway_slow_consumer_closes_total x\n\
            tickwire_gateway_slow_consumer_closes_total_other 9\n\
            tickwire_gateway_slow_consumer_closes_total 2\n\
            tickwire_gateway_slow_consumer_closes_total{shard=\"1\"} 3\n";
        assert_eq!(metric_from_http(ok, SLOW_CONSUMER_CLOSES), Some(5));
        let absent = b"HTTP/1.1 200 OK\r\n\r\nother_total 1\n";
        assert_eq!(metric_from_http(absent, SLOW_CONSUMER_CLOSES), Some(0));
        let missing =
            b"HTTP/1.1 404 Not Found\r\n\r\ntickwire_gateway_slow_consumer_closes_total 2\n";
        assert_eq!(metric_from_http(missing, SLOW_CONSUMER_CLOSES), None);
        assert_eq!(metric_from_http(b"garbage", SLOW_CONSUMER_CLOSES), None);
    }

    #[test]
    fn reads_proc_fields() {
        assert_eq!(vm_rss("Name:\tx\nVmRSS:\t  5120 kB\n"), Some(5120));
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        let m = machine_from("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3 4\n").expect("cpu");
        assert_eq!(
            m,
            MachineSample {
                busy: 15,
                total: 100
            }
        );
        assert!(machine().is_some());
        let me = sample("self").expect("own /proc");
        assert!(me.rss_kib > 0);
    }
}
