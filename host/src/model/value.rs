//! Attribute values, following the OpenTelemetry `AnyValue` scalars.

use serde::{Deserialize, Serialize};

/// A typed attribute value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// Text.
    Str(String),
    /// Signed integer.
    Int(i64),
    /// Floating point number.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl AttributeValue {
    /// Approximate bytes held, for output bounds.
    pub fn byte_size(&self) -> usize {
        match self {
            AttributeValue::Str(text) => text.len() + 8,
            AttributeValue::Bytes(bytes) => bytes.len() + 8,
            _ => 8,
        }
    }

    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The value as JSON, for debug output.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttributeValue::Str(text) => serde_json::Value::from(text.as_str()),
            AttributeValue::Int(number) => serde_json::Value::from(*number),
            AttributeValue::Double(number) => serde_json::Value::from(*number),
            AttributeValue::Bool(flag) => serde_json::Value::from(*flag),
            AttributeValue::Bytes(bytes) => serde_json::Value::from(hex::encode(bytes)),
        }
    }

    /// A JSON scalar as a value; arrays and objects become their JSON text.
    pub fn from_json(value: &serde_json::Value) -> AttributeValue {
        match value {
            serde_json::Value::String(text) => AttributeValue::Str(text.clone()),
            serde_json::Value::Bool(flag) => AttributeValue::Bool(*flag),
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(integer) => AttributeValue::Int(integer),
                None => AttributeValue::Double(number.as_f64().unwrap_or(f64::NAN)),
            },
            other => AttributeValue::Str(other.to_string()),
        }
    }
}

impl From<&str> for AttributeValue {
    fn from(text: &str) -> Self {
        AttributeValue::Str(text.to_owned())
    }
}
