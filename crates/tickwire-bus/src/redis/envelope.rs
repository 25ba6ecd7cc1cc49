//! What the Redis bus stores and sends, as pure functions over bytes.
//!
//! An update travels as an *envelope*: an ASCII header
//! `<seq> <epoch> <ts> <rx>\n` followed by the update's wire JSON, exactly
//! the bytes ingest encoded. Decoding parses only the header and slices the
//! JSON out of the received buffer, so an update is never re-encoded.
//! Statuses and catalogue entries are short space- or comma-separated text.

use std::io::Write as _;

use bytes::Bytes;
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Epoch, Instrument, Topic, Update};

use crate::Status;

/// Longest header accepted: four fields of at most 32 characters each.
const MAX_HEADER: usize = 4 * 33;

/// Why a stored or received value was skipped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// Encodes an update's envelope: header, then the wire JSON unchanged.
pub(crate) fn encode(update: &Update) -> Vec<u8> {
    let json = update.bytes();
    let mut out = Vec::with_capacity(json.len() + 64);
    // Writing to a Vec cannot fail.
    let _infallible = writeln!(
        out,
        "{} {} {} {}",
        update.seq(),
        update.epoch(),
        update.ts(),
        update.rx()
    );
    out.extend_from_slice(json);
    out
}

/// Decodes an envelope of `topic`; the update's bytes are a slice of
/// `envelope` (no copy).
pub(crate) fn decode(topic: &Topic, envelope: Bytes) -> Result<Update, Malformed> {
    let window = &envelope[..envelope.len().min(MAX_HEADER + 1)];
    let newline = window
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Malformed("no header line"))?;
    let header = std::str::from_utf8(&window[..newline]).map_err(|_| Malformed("header"))?;
    let mut fields = header.split(' ');
    let seq = number(fields.next(), "seq")?;
    let epoch = fields
        .next()
        .and_then(|e| Epoch::new(e).ok())
        .ok_or(Malformed("epoch"))?;
    let ts = number(fields.next(), "ts")?;
    let rx = number(fields.next(), "rx")?;
    if fields.next().is_some() {
        return Err(Malformed("header has extra fields"));
    }
    if envelope.len() <= newline + 1 {
        return Err(Malformed("no update after the header"));
    }
    let json = envelope.slice(newline + 1..);
    Ok(Update::from_encoded(
        topic.clone(),
        seq,
        epoch,
        ts,
        rx,
        json,
    ))
}

fn number(field: Option<&str>, what: &'static str) -> Result<u64, Malformed> {
    field.and_then(|f| f.parse().ok()).ok_or(Malformed(what))
}

/// The status hash value: `"<state> <reason>"`.
pub(crate) fn status_value(status: &Status) -> String {
    format!("{} {}", status.state.as_str(), status.reason)
}

/// Parses a status hash entry.
pub(crate) fn parse_status(instrument: &[u8], value: &[u8]) -> Result<Status, Malformed> {
    let instrument = std::str::from_utf8(instrument)
        .ok()
        .and_then(|i| Instrument::parse(i).ok())
        .ok_or(Malformed("status instrument"))?;
    let value = std::str::from_utf8(value).map_err(|_| Malformed("status text"))?;
    let (state, reason) = value.split_once(' ').unwrap_or((value, ""));
    let state = match state {
        "live" => FeedState::Live,
        "stale" => FeedState::Stale,
        _ => return Err(Malformed("status state")),
    };
    Ok(Status {
        instrument,
        state,
        reason: reason.to_owned(),
    })
}

/// Parses a status change as published: `"<instrument> <state> <reason>"`.
pub(crate) fn parse_status_message(message: &[u8]) -> Result<Status, Malformed> {
    let space = message
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Malformed("status message"))?;
    parse_status(&message[..space], &message[space + 1..])
}

/// A catalogue hash value: channel names, comma-separated.
pub(crate) fn channels_value(channels: &[Channel]) -> String {
    let names: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
    names.join(",")
}

