//! `json-parser`: turns JSON lines (one object per line) into log records.
//!
//! - the timestamp field (default `timestamp`) becomes the event time: RFC 3339 strings or Unix
//!   times (see [`TimestampFormat`]). Missing or `null`: the time the gateway received the input.
//!   Present but unreadable: also the receive time, and the text is kept in the attribute
//!   `sluice.timestamp_error`;
//! - the severity field (default `level`) becomes the severity: level names in any case
//!   (`notice` counts as info, `crit`/`alert`/`emerg`/`panic` as fatal...) or numbers in 1..=24.
//!   An unknown name is kept as severity text with number 0; a value that is no severity at all
//!   (`true`, `99`...) stays an attribute;
//! - the message field (default `message`) becomes the body; without it, the body is the line;
//! - every other member becomes an attribute with a typed value; nested objects are flattened
//!   into dotted keys (`http.status`), arrays and `null` are kept as JSON text;
//! - a line that is not a JSON object fails with a message, and the SDK keeps it as a record
//!   flagged as a parse error; blank lines give no record.
//!
//! Lines are read member by member from borrowed slices of the input (no JSON tree), and the
//! attributes of a line are staged in buffers the parser reuses for every line.

mod json;
mod severity;
mod timestamp;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use sluice_sdk::{LogRecordsBuilder, Parser, Plugin, RawInput, Value};

use crate::json::Kind;
use crate::severity::Severity;
pub use crate::timestamp::TimestampFormat;

/// Attribute holding a timestamp field that could not be read.
pub const TIMESTAMP_ERROR_ATTRIBUTE: &str = "sluice.timestamp_error";

/// Largest `max_depth` accepted.
pub const MAX_DEPTH_LIMIT: u32 = 64;

/// The plugin's config. Field names refer to members of the top-level object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Member holding the event time. Default `"timestamp"`.
    pub timestamp_field: String,
    /// How the event time is written: `auto`, `rfc3339`, `unix_seconds`, `unix_millis`,
    /// `unix_micros` or `unix_nanos`. Default `"auto"` (RFC 3339 strings, and numbers as Unix
    /// seconds, milliseconds, microseconds or nanoseconds chosen by magnitude).
    pub timestamp_format: TimestampFormat,
    /// Member holding the severity (a level name or a number in 1..=24). Default `"level"`.
    pub severity_field: String,
    /// Member holding the message, which becomes the body. Default `"message"`.
    pub message_field: String,
    /// Flatten nested objects into dotted attribute keys (`{"http":{"status":200}}` gives
    /// `http.status = 200`); when false a nested object is one attribute holding its JSON text.
    /// Default `true`.
    pub flatten_nested: bool,
    /// How many levels of nested objects are flattened (1..=64); objects deeper than that are kept
    /// as JSON text under their dotted key. Default `8`.
    pub max_depth: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timestamp_field: "timestamp".into(),
            timestamp_format: TimestampFormat::Auto,
            severity_field: "level".into(),
            message_field: "message".into(),
            flatten_nested: true,
            max_depth: 8,
        }
    }
}

/// The JSON lines parser.
#[derive(Debug)]
pub struct JsonParser {
    settings: Settings,
    scratch: Scratch,
}

/// The validated config.
#[derive(Debug)]
struct Settings {
    timestamp_field: Box<str>,
    timestamp_format: TimestampFormat,
    severity_field: Box<str>,
    message_field: Box<str>,
    /// Levels of nested objects flattened (0 when flattening is off).
    flatten_depth: u32,
}

