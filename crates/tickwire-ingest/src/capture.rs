//! Capture files: a venue session as JSON lines, raw frames kept byte for
//! byte. The first line is a header naming the venue, its instruments
//! (venue name → canonical) and whether the capture is synthetic; every
//! other line is one frame with its receive time:
//!
//! ```text
//! {"tickwire_capture":1,"venue":"binance","synthetic":true,"note":"...","instruments":[["BTCUSDT","binance:BTC-USDT"]]}
//! {"rx":1730419200123456,"frame":{"e":"trade","E":1730419200123,...}}
//! {"rx":1730419200124000,"text":"pong"}
//! {"rx":1730419200125000,"rest":"/api/v3/depth?symbol=BTCUSDT&limit=5000","frame":{"lastUpdateId":...}}
//! ```
//!
//! A JSON frame is embedded as is (`frame`), so trailing zeros, number
//! text and key order survive; a frame that is not JSON (OKX's `pong`) is
//! a string (`text`). `rest` marks the body of a REST snapshot rather
//! than a WebSocket frame.

use std::io::Write;

use serde::Deserialize;
use serde_json::value::RawValue;
use tickwire_model::Instrument;

use crate::feed::{FeedInstrument, VenueKind};

/// The format version written in headers.
pub const VERSION: u32 = 1;

/// What a capture is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureHeader {
    /// The venue whose frames these are.
    pub venue: VenueKind,
    /// Whether the frames were generated rather than recorded.
    pub synthetic: bool,
    /// Free text: how it was made.
    pub note: String,
    /// The instruments, venue name to canonical.
    pub instruments: Vec<FeedInstrument>,
}

/// Where one captured frame came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A WebSocket text frame.
    Ws,
    /// The body of a REST GET of this path and query.
    Rest(String),
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFrame {
    /// Receive time, µs since the Unix epoch.
    pub rx: u64,
    /// WebSocket or REST.
    pub source: Source,
    /// The frame's text, exactly as received.
    pub text: String,
}

/// A whole capture in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// The header.
    pub header: CaptureHeader,
    /// The frames, in receive order.
    pub frames: Vec<CaptureFrame>,
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error("cannot read the capture: {0}")]
    Io(#[from] std::io::Error),
    /// The first line is not a tickwire capture header.
    #[error("line 1: not a tickwire capture header: {0}")]
    Header(String),
    /// A frame line that does not parse.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct HeaderLine {
    tickwire_capture: u32,
    venue: String,
    #[serde(default)]
    synthetic: bool,
    #[serde(default)]
    note: String,
    instruments: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct FrameLine<'a> {
    rx: u64,
    #[serde(borrow)]
    frame: Option<&'a RawValue>,
    text: Option<String>,
    rest: Option<String>,
}

impl CaptureHeader {
    /// The header line (without newline).
    pub fn to_line(&self) -> String {
        let instruments: Vec<(String, String)> = self
            .instruments
            .iter()
            .map(|i| (i.native.clone(), i.instrument.to_string()))
            .collect();
        serde_json::json!({
            "tickwire_capture": VERSION,
            "venue": self.venue.name(),
            "synthetic": self.synthetic,
            "note": self.note,
            "instruments": instruments,
        })
        .to_string()
    }

    fn parse(line: &str) -> Result<Self, CaptureError> {
        let h: HeaderLine =
            serde_json::from_str(line).map_err(|e| CaptureError::Header(e.to_string()))?;
        if h.tickwire_capture != VERSION {
            return Err(CaptureError::Header(format!(
                "version {} (this build reads {VERSION})",
                h.tickwire_capture
            )));
        }
        let venue = VenueKind::from_name(&h.venue)
            .ok_or_else(|| CaptureError::Header(format!("unknown venue {:?}", h.venue)))?;
        let instruments = h
            .instruments
            .into_iter()
            .map(|(native, symbol)| {
                Instrument::parse(&symbol)
                    .map(|instrument| FeedInstrument { native, instrument })
                    .map_err(|e| CaptureError::Header(format!("instrument {symbol:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            venue,
            synthetic: h.synthetic,
            note: h.note,
            instruments,
        })
    }
}

impl CaptureFrame {
    /// The frame's line (without newline): embedded verbatim when it is
    /// JSON, as a string otherwise.
    pub fn to_line(&self) -> String {
        let is_json = serde_json::from_str::<&RawValue>(&self.text).is_ok()
            && !self.text.starts_with(char::is_whitespace)
            && !self.text.ends_with(char::is_whitespace)
            && !self.text.contains('\n');
        let mut line = format!("{{\"rx\":{}", self.rx);
        if let Source::Rest(path) = &self.source {
            line.push_str(",\"rest\":");
            line.push_str(&serde_json::Value::from(path.as_str()).to_string());
        }
        if is_json {
            line.push_str(",\"frame\":");
            line.push_str(&self.text);
        } else {
            line.push_str(",\"text\":");
            line.push_str(&serde_json::Value::from(self.text.as_str()).to_string());
        }
        line.push('}');
        line
    }

    /// Parses one frame line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let l: FrameLine<'_> = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let text = match (l.frame, l.text) {
            (Some(raw), None) => raw.get().to_owned(),
            (None, Some(text)) => text,
            _ => return Err("a frame line holds exactly one of `frame` and `text`".into()),
        };
        Ok(Self {
            rx: l.rx,
            source: l.rest.map_or(Source::Ws, Source::Rest),
            text,
        })
    }
}

impl Capture {
    /// Parses a whole capture. Blank lines are skipped; any other bad line
    /// is an error naming its number.
    pub fn parse(text: &str) -> Result<Self, CaptureError> {
        let mut lines = text.lines().enumerate();
        let header = loop {
            match lines.next() {
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((_, l)) => break CaptureHeader::parse(l)?,
                None => return Err(CaptureError::Header("the file is empty".into())),
            }
        };
        let mut frames = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let frame = CaptureFrame::parse(line).map_err(|reason| CaptureError::Line {
                line: i + 1,
                reason,
            })?;
            frames.push(frame);
        }
        Ok(Self { header, frames })
    }

