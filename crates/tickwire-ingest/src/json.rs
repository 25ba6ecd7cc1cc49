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
