//! The venue adapter seam: one synchronous protocol state machine per venue
//! connection. It builds the subscribe frames, turns each received frame
//! into canonical events, keeps the order books, and asks its async shell
//! (the feed runner, the replayer, `tickwire normalize`) for what it cannot
//! do itself: send a frame, fetch a REST snapshot, rotate the connection.

use std::time::Duration;

use tickwire_model::{Channel, Event, Instrument};

use crate::feed::VenueFeed;

/// One venue connection's protocol logic. Pure and synchronous: time comes
/// in as arguments, nothing here touches a socket or the clock.
///
/// Ordering: the shell calls [`Adapter::subscribe`] once after connecting,
/// then [`Adapter::on_text`] for every text frame in the order received,
/// and [`Adapter::on_rest`] when a snapshot it asked for arrives (between
/// two frames). A fresh adapter is made for every connection: state never
/// crosses a reconnect.
pub trait Adapter: Send {
    /// The frames to send once connected, in order. The shell paces them by
    /// [`Limits::messages_per_sec`].
    fn subscribe(&mut self) -> Vec<String>;

    /// Handles one text frame received at `rx` (µs since the Unix epoch),
    /// appending what it produced to `out`. An error means the frame was
    /// skipped: nothing of it reached `out`, and the adapter's state is
    /// as it was before (a book that depended on it is marked broken).
    fn on_text(&mut self, frame: &str, rx: u64, out: &mut Output) -> Result<(), FrameError>;

    /// Handles the body of a REST snapshot asked for with
    /// [`Action::Fetch`], received at `rx`. `Err` means the body was not
    /// usable; the adapter has already asked again or marked the book
    /// broken.
    fn on_rest(
        &mut self,
        instrument: &Instrument,
        body: &str,
        rx: u64,
        out: &mut Output,
    ) -> Result<(), FrameError> {
        let _ = (instrument, body, rx, out);
        Ok(())
    }

    /// The application-level keepalive frame to send when nothing was sent
    /// for [`Limits::keepalive`] (OKX `ping`, Bybit `{"op":"ping"}`);
    /// `None` for venues that use WebSocket ping frames or send their own
    /// heartbeats.
    fn keepalive(&mut self) -> Option<String> {
        None
    }
}

/// What one venue allows and expects of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Frames the client may send per second (Binance: 5).
    pub messages_per_sec: u32,
    /// Streams (instrument × venue channel) one connection may carry
    /// (Binance: 1024); the runner splits a feed over several connections
    /// beyond it.
    pub max_streams: usize,
    /// Venue streams one canonical instrument takes with every channel on,
    /// to size the split.
    pub streams_per_instrument: usize,
    /// A connection silent for this long is dead (no frame at all: data,
    /// heartbeat or pong).
    pub silence: Duration,
    /// How often to send [`Adapter::keepalive`] when idle.
    pub keepalive: Duration,
    /// The venue's forced cutoff of a connection (Binance: 24 h), if any;
    /// the runner rotates before it.
    pub max_lifetime: Option<Duration>,
}

/// What an adapter produced from one frame.
#[derive(Debug, Default)]
pub struct Output {
    /// Canonical events, in venue order.
    pub events: Vec<Event>,
    /// Book consistency changes: an instrument's book became usable
    /// (`None`) or broken (`Some(reason)`, e.g. `sequence_gap`,
    /// `checksum_mismatch`, `crossed_book`).
    pub books: Vec<(Instrument, Option<&'static str>)>,
    /// Requests to the shell.
    pub actions: Vec<Action>,
    /// Frames that produced no event, by kind, for metrics and logs.
    pub notes: Vec<Note>,
}

impl Output {
    /// Empties every list, keeping their capacity.
    pub fn clear(&mut self) {
        self.events.clear();
        self.books.clear();
        self.actions.clear();
        self.notes.clear();
    }

    /// Runs one frame's handling; if it fails, drops the events and notes
    /// it added: nothing of a skipped frame is published, while the book
    /// breaks and resync requests it caused stay.
    pub fn all_or_nothing(
        &mut self,
        handle: impl FnOnce(&mut Output) -> Result<(), FrameError>,
    ) -> Result<(), FrameError> {
        let (events, notes) = (self.events.len(), self.notes.len());
        let result = handle(self);
        if result.is_err() {
            self.events.truncate(events);
            self.notes.truncate(notes);
        }
        result
    }

    /// Whether nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.books.is_empty()
            && self.actions.is_empty()
            && self.notes.is_empty()
    }
}

