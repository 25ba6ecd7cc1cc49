//! The conformance echo route end to end: `tickwire run` (the real
//! binary) with `gateway.echo_route` on, and a real WebSocket client
//! sending text, binary, fragmented messages and pings to `/v1/echo`,
//! which runs through the same framing and limits as `/v1/ws`. Off by
//! default: without the key the route is a 404.
//!
//! Every wait is bounded by [`WAIT`]; no timing is asserted.

mod common;

use common::{Proc, Server, WAIT, http_status};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const DEMO_FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../feeds/demo.toml");

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn start(name: &str, envs: &[(&str, &str)]) -> Server {
    Server::from(Proc::start(
        name,
        &["run", "--listen", "127.0.0.1:0", "--feeds", DEMO_FEEDS],
        envs,
    ))
}

async fn connect(server: &Server) -> Ws {
    let url = format!("ws://{}/v1/echo", server.addr);
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
        .0
}

/// The next message that is not a server heartbeat ping.
async fn next(ws: &mut Ws) -> Message {
    let read = async {
        for _ in 0..1000 {
            match ws.next().await {
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(m)) => return m,
                other => panic!("echo: {other:?}"),
            }
        }
        panic!("only pings")
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("no echo within WAIT")
}

/// The close code the server ends with (reading past anything else).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    let read = async {
        for _ in 0..1000 {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
        None
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("no close within WAIT")
}

#[tokio::test]
async fn echo_route_echoes_text_binary_fragments_and_pings() {
    let server = start(
        "echo",
        &[
            ("TICKWIRE_GATEWAY_ECHO_ROUTE", "true"),
            ("TICKWIRE_GATEWAY_MAX_MESSAGE_BYTES", "4096"),
        ],
    );
    let mut ws = connect(&server).await;

    // No hello: the first thing back is the echo.
    ws.send(Message::text("héllo")).await.expect("send");
    assert_eq!(next(&mut ws).await, Message::text("héllo"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
    // Not a request: a subscribe is echoed, not answered.
    let subscribe = r#"{"op":"subscribe","id":1,"channel":"ticker","symbols":["coinbase:*"]}"#;
    ws.send(Message::text(subscribe)).await.expect("send");
    assert_eq!(next(&mut ws).await, Message::text(subscribe));

    // A message in three fragments, with a ping between them.
    let parts: [(&str, OpCode, bool); 3] = [
        ("frag", OpCode::Data(Data::Text), false),
        ("ment", OpCode::Data(Data::Continue), false),
        ("ed", OpCode::Data(Data::Continue), true),
    ];
    for (i, (part, op, fin)) in parts.into_iter().enumerate() {
        ws.send(Message::Frame(Frame::message(part, op, fin)))
            .await
            .expect("send fragment");
        if i == 1 {
            ws.send(Message::Ping("p".into())).await.expect("ping");
        }
    }
    assert_eq!(next(&mut ws).await, Message::Pong("p".into()));
    assert_eq!(next(&mut ws).await, Message::text("fragmented"));
    let parts: [(&[u8], OpCode, bool); 2] = [
        (&[1, 2], OpCode::Data(Data::Binary), false),
        (&[3], OpCode::Data(Data::Continue), true),
    ];
    for (part, op, fin) in parts {
        ws.send(Message::Frame(Frame::message(part.to_vec(), op, fin)))
            .await
            .expect("send fragment");
    }
    assert_eq!(next(&mut ws).await, Message::binary(vec![1u8, 2, 3]));

    // The same limits as /v1/ws: too big closes with 1009.
    ws.send(Message::binary(vec![7u8; 5000]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, Some(1009));

    // Text that is not UTF-8 closes with 1007.
    let mut ws = connect(&server).await;
    let bad = Frame::message(vec![0xffu8, 0xfe], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).await.expect("send");
    assert_eq!(close_code(&mut ws).await, Some(1007));

    // A clean close is answered with the client's code.
    let mut ws = connect(&server).await;
    ws.close(None).await.expect("close");
    assert_eq!(close_code(&mut ws).await, None);
}

#[tokio::test]
async fn echo_route_is_off_by_default() {
    let server = start("echo-off", &[]);
    assert_eq!(http_status(&server.addr, "/v1/echo").await, Some(404));
    assert_eq!(http_status(&server.addr, "/healthz").await, Some(200));
}
