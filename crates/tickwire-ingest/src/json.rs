//! Keeping the venue's number text exact through simd-json.
//!
//! Kraken v2 sends prices and sizes as JSON numbers with their full scale
//! on the wire (`0.10000000`), and its book checksum is computed over that
//! text. simd-json (like any JSON parser without an arbitrary-precision
//! mode) turns such a number into an `f64`, and `0.10000000` comes back
//! as `0.1`. [`quote_numbers`] rewrites every number token outside
//! strings into a string token before parsing, so the parser hands over
//! the exact text and `rust_decimal` parses it with its scale.

use serde::Deserialize;

use crate::adapter::FrameError;

/// Which JSON parser an adapter decodes frames with: simd-json in
/// production; serde_json only as the benchmarks' baseline, over the same
/// wire types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// simd-json's serde deserializer (the default).
    #[default]
    Simd,
    /// serde_json (the baseline).
    Serde,
}

/// Decodes a wire type from a frame with the chosen parser, borrowing
/// strings from `buf` (which simd-json rewrites in place: pass a scratch
/// copy of the frame).
pub fn decode<'a, T: Deserialize<'a>>(
    backend: Backend,
    buf: &'a mut [u8],
) -> Result<T, FrameError> {
    match backend {
        Backend::Simd => {
            simd_json::serde::from_slice(buf).map_err(|e| FrameError::Malformed(e.to_string()))
        }
        Backend::Serde => {
            serde_json::from_slice(buf).map_err(|e| FrameError::Malformed(e.to_string()))
        }
    }
}

/// [`decode`] with the parser's working memory kept between frames: once
/// warmed up, simd-json allocates nothing per frame (its buffers and tape
/// are reused, and the frame is parsed where it lies in the scratch
/// buffer instead of being copied again). serde_json needs no state; it
/// reads the same scratch copy, so both backends pay the same copy.
pub struct Decoder {
    backend: Backend,
    buffers: simd_json::Buffers,
    /// Empty between frames; `None` only if a parse panicked midway.
    tape: Option<simd_json::Tape<'static>>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder with empty buffers.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            buffers: simd_json::Buffers::default(),
            tape: Some(simd_json::Tape(Vec::new())),
        }
    }

    /// The parser it uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Copies `frame` into `scratch` (plus the padding simd-json reads past
    /// the end) and decodes a wire type from it, borrowing strings from
    /// `scratch`.
    pub fn decode<'a, T: Deserialize<'a>>(
        &mut self,
        frame: &[u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<T, FrameError> {
        scratch.clear();
        scratch.extend_from_slice(frame);
        let malformed = |e: &dyn std::fmt::Display| FrameError::Malformed(e.to_string());
        match self.backend {
            Backend::Serde => serde_json::from_slice(scratch).map_err(|e| malformed(&e)),
            Backend::Simd => {
                let len = scratch.len();
                scratch.resize(len + simd_json::INPUT_PADDING, 0);
                let mut tape = self
                    .tape
                    .take()
                    .map_or_else(|| simd_json::Tape(Vec::new()), simd_json::Tape::reset);
                let filled =
                    simd_json::fill_tape_padded(scratch, len, &mut self.buffers, &mut tape);
                let mut de = simd_json::Deserializer::from_tape(tape);
                let decoded = match filled {
                    Ok(()) => T::deserialize(&mut de).map_err(|e| malformed(&e)),
                    Err(e) => Err(malformed(&e)),
                };
                self.tape = Some(de.into_tape().reset());
                decoded
            }
        }
    }
}

/// Why a frame could not be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// A string was not closed before the end of the frame.
    UnterminatedString,
}

