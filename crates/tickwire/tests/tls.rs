//! TLS end to end: `tickwire run` (the real binary, the demo market) with
//! `gateway.tls_cert_file` / `tls_key_file` naming a certificate made here
//! by the `openssl` CLI and signed by a test CA. Real TLS clients (rustls
//! trusting only that CA) speak `wss://` and `https://`; the files are
//! then replaced and reloaded, by SIGHUP and by the file watch, and a bad
//! file on reload must keep the certificate in use.
//!
//! Every wait is bounded by [`WAIT`]; no timing is asserted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Proc, WAIT};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const DEMO_FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/demo.toml");

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A scratch folder for one test's keys, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Dir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`, `ca.key`) in `dir`.
fn make_ca(dir: &Dir) {
    let (key, cert) = (dir.path("ca.key"), dir.path("ca.pem"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=tickwire test CA",
        "-keyout",
        s(&key),
        "-out",
        s(&cert),
    ]);
}

/// A server certificate for localhost and 127.0.0.1 signed by the CA:
/// `{name}.pem` and `{name}.key`; the certificate's DER.
fn make_server_cert(dir: &Dir, name: &str) -> Vec<u8> {
    let key = dir.path(&format!("{name}.key"));
    let csr = dir.path(&format!("{name}.csr"));
    let cert = dir.path(&format!("{name}.pem"));
    let ext = dir.path(&format!("{name}.ext"));
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("ext file");
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&dir.path("ca.pem")),
        "-CAkey",
        s(&dir.path("ca.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        s(&ext),
        "-out",
        s(&cert),
    ]);
    der(&cert)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn der(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem)
        .expect("certificate PEM")
        .as_ref()
        .to_vec()
}

/// Puts `{name}.pem` / `.key` in place as `server.pem` / `server.key`,
/// each by an atomic rename so no reader sees half a file.
fn install(dir: &Dir, name: &str) {
    for ext in ["pem", "key"] {
        let tmp = dir.path(&format!("server.{ext}.tmp"));
        std::fs::copy(dir.path(&format!("{name}.{ext}")), &tmp).expect("copy");
        std::fs::rename(&tmp, dir.path(&format!("server.{ext}"))).expect("rename");
    }
}

/// `tickwire run` with TLS from `dir/server.{pem,key}` and `extra`
/// settings; its address.
fn start(name: &str, dir: &Dir, poll_ms: &str, extra: &[(&str, &str)]) -> (Proc, String) {
    let cert = dir.path("server.pem");
    let key = dir.path("server.key");
    let mut envs = vec![
        ("TICKWIRE_GATEWAY_TLS_CERT_FILE", s(&cert)),
        ("TICKWIRE_GATEWAY_TLS_KEY_FILE", s(&key)),
        ("TICKWIRE_GATEWAY_TLS_RELOAD_POLL_MS", poll_ms),
    ];
    envs.extend_from_slice(extra);
    let proc = Proc::start(
        name,
        &["run", "--listen", "127.0.0.1:0", "--feeds", DEMO_FEEDS],
        &envs,
    );
    // "tickwire serving on https://127.0.0.1:PORT (wss://127.0.0.1:PORT/v1/ws)"
    let addr = proc
        .banner
        .strip_prefix("tickwire serving on https://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name}: no https URL in {:?}", proc.banner))
        .to_string();
    (proc, addr)
}

/// A TLS connection trusting only the test CA; the stream and the DER of
/// the certificate the server presented.
async fn tls_connect(addr: &str, dir: &Dir) -> (TlsStream<TcpStream>, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(der(&dir.path("ca.pem"))))
        .expect("CA certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let connect = async {
        let tcp = TcpStream::connect(addr).await.expect("TCP connect");
        let name = ServerName::try_from("localhost").expect("server name");
        connector.connect(name, tcp).await.expect("TLS handshake")
    };
    let stream = tokio::time::timeout(WAIT, connect)
        .await
        .expect("TLS connect timed out");
    let presented = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate")
        .as_ref()
        .to_vec();
    (stream, presented)
}

/// `GET path` over https: the status and the certificate presented.
async fn https_get(addr: &str, dir: &Dir, path: &str) -> (u16, Vec<u8>) {
    let (mut stream, presented) = tls_connect(addr, dir).await;
    let fetch = async {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut resp = Vec::new();
        // A server that closes without close_notify is an error to rustls
        // after the whole response arrived; what arrived is what counts.
        let _ = stream.read_to_end(&mut resp).await;
        resp
    };
    let resp = tokio::time::timeout(WAIT, fetch).await.expect("https GET");
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: not an HTTP response: {text:?}"));
    (status, presented)
}

async fn until_ready(addr: &str, dir: &Dir) {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..1000 {
        if https_get(addr, dir, "/readyz").await.0 == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz not 200 over https"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `wss://` client subscribed to the demo's tickers; its certificate.
async fn subscriber(addr: &str, dir: &Dir) -> (Wss, Vec<u8>) {
    let (stream, presented) = tls_connect(addr, dir).await;
    let (mut ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async("wss://localhost/v1/ws", stream),
    )
    .await
    .expect("WebSocket handshake timed out")
    .expect("WebSocket handshake");
    next_of(&mut ws, "hello").await;
    let sub = json!({"op":"subscribe","id":1,"channel":"ticker","symbols":["coinbase:*"]});
    ws.send(Message::text(sub.to_string())).await.expect("send");
    next_of(&mut ws, "subscribed").await;
    (ws, presented)
}

/// Reads until a message of type `kind`, within [`WAIT`].
async fn next_of(ws: &mut Wss, kind: &str) -> Value {
    let read = async {
        for _ in 0..100_000 {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).expect("JSON");
                    if v["type"] == kind {
                        return v;
                    }
                    assert_ne!(v["type"], "error", "{v}");
                }
                Some(Ok(_)) => {}
                other => panic!("waiting for {kind}: {other:?}"),
            }
        }
        panic!("no {kind} in 100 000 messages")
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("no {kind} within {WAIT:?}"))
}

