//! The server side of WebSocket framing (RFC 6455) after the handshake: a
//! sync decoder for client frames and encoders for server frames.
//!
//! Our own rather than tungstenite's stream because of memory: tungstenite
//! keeps a read buffer, a write buffer and a split lock per connection for
//! as long as it lives, about 1.2 KiB of an idle client even when sized
//! small. Here a connection holds bytes only while a frame is partly
//! received; reads and writes go through per-thread scratch buffers.
//! No extensions are negotiated, so every RSV bit must be clear.

/// What the client sent, one complete message or control frame at a time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A whole text message (fragments joined), valid UTF-8.
    Text(Vec<u8>),
    /// A whole binary message (only the echo route uses its content).
    Binary(Vec<u8>),
    /// A ping, with the payload the pong must echo.
    Ping(Vec<u8>),
    /// A pong (an answer to our heartbeat).
    Pong,
    /// A close frame, with the client's status code if it gave one.
    Close(Option<u16>),
}

/// Why the client's bytes cannot be a WebSocket conversation; each closes
/// the connection with its own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// Broken framing: unmasked, reserved bits or opcodes, bad control
    /// frames, bad fragmentation (1002).
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8 (1007).
    InvalidUtf8,
    /// A frame or message over the size limit (1009).
    TooBig,
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Decodes client frames from the bytes received so far.
///
/// Holds nothing between messages: `buf` is freed whenever every received
/// byte has been decoded, so an idle connection owns no buffer.
#[derive(Default, Debug)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Decoded up to here.
    pos: usize,
    /// An unfinished fragmented message: whether it is text, and its bytes.
    partial: Option<(bool, Vec<u8>)>,
}

impl Decoder {
    /// Appends received bytes.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether undecoded bytes are held (a partial frame, or frames not
    /// yet asked for).
    pub(crate) fn has_pending(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Whether nothing at all is held: no bytes, no unfinished message.
    pub(crate) fn is_empty(&self) -> bool {
        !self.has_pending() && self.partial.is_none()
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    /// `max` bounds a frame's payload and a whole message, so a huge
    /// declared length is refused before its bytes arrive.
    pub(crate) fn next(&mut self, max: usize) -> Result<Option<Event>, Violation> {
        loop {
            let Some((head, len)) = parse_header(&self.buf[self.pos..])? else {
                self.release();
                return Ok(None);
            };
            if len > max as u64 {
                return Err(Violation::TooBig);
            }
            let len = len as usize;
            let start = self.pos + head.size;
            if self.buf.len() - start < len {
                self.release();
                return Ok(None);
            }
            self.pos = start + len;
            let payload = &mut self.buf[start..start + len];
            unmask(payload, head.mask);
            if let Some(event) = self.frame(head.fin, head.opcode, start, len, max)? {
                if !self.has_pending() {
                    self.release();
                }
                return Ok(Some(event));
            }
        }
    }

    /// Turns one unmasked frame into an event, or accumulates a fragment.
    fn frame(
        &mut self,
        fin: bool,
        opcode: u8,
        start: usize,
        len: usize,
        max: usize,
    ) -> Result<Option<Event>, Violation> {
        let payload = &self.buf[start..start + len];
        match opcode {
            OP_PING => Ok(Some(Event::Ping(payload.to_vec()))),
            OP_PONG => Ok(Some(Event::Pong)),
            OP_CLOSE => close_event(payload).map(Some),
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(Violation::Protocol(
                        "a new message began inside a fragmented one",
                    ));
                }
                let text = opcode == OP_TEXT;
                if fin {
                    return message(text, payload.to_vec()).map(Some);
                }
                self.partial = Some((text, payload.to_vec()));
                Ok(None)
            }
            OP_CONTINUATION => {
                let Some((text, data)) = self.partial.as_mut() else {
                    return Err(Violation::Protocol("continuation without a message"));
                };
                if data.len() + payload.len() > max {
                    return Err(Violation::TooBig);
                }
                data.extend_from_slice(payload);
                let text = *text;
                if !fin {
                    return Ok(None);
                }
                let (_, data) = self.partial.take().unwrap_or_default();
                message(text, data).map(Some)
            }
            _ => Err(Violation::Protocol("reserved opcode")),
        }
    }