/// A request from an adapter to its shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this text frame (a resubscribe after a broken book, a pong).
    Send(String),
    /// Fetch a REST snapshot: GET `path` (with query) on the feed's
    /// `rest_url`, and hand the body to [`Adapter::on_rest`].
    Fetch {
        /// The instrument the snapshot is for.
        instrument: Instrument,
        /// Path and query, e.g. `/api/v3/depth?symbol=BTCUSDT&limit=5000`.
        path: String,
    },
    /// The venue announced it will close this connection (Binance
    /// `serverShutdown`): open a replacement now and switch over.
    Rotate,
}

/// A frame that produced no canonical event, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A subscription was confirmed.
    Ack,
    /// The venue refused a subscription: the instrument's native name (or
    /// the channel when the venue does not say) and the venue's reason.
    Rejected {
        /// The canonical instrument, when the reply names one we know.
        instrument: Option<Instrument>,
        /// The venue's words.
        reason: String,
    },
    /// A venue heartbeat or status frame.
    Heartbeat,
    /// The answer to our keepalive.
    Pong,
    /// A well-formed frame of a type we do not use (ignored, counted).
    Unknown,
    /// A stale or duplicate book message that the sync rules drop.
    Stale,
}

impl Note {
    /// The metric label of this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Note::Ack => "ack",
            Note::Rejected { .. } => "rejected",
            Note::Heartbeat => "heartbeat",
            Note::Pong => "pong",
            Note::Unknown => "unknown",
            Note::Stale => "stale",
        }
    }
}

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON (or not the JSON shape of any message this venue sends).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A message of a known type lacks a field or has it with the wrong type.
    #[error("`{0}` missing or of the wrong type")]
    Field(&'static str),
    /// A price, size or number that is not an exact decimal.
    #[error("`{field}` is not a decimal: {text:?}")]
    Decimal {
        /// The field.
        field: &'static str,
        /// Its text.
        text: String,
    },
    /// A timestamp that does not parse.
    #[error("`{field}` is not a timestamp: {text:?}")]
    Time {
        /// The field.
        field: &'static str,
        /// Its text.
        text: String,
    },
    /// A venue instrument name that the feed definition does not map.
    #[error("instrument {0:?} is not in the feed definition")]
    UnknownInstrument(String),
}

impl FrameError {
    /// The metric label of this kind of error.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Malformed(_) => "malformed",
            FrameError::Field(_) => "field",
            FrameError::Decimal { .. } => "decimal",
            FrameError::Time { .. } => "time",
            FrameError::UnknownInstrument(_) => "unknown_instrument",
        }
    }
}

/// The canonical channels a feed subscribes, in [`Channel::ALL`] order.
pub fn wants(feed: &VenueFeed, channel: Channel) -> bool {
    feed.channels.contains(&channel)
}

/// Microseconds since the Unix epoch of an RFC 3339 UTC time
/// (`2023-10-06T17:35:55.440295Z`, also with a `+00:00` offset or a space
/// instead of `T`); fractions beyond µs are truncated. `None` if it does
/// not parse.
pub fn parse_rfc3339_us(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = b.get(r)?;
        let mut v = 0u64;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
        }
        Some(v)
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    match &b[i..] {
        b"Z" | b"+00:00" | b"z" => {}
        _ => return None,
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), for dates from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// An exact decimal from a venue's text (scale kept), or the
/// [`FrameError::Decimal`] naming the field.
pub fn decimal(field: &'static str, text: &str) -> Result<rust_decimal::Decimal, FrameError> {
    tickwire_model::parse_decimal(text).map_err(|_| FrameError::Decimal {
        field,
        text: text.to_owned(),
    })
}

/// Microseconds from integer milliseconds (Binance `E`, Bybit `ts`).
pub fn ms_to_us(ms: u64) -> u64 {
    ms.saturating_mul(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_us("2023-10-06T17:35:55.440295Z"),
            Some(1_696_613_755_440_295)
        );
        assert_eq!(
            parse_rfc3339_us("2023-02-09T20:32:50.714964855Z"),
            Some(1_675_974_770_714_964)
        );
        assert_eq!(
            parse_rfc3339_us("2022-10-19T23:28:22.061Z"),
            Some(1_666_222_102_061_000)
        );
        assert_eq!(
            parse_rfc3339_us("2024-02-29T00:00:00+00:00"),
            Some(1_709_164_800_000_000)
        );
        for bad in [
            "",
            "2023-10-06",
            "2023-13-06T17:35:55Z",
            "2023-10-06T17:35:55",
            "2023-10-06T17:35:55.Z",
            "2023-10-06T17:35:55+02:00",
            "1969-12-31T23:59:59Z",
            "2023-1x-06T17:35:55Z",
        ] {
            assert_eq!(parse_rfc3339_us(bad), None, "{bad}");
        }
    }
}
