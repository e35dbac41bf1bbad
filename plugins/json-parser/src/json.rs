//! Reading a JSON object member by member without building a tree: keys are borrowed from the
//! line unless they contain an escape, and values arrive as their raw JSON text, which is only
//! decoded (or re-parsed, for nested objects) where the plugin needs it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use sluice_sdk::Value;

/// Calls `on_member` with each member of the JSON object `text`, in order of appearance.
/// Fails when `text` is not exactly one JSON object (surrounding whitespace allowed).
pub fn for_each_member<'de>(
    text: &'de str,
    on_member: impl FnMut(Cow<'de, str>, &'de RawValue),
) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_map(&mut deserializer, Members(on_member))?;
    deserializer.end()
}

/// Why `line` is not a JSON object, in words for the operator.
pub fn describe_error(line: &str, error: &serde_json::Error) -> String {
    if !line.starts_with('{') && serde_json::from_str::<de::IgnoredAny>(line).is_ok() {
        format!("not a JSON object: {error}")
    } else {
        format!("invalid JSON: {error}")
    }
}

/// The kind of a raw JSON value, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Bool,
    Null,
    Array,
    Object,
}

/// The kind of `raw` (raw values never start with whitespace).
pub fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// The content of the JSON string literal `raw`, borrowed when it has no escape.
pub fn string_content(raw: &str) -> Cow<'_, str> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(raw);
    if !inner.contains('\\') {
        // A validated JSON string without a backslash is its own content.
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<String>(raw).map_or(Cow::Borrowed(inner), Cow::Owned)
}

/// The text a raw value stands for: a string's content, anything else its JSON text.
pub fn text(raw: &RawValue) -> Cow<'_, str> {
    match kind(raw) {
        Kind::String => string_content(raw.get()),
        _ => Cow::Borrowed(raw.get()),
    }
}

/// A scalar read from a JSON number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

/// Reads a number written as JSON (or as the content of a string): an integer when it has no
/// fraction or exponent and fits in an `i64`, otherwise a finite `f64`.
pub fn parse_number(text: &str) -> Option<Number> {
    if text.contains(['.', 'e', 'E']) {
        let number: f64 = text.parse().ok()?;
        number.is_finite().then_some(Number::Float(number))
    } else {
        text.parse().ok().map(Number::Int)
    }
}

/// The attribute value of a scalar or array: strings, integers, doubles and booleans keep their
/// type; arrays, null, objects and numbers no `i64`/`f64` holds exactly keep their JSON text.
pub fn leaf_value(raw: &RawValue) -> Value {
    let text = raw.get();
    match kind(raw) {
        Kind::String => Value::Str(string_content(text).into_owned()),
        Kind::Bool => Value::Boolean(text == "true"),
        Kind::Null | Kind::Array | Kind::Object => Value::Str(text.to_owned()),
        Kind::Number => match parse_number(text) {
            Some(Number::Int(number)) => Value::Int(number),
            Some(Number::Float(number)) => Value::Double(number),
            // An integer beyond i64 or a float beyond f64: the exact digits, as text.
            None => Value::Str(text.to_owned()),
        },
    }
}

/// Visits the members of an object.
struct Members<F>(F);

impl<'de, F> Visitor<'de> for Members<F>
where
    F: FnMut(Cow<'de, str>, &'de RawValue),
{
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            let value: &'de RawValue = map.next_value()?;
            (self.0)(key, value);
        }
        Ok(())
    }
}

/// A key, borrowed from the input unless it holds an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Result<Vec<(String, String, bool)>, serde_json::Error> {
        let mut found = Vec::new();
        for_each_member(text, |key, raw| {
            let borrowed = matches!(key, Cow::Borrowed(_));
            found.push((key.into_owned(), raw.get().to_owned(), borrowed));
        })?;
        Ok(found)
    }

    #[test]
    fn members_in_order_with_raw_text_and_borrowed_keys() {
        let found = members(r#" { "b" :  1 , "a\u0041":[1, 2] ,"c":{"d":null}} "#).unwrap();
        assert_eq!(
            found,
            vec![
                ("b".into(), "1".into(), true),
                ("aA".into(), "[1, 2]".into(), false),
                ("c".into(), r#"{"d":null}"#.into(), true),
            ]
        );
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for text in [
            "",
            "[1]",
            "42",
            r#""x""#,
            "{",
            r#"{"a":1} {"b":2}"#,
            "{'a':1}",
        ] {
            assert!(members(text).is_err(), "{text:?} accepted");
        }
        let error = members("[1]").unwrap_err();
        assert!(describe_error("[1]", &error).starts_with("not a JSON object"));
        let error = members("{oops").unwrap_err();
        assert!(describe_error("{oops", &error).starts_with("invalid JSON"));
    }

    #[test]
    fn string_content_borrows_unless_escaped() {
        assert!(matches!(
            string_content(r#""plain""#),
            Cow::Borrowed("plain")
        ));
        assert_eq!(string_content(r#""a\"b\n\u00e9""#), "a\"b\né");
    }

    #[test]
    fn leaf_values_keep_their_type() {
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        assert_eq!(leaf_value(&raw(r#""s""#)), Value::Str("s".into()));
        assert_eq!(leaf_value(&raw("-12")), Value::Int(-12));
        assert_eq!(leaf_value(&raw("1.5e3")), Value::Double(1500.0));
        assert_eq!(leaf_value(&raw("true")), Value::Boolean(true));
        assert_eq!(leaf_value(&raw("false")), Value::Boolean(false));
        assert_eq!(leaf_value(&raw("null")), Value::Str("null".into()));
        assert_eq!(
            leaf_value(&raw("[1,\"a\"]")),
            Value::Str("[1,\"a\"]".into())
        );
        // Beyond i64 / f64: the exact digits survive as text.
        assert_eq!(
            leaf_value(&raw("18446744073709551616")),
            Value::Str("18446744073709551616".into())
        );
        assert_eq!(leaf_value(&raw("1e400")), Value::Str("1e400".into()));
    }
}
