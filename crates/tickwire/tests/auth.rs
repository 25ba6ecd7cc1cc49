//! Authentication and entitlements end to end: the real binary (`tickwire
//! run` with an `[auth]` table), real WebSocket clients, real HTTP. Each
//! auth path is accepted and refused; each entitlement dimension is shown
//! on the socket, in `list` and on the REST routes, while a fully entitled
//! client on the same server keeps its data.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, Server, WAIT, deadline};
use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const HS_SECRET: &str = "test-only-hs256-secret-0123456789";
const ISSUER: &str = "tickwire-test";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn sha256_hex(key: &str) -> String {
    tickwire_hash(key)
}

/// The hash as `tickwire hash-key` prints it (the subcommand is tested too).
fn tickwire_hash(key: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(common::BIN)
        .arg("hash-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn hash-key");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{key}\n").as_bytes())
        .expect("write key");
    let out = child.wait_with_output().expect("hash-key output");
    assert!(out.status.success(), "hash-key failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A scratch folder for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("tickwire-auth")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// An RSA key pair made with openssl: (private PEM, public PEM path).
fn rsa_pair(dir: &std::path::Path) -> (Vec<u8>, PathBuf) {
    let private = dir.join("rsa.pem");
    let public = dir.join("rsa-pub.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)")
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl rsa")
        .success();
    assert!(ok, "openssl rsa -pubout");
    (std::fs::read(&private).expect("private key"), public)
}

/// `tickwire run` on a free port with this `[auth]` (and more) config.
fn start(name: &str, config: &str) -> Server {
    let dir = scratch(name);
    let path = dir.join("tickwire.toml");
    std::fs::write(&path, config).expect("write config");
    let path = path.to_string_lossy().to_string();
    Server::from(Proc::start(
        name,
        &["run", "--config", &path, "--listen", "127.0.0.1:0"],
        &[],
    ))
}

/// Keys: `full-key` (everything), `cb-key` (coinbase quote/trade, 1.5 s
/// floor, 2 subscriptions, 2 connections); JWTs signed with [`HS_SECRET`]
/// or the RSA key at `rsa_pub`.
fn standard_config(rsa_pub: Option<&std::path::Path>) -> String {
    let rs = rsa_pub.map_or(String::new(), |p| {
        format!("rs256_public_key_file = {:?}\n", p.to_string_lossy())
    });
    format!(
        r#"
[auth]
anonymous = false
auth_deadline_ms = 800

[[auth.keys]]
name = "full"
hash = "{full}"

[[auth.keys]]
name = "cb"
hash = "{cb}"
entitlements = {{ instruments = ["coinbase:*"], channels = ["quote", "trade"], min_throttle_ms = 1500, max_subscriptions = 2, max_connections = 2 }}

[[auth.keys]]
name = "late"
hash = "{late}"
entitlements = {{ delay_secs = 2 }}

[auth.jwt]
hs256_secret = "{HS_SECRET}"
issuer = "{ISSUER}"
{rs}"#,
        full = sha256_hex("full-key"),
        cb = sha256_hex("cb-key"),
        late = sha256_hex("late-key"),
    )
}

/// Connects with an optional `Authorization: Bearer` and URL query.
async fn connect(server: &Server, bearer: Option<&str>, query: &str) -> Ws {
    let url = format!("{}{query}", server.ws_url());
    let mut req = url.into_client_request().expect("request");
    if let Some(token) = bearer {
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")
        .expect("upgrade accepted");
    ws
}

/// What a connection saw until it closed (bounded by [`WAIT`]): the JSON
/// messages and the close code.
async fn until_closed(ws: &mut Ws) -> (Vec<Value>, Option<u16>) {
    let mut seen = Vec::new();
    let end = deadline();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("not closed within {WAIT:?}; saw {seen:?}"),
            Ok(Some(Ok(Message::Text(t)))) => {
                seen.push(serde_json::from_str(&t).expect("json"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (seen, frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)))
            | Ok(None)
            | Ok(Some(Err(_))) => return (seen, None),
        }
    }
}

/// Sends `request` and waits for the message `want` accepts; every message
/// seen on the way is appended to `seen`.
async fn ask(
    ws: &mut Ws,
    seen: &mut Vec<Value>,
    request: Value,
    want: impl Fn(&Value) -> bool,
) -> Value {
    ws.send(Message::text(request.to_string()))
        .await
        .expect("send");
    next_matching(ws, seen, want).await
}

async fn next_matching(ws: &mut Ws, seen: &mut Vec<Value>, want: impl Fn(&Value) -> bool) -> Value {
    let end = deadline();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                seen.push(v.clone());
                if want(&v) {
                    return v;
                }
            }
            Ok(Some(Ok(Message::Close(f)))) => panic!("closed {f:?}; saw {seen:?}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("no matching message: {other:?}; saw {seen:?}"),
        }
    }
}