impl Plugin for JsonParser {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let roles = [
            ("timestamp_field", &config.timestamp_field),
            ("severity_field", &config.severity_field),
            ("message_field", &config.message_field),
        ];
        for (index, (role, field)) in roles.iter().enumerate() {
            if field.is_empty() {
                return Err(format!("{role} must not be empty"));
            }
            if let Some((other, _)) = roles[..index].iter().find(|(_, name)| name == field) {
                return Err(format!(
                    "{other} and {role} are both `{field}`: one member cannot play two roles"
                ));
            }
        }
        if !(1..=MAX_DEPTH_LIMIT).contains(&config.max_depth) {
            return Err(format!(
                "max_depth {} is outside 1..={MAX_DEPTH_LIMIT} (to keep nested objects as JSON \
                 text, set flatten_nested = false)",
                config.max_depth
            ));
        }
        Ok(JsonParser {
            settings: Settings {
                timestamp_field: config.timestamp_field.into(),
                timestamp_format: config.timestamp_format,
                severity_field: config.severity_field.into(),
                message_field: config.message_field.into(),
                flatten_depth: if config.flatten_nested {
                    config.max_depth
                } else {
                    0
                },
            },
            scratch: Scratch::default(),
        })
    }
}

impl Parser for JsonParser {
    fn parse_line(
        &mut self,
        line: &str,
        input: &RawInput,
        out: &mut LogRecordsBuilder,
    ) -> Result<(), String> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        let JsonParser { settings, scratch } = self;
        scratch.clear();

        let mut timestamp = None;
        let mut severity = None;
        let mut message = None;
        json::for_each_member(line, |key, raw| {
            if *key == *settings.message_field {
                message = Some(raw);
            } else if *key == *settings.timestamp_field {
                timestamp = Some(raw);
            } else if *key == *settings.severity_field {
                match severity::read(raw) {
                    Severity::Known { number, text } => severity = Some((number, text)),
                    Severity::Null => {}
                    Severity::Unusable => scratch.add(&key, raw, 1, settings.flatten_depth),
                }
            } else {
                scratch.add(&key, raw, 1, settings.flatten_depth);
            }
        })
        .map_err(|error| json::describe_error(line, &error))?;

        let (time, timestamp_error) = match timestamp {
            None => (input.received, None),
            Some(raw) => match timestamp::read(raw, settings.timestamp_format) {
                Ok(Some(time)) => (time, None),
                Ok(None) => (input.received, None),
                Err(()) => (input.received, Some(raw)),
            },
        };
        let body = match message {
            Some(raw) if json::kind(raw) != Kind::Null => json::text(raw),
            _ => Cow::Borrowed(line),
        };
        let (severity_number, severity_text) = severity.unwrap_or((0, Cow::Borrowed("")));

        out.push(time, severity_number, &severity_text, &body);
        scratch.drain_into(out);
        if let Some(raw) = timestamp_error {
            out.attribute(
                TIMESTAMP_ERROR_ATTRIBUTE,
                Value::Str(json::text(raw).into_owned()),
            );
        }
        Ok(())
    }
}

/// The attributes of the line being parsed, staged until its record is pushed. Kept by the parser
/// so that its buffers are reused from line to line.
#[derive(Debug, Default)]
struct Scratch {
    /// Keys of the staged attributes, one after the other.
    keys: String,
    /// Each staged attribute: where its key ends in `keys`, and its value.
    attributes: Vec<(usize, Value)>,
    /// Dotted prefix of the object being flattened (`http.` inside `{"http":{...}}`).
    prefix: String,
}

impl Scratch {
    fn clear(&mut self) {
        self.keys.clear();
        self.attributes.clear();
        self.prefix.clear();
    }

    /// Stages member `key = raw` of an object at nesting `level` (1 for the top-level object's
    /// members), flattening objects while `level <= flatten_depth`.
    fn add(&mut self, key: &str, raw: &RawValue, level: u32, flatten_depth: u32) {
        if level <= flatten_depth && json::kind(raw) == Kind::Object {
            let (prefix_len, staged) = (self.prefix.len(), self.attributes.len());
            self.prefix.push_str(key);
            self.prefix.push('.');
            let flattened = json::for_each_member(raw.get(), |child, child_raw| {
                self.add(&child, child_raw, level + 1, flatten_depth);
            });
            self.prefix.truncate(prefix_len);
            // An empty object (or, never expected, one that fails to re-parse) keeps its text.
            if flattened.is_ok() && self.attributes.len() > staged {
                return;
            }
            self.attributes.truncate(staged);
            let keys_len = self.attributes.last().map_or(0, |(end, _)| *end);
            self.keys.truncate(keys_len);
        }
        self.keys.push_str(&self.prefix);
        self.keys.push_str(key);
        self.attributes
            .push((self.keys.len(), json::leaf_value(raw)));
    }

