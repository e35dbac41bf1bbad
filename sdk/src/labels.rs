//! Alert labels from data: attribute values as text, the service of a record, and the
//! `name{key="value",…}` label that names a metric series. Bounded, so a label (and the state
//! keyed by it) cannot grow with hostile input.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::Value;
use crate::registry::{MAX_KEY_BYTES, cut};

/// The service of data whose resource has no service attribute.
pub const UNKNOWN_SERVICE: &str = "unknown";

/// Longest service name kept, in bytes.
pub const MAX_SERVICE_BYTES: usize = 256;

/// An attribute value as text: strings as they are, numbers and booleans as Rust prints them,
/// bytes as lowercase hex.
pub fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Str(text) => Cow::Borrowed(text.as_str()),
        Value::Int(number) => Cow::Owned(number.to_string()),
        Value::Double(number) => Cow::Owned(number.to_string()),
        Value::Boolean(flag) => Cow::Owned(flag.to_string()),
        Value::Bytes(bytes) => Cow::Owned(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// The service named by a resource attribute value (such as `service.name`), cut to
/// [`MAX_SERVICE_BYTES`]; [`UNKNOWN_SERVICE`] when absent or empty.
pub fn service_name(value: Option<&Value>) -> Cow<'_, str> {
    match value.map(value_text) {
        Some(Cow::Borrowed(text)) if !text.is_empty() => {
            Cow::Borrowed(cut(text, MAX_SERVICE_BYTES))
        }
        Some(Cow::Owned(text)) if !text.is_empty() => {
            Cow::Owned(cut(&text, MAX_SERVICE_BYTES).to_owned())
        }
        _ => Cow::Borrowed(UNKNOWN_SERVICE),
    }
}

/// `name{key="value",…}` with the attributes sorted by key, cut to `MAX_KEY_BYTES / 2` bytes.
pub fn series_label(name: &str, attributes: &[(&str, &Value)]) -> String {
    let mut sorted: Vec<&(&str, &Value)> = attributes.iter().collect();
    sorted.sort_unstable_by_key(|(key, _)| *key);
    let mut label = String::with_capacity(name.len() + 24 * sorted.len());
    label.push_str(name);
    for (index, (key, value)) in sorted.iter().enumerate() {
        label.push(if index == 0 { '{' } else { ',' });
        let _ = write!(label, "{key}=\"{}\"", value_text(value));
    }
    if !sorted.is_empty() {
        label.push('}');
    }
    if label.len() > MAX_KEY_BYTES / 2 {
        let end = cut(&label, MAX_KEY_BYTES / 2).len();
        label.truncate(end);
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_labels_sort_their_attributes_and_stay_bounded() {
        let (a, b) = (Value::Str("/".into()), Value::Int(3));
        assert_eq!(
            series_label("disk", &[("mount", &a), ("device", &b)]),
            "disk{device=\"3\",mount=\"/\"}"
        );
        assert_eq!(series_label("up", &[]), "up");
        let long = Value::Str("x".repeat(5000));
        assert!(series_label("m", &[("k", &long)]).len() <= MAX_KEY_BYTES / 2);
    }

    #[test]
    fn services_default_to_unknown_and_are_cut() {
        assert_eq!(service_name(None), UNKNOWN_SERVICE);
        assert_eq!(
            service_name(Some(&Value::Str(String::new()))),
            UNKNOWN_SERVICE
        );
        assert_eq!(service_name(Some(&Value::Str("api".into()))), "api");
        let long = Value::Str("s".repeat(1000));
        assert_eq!(service_name(Some(&long)).len(), MAX_SERVICE_BYTES);
        assert_eq!(value_text(&Value::Bytes(vec![1, 255])), "01ff");
    }
}
