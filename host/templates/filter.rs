//! `{{name}}`: a Sluice filter plugin.
//!
//! It drops records whose body contains `drop_substring` and tags the others with
//! `tag_key = tag_value`. Replace the logic with your own; keep the unit tests honest.

use serde::Deserialize;
use sluice_sdk::{Change, Filter, KeyValue, LogRecordView, Plugin, Value, Verdict};

/// Configuration, from the plugin's `config` table in the gateway config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Records whose body contains this text are dropped. Default: "healthcheck".
    pub drop_substring: String,
    /// Attribute added to kept records. Default: "reviewed_by".
    pub tag_key: String,
    /// Its value. Default: "{{name}}".
    pub tag_value: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { drop_substring: "healthcheck".into(), tag_key: "reviewed_by".into(), tag_value: "{{name}}".into() }
    }
}

/// The plugin.
pub struct MyFilter {
    config: Config,
}

impl Plugin for MyFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.drop_substring.is_empty() {
            return Err("drop_substring must not be empty".into());
        }
        Ok(MyFilter { config })
    }
}

impl Filter for MyFilter {
    fn filter(&mut self, record: &LogRecordView<'_, '_>) -> Verdict {
        if record.body().contains(&self.config.drop_substring) {
            return Verdict::Drop;
        }
        Verdict::Edit(vec![Change::SetAttribute(KeyValue {
            key: self.config.tag_key.clone(),
            value: Value::Str(self.config.tag_value.clone()),
        })])
    }
}

sluice_sdk::export_filter!(MyFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{LogBatch, LogRecord};

    #[test]
    fn drops_matching_records_and_tags_the_rest() {
        let mut plugin = MyFilter::from_json_config("{}").unwrap();
        let records = [LogRecord::new(9, "GET /healthcheck 200"), LogRecord::new(17, "payment failed")];
        let result = plugin.filter_batch(&LogBatch::from_records(&records));
        assert_eq!(result.kept_indices(records.len()), vec![1]);
        assert_eq!(result.edits.len(), 1, "only the kept record is tagged");
    }

    #[test]
    fn refuses_an_empty_substring() {
        assert!(MyFilter::from_json_config(r#"{"drop_substring": ""}"#).is_err());
    }
}
