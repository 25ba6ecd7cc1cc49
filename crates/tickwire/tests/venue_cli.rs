//! The venue commands as a user runs them: `tickwire normalize` on raw
//! frames and on a capture, and `tickwire run --feeds` against
//! `tickwire replay --serve`, the fake venue, seen by a WebSocket client.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{BIN, Client, Proc, Server, deadline, is_live_update, serial};
use serde_json::{Value, json};

fn repo_file(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn normalize(args: &[&str], stdin: &str) -> (bool, Vec<Value>, String) {
    let mut child = Command::new(BIN)
        .arg("normalize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire normalize");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write frames");
    drop(input);
    let out = child.wait_with_output().expect("normalize ends");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn normalize_prints_exact_canonical_updates_and_names_bad_lines() {
    let frames = concat!(
        r#"{"type":"match","trade_id":1099995624,"sequence":136967653295,"maker_order_id":"7b0e4aeb-72c1-4d36-adce-e6221ffecc05","taker_order_id":"92906bb7-eb38-40c1-9c54-76bc1dd19ce4","time":"2026-09-29T13:45:58.484212Z","product_id":"BTC-USD","size":"0.00004100","price":"84149.20","side":"sell"}"#,
        "\n",
        "not json at all\n",
        r#"{"type":"heartbeat","sequence":136967652360,"last_trade_id":1099995623,"product_id":"BTC-USD","time":"2026-09-29T13:45:58.312001Z"}"#,
        "\n",
    );
    let (ok, lines, stderr) = normalize(&["--venue", "coinbase"], frames);
    assert!(!ok, "a bad frame makes the exit code 1");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let t = &lines[0];
    assert_eq!(t["type"], "trade");
    assert_eq!(t["symbol"], "coinbase:BTC-USD");
    assert_eq!(t["price"], "84149.20", "the venue's scale is kept");
    assert_eq!(t["size"], "0.00004100");
    assert_eq!(
        t["side"], "buy",
        "Coinbase sends the maker side; sell maker = buy aggressor"
    );
    assert_eq!(t["trade_id"], "1099995624");
    assert_eq!(t["seq"], 1);
    assert_eq!(t["ts"], 1_790_689_558_484_212u64);
}

#[test]
fn normalize_reads_a_whole_capture_with_its_rest_snapshots() {
    for venue in ["coinbase", "binance", "kraken", "okx", "bybit"] {
        let path = repo_file(&format!("feeds/{venue}/capture.jsonl"));
        let (_, lines, stderr) = normalize(&["--venue", venue, &path], "");
        for channel in ["trade", "quote", "ticker", "book"] {
            assert!(
                lines.iter().any(|l| l["type"] == channel),
                "{venue}: no {channel} in the capture's normalization; stderr: {stderr}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| l["type"] == "status" && l["state"] == "live"),
            "{venue}: books never synced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_feeds_a_live_venue_from_the_fake_venue() {
    let _serial = serial().await;
    let capture = repo_file("feeds/kraken/capture.jsonl");
    let fake = Proc::start(
        "fake-kraken",
        &["replay", "--serve", "127.0.0.1:0", &capture, "--loop"],
        &[],
    );
    // "tickwire fake kraken serving ... on ws://ADDR/ (REST on http://ADDR/)"
    let addr = fake
        .banner
        .split("ws://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {:?}", fake.banner))
        .to_owned();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tickwire-venue-cli");
    std::fs::create_dir_all(&dir).expect("dir");
    let feed = dir.join(format!("kraken-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(repo_file("feeds/kraken/feed.toml"))
        .expect("feed file")
        .replace("wss://ws.kraken.com/v2", &format!("ws://{addr}/v2"));
    std::fs::write(&feed, text).expect("write feed");
    let feed = feed.to_str().expect("utf-8").to_owned();
    let run = Server::from(Proc::start(
        "run-kraken",
        &["run", "--listen", "127.0.0.1:0", "--feeds", &feed],
        &[],
    ));
    let mut c = Client::connect("kraken-client", &run).await;
    c.subscribe("book", &["kraken:BTC-USD"], json!({})).await;
    c.until("a live Kraken book", deadline(), |v| {
        is_live_update(v, "book", "kraken:BTC-USD")
    })
    .await;
    c.close().await;
    drop(run);
    drop(fake);
}