/// Reads for `period`, appending to `seen`.
async fn read_for(ws: &mut Ws, seen: &mut Vec<Value>, period: Duration) {
    let end = Instant::now() + period;
    while let Ok(Some(Ok(msg))) =
        tokio::time::timeout(end.saturating_duration_since(Instant::now()), ws.next()).await
    {
        if let Message::Text(t) = msg {
            seen.push(serde_json::from_str(&t).expect("json"));
        }
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    v["type"] == t
}

fn updates(seen: &[Value]) -> impl Iterator<Item = &Value> {
    seen.iter().filter(|v| {
        ["quote", "trade", "ticker", "book"].contains(&v["type"].as_str().unwrap_or(""))
    })
}

/// A `list` entry names some channels, all of them in `allowed`.
fn assert_channels_within(entry: &Value, allowed: &[&str]) {
    let channels = entry["channels"].as_array().expect("channels");
    assert!(!channels.is_empty(), "{entry}");
    for c in channels {
        assert!(allowed.contains(&c.as_str().unwrap_or("")), "{entry}");
    }
}

fn jwt(alg: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("sign")
}

fn far_future() -> u64 {
    4_000_000_000
}

/// A client that is served: the first quote update on `symbol` arrives.
async fn assert_served(ws: &mut Ws, symbol: &str) {
    let mut seen = Vec::new();
    let ack = ask(
        ws,
        &mut seen,
        json!({"op":"subscribe","id":1,"channel":"quote","symbols":[symbol]}),
        |v| v["id"] == 1,
    )
    .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    next_matching(ws, &mut seen, |v| {
        is_type(v, "quote") && v["symbol"] == symbol
    })
    .await;
}

/// A client refused at upgrade: the hello, then 4001, and nothing else.
async fn assert_refused(ws: &mut Ws) {
    let (seen, code) = until_closed(ws).await;
    assert_eq!(code, Some(4001), "saw {seen:?}");
    assert!(
        seen.iter().all(|v| is_type(v, "hello")),
        "only the hello before the close: {seen:?}"
    );
}

#[tokio::test]
async fn api_keys_by_bearer_query_and_op_auth() {
    let _serial = common::serial().await;
    let server = start("auth-keys", &standard_config(None));

    let mut bearer = connect(&server, Some("full-key"), "").await;
    assert_served(&mut bearer, "kraken:BTC-USD").await;
    let mut query = connect(&server, None, "?batch=0&token=full-key").await;
    assert_served(&mut query, "kraken:BTC-USD").await;

    let mut unknown = connect(&server, Some("no-such-key"), "").await;
    assert_refused(&mut unknown).await;
    let mut unknown_q = connect(&server, None, "?token=no-such-key").await;
    assert_refused(&mut unknown_q).await;

    // No credentials and anonymous off: only op:auth is served.
    let mut late = connect(&server, None, "").await;
    let mut seen = Vec::new();
    let refused = ask(
        &mut late,
        &mut seen,
        json!({"op":"subscribe","id":7,"channel":"quote","symbols":["kraken:BTC-USD"]}),
        |v| v["id"] == 7,
    )
    .await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    let bad = ask(
        &mut late,
        &mut seen,
        json!({"op":"auth","id":8,"token":"wrong"}),
        |v| v["id"] == 8,
    )
    .await;
    assert_eq!(bad["code"], "unauthorized", "{bad}");
    let good = ask(
        &mut late,
        &mut seen,
        json!({"op":"auth","id":9,"token":"full-key"}),
        |v| v["id"] == 9,
    )
    .await;
    assert_eq!(good["type"], "authenticated", "{good}");
    assert_eq!(updates(&seen).count(), 0, "no data before auth: {seen:?}");
    assert_served(&mut late, "kraken:BTC-USD").await;

    // The fully entitled client saw none of that: it still has data.
    let mut seen = Vec::new();
    next_matching(&mut bearer, &mut seen, |v| is_type(v, "quote")).await;
}

#[tokio::test]
async fn op_auth_after_the_deadline_is_too_late() {
    let _serial = common::serial().await;
    let server = start("auth-deadline", &standard_config(None));
    let mut silent = connect(&server, None, "").await;
    let (seen, code) = until_closed(&mut silent).await;
    assert_eq!(code, Some(4001), "{seen:?}");
    assert_eq!(updates(&seen).count(), 0, "{seen:?}");

    // Sending op:auth once the deadline passed finds the connection closed.
    let mut slow = connect(&server, None, "").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = slow
        .send(Message::text(
            json!({"op":"auth","token":"full-key"}).to_string(),
        ))
        .await;
    let (seen, code) = until_closed(&mut slow).await;
    assert_eq!(code, Some(4001), "{seen:?}");
    assert!(
        !seen.iter().any(|v| is_type(v, "authenticated")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn jwts_hs256_and_rs256_accepted_forged_and_expired_refused() {
    let _serial = common::serial().await;
    let dir = scratch("auth-jwt");
    let (rsa_private, rsa_public) = rsa_pair(&dir);
    let server = start("auth-jwt", &standard_config(Some(&rsa_public)));
    let hs = EncodingKey::from_secret(HS_SECRET.as_bytes());
    let rs = EncodingKey::from_rsa_pem(&rsa_private).expect("rsa key");
    let claims = json!({"sub":"ann","iss":ISSUER,"exp":far_future()});

    let token = jwt(Algorithm::HS256, &hs, claims.clone());
    let mut ws = connect(&server, Some(&token), "").await;
    assert_served(&mut ws, "coinbase:BTC-USD").await;

    let token = jwt(Algorithm::RS256, &rs, claims.clone());
    let mut ws = connect(&server, None, &format!("?token={token}")).await;
    assert_served(&mut ws, "coinbase:BTC-USD").await;

    // op:auth with a JWT too.
    let mut ws = connect(&server, None, "").await;
    let mut seen = Vec::new();
    let ok = ask(
        &mut ws,
        &mut seen,
        json!({"op":"auth","id":1,"token":token}),
        |v| v["id"] == 1,
    )
    .await;
    assert_eq!(ok["type"], "authenticated", "{ok}");

    let forged = jwt(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"some-other-secret-of-length"),
        claims.clone(),
    );
    let mut ws = connect(&server, Some(&forged), "").await;
    assert_refused(&mut ws).await;

    let expired = jwt(
        Algorithm::HS256,
        &hs,
        json!({"sub":"ann","iss":ISSUER,"exp":1_000_000}),
    );
    let mut ws = connect(&server, Some(&expired), "").await;
    assert_refused(&mut ws).await;

    let wrong_issuer = jwt(
        Algorithm::RS256,
        &rs,
        json!({"sub":"ann","iss":"someone-else","exp":far_future()}),
    );
    let mut ws = connect(&server, Some(&wrong_issuer), "").await;
    assert_refused(&mut ws).await;

    // Entitlements ride in the `tickwire` claim.
    let narrow = jwt(
        Algorithm::RS256,
        &rs,
        json!({"sub":"bo","iss":ISSUER,"exp":far_future(),"tickwire":{"instruments":["*:BTC-*"]}}),
    );
    let mut ws = connect(&server, Some(&narrow), "").await;
    let mut seen = Vec::new();
    let no = ask(
        &mut ws,
        &mut seen,
        json!({"op":"subscribe","id":1,"channel":"quote","symbols":["kraken:ETH-EUR"]}),
        |v| v["id"] == 1,
    )
    .await;
    assert_eq!(no["code"], "forbidden", "{no}");
    assert_served(&mut ws, "kraken:BTC-USD").await;
}

#[tokio::test]
async fn anonymous_access_follows_the_setting() {
    let _serial = common::serial().await;
    // `run` without [auth]: anonymous on.
    let open = start("auth-anon-on", "");
    let mut ws = connect(&open, None, "").await;
    assert_served(&mut ws, "binance:BTC-USDT").await;
    drop(open);

    // anonymous = true next to keys: no credentials is fine, bad ones not.
    let cfg = standard_config(None).replace("anonymous = false", "anonymous = true");
    let mixed = start("auth-anon-mixed", &cfg);
    let mut ws = connect(&mixed, None, "").await;
    assert_served(&mut ws, "binance:BTC-USDT").await;
    let mut bad = connect(&mixed, Some("wrong"), "").await;
    assert_refused(&mut bad).await;
}

#[tokio::test]
async fn entitlements_bound_instruments_channels_rate_and_subscriptions() {
    let _serial = common::serial().await;
    let server = start("auth-entitle", &standard_config(None));
    let mut full = connect(&server, Some("full-key"), "").await;
    let mut full_seen = Vec::new();
    ask(
        &mut full,
        &mut full_seen,
        json!({"op":"subscribe","id":1,"channel":"quote","symbols":["coinbase:BTC-USD","kraken:BTC-USD"]}),
        |v| v["type"] == "subscribed",
    )
    .await;

    let mut cb = connect(&server, Some("cb-key"), "").await;
    let mut seen = Vec::new();
    // Another venue: forbidden and nothing else.
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":1,"channel":"quote","symbols":["kraken:BTC-USD"]}),
        |v| v["id"] == 1,
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    assert_eq!(r["symbols"], json!(["kraken:BTC-USD"]), "{r}");
    // A channel outside the entitlement.
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":2,"channel":"book","symbols":["coinbase:BTC-USD"]}),
        |v| v["id"] == 2,
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // A wildcard over a venue with nothing entitled.
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":3,"channel":"quote","symbols":["binance:*"]}),
        |v| v["id"] == 3,
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // Mixed: the entitled one is subscribed, the other named as forbidden.
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":4,"channel":"quote","symbols":["coinbase:BTC-USD","kraken:ETH-EUR"],"throttle_ms":0}),
        |v| v["id"] == 4 && v["type"] == "subscribed",
    )
    .await;
    assert_eq!(r["symbols"], json!(["coinbase:BTC-USD"]), "{r}");
    let forbidden = seen
        .iter()
        .find(|v| v["id"] == 4 && v["code"] == "forbidden")
        .unwrap_or_else(|| panic!("forbidden for kraken:ETH-EUR: {seen:?}"));
    assert_eq!(forbidden["symbols"], json!(["kraken:ETH-EUR"]));
    // Max subscriptions (2): a venue wildcard over coinbase's three would
    // make four.
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":5,"channel":"trade","symbols":["coinbase:*"]}),
        |v| v["id"] == 5,
    )
    .await;
    assert_eq!(r["code"], "too_many_subscriptions", "{r}");
    let r = ask(
        &mut cb,
        &mut seen,
        json!({"op":"subscribe","id":6,"channel":"trade","symbols":["coinbase:ETH-USD"]}),
        |v| v["id"] == 6,
    )
    .await;
    assert_eq!(r["type"], "subscribed", "{r}");
    // `list` names only what the key may see.
    let list = ask(&mut cb, &mut seen, json!({"op":"list","id":7}), |v| {
        v["id"] == 7
    })
    .await;
    let listed = list["symbols"].as_array().expect("symbols");
    assert!(!listed.is_empty(), "{list}");
    for entry in listed {
        assert!(
            entry["symbol"]
                .as_str()
                .unwrap_or("")
                .starts_with("coinbase:"),
            "{list}"
        );
        assert_channels_within(entry, &["trade", "quote"]);
    }

    // The rate floor: 1.5 s between two quotes of one topic, though 0 was
    // asked for. The full client on the same topic gets more (the demo
    // quotes coinbase:BTC-USD a few times a second).
    read_for(&mut cb, &mut seen, Duration::from_millis(4500)).await;
    read_for(&mut full, &mut full_seen, Duration::from_millis(10)).await;
    let live_quotes = |seen: &[Value]| {
        updates(seen)
            .filter(|v| {
                v["type"] == "quote" && v["symbol"] == "coinbase:BTC-USD" && v["snapshot"] != true
            })
            .count()
    };
    let (limited, unlimited) = (live_quotes(&seen), live_quotes(&full_seen));
    assert!(limited >= 1, "quotes keep coming: {seen:?}");
    assert!(
        limited <= 4500 / 1500 + 1,
        "at most one quote per 1.5 s: {limited} in 4.5 s"
    );
    assert!(
        unlimited > limited,
        "the floor is the key's, not the topic's: {unlimited} vs {limited}"
    );
    for v in updates(&seen) {
        assert!(
            v["symbol"].as_str().unwrap_or("").starts_with("coinbase:"),
            "a topic outside the entitlement reached the client: {v}"
        );
        assert!(v["type"] == "quote" || v["type"] == "trade", "{v}");
    }
    let full_kraken = updates(&full_seen)
        .filter(|v| v["symbol"] == "kraken:BTC-USD")
        .count();
    assert!(
        full_kraken > 0,
        "the full client still gets kraken: {full_seen:?}"
    );
}

#[tokio::test]
async fn connections_per_key_are_capped_and_released() {
    let _serial = common::serial().await;
    let server = start("auth-conns", &standard_config(None));
    let mut a = connect(&server, Some("cb-key"), "").await;
    assert_served(&mut a, "coinbase:BTC-USD").await;
    let b = connect(&server, Some("cb-key"), "").await;
    let mut c = connect(&server, Some("cb-key"), "").await;
    let (seen, code) = until_closed(&mut c).await;
    assert_eq!(code, Some(u16::from(CloseCode::Policy)), "{seen:?}");
    assert_eq!(updates(&seen).count(), 0, "{seen:?}");
    // Other keys are not affected.
    let mut other = connect(&server, Some("full-key"), "").await;
    assert_served(&mut other, "coinbase:BTC-USD").await;
    drop(b);
    // The slot comes back once the server has seen the close.
    let end = deadline();
    loop {
        let mut d = connect(&server, Some("cb-key"), "").await;
        let mut seen = Vec::new();
        d.send(Message::text(json!({"op":"ping","id":1}).to_string()))
            .await
            .expect("send");
        read_for(&mut d, &mut seen, Duration::from_millis(300)).await;
        if seen.iter().any(|v| is_type(v, "pong")) {
            break;
        }
        assert!(Instant::now() < end, "the slot never came back: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[tokio::test]
async fn delayed_tier_serves_updates_at_least_the_delay_late() {
    let _serial = common::serial().await;
    let server = start("auth-delayed", &standard_config(None));
    let mut full = connect(&server, Some("full-key"), "").await;
    assert_served(&mut full, "coinbase:BTC-USD").await;

    // Two delayed clients on one topic (they share the topic's line).
    let mut lates = Vec::new();
    for _ in 0..2 {
        let mut late = connect(&server, Some("late-key"), "").await;
        let mut seen = Vec::new();
        let ack = ask(
            &mut late,
            &mut seen,
            json!({"op":"subscribe","id":1,"channel":"quote","symbols":["coinbase:BTC-USD"]}),
            |v| v["id"] == 1,
        )
        .await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        lates.push((late, seen));
    }
    // Each update's age on arrival, from the ingest receive time `rx`.
    let mut ages = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    for (late, seen) in &mut lates {
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(end.saturating_duration_since(Instant::now()), late.next()).await
        {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "quote" {
                    ages.push(now_us().saturating_sub(v["rx"].as_u64().expect("rx")));
                }
                seen.push(v);
            }
        }
    }
    assert!(ages.len() >= 2, "delayed quotes arrive: {ages:?}");
    for age in &ages {
        assert!(
            *age >= 1_950_000,
            "an update arrived {age} us after ingest, under the 2 s delay"
        );
        assert!(*age < 15_000_000, "an update arrived {age} us late");
    }

    // History would skip the delay: from_seq is refused.
    let (late, seen) = &mut lates[0];
    let r = ask(
        late,
        seen,
        json!({"op":"subscribe","id":2,"channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":{"coinbase:BTC-USD":1}}),
        |v| v["id"] == 2,
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");

    // The REST snapshot is delayed too.
    let (status, body) = get(
        &server.addr,
        "/v1/snapshot/quote/coinbase:BTC-USD",
        Some("late-key"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let age = now_us().saturating_sub(body["rx"].as_u64().expect("rx"));
    assert!(age >= 1_950_000, "REST snapshot {age} us old");
}

/// `GET path` with an optional bearer token: (status, JSON body).
async fn get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.expect("read");
        resp
    };
    let resp = tokio::time::timeout(WAIT, fetch)
        .await
        .expect("answer in time");
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn rest_routes_need_credentials_and_respect_entitlements() {
    let _serial = common::serial().await;
    let server = start("auth-rest", &standard_config(None));
    let addr = server.addr.clone();
    assert_eq!(get(&addr, "/v1/symbols", None).await.0, 401);
    assert_eq!(get(&addr, "/v1/symbols", Some("wrong")).await.0, 401);
    assert_eq!(
        get(&addr, "/v1/snapshot/quote/coinbase:BTC-USD", None)
            .await
            .0,
        401
    );
    assert_eq!(
        get(&addr, "/healthz", None).await.0,
        200,
        "probes need no key"
    );

    let (status, full) = get(&addr, "/v1/symbols", Some("full-key")).await;
    assert_eq!(status, 200);
    assert!(
        full["symbols"].as_array().is_some_and(|s| s.len() >= 8),
        "{full}"
    );
    let (status, cb) = get(&addr, "/v1/symbols?token=cb-key", None).await;
    assert_eq!(status, 200);
    let cb = cb["symbols"].as_array().expect("symbols").clone();
    assert!(!cb.is_empty());
    for entry in &cb {
        assert!(
            entry["symbol"]
                .as_str()
                .unwrap_or("")
                .starts_with("coinbase:"),
            "{entry}"
        );
        assert_channels_within(entry, &["trade", "quote"]);
    }

    // Entitled topic: 200 once it has a value.
    let end = deadline();
    loop {
        let (status, body) =
            get(&addr, "/v1/snapshot/quote/coinbase:BTC-USD", Some("cb-key")).await;
        if status == 200 {
            assert_eq!(body["symbol"], "coinbase:BTC-USD");
            break;
        }
        assert!(Instant::now() < end, "no snapshot: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not entitled: 403, for a served topic and an unknown one alike.
    for path in [
        "/v1/snapshot/quote/kraken:BTC-USD",
        "/v1/snapshot/book/coinbase:BTC-USD",
        "/v1/snapshot/quote/nowhere:XYZ-USD",
    ] {
        let (status, body) = get(&addr, path, Some("cb-key")).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "forbidden");
        assert!(body.get("symbol").is_none());
    }
    let (status, _) = get(&addr, "/v1/snapshot/quote/kraken:BTC-USD", Some("full-key")).await;
    assert!(status == 200 || status == 404, "{status}");
}

#[test]
fn hash_key_prints_the_sha256_form() {
    let h = tickwire_hash("secret");
    assert_eq!(
        h,
        "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    );
}
