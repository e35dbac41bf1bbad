//! `redact`: masks credentials and personal data in log bodies and string attribute values.
//!
//! Built-in detectors (each can be turned off under `builtins`): credentials in URLs, basic-auth
//! and bearer headers, AWS access key ids and labelled secret keys, e-mail addresses and payment
//! card numbers that pass the Luhn check. Extra `patterns` add regexes of your own. Every finding
//! is replaced with a mask naming its kind (`[REDACTED:email]`); only records that changed are
//! edited, and nothing is dropped. See the crate README for the config.

mod detect;

use serde::Deserialize;
use sluice_sdk::host::{Level, counter_add, log};
use sluice_sdk::{
    Change, Edit, Filter, FilterResult, KeyValue, LogBatch, Plugin, Selection, Value,
};

use detect::{Detector, Hints, Replacement};
pub use detect::{Kind, is_card_number, luhn};

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which built-in detectors run. Default: all of them.
    pub builtins: Builtins,
    /// What replaces a finding of a built-in detector; `{kind}` becomes the detector's name
    /// (`email`, `bearer`...). Default: `"[REDACTED:{kind}]"`.
    pub mask: String,
    /// Scan record bodies. Default: `true`.
    pub body: bool,
    /// Keys of the attributes to scan. Absent scans every string attribute; an empty list scans
    /// none. Default: absent.
    pub attributes: Option<Vec<String>>,
    /// Keys of attributes never scanned, even when listed in `attributes`. Default: empty.
    pub skip_attributes: Vec<String>,
    /// Extra patterns, applied in order after the built-ins. Default: none.
    pub patterns: Vec<PatternConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            builtins: Builtins::default(),
            mask: "[REDACTED:{kind}]".to_owned(),
            body: true,
            attributes: None,
            skip_attributes: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

/// Which built-in detectors run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Builtins {
    /// E-mail addresses. Default: `true`.
    pub email: bool,
    /// Bearer tokens after `Authorization: Bearer` (any length) or a bare `bearer` (8 characters
    /// or more). Default: `true`.
    pub bearer: bool,
    /// Basic-auth credentials after `Authorization: Basic`, or after a bare `Basic` when they
    /// decode to `user:password`. Default: `true`.
    pub basic_auth: bool,
    /// `user:password` in URLs (`https://user:pass@host`). Default: `true`.
    pub url_credentials: bool,
    /// AWS access key ids (`AKIA`/`ASIA` and 16 uppercase letters or digits). Default: `true`.
    pub aws_access_key_id: bool,
    /// AWS secret keys after a label (`aws_secret_access_key=`, `"SecretAccessKey":`).
    /// Default: `true`.
    pub aws_secret_key: bool,
    /// Payment card numbers: 13-19 digits, optionally grouped by spaces or dashes, first digit
    /// 2-6, valid Luhn check digit. Default: `true`.
    pub card: bool,
}

impl Default for Builtins {
    fn default() -> Self {
        Builtins {
            email: true,
            bearer: true,
            basic_auth: true,
            url_credentials: true,
            aws_access_key_id: true,
            aws_secret_key: true,
            card: true,
        }
    }
}

impl Builtins {
    /// Whether the detector of `kind` runs.
    pub fn enabled(&self, kind: Kind) -> bool {
        match kind {
            Kind::UrlCredentials => self.url_credentials,
            Kind::BasicAuth => self.basic_auth,
            Kind::Bearer => self.bearer,
            Kind::AwsSecretKey => self.aws_secret_key,
            Kind::AwsAccessKeyId => self.aws_access_key_id,
            Kind::Email => self.email,
            Kind::Card => self.card,
        }
    }
}

/// An extra pattern.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Name of the pattern: `{kind}` in the default replacement and the counter
    /// `redacted_<name>`; letters, digits, `_`, `-` and `.`. Required.
    pub name: String,
    /// Regular expression in Rust `regex` syntax; the whole match is replaced. Required.
    pub regex: String,
    /// What replaces a match; `$1` / `${name}` expand capture groups, `$$` is a `$`.
    /// Default: `mask` with `{kind}` = `name`.
    #[serde(default)]
    pub replacement: Option<String>,
}

/// One enabled detector and the counter its findings go to.
#[derive(Debug)]
struct Rule {
    detector: Detector,
    counter: String,
}

/// The detectors, applied one after the other to each text.
#[derive(Debug)]
struct Rules {
    builtins: Vec<Rule>,
    custom: Vec<Rule>,
    /// All custom regexes, to find in one pass which of them match (two or more patterns).
    custom_set: Option<regex::RegexSet>,
}

impl Rules {
    /// Masks every finding in `text`, adding to `counts` (built-ins first, then custom rules);
    /// `None`, without allocating, when nothing was found.
    fn redact(&self, text: &str, counts: &mut [u64]) -> Option<String> {
        let (builtin_counts, custom_counts) = counts.split_at_mut(self.builtins.len());
        let mut redacted: Option<String> = None;
        let mut hints = Hints::of(text);
        for (rule, count) in self.builtins.iter().zip(builtin_counts) {
            if !rule.detector.admits(&hints) {
                continue;
            }
            let current = redacted.as_deref().unwrap_or(text);
            if let Some((new, found)) = rule.detector.apply(current) {
                *count += found;
                // A mask may bring in bytes a later gate looks for.
                hints = Hints::of(&new);
                redacted = Some(new);
            }
        }
        if self.custom.is_empty() {
            return redacted;
        }
        let current = redacted.as_deref().unwrap_or(text);
        let Some(set) = &self.custom_set else {
            // A single pattern: its own prefilter is the pre-check.
            if let Some((new, found)) = self.custom[0].detector.apply(current) {
                custom_counts[0] += found;
                return Some(new);
            }
            return redacted;
        };
        if !set.is_match(current) {
            return redacted;
        }
        let mut matching = set.matches(current);
        for (index, (rule, count)) in self.custom.iter().zip(custom_counts).enumerate() {
            if !matching.matched(index) {
                continue;
            }
            let current = redacted.as_deref().unwrap_or(text);
            if let Some((new, found)) = rule.detector.apply(current) {
                *count += found;
                // A replacement may make a later pattern match (or stop matching).
                matching = set.matches(&new);
                redacted = Some(new);
            }
        }
        redacted
    }
}

