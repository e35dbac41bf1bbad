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

/// An attribute value borrowed from a batch's columns: reading one allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttributeValueRef<'a> {
    /// Text.
    Str(&'a str),
    /// Signed integer.
    Int(i64),
    /// Floating point number.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl<'a> AttributeValueRef<'a> {
    /// The owned value.
    pub fn to_value(self) -> AttributeValue {
        match self {
            AttributeValueRef::Str(text) => AttributeValue::Str(text.to_owned()),
            AttributeValueRef::Int(number) => AttributeValue::Int(number),
            AttributeValueRef::Double(number) => AttributeValue::Double(number),
            AttributeValueRef::Bool(flag) => AttributeValue::Bool(flag),
            AttributeValueRef::Bytes(bytes) => AttributeValue::Bytes(bytes.to_vec()),
        }
    }

    /// The value as text when it is a string.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            AttributeValueRef::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Approximate bytes held, as [`AttributeValue::byte_size`] counts them.
    pub fn byte_size(self) -> usize {
        match self {
            AttributeValueRef::Str(text) => text.len() + 8,
            AttributeValueRef::Bytes(bytes) => bytes.len() + 8,
            _ => 8,
        }
    }
}

impl<'a> From<&'a AttributeValue> for AttributeValueRef<'a> {
    fn from(value: &'a AttributeValue) -> Self {
        match value {
            AttributeValue::Str(text) => AttributeValueRef::Str(text),
            AttributeValue::Int(number) => AttributeValueRef::Int(*number),
            AttributeValue::Double(number) => AttributeValueRef::Double(*number),
            AttributeValue::Bool(flag) => AttributeValueRef::Bool(*flag),
            AttributeValue::Bytes(bytes) => AttributeValueRef::Bytes(bytes),
        }
    }
}

impl From<AttributeValueRef<'_>> for AttributeValue {
    fn from(value: AttributeValueRef<'_>) -> Self {
        value.to_value()
    }
}

impl PartialEq<AttributeValue> for AttributeValueRef<'_> {
    fn eq(&self, other: &AttributeValue) -> bool {
        *self == AttributeValueRef::from(other)
    }
}