    /// Reads and parses a capture file.
    pub fn load(path: &std::path::Path) -> Result<Self, CaptureError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    /// The whole capture as text, one line each, newline-terminated.
    pub fn to_text(&self) -> String {
        let mut out = self.header.to_line();
        out.push('\n');
        for f in &self.frames {
            out.push_str(&f.to_line());
            out.push('\n');
        }
        out
    }
}

/// Writes a capture line by line as frames arrive (`tickwire record`).
pub struct CaptureWriter<W: Write> {
    out: W,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture: writes the header.
    pub fn new(mut out: W, header: &CaptureHeader) -> std::io::Result<Self> {
        writeln!(out, "{}", header.to_line())?;
        Ok(Self { out })
    }

    /// Appends one frame.
    pub fn write(&mut self, frame: &CaptureFrame) -> std::io::Result<()> {
        writeln!(self.out, "{}", frame.to_line())
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_byte_for_byte() {
        let header = CaptureHeader {
            venue: VenueKind::Kraken,
            synthetic: true,
            note: "synthetic: test".into(),
            instruments: vec![FeedInstrument {
                native: "BTC/USD".into(),
                instrument: Instrument::parse("kraken:BTC-USD").expect("instrument"),
            }],
        };
        let frames = vec![
            CaptureFrame {
                rx: 1,
                source: Source::Ws,
                text: r#"{"channel":"book","data":[{"price":0.10000000,"qty":1.50}],"a":"é\"x"}"#
                    .into(),
            },
            CaptureFrame {
                rx: 2,
                source: Source::Ws,
                text: "pong".into(),
            },
            CaptureFrame {
                rx: 3,
                source: Source::Rest("/api/v3/depth?symbol=BTCUSDT&limit=5000".into()),
                text: r#"{"lastUpdateId":5,"bids":[["1.00","2.000"]],"asks":[]}"#.into(),
            },
            CaptureFrame {
                rx: 4,
                source: Source::Ws,
                text: "{\"not\": json".into(),
            },
            CaptureFrame {
                rx: 5,
                source: Source::Ws,
                text: " {\"a\":1}".into(),
            },
        ];
        let capture = Capture { header, frames };
        let text = capture.to_text();
        assert!(
            text.contains(r#""frame":{"channel":"book","data":[{"price":0.10000000,"qty":1.50}]"#)
        );
        assert_eq!(Capture::parse(&text).expect("parse"), capture);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Capture::parse("").expect_err("empty");
        assert!(matches!(e, CaptureError::Header(_)));
        let e = Capture::parse("{\"x\":1}\n").expect_err("header");
        assert!(matches!(e, CaptureError::Header(_)), "{e}");
        let head =
            r#"{"tickwire_capture":1,"venue":"okx","instruments":[["BTC-USDT","okx:BTC-USDT"]]}"#;
        let e = Capture::parse(&format!("{head}\n{{\"rx\":1,\"frame\":{{}}}}\nnope\n"))
            .expect_err("line 3");
        assert!(matches!(e, CaptureError::Line { line: 3, .. }), "{e}");
        let e = Capture::parse(&format!("{head}\n{{\"rx\":1}}\n")).expect_err("no frame");
        assert!(matches!(e, CaptureError::Line { line: 2, .. }), "{e}");
        let e = Capture::parse(r#"{"tickwire_capture":1,"venue":"nasdaq","instruments":[]}"#)
            .expect_err("venue");
        assert!(e.to_string().contains("nasdaq"), "{e}");
    }
}
