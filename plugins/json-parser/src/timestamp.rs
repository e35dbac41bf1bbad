//! Reading event times: RFC 3339 texts and Unix times in seconds, milliseconds, microseconds or
//! nanoseconds, into Unix nanoseconds.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{self, Kind};

/// How the timestamp field is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339 strings, and numbers (or numeric strings) as Unix seconds, milliseconds,
    /// microseconds or nanoseconds chosen by magnitude.
    #[default]
    Auto,
    /// RFC 3339 strings only.
    Rfc3339,
    /// Numbers (or numeric strings) of Unix seconds, fractions allowed.
    UnixSeconds,
    /// Numbers (or numeric strings) of Unix milliseconds.
    UnixMillis,
    /// Numbers (or numeric strings) of Unix microseconds.
    UnixMicros,
    /// Numbers (or numeric strings) of Unix nanoseconds.
    UnixNanos,
}

/// Nanoseconds in one unit of each Unix format.
const SECONDS: i64 = 1_000_000_000;
const MILLIS: i64 = 1_000_000;
const MICROS: i64 = 1_000;
const NANOS: i64 = 1;

/// Reads a timestamp field: `Ok(None)` for `null`, `Err(())` when it is not a time in `format`
/// (or lies outside what Unix nanoseconds in an `i64` hold: 1677 to 2262).
pub fn read(raw: &RawValue, format: TimestampFormat) -> Result<Option<i64>, ()> {
    match json::kind(raw) {
        Kind::Null => Ok(None),
        Kind::String => {
            let content = json::string_content(raw.get());
            let text = content.trim_ascii();
            let nanos = match format {
                TimestampFormat::Auto => parse_rfc3339(text).or_else(|| unix_text(text, format)),
                TimestampFormat::Rfc3339 => parse_rfc3339(text),
                _ => unix_text(text, format),
            };
            nanos.map(Some).ok_or(())
        }
        Kind::Number if format != TimestampFormat::Rfc3339 => {
            unix_text(raw.get(), format).map(Some).ok_or(())
        }
        _ => Err(()),
    }
}

/// A Unix time written as a number, in Unix nanoseconds. Decimals are read digit by digit, so
/// `1714554008.123456` is exact to the nanosecond where an `f64` would be off by hundreds;
/// only numbers with an exponent go through `f64`.
fn unix_text(text: &str, format: TimestampFormat) -> Option<i64> {
    if text.contains(['e', 'E']) {
        return unix_float(text.parse().ok()?, format);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let unit = unit_of(format, whole as f64);
    // The first nine digits of the fraction, in billionths of the unit (sub-nanosecond digits
    // are dropped).
    let billionths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'));
    let magnitude = whole
        .checked_mul(unit)?
        .checked_add(billionths * unit / 1_000_000_000)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A Unix time given as a float, in Unix nanoseconds.
fn unix_float(value: f64, format: TimestampFormat) -> Option<i64> {
    let unit = unit_of(format, value.abs());
    let whole = value.trunc();
    // `i64::MAX as f64` rounds up to 2^63, itself out of range: hence `<`.
    if !(whole >= i64::MIN as f64 && whole < i64::MAX as f64) {
        return None;
    }
    let fraction = ((value - whole) * unit as f64).round() as i64;
    (whole as i64).checked_mul(unit)?.checked_add(fraction)
}

/// Nanoseconds per unit of a Unix time of `magnitude` units in `format`.
fn unit_of(format: TimestampFormat, magnitude: f64) -> i64 {
    match format {
        TimestampFormat::UnixSeconds => SECONDS,
        TimestampFormat::UnixMillis => MILLIS,
        TimestampFormat::UnixMicros => MICROS,
        TimestampFormat::UnixNanos => NANOS,
        TimestampFormat::Auto | TimestampFormat::Rfc3339 => unit_by_magnitude(magnitude),
    }
}

/// The unit of a Unix time in `auto` format. Thresholds sit between the magnitudes of present-day
/// times (about 1.7e9 s, 1.7e12 ms, 1.7e15 µs, 1.7e18 ns): below 1e11 is seconds (up to the year
/// 5138), below 1e14 milliseconds, below 1e17 microseconds, anything larger nanoseconds.
fn unit_by_magnitude(magnitude: f64) -> i64 {
    if magnitude < 1e11 {
        SECONDS
    } else if magnitude < 1e14 {
        MILLIS
    } else if magnitude < 1e17 {
        MICROS
    } else {
        NANOS
    }
}

/// Parses an RFC 3339 date-time (`2024-05-01T12:00:00.123Z`, `2024-05-01 14:00:00+02:00`) into
/// Unix nanoseconds. `T` may be `t` or a space and `Z` may be `z`, as RFC 3339 allows; the
/// offset is required; fractions beyond nanoseconds are truncated; a leap second `:60` counts as
/// the next minute's first second.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let year = digits(bytes, 0, 4)?;
    expect(bytes, 4, b'-')?;
    let month = digits(bytes, 5, 2)?;
    expect(bytes, 7, b'-')?;
    let day = digits(bytes, 8, 2)?;
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(bytes, 11, 2)?;
    expect(bytes, 13, b':')?;
    let minute = digits(bytes, 14, 2)?;
    expect(bytes, 16, b':')?;
    let second = digits(bytes, 17, 2)?;

    let mut at = 19;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(digit) = bytes.get(at).filter(|byte| byte.is_ascii_digit()) {
            if at - start < 9 {
                fraction = fraction * 10 + i64::from(digit - b'0');
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return None;
        }
        if count < 9 {
            fraction *= 10_i64.pow(9 - count as u32);
        }
    }

    let offset = match bytes.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let hours = digits(bytes, at + 1, 2)?;
            expect(bytes, at + 3, b':')?;
            let minutes = digits(bytes, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            at += 6;
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if at != bytes.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds.checked_mul(SECONDS)?.checked_add(fraction)
}

/// The `count` ASCII digits at `at`, as a number.
fn digits(bytes: &[u8], at: usize, count: usize) -> Option<i64> {
    bytes
        .get(at..at + count)?
        .iter()
        .try_fold(0, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + i64::from(byte - b'0'))
        })
}

