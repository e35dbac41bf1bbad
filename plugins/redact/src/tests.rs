use super::*;
use sluice_sdk::LogRecord;

fn plugin(config: &str) -> Redact {
    Redact::from_json_config(config).unwrap()
}

fn run(plugin: &mut Redact, records: &[LogRecord]) -> FilterResult {
    plugin.filter_batch(&LogBatch::from_records(records))
}

/// The body `plugin` makes of `body`, or `None` when it leaves the record alone.
fn redacted_body(plugin: &mut Redact, body: &str) -> Option<String> {
    let result = run(plugin, &[LogRecord::new(9, body)]);
    assert_eq!(result.keep, Selection::All);
    match result.edits.as_slice() {
        [] => None,
        [
            Edit {
                index: 0,
                change: Change::Body(body),
            },
        ] => Some(body.clone()),
        other => panic!("unexpected edits {other:?}"),
    }
}

/// The value `plugin` makes of the string attribute `key = value`, or `None` when unchanged.
fn redacted_attribute(plugin: &mut Redact, key: &str, value: &str) -> Option<String> {
    let record = LogRecord::new(9, "nothing to see").with_attribute(key, value);
    let result = run(plugin, &[record]);
    match result.edits.as_slice() {
        [] => None,
        [
            Edit {
                index: 0,
                change: Change::SetAttribute(KeyValue { key: k, value }),
            },
        ] if k == key => Some(value.as_str().expect("a string value").to_owned()),
        other => panic!("unexpected edits {other:?}"),
    }
}

/// One text per built-in kind, and what it becomes with the default config.
const FINDINGS: &[(&str, &str, &str)] = &[
    (
        "email",
        "login by jane.doe+test@mail.example.co.uk failed",
        "login by [REDACTED:email] failed",
    ),
    (
        "bearer",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abc-123",
        "Authorization: Bearer [REDACTED:bearer]",
    ),
    (
        "bearer",
        r#"headers={"authorization": "Bearer abc"} status=401"#,
        r#"headers={"authorization": "Bearer [REDACTED:bearer]"} status=401"#,
    ),
    (
        "bearer",
        "retrying with bearer 0a1b2c3d4e5f6a7b8c9d",
        "retrying with bearer [REDACTED:bearer]",
    ),
    (
        "basic_auth",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "Authorization: Basic [REDACTED:basic_auth]",
    ),
    (
        "basic_auth",
        "curl -H 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==' http://x",
        "curl -H 'Basic [REDACTED:basic_auth]' http://x",
    ),
    (
        "url_credentials",
        "connecting to postgres://app:s3cr%40t@db.internal:5432/orders",
        "connecting to postgres://[REDACTED:url_credentials]@db.internal:5432/orders",
    ),
    (
        "url_credentials",
        "GET https://bob:hunter2@example.com/path?q=1",
        "GET https://[REDACTED:url_credentials]@example.com/path?q=1",
    ),
    (
        "aws_access_key_id",
        "using key AKIAIOSFODNN7EXAMPLE for s3",
        "using key [REDACTED:aws_access_key_id] for s3",
    ),
    (
        "aws_access_key_id",
        "session ASIAY34FZKBOKMUTVV7A expires",
        "session [REDACTED:aws_access_key_id] expires",
    ),
    (
        "aws_secret_key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY region=eu-west-1",
        "aws_secret_access_key=[REDACTED:aws_secret_key] region=eu-west-1",
    ),
    (
        "aws_secret_key",
        r#"{"AccessKeyId":"x","SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
        r#"{"AccessKeyId":"x","SecretAccessKey": "[REDACTED:aws_secret_key]"}"#,
    ),
    (
        "card",
        "paid with 4111 1111 1111 1111 ok",
        "paid with [REDACTED:card] ok",
    ),
    ("card", "card=5500-0000-0000-0004;", "card=[REDACTED:card];"),
    ("card", "amex 378282246310005", "amex [REDACTED:card]"),
];

#[test]
fn each_built_in_kind_is_masked_in_bodies() {
    let mut redact = plugin("");
    for (kind, input, expected) in FINDINGS {
        assert_eq!(
            redacted_body(&mut redact, input).as_deref(),
            Some(*expected),
            "{kind}: {input}"
        );
    }
}