    /// Frees the buffer once everything in it has been decoded, and drops
    /// what was decoded from the front of a partly decoded one.
    fn release(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

fn message(text: bool, data: Vec<u8>) -> Result<Event, Violation> {
    if !text {
        return Ok(Event::Binary(data));
    }
    if std::str::from_utf8(&data).is_err() {
        return Err(Violation::InvalidUtf8);
    }
    Ok(Event::Text(data))
}

fn close_event(payload: &[u8]) -> Result<Event, Violation> {
    match payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(Violation::Protocol("a close payload of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !valid_close_code(code) {
                return Err(Violation::Protocol("an invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation::InvalidUtf8);
            }
            Ok(Event::Close(Some(code)))
        }
    }
}

/// Codes a peer may send (RFC 6455 7.4; 1004-1006 and 1015 are reserved,
/// 1012-1014 are registered since).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header bytes, extended length and mask included.
    size: usize,
}

/// Parses a client frame header; `Ok(None)` when it is not all here yet.
fn parse_header(b: &[u8]) -> Result<Option<(Header, u64)>, Violation> {
    let [first, second, rest @ ..] = b else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(Violation::Protocol("reserved bits set"));
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    if second & 0x80 == 0 {
        return Err(Violation::Protocol("client frames must be masked"));
    }
    let (len, ext) = match second & 0x7F {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(Violation::Protocol("frame length with the top bit set"));
                }
                (len, 8)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    if opcode & 0x8 != 0 && (!fin || len > 125) {
        return Err(Violation::Protocol(
            "control frames must be final and at most 125 bytes",
        ));
    }
    let Some(mask) = rest.get(ext..ext + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    Ok(Some((
        Header {
            fin,
            opcode,
            mask,
            size: 2 + ext + 4,
        },
        len,
    )))
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i];
    }
}

/// Appends the header of a final, unmasked server frame.
fn header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a text frame whose payload is `parts` joined by newlines.
pub(crate) fn text_joined<'a>(out: &mut Vec<u8>, parts: impl Iterator<Item = &'a str> + Clone) {
    let len = parts
        .clone()
        .enumerate()
        .map(|(i, p)| p.len() + usize::from(i > 0))
        .sum();
    header(out, OP_TEXT, len);
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends a text frame.
pub(crate) fn text(out: &mut Vec<u8>, payload: &str) {
    header(out, OP_TEXT, payload.len());
    out.extend_from_slice(payload.as_bytes());
}

/// Appends a binary frame.
pub(crate) fn binary(out: &mut Vec<u8>, payload: &[u8]) {
    header(out, OP_BINARY, payload.len());
    out.extend_from_slice(payload);
}

/// Appends an empty ping (the heartbeat).
pub(crate) fn ping(out: &mut Vec<u8>) {
    header(out, OP_PING, 0);
}

/// Appends the pong answering a ping's payload (at most 125 bytes, as the
/// decoder enforced).
pub(crate) fn pong(out: &mut Vec<u8>, payload: &[u8]) {
    header(out, OP_PONG, payload.len());
    out.extend_from_slice(payload);
}

/// Appends a close frame, with a code and reason or empty.
pub(crate) fn close(out: &mut Vec<u8>, code: Option<(u16, &str)>) {
    match code {
        Some((code, reason)) => {
            // Control payloads are at most 125 bytes.
            let reason = &reason.as_bytes()[..reason.len().min(123)];
            header(out, OP_CLOSE, 2 + reason.len());
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(reason);
        }
        None => header(out, OP_CLOSE, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    /// A client frame: masked with a fixed key.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
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

    fn decode_all(bytes: &[u8]) -> Result<Vec<Event>, Violation> {
        let mut d = Decoder::default();
        d.extend(bytes);
        let mut events = Vec::new();
        while let Some(e) = d.next(MAX)? {
            events.push(e);
        }
        Ok(events)
    }

    #[test]
    fn the_rfc_example_masked_hello_decodes() {
        // RFC 6455 5.7: a single-frame masked text message "Hello".
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode_all(&bytes), Ok(vec![Event::Text(b"Hello".to_vec())]));
    }

    #[test]
    fn every_kind_of_frame_becomes_its_event() {
        let mut bytes = frame(0x81, b"{\"op\":\"ping\"}");
        bytes.extend(frame(0x82, &[0, 1, 2]));
        bytes.extend(frame(0x89, b"hi"));
        bytes.extend(frame(0x8A, b""));
        bytes.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k']));
        bytes.extend(frame(0x88, b""));
        assert_eq!(
            decode_all(&bytes),
            Ok(vec![
                Event::Text(b"{\"op\":\"ping\"}".to_vec()),
                Event::Binary(vec![0, 1, 2]),
                Event::Ping(b"hi".to_vec()),
                Event::Pong,
                Event::Close(Some(1000)),
                Event::Close(None),
            ])
        );
    }

    #[test]
    fn a_frame_split_at_every_byte_decodes_once_whole() {
        let text = "x".repeat(300); // 16-bit length form
        let bytes = frame(0x81, text.as_bytes());
        for cut in 1..bytes.len() {
            let mut d = Decoder::default();
            d.extend(&bytes[..cut]);
            assert_eq!(d.next(MAX), Ok(None), "cut at {cut}");
            assert!(d.has_pending());
            d.extend(&bytes[cut..]);
            assert_eq!(d.next(MAX), Ok(Some(Event::Text(text.as_bytes().to_vec()))));
            assert!(!d.has_pending());
            assert_eq!(d.buf.capacity(), 0, "the buffer is freed once decoded");
        }
    }

    #[test]
    fn the_64_bit_length_form_decodes() {
        let text = "y".repeat(70_000);
        assert_eq!(
            decode_all(&frame(0x81, text.as_bytes())),
            Ok(vec![Event::Text(text.into_bytes())])
        );
    }

    #[test]
    fn fragments_join_and_control_frames_may_come_between_them() {
        let mut bytes = frame(0x01, b"{\"op\":");
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x00, b"\"pi"));
        bytes.extend(frame(0x80, b"ng\"}"));
        assert_eq!(
            decode_all(&bytes),
            Ok(vec![
                Event::Ping(b"p".to_vec()),
                Event::Text(b"{\"op\":\"ping\"}".to_vec())
            ])
        );
    }

    #[test]
    fn utf8_split_across_fragments_is_valid() {
        let euro = "€".as_bytes();
        let mut bytes = frame(0x01, &euro[..1]);
        bytes.extend(frame(0x80, &euro[1..]));
        assert_eq!(decode_all(&bytes), Ok(vec![Event::Text(euro.to_vec())]));
    }

    #[test]
    fn broken_framing_is_a_protocol_violation() {
        let unmasked = vec![0x81, 0x02, b'h', b'i'];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unmasked", unmasked),
            ("rsv1", frame(0xC1, b"hi")),
            ("rsv3", frame(0x91, b"hi")),
            ("reserved data opcode", frame(0x83, b"")),
            ("reserved control opcode", frame(0x8B, b"")),
            ("fragmented ping", frame(0x09, b"")),
            ("long ping", frame(0x89, &[0; 126])),
            ("continuation first", frame(0x80, b"x")),
            ("new message inside a fragmented one", {
                let mut b = frame(0x01, b"a");
                b.extend(frame(0x81, b"b"));
                b
            }),
            ("one-byte close", frame(0x88, &[3])),
            ("close code 1005", frame(0x88, &1005u16.to_be_bytes())),
            ("close code 999", frame(0x88, &999u16.to_be_bytes())),
            ("close code 5000", frame(0x88, &5000u16.to_be_bytes())),
        ];
        for (name, bytes) in cases {
            assert!(
                matches!(decode_all(&bytes), Err(Violation::Protocol(_))),
                "{name}: {:?}",
                decode_all(&bytes)
            );
        }
    }

    #[test]
    fn invalid_utf8_in_text_or_close_reason_is_refused() {
        assert_eq!(
            decode_all(&frame(0x81, &[0xff, 0xfe])),
            Err(Violation::InvalidUtf8)
        );
        let mut fragmented = frame(0x01, &[0xce]);
        fragmented.extend(frame(0x80, &[0x41]));
        assert_eq!(decode_all(&fragmented), Err(Violation::InvalidUtf8));
        assert_eq!(
            decode_all(&frame(0x88, &[0x03, 0xe8, 0xc0, 0xaf])),
            Err(Violation::InvalidUtf8)
        );
    }

    #[test]
    fn oversized_frames_and_messages_are_refused_before_they_arrive() {
        // Only the header of a 2 GiB frame: refused at once.
        let mut d = Decoder::default();
        d.extend(&[0x81, 0x80 | 127, 0, 0, 0, 0, 0x80, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(d.next(1024), Err(Violation::TooBig));
        // Fragments that together pass the limit.
        let mut bytes = frame(0x01, &[b'a'; 600]);
        bytes.extend(frame(0x80, &[b'a'; 600]));
        let mut d = Decoder::default();
        d.extend(&bytes);
        assert_eq!(d.next(1024), Err(Violation::TooBig));
        // A length with the top bit set is malformed, not merely big.
        let mut d = Decoder::default();
        d.extend(&[0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert!(matches!(d.next(MAX), Err(Violation::Protocol(_))));
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        let mut out = Vec::new();
        text(&mut out, "hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        let mut out = Vec::new();
        text(&mut out, &"z".repeat(200));
        assert_eq!(&out[..4], &[0x81, 126, 0, 200]);
        let mut out = Vec::new();
        text(&mut out, &"z".repeat(70_000));
        assert_eq!(&out[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(out.len(), 10 + 70_000);
        let mut out = Vec::new();
        text_joined(&mut out, ["{\"a\":1}", "{\"b\":2}"].into_iter());
        assert_eq!(out, b"\x81\x0f{\"a\":1}\n{\"b\":2}");
        let mut out = Vec::new();
        ping(&mut out);
        pong(&mut out, b"hi");
        close(&mut out, Some((4008, "slow consumer")));
        close(&mut out, None);
        let mut expected = vec![0x89, 0, 0x8A, 2, b'h', b'i', 0x88, 15, 0x0f, 0xa8];
        expected.extend_from_slice(b"slow consumer");
        expected.extend_from_slice(&[0x88, 0]);
        assert_eq!(out, expected);
    }
}