    /// Adds the staged attributes to the last record of `out`.
    fn drain_into(&mut self, out: &mut LogRecordsBuilder) {
        let mut start = 0;
        for (end, value) in self.attributes.drain(..) {
            out.attribute(&self.keys[start..end], value);
            start = end;
        }
        self.keys.clear();
    }
}

sluice_sdk::export_parser!(JsonParser);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::__private::run_parser;
    use sluice_sdk::LogRecords;

    const RECEIVED: i64 = 42;
    /// 2023-11-14T22:13:20Z.
    const T: i64 = 1_700_000_000_000_000_000;

    fn parser(config: &str) -> JsonParser {
        JsonParser::from_json_config(config).unwrap()
    }

    fn parse_with(parser: &mut JsonParser, lines: &[&str]) -> LogRecords {
        let mut input = RawInput::from_lines("test", lines.iter().copied());
        input.received = RECEIVED;
        run_parser(parser, &input).unwrap()
    }

    fn parse(config: &str, lines: &[&str]) -> LogRecords {
        parse_with(&mut parser(config), lines)
    }

    fn attributes(records: &LogRecords, record: u32) -> Vec<(&str, &Value)> {
        records
            .attributes
            .iter()
            .filter(|(index, _, _)| *index == record)
            .map(|(_, key, value)| (key, value))
            .collect()
    }

    fn attribute<'r>(records: &'r LogRecords, record: u32, key: &str) -> Option<&'r Value> {
        attributes(records, record)
            .into_iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
    }

    fn str(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn a_typical_line() {
        let records = parse(
            "",
            &[
                r#"{"timestamp":"2023-11-14T22:13:20.5Z","level":"WARN","message":"disk almost full","host":"db-1","free_bytes":1024,"ratio":0.07,"alerting":true}"#,
            ],
        );
        assert_eq!(records.timestamps, vec![T + 500_000_000]);
        assert_eq!(records.severity_numbers, vec![13]);
        assert_eq!(records.severity_texts.get(0), "WARN");
        assert_eq!(records.bodies.get(0), "disk almost full");
        assert_eq!(
            attributes(&records, 0),
            vec![
                ("host", &str("db-1")),
                ("free_bytes", &Value::Int(1024)),
                ("ratio", &Value::Double(0.07)),
                ("alerting", &Value::Boolean(true)),
            ]
        );
        assert!(records.parse_errors.is_empty());
        assert!(records.trace_ids.is_empty());
    }

    #[test]
    fn attribute_types() {
        let records = parse(
            "",
            &[
                r#"{"s":"x","esc":"a\tb\u00e9","i":-7,"big":18446744073709551616,"d":2.5e-3,"t":true,"f":false,"n":null,"a":[1,"two",{"three":3}],"e":[]}"#,
            ],
        );
        assert_eq!(
            attributes(&records, 0),
            vec![
                ("s", &str("x")),
                ("esc", &str("a\tbé")),
                ("i", &Value::Int(-7)),
                ("big", &str("18446744073709551616")),
                ("d", &Value::Double(0.0025)),
                ("t", &Value::Boolean(true)),
                ("f", &Value::Boolean(false)),
                ("n", &str("null")),
                ("a", &str(r#"[1,"two",{"three":3}]"#)),
                ("e", &str("[]")),
            ]
        );
    }

    #[test]
    fn body_is_the_line_without_a_message() {
        let line = r#"{"level":"info","event":"login","user":"ada"}"#;
        let records = parse("", &[line, &format!("  {line}\r"), r#"{"message":null}"#]);
        assert_eq!(records.bodies.get(0), line);
        // Surrounding whitespace (a CR left by CRLF line ends) is not part of the body.
        assert_eq!(records.bodies.get(1), line);
        assert_eq!(records.bodies.get(2), r#"{"message":null}"#);
        assert_eq!(attribute(&records, 0, "event"), Some(&str("login")));
        assert_eq!(attribute(&records, 0, "level"), None);
    }

    #[test]
    fn non_string_message_is_its_json_text() {
        let records = parse(
            "",
            &[
                r#"{"message":404}"#,
                r#"{"message":{"a":[1,2]}}"#,
                r#"{"message":"esc\"aped"}"#,
            ],
        );
        assert_eq!(records.bodies.get(0), "404");
        assert_eq!(records.bodies.get(1), r#"{"a":[1,2]}"#);
        assert_eq!(records.bodies.get(2), "esc\"aped");
        assert!(records.attributes.records.is_empty());
    }

    #[test]
    fn severity_names() {
        let cases = [
            ("trace", 1),
            ("TRACE", 1),
            ("debug", 5),
            ("info", 9),
            ("Info", 9),
            ("notice", 9),
            ("warn", 13),
            ("warning", 13),
            ("WARNING", 13),
            ("error", 17),
            ("err", 17),
            ("fatal", 21),
            ("critical", 21),
            ("CRIT", 21),
            ("alert", 21),
            ("emerg", 21),
            ("panic", 21),
        ];
        let lines: Vec<String> = cases
            .iter()
            .map(|(text, _)| format!(r#"{{"level":"{text}"}}"#))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let records = parse("", &lines);
        for (index, (text, number)) in cases.iter().enumerate() {
            assert_eq!(records.severity_numbers[index], *number, "{text}");
            assert_eq!(records.severity_texts.get(index), *text);
        }
        assert!(records.attributes.records.is_empty());
    }

    #[test]
    fn numeric_and_odd_severities() {
        let records = parse(
            "",
            &[
                r#"{"level":1}"#,
                r#"{"level":17}"#,
                r#"{"level":24}"#,
                r#"{"level":"18"}"#,
                r#"{"level":"verbose"}"#,
                r#"{"level":null}"#,
                r#"{"level":0}"#,
                r#"{"level":30}"#,
                r#"{"level":9.5}"#,
                r#"{"level":true}"#,
                r#"{}"#,
            ],
        );
        assert_eq!(
            records.severity_numbers,
            vec![1, 17, 24, 18, 0, 0, 0, 0, 0, 0, 0]
        );
        let texts: Vec<&str> = records.severity_texts.iter().collect();
        assert_eq!(
            texts,
            vec!["", "", "", "18", "verbose", "", "", "", "", "", ""]
        );
        // What is no severity stays an attribute: nothing is lost.
        assert_eq!(attribute(&records, 6, "level"), Some(&Value::Int(0)));
        assert_eq!(attribute(&records, 7, "level"), Some(&Value::Int(30)));
        assert_eq!(attribute(&records, 8, "level"), Some(&Value::Double(9.5)));
        assert_eq!(attribute(&records, 9, "level"), Some(&Value::Boolean(true)));
        for record in [0, 1, 2, 3, 4, 5, 10] {
            assert_eq!(attributes(&records, record), vec![], "record {record}");
        }
    }

    #[test]
    fn timestamp_forms() {
        let records = parse(
            "",
            &[
                r#"{"timestamp":"2023-11-14T22:13:20Z"}"#,
                r#"{"timestamp":"2023-11-15T00:13:20.123456789+02:00"}"#,
                r#"{"timestamp":1700000000}"#,
                r#"{"timestamp":1700000000.25}"#,
                r#"{"timestamp":1700000000123}"#,
                r#"{"timestamp":1700000000123456}"#,
                r#"{"timestamp":1700000000123456789}"#,
                r#"{"timestamp":"1700000000"}"#,
            ],
        );
        assert_eq!(
            records.timestamps,
            vec![
                T,
                T + 123_456_789,
                T,
                T + 250_000_000,
                T + 123_000_000,
                T + 123_456_000,
                T + 123_456_789,
                T,
            ]
        );
        assert!(records.attributes.records.is_empty());
    }

    #[test]
    fn missing_or_bad_timestamp_uses_received_time() {
        let records = parse(
            "",
            &[
                r#"{"message":"no time"}"#,
                r#"{"timestamp":null}"#,
                r#"{"timestamp":"yesterday at noon","message":"m"}"#,
                r#"{"timestamp":"2023-11-14T22:13:20"}"#,
                r#"{"timestamp":true}"#,
                r#"{"timestamp":{"s":1}}"#,
                r#"{"timestamp":1e300}"#,
            ],
        );
        assert_eq!(records.timestamps, vec![RECEIVED; 7]);
        assert_eq!(attributes(&records, 0), vec![]);
        assert_eq!(attributes(&records, 1), vec![]);
        let error = |record| attribute(&records, record, TIMESTAMP_ERROR_ATTRIBUTE);
        assert_eq!(error(2), Some(&str("yesterday at noon")));
        assert_eq!(error(3), Some(&str("2023-11-14T22:13:20")));
        assert_eq!(error(4), Some(&str("true")));
        assert_eq!(error(5), Some(&str(r#"{"s":1}"#)));
        assert_eq!(error(6), Some(&str("1e300")));
        assert!(records.parse_errors.is_empty());
    }

    #[test]
    fn timestamp_format_option() {
        let lines = [
            r#"{"timestamp":1500}"#,
            r#"{"timestamp":"2023-11-14T22:13:20Z"}"#,
        ];
        let records = parse(r#"{"timestamp_format":"unix_millis"}"#, &lines);
        assert_eq!(records.timestamps, vec![1_500_000_000, RECEIVED]);
        assert!(attribute(&records, 1, TIMESTAMP_ERROR_ATTRIBUTE).is_some());

        let records = parse(r#"{"timestamp_format":"rfc3339"}"#, &lines);
        assert_eq!(records.timestamps, vec![RECEIVED, T]);
        assert_eq!(
            attribute(&records, 0, TIMESTAMP_ERROR_ATTRIBUTE),
            Some(&str("1500"))
        );

        let records = parse(r#"{"timestamp_format":"unix_seconds"}"#, &lines[..1]);
        assert_eq!(records.timestamps, vec![1_500_000_000_000]);
        let records = parse(r#"{"timestamp_format":"unix_micros"}"#, &lines[..1]);
        assert_eq!(records.timestamps, vec![1_500_000]);
        let records = parse(r#"{"timestamp_format":"unix_nanos"}"#, &lines[..1]);
        assert_eq!(records.timestamps, vec![1_500]);
        let records = parse(r#"{"timestamp_format":"auto"}"#, &lines);
        assert_eq!(records.timestamps, vec![1_500_000_000_000, T]);
    }

    #[test]
    fn field_name_options() {
        let config =
            r#"{"timestamp_field":"ts","severity_field":"severity","message_field":"msg"}"#;
        let records = parse(
            config,
            &[
                r#"{"ts":1700000000,"severity":"error","msg":"boom","timestamp":"x","level":"info","message":"m"}"#,
            ],
        );
        assert_eq!(records.timestamps, vec![T]);
        assert_eq!(records.severity_numbers, vec![17]);
        assert_eq!(records.bodies.get(0), "boom");
        // The default names are ordinary members now.
        assert_eq!(
            attributes(&records, 0),
            vec![
                ("timestamp", &str("x")),
                ("level", &str("info")),
                ("message", &str("m")),
            ]
        );
    }

    #[test]
    fn role_fields_are_top_level_only() {
        let records = parse(
            "",
            &[r#"{"log":{"level":"error","message":"inner"},"message":"outer"}"#],
        );
        assert_eq!(records.severity_numbers, vec![0]);
        assert_eq!(records.bodies.get(0), "outer");
        assert_eq!(
            attributes(&records, 0),
            vec![("log.level", &str("error")), ("log.message", &str("inner"))]
        );
    }

    #[test]
    fn nested_objects_are_flattened() {
        let line = r#"{"http":{"method":"GET","status":200,"headers":{"accept":"*/*","x-ids":[1,2]}},"empty":{},"user":{"id":7,"meta":{}}}"#;
        let records = parse("", &[line]);
        assert_eq!(
            attributes(&records, 0),
            vec![
                ("http.method", &str("GET")),
                ("http.status", &Value::Int(200)),
                ("http.headers.accept", &str("*/*")),
                ("http.headers.x-ids", &str("[1,2]")),
                ("empty", &str("{}")),
                ("user.id", &Value::Int(7)),
                ("user.meta", &str("{}")),
            ]
        );
    }

    #[test]
    fn flatten_nested_off_keeps_json_text() {
        let records = parse(
            r#"{"flatten_nested":false}"#,
            &[r#"{"http":{"status":200,"path":"/"},"n":1}"#],
        );
        assert_eq!(
            attributes(&records, 0),
            vec![
                ("http", &str(r#"{"status":200,"path":"/"}"#)),
                ("n", &Value::Int(1)),
            ]
        );
    }

    #[test]
    fn max_depth_limits_flattening() {
        let line = r#"{"a":{"b":{"c":{"d":1}},"x":true}}"#;
        let at = |depth: u32| {
            let records = parse(&format!(r#"{{"max_depth":{depth}}}"#), &[line]);
            attributes(&records, 0)
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.clone()))
                .collect::<Vec<_>>()
        };
        let owned = |pairs: &[(&str, Value)]| {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at(1),
            owned(&[
                ("a.b", str(r#"{"c":{"d":1}}"#)),
                ("a.x", Value::Boolean(true))
            ])
        );
        assert_eq!(
            at(2),
            owned(&[("a.b.c", str(r#"{"d":1}"#)), ("a.x", Value::Boolean(true))])
        );
        assert_eq!(
            at(3),
            owned(&[("a.b.c.d", Value::Int(1)), ("a.x", Value::Boolean(true))])
        );
        assert_eq!(at(8), at(3));
    }

    #[test]
    fn malformed_lines_keep_their_neighbours() {
        let mut parser = parser("");
        let records = parse_with(
            &mut parser,
            &[
                r#"{"message":"first","level":"info","nested":{"k":"v"}}"#,
                r#"{"message":"cut off","level":"#,
                r#"{"message":"second","timestamp":1700000000}"#,
                "plain text, not JSON",
                r#"["an","array"]"#,
                r#"{"message":"third"}"#,
                "42",
                r#"{"a":1} trailing"#,
                r#"{"message":"last","n":[1,2]}"#,
            ],
        );
        let bodies: Vec<&str> = records.bodies.iter().collect();
        assert_eq!(
            bodies,
            vec![
                "first",
                r#"{"message":"cut off","level":"#,
                "second",
                "plain text, not JSON",
                r#"["an","array"]"#,
                "third",
                "42",
                r#"{"a":1} trailing"#,
                "last",
            ]
        );
        let failed: Vec<u32> = records
            .parse_errors
            .iter()
            .map(|error| error.index)
            .collect();
        assert_eq!(failed, vec![1, 3, 4, 6, 7]);
        let messages: Vec<&str> = records
            .parse_errors
            .iter()
            .map(|error| error.message.as_str())
            .collect();
        assert!(messages[0].starts_with("invalid JSON: "), "{messages:?}");
        assert!(messages[1].starts_with("invalid JSON: "), "{messages:?}");
        assert!(
            messages[2].starts_with("not a JSON object: "),
            "{messages:?}"
        );
        assert!(
            messages[3].starts_with("not a JSON object: "),
            "{messages:?}"
        );
        assert!(messages[4].starts_with("invalid JSON: "), "{messages:?}");
        // Failed lines carry nothing of their partial parse; good ones keep everything.
        for index in failed {
            assert_eq!(attributes(&records, index), vec![]);
            assert_eq!(records.timestamps[index as usize], RECEIVED);
            assert_eq!(records.severity_numbers[index as usize], 0);
        }
        assert_eq!(attribute(&records, 0, "nested.k"), Some(&str("v")));
        assert_eq!(records.severity_numbers[0], 9);
        assert_eq!(records.timestamps[2], T);
        assert_eq!(attribute(&records, 8, "n"), Some(&str("[1,2]")));
    }

    #[test]
    fn blank_lines_give_no_record() {
        let records = parse("", &["", "   ", "\t\r", r#"{"message":"only"}"#, ""]);
        assert_eq!(records.bodies.len(), 1);
        assert_eq!(records.bodies.get(0), "only");
        assert!(records.parse_errors.is_empty());
    }

    #[test]
    fn scratch_buffers_do_not_leak_between_lines() {
        let mut parser = parser("");
        let records = parse_with(
            &mut parser,
            &[r#"{"a":{"b":1},"c":2}"#, r#"{"d":{"e":"#, r#"{"f":3}"#],
        );
        assert_eq!(
            attributes(&records, 0),
            vec![("a.b", &Value::Int(1)), ("c", &Value::Int(2))]
        );
        assert_eq!(attributes(&records, 1), vec![]);
        assert_eq!(attributes(&records, 2), vec![("f", &Value::Int(3))]);
        // The same parser goes on working on the next batch.
        let records = parse_with(&mut parser, &[r#"{"g":{"h":true}}"#]);
        assert_eq!(
            attributes(&records, 0),
            vec![("g.h", &Value::Boolean(true))]
        );
    }

    #[test]
    fn sample_file() {
        let sample = include_str!("../samples/app.jsonl");
        let lines: Vec<&str> = sample.lines().collect();
        let records = parse("", &lines);
        assert_eq!(records.bodies.len(), lines.len());
        let failed: Vec<u32> = records
            .parse_errors
            .iter()
            .map(|error| error.index)
            .collect();
        assert_eq!(failed, vec![11, 15]);
        // 2024-05-01T09:00:00Z and 09:01:00Z.
        let (start, end) = (1_714_554_000 * 1_000_000_000, 1_714_554_060 * 1_000_000_000);
        for (index, &time) in records.timestamps.iter().enumerate() {
            let index = index as u32;
            let time_error = attribute(&records, index, TIMESTAMP_ERROR_ATTRIBUTE);
            if failed.contains(&index) || index == 2 {
                assert_eq!(time, RECEIVED, "line {index}");
            } else {
                assert!((start..end).contains(&time), "line {index}");
                assert!(records.severity_numbers[index as usize] > 0, "line {index}");
                assert_eq!(time_error, None, "line {index}");
            }
        }
        assert_eq!(
            attribute(&records, 2, TIMESTAMP_ERROR_ATTRIBUTE),
            Some(&str("2024-05-01T09:00:01.003"))
        );
        assert_eq!(
            attribute(&records, 4, "http.status"),
            Some(&Value::Int(201))
        );
    }

    #[test]
    fn default_and_empty_configs() {
        for config in ["", "null", "{}"] {
            let parser = parser(config);
            assert_eq!(&*parser.settings.timestamp_field, "timestamp");
            assert_eq!(&*parser.settings.severity_field, "level");
            assert_eq!(&*parser.settings.message_field, "message");
            assert_eq!(parser.settings.timestamp_format, TimestampFormat::Auto);
            assert_eq!(parser.settings.flatten_depth, 8);
        }
    }

    #[test]
    fn rejects_bad_config() {
        let error = |config: &str| JsonParser::from_json_config(config).unwrap_err();
        assert!(error(r#"{"timestamp_feild":"ts"}"#).contains("unknown field `timestamp_feild`"));
        assert!(error(r#"{"timestamp_format":"iso"}"#).contains("unknown variant `iso`"));
        assert!(error(r#"{"flatten_nested":"yes"}"#).contains("invalid type"));
        assert!(error(r#"{"max_depth":-1}"#).contains("invalid value"));
        assert_eq!(
            error(r#"{"message_field":""}"#),
            "message_field must not be empty"
        );
        assert_eq!(
            error(r#"{"severity_field":"timestamp"}"#),
            "timestamp_field and severity_field are both `timestamp`: one member cannot play \
             two roles"
        );
        assert!(
            error(r#"{"message_field":"level"}"#).starts_with("severity_field and message_field")
        );
        assert!(error(r#"{"max_depth":0}"#).starts_with("max_depth 0 is outside 1..=64"));
        assert!(error(r#"{"max_depth":65}"#).starts_with("max_depth 65 is outside 1..=64"));
        assert!(JsonParser::from_json_config(r#"{"max_depth":64}"#).is_ok());
    }
}