/// Parses a catalogue hash value into channels in [`Channel::ALL`] order.
/// Unknown names (from a newer writer) are skipped.
pub(crate) fn parse_channels(value: &[u8]) -> Vec<Channel> {
    let mut channels: Vec<Channel> = std::str::from_utf8(value)
        .unwrap_or("")
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    channels.sort();
    channels.dedup();
    channels
}

#[cfg(test)]
mod tests {
    use tickwire_model::{Event, Payload, Quote, parse_decimal};

    use super::*;

    fn update(seq: u64) -> Update {
        let d = |s: &str| parse_decimal(s).expect("decimal");
        let ev = Event {
            instrument: Instrument::parse("coinbase:BTC-USD").expect("instrument"),
            ts: 1_764_000_000_123_456,
            rx: 1_764_000_000_124_001,
            payload: Payload::Quote(Quote {
                bid: d("64000.12"),
                bid_size: d("0.51"),
                ask: d("64000.13"),
                ask_size: d("1.2"),
            }),
        };
        Update::encode(&ev, seq, &Epoch::new("k3x9").expect("epoch"))
    }

    #[test]
    fn envelope_round_trips_without_copying_the_json() {
        let u = update(1042);
        let env = Bytes::from(encode(&u));
        assert!(env.starts_with(b"1042 k3x9 1764000000123456 1764000000124001\n"));
        let back = decode(u.topic(), env.clone()).expect("decodes");
        assert_eq!(back, u);
        let json_at = env.len() - u.bytes().len();
        assert_eq!(
            back.bytes().as_ptr(),
            env[json_at..].as_ptr(),
            "the update's bytes are a slice of the envelope"
        );
    }

    #[test]
    fn malformed_envelopes_are_named() {
        let u = update(7);
        let t = u.topic();
        let cases: [(&[u8], &str); 8] = [
            (b"", "no header line"),
            (b"7 k3x9 1 2", "no header line"),
            (b"x k3x9 1 2\n{}", "seq"),
            (b"7 k3x9! 1 2\n{}", "epoch"),
            (b"7 k3x9 1\n{}", "rx"),
            (b"7 k3x9 1 2 3\n{}", "header has extra fields"),
            (b"7 k3x9 1 2\n", "no update after the header"),
            (b"7 k3x9 \xff 2\n{}", "header"),
        ];
        for (input, why) in cases {
            assert_eq!(
                decode(t, Bytes::copy_from_slice(input)),
                Err(Malformed(why)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = [b'1'; 400];
        assert_eq!(
            decode(t, Bytes::copy_from_slice(&long)),
            Err(Malformed("no header line"))
        );
    }

    #[test]
    fn statuses_round_trip() {
        let inst = Instrument::parse("kraken:BTC-USD").expect("instrument");
        for (state, reason) in [
            (FeedState::Stale, "feed_disconnected"),
            (FeedState::Live, ""),
            (FeedState::Stale, "a reason with spaces"),
        ] {
            let s = Status {
                instrument: inst.clone(),
                state,
                reason: reason.into(),
            };
            let value = status_value(&s);
            assert_eq!(
                parse_status(b"kraken:BTC-USD", value.as_bytes()),
                Ok(s.clone())
            );
            let message = format!("kraken:BTC-USD {value}");
            assert_eq!(parse_status_message(message.as_bytes()), Ok(s));
        }
        assert_eq!(
            parse_status(b"kraken:BTC-USD", b"dead x"),
            Err(Malformed("status state"))
        );
        assert_eq!(
            parse_status(b"nonsense", b"live "),
            Err(Malformed("status instrument"))
        );
        assert_eq!(
            parse_status_message(b"nospace"),
            Err(Malformed("status message"))
        );
    }

    #[test]
    fn channels_come_back_in_protocol_order() {
        assert_eq!(
            channels_value(&[Channel::Trade, Channel::Book]),
            "trade,book"
        );
        assert_eq!(
            parse_channels(b"quote,book,trade,quote,future"),
            vec![Channel::Trade, Channel::Quote, Channel::Book]
        );
        assert!(parse_channels(b"").is_empty());
    }
}
