//! Exact decimals: parsing venue text into `rust_decimal::Decimal` without
//! ever passing through `f64`, keeping the venue's scale (trailing zeros).

pub use rust_decimal::Decimal;

use crate::{Error, Result};

/// Parses a plain decimal (`-12.3400`) keeping its scale, so that
/// `"0.00100000"` is written back as `"0.00100000"`.
///
/// Stricter than `Decimal::from_str`: no exponent, no `_`, no `+`, no empty
/// integer or fraction part, because venue text with those shapes is a
/// sign of a parsing mistake upstream rather than a price.
pub fn parse_decimal(text: &str) -> Result<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(Error::Decimal(text.to_owned()));
    }
    let d = text
        .parse::<Decimal>()
        .map_err(|_| Error::Decimal(text.to_owned()))?;
    // `from_str` rounds digits beyond its 28-digit scale; that would change
    // the price, so refuse instead.
    if d.scale() as usize != frac.map_or(0, str::len) {
        return Err(Error::Decimal(text.to_owned()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_scale() {
        for s in [
            "0.00100000",
            "64000.10",
            "1",
            "0",
            "-3.50",
            "123456789.123456789",
        ] {
            assert_eq!(parse_decimal(s).map(|d| d.to_string()), Ok(s.to_owned()));
        }
    }

    #[test]
    fn rejects_non_plain_shapes() {
        for s in [
            "", "-", ".5", "5.", "1e5", "+1", "1_000", "0x10", "NaN", "inf", "1.2.3", " 1", "1 ",
        ] {
            assert_eq!(parse_decimal(s), Err(Error::Decimal(s.to_owned())), "{s:?}");
        }
    }

    #[test]
    fn rejects_more_than_28_fraction_digits() {
        assert!(parse_decimal("0.12345678901234567890123456789").is_err());
    }

    proptest! {
        #[test]
        fn round_trips_any_plain_decimal(int in 0u64..10_000_000_000, frac in "[0-9]{0,18}", neg: bool) {
            let text = match (neg, frac.is_empty()) {
                (false, true) => format!("{int}"),
                (false, false) => format!("{int}.{frac}"),
                (true, true) => format!("-{int}"),
                (true, false) => format!("-{int}.{frac}"),
            };
            let d = parse_decimal(&text).expect("valid decimal");
            // rust_decimal has no negative zero: "-0.00" reads back as "0.00".
            let expected = if d.is_zero() { text.trim_start_matches('-').to_owned() } else { text.clone() };
            prop_assert_eq!(d.to_string(), expected);
        }
    }
}