#[test]
fn each_built_in_kind_is_masked_in_string_attributes() {
    let mut redact = plugin("{}");
    for (kind, input, expected) in FINDINGS {
        assert_eq!(
            redacted_attribute(&mut redact, "http.request", input).as_deref(),
            Some(*expected),
            "{kind}: {input}"
        );
    }
}

#[test]
fn only_luhn_valid_card_numbers_are_masked() {
    let mut redact = plugin("");
    // Order ids, timestamps and the like: 13-19 digits that are not card numbers.
    for text in [
        "order 1234567890123456 shipped",   // fails Luhn
        "order 4111 1111 1111 1112 placed", // fails Luhn
        "ts=1718035200000000001",           // starts with 1 (nanoseconds), though Luhn-valid
        "id 0000000000000000",              // starts with 0
        "short 4111 1111 1",                // 9 digits
        "hex deadbeef4111111111111111",     // inside a word
    ] {
        assert_eq!(redacted_body(&mut redact, text), None, "{text}");
    }
    assert_eq!(
        redacted_body(&mut redact, "a 4111111111111111, b 5500-0000-0000-0004").as_deref(),
        Some("a [REDACTED:card], b [REDACTED:card]")
    );
}

#[test]
fn unchanged_records_produce_no_edits() {
    let mut redact = plugin("");
    let records = vec![
        LogRecord::new(9, "user logged in").with_attribute("user", "jane"),
        LogRecord::new(9, "mail to a@example.com").with_attribute("user", "jane"),
        LogRecord::new(13, "basic setup complete, bearer token expired")
            .with_attribute("note", "see https://example.com/docs")
            .with_attribute("email", "b@example.org"),
        LogRecord::new(9, "order 1234567890123456 @ 12:00"),
    ];
    let result = run(&mut redact, &records);
    assert_eq!(result.keep, Selection::All);
    assert_eq!(
        result.edits,
        vec![
            Edit {
                index: 1,
                change: Change::Body("mail to [REDACTED:email]".into()),
            },
            Edit {
                index: 2,
                change: Change::SetAttribute(KeyValue {
                    key: "email".into(),
                    value: "[REDACTED:email]".into(),
                }),
            },
        ]
    );
    assert!(run(&mut redact, &[]).edits.is_empty());
}

#[test]
fn edits_are_in_record_order_with_body_first() {
    let mut redact = plugin("");
    let records = vec![
        LogRecord::new(9, "x").with_attribute("to", "a@example.com"),
        LogRecord::new(9, "from b@example.com").with_attribute("to", "c@example.com"),
    ];
    let edits = run(&mut redact, &records).edits;
    let order: Vec<(u32, bool)> = edits
        .iter()
        .map(|edit| (edit.index, matches!(edit.change, Change::Body(_))))
        .collect();
    assert_eq!(order, vec![(0, false), (1, true), (1, false)]);
}

#[test]
fn non_string_attribute_values_are_untouched() {
    let mut redact = plugin("");
    let records = vec![
        LogRecord::new(9, "ok")
            .with_attribute("card", 4111111111111111_i64)
            .with_attribute("ratio", 0.5)
            .with_attribute("flag", true)
            .with_attribute("raw", Value::Bytes(b"a@example.com".to_vec())),
    ];
    assert!(run(&mut redact, &records).edits.is_empty());
}

#[test]
fn disabled_built_ins_are_not_applied() {
    let mut redact = plugin(r#"{"builtins": {"email": false, "card": false}}"#);
    let text = "a@example.com paid 4111 1111 1111 1111 with key AKIAIOSFODNN7EXAMPLE";
    assert_eq!(
        redacted_body(&mut redact, text).as_deref(),
        Some("a@example.com paid 4111 1111 1111 1111 with key [REDACTED:aws_access_key_id]")
    );
    let mut none = plugin(
        r#"{"builtins": {"email": false, "bearer": false, "basic_auth": false,
            "url_credentials": false, "aws_access_key_id": false, "aws_secret_key": false,
            "card": false}}"#,
    );
    for (_, input, _) in FINDINGS {
        assert_eq!(redacted_body(&mut none, input), None, "{input}");
    }
}

