//! What SREs see: logs as JSON lines with the spans of each connection and
//! feed (and never a line per update), and the Prometheus exposition of a
//! real deployment (ingest and a gateway over a real Redis) after real
//! traffic, checked against every metric name the Grafana dashboard, the
//! alert rules and the README use.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, Proc, Server, deadline};
use serde_json::{Value, json};
use tickwire_bus::testkit::RedisServer;

/// Reads a repository file.
fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

#[tokio::test]
async fn json_logs_carry_connection_and_feed_spans_and_no_line_per_update() {
    let _serial = common::serial().await;
    let proc = Proc::start(
        "run-json-logs",
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--feeds",
            &repo_path("feeds/demo.toml"),
        ],
        &[("RUST_LOG", "info,tickwire_gateway=debug")],
    );
    let mut server = Server::from(proc);
    let mut client = Client::connect("logs", &server).await;
    let symbols: Vec<String> = client.request(json!({"op": "list"}), "symbols").await["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["symbol"].as_str().map(str::to_owned))
        .collect();
    for channel in ["trade", "quote", "book"] {
        client
            .request(
                json!({"op": "subscribe", "channel": channel, "symbols": symbols}),
                "subscribed",
            )
            .await;
    }
    client.read_for(Duration::from_secs(2)).await;
    let updates = client
        .seen
        .iter()
        .filter(|v| ["quote", "trade", "book"].contains(&v["type"].as_str().unwrap_or("")))
        .count();
    client.close().await;
    // The session's closing line is written as the server notices.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = server.proc.terminate();
    assert!(status.success(), "{status}; {}", server.proc.describe());

    let text = std::fs::read_to_string(&server.proc.log).expect("read log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    for l in &lines {
        for key in ["timestamp", "level", "target"] {
            assert!(l[key].is_string(), "no {key}: {l}");
        }
        assert!(l["fields"]["message"].is_string(), "no message: {l}");
    }
    let opened = lines
        .iter()
        .find(|l| l["fields"]["message"] == "session opened")
        .unwrap_or_else(|| panic!("no `session opened` line in {text}"));
    assert_eq!(opened["span"]["name"], "conn", "{opened}");
    assert!(
        opened["span"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{opened}"
    );
    assert!(opened["fields"]["conn"].is_u64(), "{opened}");
    let closed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "session closed")
        .unwrap_or_else(|| panic!("no `session closed` line in {text}"));
    assert_eq!(closed["span"]["peer"], opened["span"]["peer"], "{closed}");
    assert_eq!(closed["fields"]["reason"], "client_left", "{closed}");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["name"] == "feed" && l["span"]["feed"] == "synthetic"),
        "no line inside the feed's span: {text}"
    );
    assert!(updates > 100, "the client saw only {updates} updates");
    assert!(
        lines.len() < 60,
        "{} log lines for {updates} updates: something logs per update:\n{text}",
        lines.len()
    );
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_choices() {
    let out = Command::new(common::BIN)
        .args(["run", "--log-format", "xml"])
        .stdin(Stdio::null())
        .output()
        .expect("run tickwire");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'xml'") && err.contains("text") && err.contains("json"),
        "{err}"
    );
}

fn repo_path(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

/// One parsed exposition: per family, its `# TYPE` and its samples
/// (series name with labels, value).
#[derive(Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    help: BTreeSet<String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    /// Parses the Prometheus text format strictly enough to catch what a
    /// scraper would reject: every sample line is `name{labels} value`,
    /// names are valid, values are numbers.
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                e.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(!help.trim().is_empty(), "empty help: {}", at());
                e.help.insert(name.to_owned());
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment: {}", at());
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{}", at()));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", at())),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{}", at()));
                    let mut labels = BTreeMap::new();
                    for pair in split_labels(body) {
                        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{}", at()));
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label: {}", at()));
                        labels.insert(k.to_owned(), v.to_owned());
                    }
                    (name, labels)
                }
                None => (series, BTreeMap::new()),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                    && !name.starts_with(|c: char| c.is_ascii_digit()),
                "bad name: {}",
                at()
            );
            e.samples.push((name.to_owned(), labels, value));
        }
        e
    }

    /// The samples of series `name` (a family name, or a histogram's
    /// `_bucket`/`_sum`/`_count`).
    fn series<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> {
        self.samples.iter().filter(move |(n, _, _)| n == name)
    }

    /// The family a series name belongs to.
    fn family(&self, series: &str) -> Option<String> {
        if self.types.contains_key(series) {
            return Some(series.to_owned());
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            series
                .strip_suffix(suffix)
                .filter(|f| self.types.get(*f).is_some_and(|t| t == "histogram"))
                .map(str::to_owned)
        })
    }
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

