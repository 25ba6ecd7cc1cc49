//! HTTP on the gateway's port, over real sockets: health, readiness, metrics, the symbol list, REST snapshots, the errors of each, and the web page.

mod common;

use std::time::{Duration, Instant};

use common::{Client, SYMBOLS, Server, WAIT, http_get, http_request, inst};
use serde_json::{Value, json};
use tickwire_bus::{Bus, MemoryBusConfig, Status};
use tickwire_gateway::GatewayConfig;
use tickwire_model::protocol::FeedState;

const BTC: &str = "coinbase:BTC-USD";

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body:?}"))
}

#[track_caller]
fn assert_json(ctype: &str) {
    assert!(
        ctype.starts_with("application/json"),
        "content-type is JSON: {ctype:?}"
    );
}

/// Asserts a JSON `error` body with the given code.
#[track_caller]
fn assert_error_body(ctype: &str, body: &str, code: &str) {
    assert_json(ctype);
    let v = parse(body);
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_200_json() {
    let server = Server::start(GatewayConfig::default()).await;
    let (status, ctype, body) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_json(&ctype);
    assert!(parse(&body).is_object(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_when_a_feed_is_live() {
    let server = Server::start(GatewayConfig::default()).await;
    let (status, ctype, body) = http_get(&server, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_json(&ctype);
    assert!(parse(&body).is_object(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_json_until_a_feed_is_live() {
    let server =
        Server::start_with(GatewayConfig::default(), MemoryBusConfig::default(), false).await;
    let (status, ctype, body) = http_get(&server, "/readyz").await;
    assert_eq!(status, 503, "not ready before any live status: {body}");
    assert_json(&ctype);
    assert!(parse(&body).is_object(), "{body}");

    let status_of = |state| Status {
        instrument: inst(BTC),
        state,
        reason: String::new(),
    };
    server
        .bus
        .publish_status(status_of(FeedState::Live))
        .expect("status");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, ctype, body) = http_get(&server, "/readyz").await;
        if status == 200 {
            assert_json(&ctype);
            assert!(parse(&body).is_object(), "{body}");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "readyz did not become ready after a live status"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stale = Status {
        instrument: inst(BTC),
        state: FeedState::Stale,
        reason: "feed_disconnected".into(),
    };
    server.bus.publish_status(stale).expect("status");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, body) = http_get(&server, "/readyz").await;
        if status == 503 {
            assert!(parse(&body).is_object(), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz stayed ready with no live feed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_is_prometheus_text_with_gateway_names_after_traffic() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","id":1,"channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    for s in 1..=3 {
        server.quote(BTC, s);
    }
    let got = c.recv_until(|v| v["seq"] == 3).await;
    assert!(!got.is_empty());

    let (status, ctype, body) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype:?}");
    for name in [
        "tickwire_gateway_connections",
        "tickwire_gateway_subscriptions",
        "tickwire_gateway_updates_in_total",
        "tickwire_gateway_updates_out_total",
        "tickwire_gateway_frames_written_total",
        "tickwire_gateway_requests_total",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(name)),
            "/metrics has {name}:\n{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_lists_every_symbol_with_its_channels() {
    let server = Server::start(GatewayConfig::default()).await;
    let (status, ctype, body) = http_get(&server, "/v1/symbols").await;
    assert_eq!(status, 200, "{body}");
    assert_json(&ctype);
    let v = parse(&body);
    assert_eq!(v["type"], "symbols", "{v}");
    let list = v["symbols"]
        .as_array()
        .unwrap_or_else(|| panic!("symbols array: {v}"));
    let mut names: Vec<&str> = list
        .iter()
        .map(|e| {
            assert_eq!(
                e["channels"],
                json!(["trade", "quote", "ticker", "book"]),
                "{e}"
            );
            e["symbol"].as_str().expect("symbol")
        })
        .collect();
    names.sort_unstable();
    let mut want = SYMBOLS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_returns_exactly_the_latest_update_bytes() {
    let server = Server::start(GatewayConfig::default()).await;
    server.quote(BTC, 1);
    let latest = server.quote(BTC, 2);
    let (status, ctype, body) = http_get(&server, "/v1/snapshot/quote/coinbase:BTC-USD").await;
    assert_eq!(status, 200, "{body}");
    assert_json(&ctype);
    assert_eq!(
        body.as_bytes(),
        &latest.bytes()[..],
        "same JSON as on the socket"
    );

    let trade = server.trade("binance:BTC-USDT", 7);
    let (status, _, body) = http_get(&server, "/v1/snapshot/trade/binance:BTC-USDT").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_bytes(), &trade.bytes()[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_a_topic_followed_by_a_client_is_the_latest_update() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let ack = c
        .subscribe(json!({"op":"subscribe","channel":"quote","symbols":[BTC]}))
        .await;
    assert_eq!(ack["type"], "subscribed");
    let mut latest = server.quote(BTC, 1);
    for s in 2..=5 {
        latest = server.quote(BTC, s);
    }
    c.recv_until(|v| v["seq"] == 5).await;
    let (status, _, body) = http_get(&server, "/v1/snapshot/quote/coinbase:BTC-USD").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_bytes(), &latest.bytes()[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_errors_are_404_with_a_json_error_body() {
    let server = Server::start(GatewayConfig::default()).await;
    server.quote(BTC, 1);
    for (path, code) in [
        ("/v1/snapshot/quote/nasdaq:AAPL-USD", "unknown_symbol"),
        ("/v1/snapshot/quote/garbage", "unknown_symbol"),
        ("/v1/snapshot/candles/coinbase:BTC-USD", "unknown_channel"),
        ("/v1/snapshot/book/kraken:BTC-USD", "not_found"),
        ("/v1/snapshot/trade/coinbase:BTC-USD", "not_found"),
    ] {
        let (status, ctype, body) = http_get(&server, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error_body(&ctype, &body, code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_endpoint_without_upgrade_headers_is_400_json() {
    let server = Server::start(GatewayConfig::default()).await;
    let (status, ctype, body) = http_get(&server, "/v1/ws").await;
    assert_eq!(status, 400, "{body}");
    assert_error_body(&ctype, &body, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404_json() {
    let server = Server::start(GatewayConfig::default()).await;
    for path in ["/nope", "/v2/ws", "/v1/symbols/extra"] {
        let (status, ctype, body) = http_get(&server, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error_body(&ctype, &body, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_405() {
    let server = Server::start(GatewayConfig::default()).await;
    for path in ["/healthz", "/v1/symbols", "/"] {
        let (status, _, body) = http_request(&server, "POST", path).await;
        assert_eq!(status, 405, "POST {path}: {body}");
        let v = parse(&body);
        assert_eq!(v["type"], "error", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_serves_the_web_page() {
    let server = Server::start(GatewayConfig::default()).await;
    let (status, ctype, body) = http_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype:?}");
    assert!(body.contains("tickwire"), "the page names tickwire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_page_loads_its_script_and_styles_from_the_binary() {
    let server = Server::start(GatewayConfig::default()).await;
    let (_, _, page) = http_get(&server, "/").await;
    for (path, kind) in [
        ("/board.js", "text/javascript"),
        ("/decimal.js", "text/javascript"),
        ("/book.js", "text/javascript"),
        ("/board.css", "text/css"),
    ] {
        assert!(
            page.contains(&format!("\"{}\"", &path[1..])),
            "the page links {path}"
        );
        let (status, ctype, body) = http_get(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(ctype.starts_with(kind), "{path}: {ctype:?}");
        assert!(body.len() > 1000, "{path}: {} bytes", body.len());
    }
}