#[test]
fn custom_patterns_are_applied_after_built_ins() {
    let mut redact = plugin(
        r#"{"patterns": [
            {"name": "ssn", "regex": "\\b\\d{3}-\\d{2}-\\d{4}\\b"},
            {"name": "session", "regex": "session=([a-f0-9]{4})[a-f0-9]+", "replacement": "session=${1}…"},
            {"name": "iban", "regex": "(?i)\\bDE\\d{20}\\b", "replacement": "<iban>"}
        ]}"#,
    );
    assert_eq!(
        redacted_body(
            &mut redact,
            "ssn 123-45-6789 session=deadbeefcafe iban de89370400440532013000 mail x@y.io"
        )
        .as_deref(),
        Some("ssn [REDACTED:ssn] session=dead… iban <iban> mail [REDACTED:email]")
    );
    assert_eq!(redacted_body(&mut redact, "nothing here 12-34"), None);
    assert_eq!(
        redacted_attribute(&mut redact, "ssn", "123-45-6789").as_deref(),
        Some("[REDACTED:ssn]")
    );

    // One pattern alone (no set), with a custom mask.
    let mut single =
        plugin(r#"{"mask": "<{kind}>", "patterns": [{"name": "pin", "regex": "pin=\\d+"}]}"#);
    assert_eq!(
        redacted_body(&mut single, "pin=1234 by a@b.de").as_deref(),
        Some("<pin> by <email>")
    );

    // A mask is literal text, `$` included; a replacement expands `$$` to `$`.
    let mut dollars = plugin(
        r#"{"mask": "$1[{kind}]", "patterns": [
            {"name": "pin", "regex": "pin=(\\d+)"},
            {"name": "otp", "regex": "otp=\\d+", "replacement": "otp=$$$$"}
        ]}"#,
    );
    assert_eq!(
        redacted_body(&mut dollars, "pin=1234 otp=99 a@b.de").as_deref(),
        Some("$1[pin] otp=$$ $1[email]")
    );
}

