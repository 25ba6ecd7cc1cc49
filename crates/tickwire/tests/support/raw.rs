//! A raw WebSocket client for tests that must send what a proper client
//! never would (oversized, fragmented, invalid frames; no pongs) and see
//! exactly what the server answers: the HTTP status of a refused upgrade,
//! each frame, the close code. Every read is bounded by a deadline.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Opcodes of RFC 6455.
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame from the server.
#[derive(Debug, Clone)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// A text frame as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        (self.opcode == TEXT)
            .then(|| serde_json::from_slice(&self.payload).ok())
            .flatten()
    }
}

/// What the server did with a connection, as far as the client can see.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// A close frame with this code (0 when it had none).
    Close(u16),
    /// The socket ended (EOF or reset) without a close frame.
    Eof,
    /// Nothing within the wait.
    Timeout,
}

/// A TCP connection from `bind` (an address in 127.0.0.0/8, so tests can
/// act as several client IPs) or the default, to `addr`.
pub async fn tcp(addr: &str, bind: Option<&str>) -> std::io::Result<TcpStream> {
    let target: SocketAddr = addr.parse().expect("addr");
    match bind {
        None => TcpStream::connect(target).await,
        Some(ip) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(format!("{ip}:0").parse().expect("bind addr"))?;
            socket.connect(target).await
        }
    }
}

pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
    mask: u32,
}

/// An upgrade that did not switch protocols: the status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl Raw {
    /// Upgrades on `/v1/ws` with `extra` header lines (each ending in
    /// `\r\n`); the HTTP status and body when it is refused.
    pub async fn connect(addr: &str, bind: Option<&str>, extra: &str) -> Result<Raw, Refused> {
        let stream = tcp(addr, bind).await.map_err(|e| Refused {
            status: 0,
            body: e.to_string(),
        })?;
        Raw::upgrade(stream, addr, extra).await
    }

    /// Upgrades over a connected `stream` (see [`Raw::connect`]).
    pub async fn upgrade(mut stream: TcpStream, addr: &str, extra: &str) -> Result<Raw, Refused> {
        let req = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        );
        let io = |e: std::io::Error| Refused {
            status: 0,
            body: e.to_string(),
        };
        stream.write_all(req.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::new();
        let limit = Instant::now() + Duration::from_secs(30);
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let left = limit.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => {
                    return Err(Refused {
                        status: 0,
                        body: "no answer to the upgrade".into(),
                    });
                }
            };
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        if status != 101 {
            // The body: whatever follows, read until EOF or a short wait.
            let mut rest = buf[head_end..].to_vec();
            let mut chunk = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await
            {
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            return Err(Refused {
                status,
                body: String::from_utf8_lossy(&rest).to_string(),
            });
        }
        buf.drain(..head_end);
        Ok(Raw {
            stream,
            buf,
            mask: 0x1234_5678,
        })
    }

    /// Sends one masked frame; write errors are ignored (the server may
    /// have closed already, which the reads will show).
    pub async fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let bytes = self.encode(fin, opcode, payload);
        let _ = self.stream.write_all(&bytes).await;
    }

    /// Encodes one masked client frame.
    pub fn encode(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        self.mask = self.mask.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let mask = self.mask.to_be_bytes();
        let mut out = Vec::with_capacity(payload.len() + 14);
        out.push(if fin { 0x80 } else { 0 } | opcode);
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// A text frame.
    pub async fn text(&mut self, payload: impl AsRef<[u8]>) {
        self.send(true, TEXT, payload.as_ref()).await;
    }

    /// The next frame within `wait`; `Err` says how the wait ended.
    pub async fn next(&mut self, wait: Duration) -> Result<Frame, End> {
        let limit = Instant::now() + wait;
        loop {
            if let Some(frame) = self.parse() {
                return Ok(frame);
            }
            let mut chunk = [0u8; 16384];
            let left = limit.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(End::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(End::Eof),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until the connection ends, at most `wait`; the frames
    /// seen before and how it ended.
    pub async fn until_end(&mut self, wait: Duration) -> (Vec<Frame>, End) {
        let limit = Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Ok(frame) => {
                    if let Some(code) = frame.close_code() {
                        return (seen, End::Close(code));
                    }
                    if frame.opcode == CLOSE {
                        return (seen, End::Close(0));
                    }
                    seen.push(frame);
                }
                Err(end) => return (seen, end),
            }
        }
    }

    /// Reads until a text frame whose JSON satisfies `want`, within `wait`.
    pub async fn until_json(
        &mut self,
        wait: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, End> {
        let limit = Instant::now() + wait;
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            let frame = self.next(left).await?;
            if let Some(code) = frame.close_code() {
                return Err(End::Close(code));
            }
            if let Some(v) = frame.json() {
                if want(&v) {
                    return Ok(v);
                }
            }
        }
    }

    /// One whole unmasked server frame from the buffer, if there is one.
    fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let payload = b[at..at + len].to_vec();
        self.buf.drain(..at + len);
        Some(Frame { opcode, payload })
    }
}
