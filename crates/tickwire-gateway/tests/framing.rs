//! WebSocket framing over a real socket: the gateway's own frame codec
//! against a real client (tokio-tungstenite) and against hand-made bytes
//! for what no well-behaved client sends: heartbeats, pings, fragments,
//! client closes, protocol violations and a request pipelined with the
//! handshake.

mod common;

use std::time::Duration;

use common::{Client, Server, WAIT};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tickwire_gateway::GatewayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// The next message of any kind, within the wait.
async fn next_message(c: &mut Client) -> Message {
    tokio::time::timeout(WAIT, c.ws.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("ok")
}

#[tokio::test]
async fn an_idle_client_gets_heartbeat_pings_and_stays_connected() {
    let server = Server::start(GatewayConfig {
        heartbeat_ms: 200,
        ..GatewayConfig::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let mut pings = 0;
    while pings < 3 {
        match next_message(&mut c).await {
            Message::Ping(payload) => {
                assert!(payload.is_empty(), "heartbeat pings carry nothing");
                pings += 1;
            }
            other => panic!("an idle client gets only pings, got {other:?}"),
        }
    }
    // Still open and served (the client answered each ping with a pong).
    c.send(json!({"op":"ping","id":7})).await;
    let pong = c.recv().await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_u64()),
        (Some("pong"), Some(7))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_busy_client_gets_no_heartbeat_pings() {
    let server = Server::start(GatewayConfig {
        heartbeat_ms: 300,
        ..GatewayConfig::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    // A request every 100 ms keeps the server writing to this client.
    for round in 0..15 {
        c.send(json!({"op":"ping","id":round})).await;
        match next_message(&mut c).await {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                assert_eq!(v["id"], round);
            }
            other => panic!("no heartbeat while the client is written to: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_ping_gets_a_pong_with_its_payload() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    c.send_raw(Message::Ping(b"are you there".to_vec().into()))
        .await;
    assert_eq!(
        next_message(&mut c).await,
        Message::Pong(b"are you there".to_vec().into())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_request_sent_in_fragments_is_answered() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    let text = json!({"op":"ping","id":"frag"}).to_string();
    let (a, b) = text.as_bytes().split_at(7);
    let (b, d) = b.split_at(5);
    let frames = [
        Frame::message(a.to_vec(), OpCode::Data(Data::Text), false),
        Frame::message(b.to_vec(), OpCode::Data(Data::Continue), false),
        Frame::message(d.to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for f in frames {
        c.send_raw(Message::Frame(f)).await;
    }
    let pong = c.recv().await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("frag"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_close_is_echoed_with_its_code() {
    let server = Server::start(GatewayConfig::default()).await;
    let mut c = Client::connect(&server).await;
    c.ws.close(Some(CloseFrame {
        code: CloseCode::Library(4321),
        reason: "bye".into(),
    }))
    .await
    .expect("close");
    assert_eq!(c.closed_with().await, 4321);
    server
        .until("the connection is gone", |g| {
            g.shard_loads().iter().sum::<usize>() == 0
        })
        .await;
    server.stop().await;
}

/// A WebSocket handshake by hand; `extra` goes in the same write, right
/// after the request head.
async fn raw_connect(server: &Server, extra: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let mut req = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    )
    .into_bytes();
    req.extend_from_slice(extra);
    s.write_all(&req).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, s.read_exact(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and accept value.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1, 2, 3, 4];
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads server frames until a close frame; returns the frames' opcodes
/// and text payloads before it, and the close code.
async fn read_until_close(s: &mut TcpStream) -> (Vec<String>, u16) {
    let mut texts = Vec::new();
    loop {
        let mut head = [0u8; 2];
        tokio::time::timeout(WAIT, s.read_exact(&mut head))
            .await
            .expect("frame in time")
            .expect("read");
        assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
        let len = match head[1] & 0x7F {
            126 => usize::from(s.read_u16().await.expect("len")),
            127 => usize::try_from(s.read_u64().await.expect("len")).expect("len"),
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.expect("payload");
        match head[0] {
            0x81 => texts.push(String::from_utf8(payload).expect("utf-8")),
            0x88 => return (texts, u16::from_be_bytes([payload[0], payload[1]])),
            0x89 | 0x8A => {}
            other => panic!("unexpected frame type {other:#x}"),
        }
    }
}

#[tokio::test]
async fn a_request_sent_with_the_handshake_is_answered() {
    let server = Server::start(GatewayConfig::default()).await;
    let request = client_frame(0x81, br#"{"op":"ping","id":"early"}"#);
    let mut s = raw_connect(&server, &request).await;
    // Then a close, so the reading below ends.
    s.write_all(&client_frame(0x88, &1000u16.to_be_bytes()))
        .await
        .expect("close");
    let (texts, code) = read_until_close(&mut s).await;
    assert_eq!(code, 1000, "the client's close is echoed");
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("\"type\":\"hello\""), "{texts:?}");
    assert!(texts[1].contains("\"id\":\"early\""), "{texts:?}");
    server.stop().await;
}

#[tokio::test]
async fn broken_framing_closes_with_1002_and_bad_utf8_with_1007() {
    // After a violation the server reads and drops the client's bytes for
    // up to the close grace (these clients never close their side).
    let server = Server::start(GatewayConfig {
        close_grace_ms: 300,
        ..GatewayConfig::default()
    })
    .await;
    let unmasked = b"\x81\x02hi".to_vec();
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("unmasked", unmasked, 1002),
        ("reserved bit", client_frame(0xC1, b"{}"), 1002),
        ("reserved opcode", client_frame(0x83, b""), 1002),
        ("continuation first", client_frame(0x80, b"{}"), 1002),
        ("not utf-8", client_frame(0x81, &[0xff, 0xfe, 0xfd]), 1007),
    ];
    // A well-behaved client on the same server sees none of it.
    let mut bystander = Client::connect(&server).await;
    for (name, bytes, expected) in cases {
        let mut s = raw_connect(&server, &[]).await;
        s.write_all(&bytes).await.expect("write");
        let (_, code) = read_until_close(&mut s).await;
        assert_eq!(code, expected, "{name}");
        // The server ends the connection after its close frame, by the
        // close grace at the latest.
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
            .await
            .expect("closed in time")
            .expect("clean end of stream");
        assert!(rest.is_empty(), "{name}: nothing after the close frame");
    }
    bystander.send(json!({"op":"ping","id":1})).await;
    assert_eq!(bystander.recv().await["type"], "pong");
    server.stop().await;
}
