//! `{{name}}`: a Sluice parser plugin.
//!
//! It parses lines of `key=value` pairs (logfmt-like): `level` sets the severity, `msg` the body,
//! every other pair becomes an attribute. A line with no pair is a parse error, kept as a record
//! flagged with the error. Replace the logic with your own; keep the unit tests honest.

use serde::Deserialize;
use sluice_sdk::{LogRecordsBuilder, Parser, Plugin, RawInput, Value};

/// Configuration, from the plugin's `config` table in the gateway config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Key holding the message. Default: "msg".
    pub message_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { message_key: "msg".into() }
    }
}

/// The plugin.
pub struct MyParser {
    config: Config,
}

impl Plugin for MyParser {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(MyParser { config })
    }
}

fn severity(level: &str) -> u8 {
    match level {
        "debug" => 5,
        "info" => 9,
        "warn" => 13,
        "error" => 17,
        _ => 0,
    }
}

impl Parser for MyParser {
    fn parse_line(&mut self, line: &str, input: &RawInput, out: &mut LogRecordsBuilder) -> Result<(), String> {
        let pairs: Vec<(&str, &str)> = line.split_whitespace().filter_map(|pair| pair.split_once('=')).collect();
        if pairs.is_empty() {
            return Err("no key=value pair".into());
        }
        let find = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let level = find("level").unwrap_or("");
        out.push(input.received, severity(level), level, find(&self.config.message_key).unwrap_or(line));
        for (key, value) in &pairs {
            if *key != "level" && *key != self.config.message_key {
                out.attribute(key, Value::Str(value.to_string()));
            }
        }
        Ok(())
    }
}

sluice_sdk::export_parser!(MyParser);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::__private::run_parser;

    #[test]
    fn parses_pairs_and_flags_bad_lines_without_losing_neighbours() {
        let mut plugin = MyParser::from_json_config("{}").unwrap();
        let input = RawInput::from_lines("test", ["level=error msg=boom user=7", "garbage", "level=info msg=ok"]);
        let records = run_parser(&mut plugin, &input).unwrap();
        assert_eq!(records.severity_numbers, vec![17, 0, 9]);
        assert_eq!(records.bodies.get(0), "boom");
        assert_eq!(records.bodies.get(1), "garbage");
        assert_eq!(records.parse_errors.len(), 1);
        assert_eq!(records.parse_errors[0].index, 1);
    }
}
