//! A filter that misbehaves on purpose, to test the sandbox. It keeps every record and stamps it
//! with `calls` (how many batches this instance has seen), except when a record's body is
//! `trigger`: then it does what `mode` says.

use serde::Deserialize;
use sluice_sdk::{
    Change, Edit, Filter, FilterResult, KeyValue, LogBatch, Plugin, Selection, Value,
};

/// The plugin's config.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `loop`, `memory-bomb`, `panic`, `oversized-output`, `bad-mask`, `read-file`, `read-env`,
    /// `reject-config`, or empty (behave).
    pub mode: String,
    /// File to read in `read-file` mode.
    pub path: String,
    /// Variable to read in `read-env` mode.
    pub variable: String,
}

/// The misbehaving filter.
pub struct Hostile {
    config: Config,
    calls: i64,
}

impl Plugin for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.mode == "reject-config" {
            return Err("mode reject-config: this config is refused on purpose".into());
        }
        Ok(Hostile { config, calls: 0 })
    }
}

impl Filter for Hostile {
    fn filter_batch(&mut self, batch: &LogBatch<'_>) -> FilterResult {
        self.calls += 1;
        let triggered = batch.bodies().iter().any(|body| body == "trigger");
        let mut edits: Vec<Edit> = (0..batch.len() as u32)
            .map(|index| Edit {
                index,
                change: Change::SetAttribute(KeyValue {
                    key: "calls".into(),
                    value: Value::Int(self.calls),
                }),
            })
            .collect();
        if triggered {
            match self.config.mode.as_str() {
                "loop" => {
                    let mut spin: u64 = 0;
                    loop {
                        spin = std::hint::black_box(spin.wrapping_add(1));
                    }
                }
                "memory-bomb" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                    }
                }
                "panic" => panic!("hostile plugin panics on purpose"),
                "oversized-output" => {
                    let huge = "x".repeat(8 << 20);
                    edits.push(Edit {
                        index: 0,
                        change: Change::Body(huge),
                    });
                }
                "bad-mask" => {
                    return FilterResult {
                        keep: Selection::Mask(vec![1]),
                        edits: Vec::new(),
                    };
                }
                "read-file" => {
                    let content =
                        std::fs::read_to_string(&self.config.path).unwrap_or_else(|error| {
                            panic!("could not read {}: {error}", self.config.path)
                        });
                    edits.push(Edit {
                        index: 0,
                        change: Change::Body(content),
                    });
                }
                "read-env" => {
                    let value = std::env::var(&self.config.variable).unwrap_or_else(|error| {
                        panic!("could not read ${}: {error}", self.config.variable)
                    });
                    edits.push(Edit {
                        index: 0,
                        change: Change::Body(value),
                    });
                }
                _ => {}
            }
        }
        FilterResult {
            keep: Selection::All,
            edits,
        }
    }
}

sluice_sdk::export_filter!(Hostile);