#[test]
fn empty_matches_of_custom_patterns_are_ignored() {
    let mut redact = plugin(r#"{"patterns": [{"name": "xs", "regex": "x*"}]}"#);
    assert_eq!(redacted_body(&mut redact, "abc"), None);
    assert_eq!(
        redacted_body(&mut redact, "axxb").as_deref(),
        Some("a[REDACTED:xs]b")
    );
}

#[test]
fn invalid_config_is_refused_with_the_reason() {
    let error = Redact::from_json_config(
        r#"{"patterns": [{"name": "ok", "regex": "a+"}, {"name": "broken", "regex": "(unclosed"}]}"#,
    )
    .unwrap_err();
    assert!(error.contains("broken"), "{error}");
    assert!(error.contains("(unclosed"), "{error}");
    assert!(error.contains("unclosed group"), "{error}");

    let error = Redact::from_json_config(r#"{"emails": false}"#).unwrap_err();
    assert!(error.contains("unknown field"), "{error}");
    let error = Redact::from_json_config(r#"{"builtins": {"mail": false}}"#).unwrap_err();
    assert!(error.contains("unknown field"), "{error}");
    let error = Redact::from_json_config(r#"{"patterns": [{"name": "x"}]}"#).unwrap_err();
    assert!(error.contains("missing field `regex`"), "{error}");
    let error =
        Redact::from_json_config(r#"{"patterns": [{"name": "a b", "regex": "x"}]}"#).unwrap_err();
    assert!(error.contains("a b"), "{error}");
}

#[test]
fn unicode_word_boundaries_are_spotted() {
    assert!(has_unicode_word_boundary(r"\b\d{3}\b"));
    assert!(has_unicode_word_boundary(r"x\B"));
    assert!(!has_unicode_word_boundary(r"(?-u:\b)\d{3}(?-u:\b)"));
    assert!(!has_unicode_word_boundary(r"[\b]x")); // a backspace
    assert!(!has_unicode_word_boundary(r"\\b"));
}

#[test]
fn attribute_selection() {
    let record = LogRecord::new(9, "a@example.com")
        .with_attribute("user.email", "b@example.com")
        .with_attribute("peer", "c@example.com")
        .with_attribute("trusted", "d@example.com");

    // Only listed keys, minus skipped ones; bodies off.
    let mut redact = plugin(
        r#"{"body": false, "attributes": ["user.email", "trusted"], "skip_attributes": ["trusted"]}"#,
    );
    let edits = run(&mut redact, std::slice::from_ref(&record)).edits;
    assert_eq!(
        edits,
        vec![Edit {
            index: 0,
            change: Change::SetAttribute(KeyValue {
                key: "user.email".into(),
                value: "[REDACTED:email]".into(),
            }),
        }]
    );

    // An empty list scans no attribute.
    let mut redact = plugin(r#"{"attributes": []}"#);
    let edits = run(&mut redact, std::slice::from_ref(&record)).edits;
    assert_eq!(
        edits,
        vec![Edit {
            index: 0,
            change: Change::Body("[REDACTED:email]".into()),
        }]
    );

    // Default: every string attribute except skipped ones.
    let mut redact = plugin(r#"{"skip_attributes": ["peer"]}"#);
    let edits = run(&mut redact, std::slice::from_ref(&record)).edits;
    assert_eq!(edits.len(), 3);
}

#[test]
fn counters_are_added_once_per_batch_per_kind() {
    let mut redact = plugin(r#"{"patterns": [{"name": "pin", "regex": "pin=\\d+"}]}"#);
    let records = vec![
        LogRecord::new(9, "a@example.com and b@example.com").with_attribute("c", "c@example.com"),
        LogRecord::new(9, "pin=1 card 4111111111111111"),
        LogRecord::new(9, "clean"),
    ];
    run(&mut redact, &records);
    let mut counters = sluice_sdk::host::recorded_counters();
    counters.sort();
    assert_eq!(
        counters,
        vec![
            ("redacted_card".to_owned(), 1),
            ("redacted_email".to_owned(), 3),
            ("redacted_pin".to_owned(), 1),
        ]
    );
    run(&mut redact, &records[2..]);
    run(&mut redact, &records[..1]);
    let email = sluice_sdk::host::recorded_counters()
        .into_iter()
        .find(|(name, _)| name == "redacted_email");
    assert_eq!(email, Some(("redacted_email".to_owned(), 6)));
}

#[test]
fn several_findings_of_several_kinds_in_one_text() {
    let mut redact = plugin("");
    assert_eq!(
        redacted_body(
            &mut redact,
            "Ünïcødé ok: user=jörg@example.de key=AKIAIOSFODNN7EXAMPLE card=4111-1111-1111-1111 \
             url=https://u:p@h.example/x mail=x@y.io",
        )
        .as_deref(),
        Some(
            "Ünïcødé ok: user=[REDACTED:email] key=[REDACTED:aws_access_key_id] card=[REDACTED:card] \
             url=https://[REDACTED:url_credentials]@h.example/x mail=[REDACTED:email]"
        )
    );
}

/// `samples/records.jsonl`: every secret in it is masked and the clean lines stay untouched.
#[test]
fn samples_are_redacted() {
    let text = include_str!("../samples/records.jsonl");
    let records: Vec<LogRecord> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut record = LogRecord::new(
                json["severity_number"].as_u64().unwrap() as u8,
                json["body"].as_str().unwrap(),
            );
            if let Some(attributes) = json["attributes"].as_object() {
                for (key, value) in attributes {
                    let value = match value {
                        serde_json::Value::String(text) => Value::from(text.as_str()),
                        serde_json::Value::Bool(flag) => Value::from(*flag),
                        serde_json::Value::Number(n) if n.is_i64() => {
                            Value::from(n.as_i64().unwrap())
                        }
                        serde_json::Value::Number(n) => Value::from(n.as_f64().unwrap()),
                        other => panic!("unsupported attribute {other}"),
                    };
                    record = record.with_attribute(key, value);
                }
            }
            record
        })
        .collect();
    let mut redact = plugin("");
    let result = run(&mut redact, &records);

    let mut edited: Vec<u32> = result.edits.iter().map(|edit| edit.index).collect();
    edited.dedup();
    let clean: Vec<usize> = (0..records.len())
        .filter(|index| !edited.contains(&(*index as u32)))
        .collect();
    let clean_bodies: Vec<&str> = clean.iter().map(|i| records[*i].body.as_str()).collect();
    assert_eq!(clean.len(), 5, "clean records: {clean_bodies:#?}");

    let output = format!("{:?}", result.edits);
    for secret in [
        "jane.doe@example.com",
        "eyJhbGciOiJIUzI1NiJ9",
        "dXNlcjpwYXNzd29yZA==",
        "hunter2",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "ops@example.org",
    ] {
        assert!(!output.contains(secret), "{secret} left in {output}");
        assert!(text.contains(secret), "{secret} is not in the samples");
    }
}