/// Copies `frame` into `out` with every JSON number outside a string
/// wrapped in quotes (`{"qty":0.10000000}` becomes `{"qty":"0.10000000"}`).
/// `out` is cleared first; keeping it between frames avoids an allocation
/// per frame.
///
/// A number token is a maximal run of `-+.0-9eE` that starts with `-` or a
/// digit outside a string; whether it is a valid number is left to the
/// parser reading the string. Strings (with their escapes) and everything
/// else are copied unchanged, so the result is valid JSON exactly when the
/// input is, with numbers turned into strings.
pub fn quote_numbers(frame: &[u8], out: &mut Vec<u8>) -> Result<(), QuoteError> {
    out.clear();
    out.reserve(frame.len() + 32);
    let mut i = 0;
    while i < frame.len() {
        let b = frame[i];
        match b {
            b'"' => {
                let end = string_end(frame, i)?;
                out.extend_from_slice(&frame[i..end]);
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < frame.len() && is_number_byte(frame[i]) {
                    i += 1;
                }
                out.push(b'"');
                out.extend_from_slice(&frame[start..i]);
                out.push(b'"');
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// The index just past the string starting at `start` (a `"`).
fn string_end(frame: &[u8], start: usize) -> Result<usize, QuoteError> {
    let mut i = start + 1;
    while i < frame.len() {
        match frame[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(QuoteError::UnterminatedString)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;
    use tickwire_model::parse_decimal;

    fn quoted(frame: &str) -> String {
        let mut out = Vec::new();
        quote_numbers(frame.as_bytes(), &mut out).expect("rewrite");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn numbers_become_strings_and_nothing_else_changes() {
        let cases = [
            (r#"{"a":1}"#, r#"{"a":"1"}"#),
            (
                r#"{"price":45283.5,"qty":0.10000000}"#,
                r#"{"price":"45283.5","qty":"0.10000000"}"#,
            ),
            (r#"[-1.5e-7, 2E+3 ,0]"#, r#"["-1.5e-7", "2E+3" ,"0"]"#),
            (
                r#"{"s":"BTC/USD 1.0","t":true,"n":null}"#,
                r#"{"s":"BTC/USD 1.0","t":true,"n":null}"#,
            ),
            (r#"{"e":"a\"1.0\\","x":2}"#, r#"{"e":"a\"1.0\\","x":"2"}"#),
            (r#"{"k":"1","v":1}"#, r#"{"k":"1","v":"1"}"#),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(quoted(input), expected, "{input}");
        }
    }

    #[test]
    fn a_decoder_reuses_its_memory_across_frames_and_errors() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Msg<'a> {
            s: &'a str,
            n: u64,
        }
        for backend in [Backend::Simd, Backend::Serde] {
            let mut d = Decoder::new(backend);
            assert_eq!(d.backend(), backend);
            let mut scratch = Vec::new();
            let long = format!(r#"{{"pad":"{}","s":"xy","n":2}}"#, "z".repeat(5000));
            for (frame, n) in [
                (r#"{"s":"BTCUSDT","n":1}"#, 1),
                (long.as_str(), 2),
                (r#"{"n":3,"s":"a"}"#, 3),
            ] {
                let m: Msg<'_> = d.decode(frame.as_bytes(), &mut scratch).expect("decode");
                assert_eq!(m.n, n, "{backend:?}");
            }
            for bad in [r#"{"s":"a","n":"#, "nope", r#"{"s":1,"n":1}"#] {
                let e = d.decode::<Msg<'_>>(bad.as_bytes(), &mut scratch);
                assert!(matches!(e, Err(FrameError::Malformed(_))), "{bad}: {e:?}");
            }
            let m: Msg<'_> = d
                .decode(br#"{"s":"ok","n":4}"#, &mut scratch)
                .expect("after errors");
            assert_eq!(m, Msg { s: "ok", n: 4 });
        }
    }

    #[test]
    fn an_unterminated_string_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert_eq!(
            quote_numbers(br#"{"a":"abc"#, &mut out),
            Err(QuoteError::UnterminatedString)
        );
        assert_eq!(
            quote_numbers(br#"{"a":"ab\"#, &mut out),
            Err(QuoteError::UnterminatedString)
        );
    }

    #[test]
    fn a_kraken_book_level_keeps_its_wire_text_through_simd_json() {
        let frame = br#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000}],"asks":[{"price":45285.2,"qty":0.00100000}],"checksum":3310070434,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#;
        // Parsed directly, the scale is gone: what the checksum cannot use.
        let mut direct = frame.to_vec();
        let value = simd_json::to_borrowed_value(&mut direct).expect("json");
        let qty = &value["data"][0]["bids"][0]["qty"];
        assert_eq!(qty.as_f64(), Some(0.1));
        // Rewritten first, the text survives and parses with its scale.
        let mut out = Vec::new();
        quote_numbers(frame, &mut out).expect("rewrite");
        let value = simd_json::to_borrowed_value(&mut out).expect("json");
        let level = &value["data"][0]["bids"][0];
        let qty = parse_decimal(level["qty"].as_str().expect("string")).expect("decimal");
        assert_eq!(qty.to_string(), "0.10000000");
        assert_eq!(qty.scale(), 8);
        let ask = &value["data"][0]["asks"][0];
        let qty = parse_decimal(ask["qty"].as_str().expect("string")).expect("decimal");
        assert_eq!(qty.to_string(), "0.00100000");
        assert_eq!(value["data"][0]["checksum"].as_str(), Some("3310070434"));
        assert_eq!(
            value["data"][0]["timestamp"].as_str(),
            Some("2023-10-06T17:35:55.440295Z")
        );
    }

    proptest::proptest! {
        /// Any decimal text, written as a JSON number, comes back exactly.
        #[test]
        fn any_decimal_text_round_trips(int in 0u64..10_000_000, frac in "[0-9]{0,12}", neg: bool) {
            let text = if frac.is_empty() {
                format!("{}{int}", if neg { "-" } else { "" })
            } else {
                format!("{}{int}.{frac}", if neg { "-" } else { "" })
            };
            let frame = format!(r#"{{"a":[{text},{{"b":{text}}}]}}"#);
            let mut out = Vec::new();
            quote_numbers(frame.as_bytes(), &mut out).expect("rewrite");
            let value = simd_json::to_borrowed_value(&mut out).expect("json");
            proptest::prop_assert_eq!(value["a"][0].as_str(), Some(text.as_str()));
            proptest::prop_assert_eq!(value["a"][1]["b"].as_str(), Some(text.as_str()));
            // And the decimal keeps the wire's scale (trailing zeros too).
            let parsed = parse_decimal(&text).expect("decimal");
            proptest::prop_assert_eq!(parsed.scale() as usize, frac.len());
        }
    }
}