fn expect(bytes: &[u8], at: usize, byte: u8) -> Option<()> {
    (bytes.get(at) == Some(&byte)).then_some(())
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20Z.
    const T: i64 = 1_700_000_000 * SECONDS;

    fn read_text(json: &str, format: TimestampFormat) -> Result<Option<i64>, ()> {
        read(&RawValue::from_string(json.to_owned()).unwrap(), format)
    }

    #[test]
    fn rfc3339_forms() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2023-11-14T22:13:20Z", Some(T)),
            ("2023-11-14t22:13:20z", Some(T)),
            ("2023-11-14 22:13:20Z", Some(T)),
            ("2023-11-15T00:13:20+02:00", Some(T)),
            ("2023-11-14T17:43:20-04:30", Some(T)),
            ("2023-11-14T22:13:20.5Z", Some(T + 500_000_000)),
            ("2023-11-14T22:13:20.123456789Z", Some(T + 123_456_789)),
            ("2023-11-14T22:13:20.1234567891234Z", Some(T + 123_456_789)),
            ("2023-11-14T22:13:20.000001+00:00", Some(T + 1_000)),
            ("1969-12-31T23:59:59Z", Some(-SECONDS)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800 * SECONDS)),
            ("2000-03-01T00:00:00Z", Some(951_868_800 * SECONDS)),
            ("2016-12-31T23:59:60Z", Some(1_483_228_800 * SECONDS)),
            // Not RFC 3339, or not a date.
            ("2023-11-14T22:13:20", None),
            ("2023-11-14T22:13:20+0200", None),
            ("2023-11-14T22:13:20.Z", None),
            ("2023-11-14", None),
            ("2023-11-14T22:13Z", None),
            ("2023-13-14T22:13:20Z", None),
            ("2023-02-29T22:13:20Z", None),
            ("2023-04-31T22:13:20Z", None),
            ("2023-11-00T22:13:20Z", None),
            ("2023-11-14T24:00:00Z", None),
            ("2023-11-14T22:60:00Z", None),
            ("2023-11-14T22:13:20+24:00", None),
            ("2023-11-14T22:13:20Z ", None),
            ("2023/11/14T22:13:20Z", None),
            ("+2023-11-14T22:13:20Z", None),
            ("yesterday", None),
            ("", None),
            // Beyond what i64 nanoseconds hold.
            ("2300-01-01T00:00:00Z", None),
            ("1600-01-01T00:00:00Z", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text:?}");
        }
    }

    #[test]
    fn auto_numbers_by_magnitude() {
        let auto = TimestampFormat::Auto;
        assert_eq!(read_text("1700000000", auto), Ok(Some(T)));
        assert_eq!(read_text("1700000000.25", auto), Ok(Some(T + 250_000_000)));
        assert_eq!(read_text("1700000000123", auto), Ok(Some(T + 123_000_000)));
        assert_eq!(
            read_text("1700000000123456", auto),
            Ok(Some(T + 123_456_000))
        );
        assert_eq!(
            read_text("1700000000123456789", auto),
            Ok(Some(T + 123_456_789))
        );
        assert_eq!(read_text("0", auto), Ok(Some(0)));
        assert_eq!(read_text("-86400", auto), Ok(Some(-86_400 * SECONDS)));
        assert_eq!(read_text("-1.5", auto), Ok(Some(-1_500_000_000)));
        // Decimals are exact to the nanosecond.
        assert_eq!(
            read_text("1700000000.123456789", auto),
            Ok(Some(T + 123_456_789))
        );
        assert_eq!(
            read_text("1700000000.1234567891", auto),
            Ok(Some(T + 123_456_789))
        );
        assert_eq!(
            read_text("1700000000123.456", auto),
            Ok(Some(T + 123_456_000))
        );
        assert_eq!(
            read_text("1700000000123456.789", auto),
            Ok(Some(T + 123_456_789))
        );
        // Exponents go through f64.
        assert_eq!(read_text("1.7e9", auto), Ok(Some(T)));
        assert_eq!(read_text("17.0E17", auto), Ok(Some(T)));
        // Numeric strings count too.
        assert_eq!(
            read_text(r#""1700000000123""#, auto),
            Ok(Some(T + 123_000_000))
        );
        assert_eq!(read_text(r#""2023-11-14T22:13:20Z""#, auto), Ok(Some(T)));
        assert_eq!(read_text(r#"" 2023-11-14T22:13:20Z ""#, auto), Ok(Some(T)));
        // Too large for i64 nanoseconds.
        assert_eq!(read_text("18446744073709551615", auto), Err(()));
        assert_eq!(read_text("1e300", auto), Err(()));
    }

    #[test]
    fn null_and_non_times() {
        for format in [TimestampFormat::Auto, TimestampFormat::UnixMillis] {
            assert_eq!(read_text("null", format), Ok(None));
            for bad in [
                r#""soon""#,
                "true",
                "[1]",
                r#"{"s":1}"#,
                r#""""#,
                r#""NaN""#,
            ] {
                assert_eq!(read_text(bad, format), Err(()), "{bad} in {format:?}");
            }
        }
    }

    #[test]
    fn explicit_formats() {
        use TimestampFormat::*;
        assert_eq!(read_text("1700000000", UnixSeconds), Ok(Some(T)));
        assert_eq!(read_text("1.5", UnixSeconds), Ok(Some(1_500_000_000)));
        assert_eq!(read_text("1700000000000", UnixMillis), Ok(Some(T)));
        // Small values keep their declared unit, where `auto` would read seconds.
        assert_eq!(read_text("1500", UnixMillis), Ok(Some(1_500_000_000)));
        assert_eq!(read_text("1500", UnixMicros), Ok(Some(1_500_000)));
        assert_eq!(read_text(r#""1500""#, UnixNanos), Ok(Some(1_500)));
        assert_eq!(read_text("1700000000000000000", UnixNanos), Ok(Some(T)));
        assert_eq!(read_text("1700000000000000000", UnixSeconds), Err(()));
        // Each format reads only its own kind of value.
        assert_eq!(read_text(r#""2023-11-14T22:13:20Z""#, UnixSeconds), Err(()));
        assert_eq!(read_text(r#""2023-11-14T22:13:20Z""#, Rfc3339), Ok(Some(T)));
        assert_eq!(read_text("1700000000", Rfc3339), Err(()));
        assert_eq!(read_text(r#""1700000000""#, Rfc3339), Err(()));
    }
}
