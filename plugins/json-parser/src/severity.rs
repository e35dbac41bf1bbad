//! Severity names and numbers, on the OpenTelemetry scale (1 trace, 5 debug, 9 info, 13 warn,
//! 17 error, 21 fatal).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::json::{self, Kind};

/// What a record's severity field says.
pub enum Severity<'a> {
    /// Use this number and text.
    Known { number: u8, text: Cow<'a, str> },
    /// `null`: no severity.
    Null,
    /// Not a severity (a boolean, an object, a number outside 1..=24...): keep it as an attribute.
    Unusable,
}

/// Reads a severity field: a text (any case, surrounding blanks ignored) or a number in 1..=24.
/// An unknown text keeps severity number 0 (unspecified) but is kept as the severity text.
pub fn read(raw: &RawValue) -> Severity<'_> {
    match json::kind(raw) {
        Kind::String => {
            let text = json::string_content(raw.get());
            Severity::Known {
                number: number_of_text(&text),
                text,
            }
        }
        Kind::Number => match raw.get().parse::<u8>() {
            Ok(number @ 1..=24) => Severity::Known {
                number,
                text: Cow::Borrowed(""),
            },
            _ => Severity::Unusable,
        },
        Kind::Null => Severity::Null,
        Kind::Bool | Kind::Array | Kind::Object => Severity::Unusable,
    }
}

/// The severity number of a level name, or of a number in 1..=24 written as text; 0 when unknown.
pub fn number_of_text(text: &str) -> u8 {
    sluice_sdk::severity::from_name(text).unwrap_or_else(|| {
        text.trim_ascii()
            .parse::<u8>()
            .ok()
            .filter(|number| (1..=24).contains(number))
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_case_insensitively() {
        let cases = [
            ("trace", 1),
            ("TRACE", 1),
            ("debug", 5),
            ("Debug", 5),
            ("info", 9),
            ("INFO", 9),
            ("notice", 9),
            ("warn", 13),
            ("WARNING", 13),
            ("error", 17),
            ("err", 17),
            ("ERR", 17),
            ("fatal", 21),
            ("critical", 21),
            ("crit", 21),
            ("alert", 21),
            ("emerg", 21),
            ("Emergency", 21),
            ("PANIC", 21),
            (" info ", 9),
            ("7", 7),
            ("24", 24),
            ("0", 0),
            ("25", 0),
            ("verbose", 0),
            ("", 0),
            ("a very long level name indeed", 0),
            ("infó", 0),
        ];
        for (text, number) in cases {
            assert_eq!(number_of_text(text), number, "{text:?}");
        }
    }
}