/// Masks credentials and personal data in bodies and string attributes.
#[derive(Debug)]
pub struct Redact {
    rules: Rules,
    /// Findings of each rule in the current batch (built-ins, then custom rules).
    counts: Vec<u64>,
    body: bool,
    attributes: Option<Vec<String>>,
    skip_attributes: Vec<String>,
}

impl Plugin for Redact {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let builtins: Vec<Rule> = Kind::ALL
            .into_iter()
            .filter(|kind| config.builtins.enabled(*kind))
            .map(|kind| Rule {
                detector: kind.detector(config.mask.replace("{kind}", kind.name())),
                counter: format!("redacted_{}", kind.name()),
            })
            .collect();
        let mut custom = Vec::with_capacity(config.patterns.len());
        for pattern in &config.patterns {
            let name = &pattern.name;
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"_-.".contains(&byte))
            {
                return Err(format!(
                    "pattern name `{name}` must be letters, digits, `_`, `-` or `.`"
                ));
            }
            let regex = regex::Regex::new(&pattern.regex).map_err(|error| {
                format!(
                    "pattern `{name}`: invalid regex `{}`: {error}",
                    pattern.regex
                )
            })?;
            if has_unicode_word_boundary(&pattern.regex) {
                log(
                    Level::Warn,
                    &format!(
                        "pattern `{name}`: `\\b` is Unicode-aware, which makes the regex engine use \
                         its slowest matcher on any non-ASCII text; `(?-u:\\b)` is much faster"
                    ),
                );
            }
            // The mask is literal text; only a pattern's own replacement expands `$` references.
            let replacement = match &pattern.replacement {
                Some(replacement) => Replacement::new(replacement.clone()),
                None => Replacement::Literal(config.mask.replace("{kind}", name)),
            };
            custom.push(Rule {
                detector: Detector::custom(regex, replacement),
                counter: format!("redacted_{name}"),
            });
        }
        let custom_set = if custom.len() > 1 {
            let set = regex::RegexSet::new(config.patterns.iter().map(|p| &p.regex))
                .map_err(|error| format!("patterns: {error}"))?;
            Some(set)
        } else {
            None
        };
        let counts = vec![0; builtins.len() + custom.len()];
        Ok(Redact {
            rules: Rules {
                builtins,
                custom,
                custom_set,
            },
            counts,
            body: config.body,
            attributes: config.attributes,
            skip_attributes: config.skip_attributes,
        })
    }
}

/// Whether `pattern` holds a Unicode word boundary (`\b`, `\B`, `\<`...). The lazy DFA cannot
/// handle one on non-ASCII text and the regex falls back to its slowest engine there.
fn has_unicode_word_boundary(pattern: &str) -> bool {
    regex_syntax::parse(pattern)
        .is_ok_and(|hir| hir.properties().look_set().contains_word_unicode())
}

impl Redact {
    /// Whether the attribute `key` is scanned.
    fn scans_attribute(&self, key: &str) -> bool {
        self.attributes
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
            && !self.skip_attributes.iter().any(|k| k == key)
    }

    /// Masks `text`, counting findings for this batch.
    fn redact(&mut self, text: &str) -> Option<String> {
        self.rules.redact(text, &mut self.counts)
    }
}

impl Filter for Redact {
    fn filter_batch(&mut self, batch: &LogBatch<'_>) -> FilterResult {
        let mut edits = Vec::new();
        if self.body {
            for (index, body) in batch.bodies().iter().enumerate() {
                if let Some(body) = self.redact(body) {
                    edits.push(Edit {
                        index: index as u32,
                        change: Change::Body(body),
                    });
                }
            }
        }
        let scans_attributes = self.attributes.as_ref().is_none_or(|keys| !keys.is_empty());
        if scans_attributes {
            for (record, key, value) in batch.attributes().iter() {
                let Value::Str(text) = value else { continue };
                if !self.scans_attribute(key) {
                    continue;
                }
                if let Some(text) = self.redact(text) {
                    edits.push(Edit {
                        index: record,
                        change: Change::SetAttribute(KeyValue {
                            key: key.to_owned(),
                            value: Value::Str(text),
                        }),
                    });
                }
            }
            // Edits go in record order (the host applies them in one pass); a stable sort keeps
            // each record's body edit before its attribute edits.
            if !edits.is_sorted_by_key(|edit| edit.index) {
                edits.sort_by_key(|edit| edit.index);
            }
        }
        let rules = self.rules.builtins.iter().chain(&self.rules.custom);
        for (rule, count) in rules.zip(&mut self.counts) {
            if *count > 0 {
                counter_add(&rule.counter, std::mem::take(count));
            }
        }
        FilterResult {
            keep: Selection::All,
            edits,
        }
    }
}

sluice_sdk::export_filter!(Redact);

#[cfg(test)]
mod tests;