#[tokio::test]
async fn wss_and_https_with_reload_on_sighup_keeping_old_connections() {
    let dir = Dir::new("sighup");
    make_ca(&dir);
    let one = make_server_cert(&dir, "one");
    let two = make_server_cert(&dir, "two");
    install(&dir, "one");
    // No file watch within the test's time: only SIGHUP reloads.
    let (proc, addr) = start("tls-sighup", &dir, "3600000", &[]);
    until_ready(&addr, &dir).await;

    let (healthz, presented) = https_get(&addr, &dir, "/healthz").await;
    assert_eq!(healthz, 200);
    assert_eq!(presented, one, "serves the configured certificate");

    let (mut old, presented) = subscriber(&addr, &dir).await;
    assert_eq!(presented, one);
    next_of(&mut old, "ticker").await;

    // A plain (non-TLS) client gets no HTTP answer from a TLS listener.
    let mut plain = TcpStream::connect(&addr).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"), "plain HTTP was served");

    install(&dir, "two");
    proc.signal("HUP");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, presented) = https_get(&addr, &dir, "/healthz").await;
        assert_eq!(status, 200);
        if presented == two {
            break;
        }
        assert_eq!(presented, one);
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not load the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut new, presented) = subscriber(&addr, &dir).await;
    assert_eq!(presented, two, "a new wss client sees the new certificate");
    next_of(&mut new, "ticker").await;
    // The connection made before the reload goes on.
    next_of(&mut old, "ticker").await;

    // A bad certificate file: logged, and the one in use is kept.
    std::fs::write(dir.path("server.pem"), "not a certificate\n").expect("write");
    proc.signal("HUP");
    // The reload is logged once it has been tried.
    let logged = async {
        for _ in 0..1000 {
            let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
            if log.contains("TLS certificate reload failed") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, logged)
        .await
        .expect("the failed reload is logged");
    let (status, presented) = https_get(&addr, &dir, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(presented, two, "a bad file keeps the certificate in use");
    next_of(&mut old, "ticker").await;
    next_of(&mut new, "ticker").await;
    let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
    assert!(!log.contains("PRIVATE KEY"), "key material in the log");
}

#[tokio::test]
async fn a_changed_file_is_picked_up_by_the_watch() {
    let dir = Dir::new("watch");
    make_ca(&dir);
    let one = make_server_cert(&dir, "one");
    let two = make_server_cert(&dir, "two");
    install(&dir, "one");
    let (_proc, addr) = start("tls-watch", &dir, "200", &[]);
    until_ready(&addr, &dir).await;
    assert_eq!(https_get(&addr, &dir, "/healthz").await.1, one);
    // Modification times can have a coarse grain: make sure they move.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    install(&dir, "two");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if https_get(&addr, &dir, "/healthz").await.1 == two {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file watch did not load the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn silent_handshakes_time_out_and_big_messages_cross_tls_whole() {
    let dir = Dir::new("limits");
    make_ca(&dir);
    make_server_cert(&dir, "one");
    install(&dir, "one");
    let (_proc, addr) = start(
        "tls-limits",
        &dir,
        "3600000",
        &[
            ("TICKWIRE_GATEWAY_TLS_HANDSHAKE_TIMEOUT_MS", "500"),
            ("TICKWIRE_GATEWAY_ECHO_ROUTE", "true"),
            ("TICKWIRE_GATEWAY_MAX_MESSAGE_BYTES", "4194304"),
        ],
    );
    until_ready(&addr, &dir).await;

    // A client that never starts its handshake is dropped at the timeout
    // (the read ends), and holds up no one meanwhile.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    let (status, _) = https_get(&addr, &dir, "/healthz").await;
    assert_eq!(status, 200);
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(WAIT, silent.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "a silent TLS client was not dropped");
    assert!(buf.is_empty(), "nothing is sent before a handshake");

    // Messages far larger than a TLS record and rustls's buffer come back
    // whole over wss: the writer's partial writes and flushes work.
    let (stream, _) = tls_connect(&addr, &dir).await;
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async("wss://localhost/v1/echo", stream),
    )
    .await
    .expect("WebSocket handshake timed out")
    .expect("WebSocket handshake");
    let big: Vec<Vec<u8>> = (0..3u8)
        .map(|k| (0..1_000_000u32).map(|i| (i % 251) as u8 ^ k).collect())
        .collect();
    // Sent and read at once: the server stops reading while its echo is
    // unread, so a client that sends everything first could block.
    let (mut tx, mut rx) = ws.split();
    let send = async {
        for message in &big {
            tx.send(Message::binary(message.clone()))
                .await
                .expect("send");
        }
        tx.send(Message::text("done")).await.expect("send");
    };
    let receive = async {
        let mut got = Vec::new();
        for _ in 0..10_000 {
            match rx.next().await {
                Some(Ok(Message::Binary(b))) => got.push(b),
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(t.as_str(), "done");
                    return got;
                }
                Some(Ok(Message::Ping(_))) => {}
                other => panic!("waiting for the echo: {other:?}"),
            }
        }
        panic!("no end of the echo");
    };
    let ((), got) = tokio::time::timeout(WAIT, async { tokio::join!(send, receive) })
        .await
        .expect("echo over wss within WAIT");
    assert_eq!(got.len(), big.len());
    for (echoed, sent) in got.iter().zip(&big) {
        assert!(echoed[..] == sent[..], "echo differs");
    }
}