/// Every `tickwire_…` identifier in `text` that is a whole token (not a
/// Rust path like `tickwire_ingest::venue`, not a prefix in a regex).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while let Some(pos) = text[i..].find("tickwire_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after = &text[end..];
        let rust_path = after.starts_with("::");
        // `tickwire_` alone (or any name ending in `_`) is a prefix in prose.
        if before_ok && !rust_path && !text[start..end].ends_with('_') {
            names.insert(text[start..end].to_owned());
        }
        i = end.max(start + 1);
    }
    names
}

/// `GET path` on `addr`; the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream
        .set_read_timeout(Some(common::WAIT))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read answer");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head: {raw}"));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_owned()
}

/// The address of ingest's probe port, from its banner.
fn probe_addr(banner: &str) -> String {
    banner
        .split_once("http://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("no probe address in {banner:?}"))
}

/// `promtool check metrics` on an exposition: the linter Prometheus ships.
fn promtool_check_metrics(who: &str, text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package \
                 (`.ci/run` does: apt-get install --no-install-recommends prometheus)"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write exposition");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics on {who}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Crate names, which the README names in `RUST_LOG` examples and paths.
const CRATES: [&str; 4] = [
    "tickwire_model",
    "tickwire_bus",
    "tickwire_ingest",
    "tickwire_gateway",
];

#[tokio::test]
async fn every_metric_the_dashboard_alerts_and_readme_name_is_exposed_with_data() {
    let _serial = common::serial().await;
    let redis = RedisServer::start();
    let ingest = Proc::ingest(
        "metrics-ingest",
        &redis.url(),
        "obs",
        &["--listen", "127.0.0.1:0"],
    );
    let ingest_addr = probe_addr(&ingest.banner);
    let gateway = Proc::gateway("metrics-gateway", &redis.url(), "obs");

    // Real traffic: every channel of every venue, one throttled topic (so
    // something is conflated), a ping and a bad request.
    let mut client = Client::connect("metrics", &gateway).await;
    for channel in ["trade", "quote", "ticker", "book"] {
        let symbols = ["coinbase:*", "binance:*", "kraken:*", "okx:*", "bybit:*"];
        client
            .request(
                json!({"op": "subscribe", "channel": channel, "symbols": symbols, "throttle_ms": 200}),
                "subscribed",
            )
            .await;
    }
    client.request(json!({"op": "ping"}), "pong").await;
    let bad = client.reply(json!({"op": "explode"}), "none").await;
    assert_eq!(bad["code"], "unknown_op", "{bad}");

    // Until every latency stage has samples and updates went out.
    let limit = deadline();
    let (ingest_text, gateway_text) = loop {
        client.read_for(Duration::from_millis(500)).await;
        let i = http_get(&ingest_addr, "/metrics");
        let g = http_get(&gateway.addr, "/metrics");
        let (ie, ge) = (Exposition::parse(&i), Exposition::parse(&g));
        let count = |e: &Exposition, name: &str| e.series(name).map(|s| s.2).sum::<f64>();
        let ready = count(&ie, "tickwire_ingest_venue_to_ingest_seconds_count") > 0.0
            && count(&ge, "tickwire_gateway_ingest_to_gateway_seconds_count") > 0.0
            && count(&ge, "tickwire_gateway_socket_write_seconds_count") > 0.0
            && count(&ge, "tickwire_gateway_conflated_total") > 0.0;
        if ready {
            break (i, g);
        }
        assert!(
            std::time::Instant::now() < limit,
            "no traffic through every stage in time; {} {}\n{g}",
            ingest.describe(),
            gateway.proc.describe()
        );
    };
    client.close().await;

    promtool_check_metrics("ingest", &ingest_text);
    promtool_check_metrics("gateway", &gateway_text);

    let exposed: Vec<(&str, Exposition)> = vec![
        ("ingest", Exposition::parse(&ingest_text)),
        ("gateway", Exposition::parse(&gateway_text)),
    ];
    // House rules for every family we export.
    for (who, e) in &exposed {
        for (family, kind) in &e.types {
            assert!(family.starts_with("tickwire_"), "{who}: {family}");
            assert!(
                e.help.contains(family),
                "{who}: {family} has no description"
            );
            let subsystem = family.split('_').nth(1).unwrap_or_default();
            assert!(
                ["ingest", "gateway", "bus"].contains(&subsystem),
                "{who}: {family}: subsystem `{subsystem}`"
            );
            if kind == "counter" {
                assert!(family.ends_with("_total"), "{who}: counter {family}");
            }
            for (name, labels, _) in e
                .samples
                .iter()
                .filter(|s| e.family(&s.0).as_ref() == Some(family))
            {
                for key in labels.keys() {
                    assert!(
                        [
                            "venue", "channel", "reason", "kind", "op", "code", "bus", "link",
                            "state", "le"
                        ]
                        .contains(&key.as_str()),
                        "{who}: {name} has a label `{key}` (symbols and ids must never be labels)"
                    );
                }
            }
        }
    }

    let mut wanted: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let dashboard: Value = serde_json::from_str(&repo_file("dashboards/grafana/tickwire.json"))
        .expect("dashboard JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "only {} queries in the dashboard",
        exprs.len()
    );
    for e in &exprs {
        for n in metric_names(e) {
            wanted
                .entry(n)
                .or_default()
                .insert("dashboards/grafana/tickwire.json");
        }
    }
    for n in metric_names(&repo_file("dashboards/prometheus/alerts.yml")) {
        wanted
            .entry(n)
            .or_default()
            .insert("dashboards/prometheus/alerts.yml");
    }
    for n in metric_names(&repo_file("README.md")) {
        if !CRATES.contains(&n.as_str()) {
            wanted.entry(n).or_default().insert("README.md");
        }
    }
    assert!(
        wanted.len() >= 20,
        "only {} names found: {wanted:?}",
        wanted.len()
    );

    let mut missing = Vec::new();
    for (name, users) in &wanted {
        // A query must select a real series: `x_bucket`, not a histogram's
        // bare family name (which only the README's table may use).
        let queried = users.iter().any(|u| *u != "README.md");
        let histogram_family = exposed
            .iter()
            .any(|(_, e)| e.types.get(name).is_some_and(|t| t == "histogram"));
        if queried && histogram_family {
            missing.push(format!(
                "{name} (used in {users:?}) is a histogram: query its _bucket, _sum or _count"
            ));
            continue;
        }
        let found = exposed.iter().find_map(|(_, e)| {
            let family = e.family(name)?;
            let kind = e.types.get(&family)?.clone();
            let samples: Vec<f64> = if kind == "histogram" {
                e.series(&format!("{family}_count")).map(|s| s.2).collect()
            } else {
                e.series(&family).map(|s| s.2).collect()
            };
            Some((kind, samples))
        });
        match found {
            None => missing.push(format!("{name} (used in {users:?}) is not exposed")),
            Some((_, samples)) if samples.is_empty() => {
                missing.push(format!("{name} (used in {users:?}) has no samples"))
            }
            Some((kind, samples)) if kind == "histogram" && samples.iter().sum::<f64>() == 0.0 => {
                missing.push(format!("{name} (used in {users:?}) recorded nothing"))
            }
            Some(_) => {}
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Every `expr` string in a Grafana dashboard.
fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
