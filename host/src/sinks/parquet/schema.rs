//! Column shapes shared by the three archive schemas: times, attributes, ids, resources, and
//! the Parquet writer settings of each column.
//!
//! Every reader the archive serves (DuckDB, pyarrow, polars, Spark) must read every file, so the
//! shapes stay on the common ground: times are `TIMESTAMP(MICROS, UTC)` (Spark refuses a file with
//! any `TIMESTAMP(NANOS)` column) plus an `INT32` column holding the nanoseconds past the
//! microsecond; attributes are a `MAP<STRING, STRING>` of every value as text plus a second map
//! naming the type of each value that is not a string, from which the typed value comes back
//! exactly. `docs/archive.md` documents each column.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Int32Array, MapBuilder, MapFieldNames, StringArray,
    StringBuilder, TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue as ParquetKeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::model::{AttributeValue, Resource, StringColumn};

/// Version of the archive schemas, stored in each file's key-value metadata under
/// [`SCHEMA_VERSION_KEY`]; raised when a column changes meaning or type.
pub const SCHEMA_VERSION: &str = "1";

/// Key-value metadata key of the schema version (the value is `<signal>/<version>`).
pub const SCHEMA_VERSION_KEY: &str = "sluice.archive.schema";

/// The time zone every timestamp column carries.
const UTC: &str = "UTC";

/// Nanoseconds in a microsecond.
const NANOS_PER_MICRO: i64 = 1_000;

/// A timestamp column: `TIMESTAMP(MICROS, UTC)`, null when the time is unknown.
pub fn time_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        true,
    )
}

/// The companion of a timestamp column: nanoseconds past its microsecond (0–999).
pub fn extra_nanos_field(name: &str) -> Field {
    Field::new(format!("{name}_extra_nanos"), DataType::Int32, true)
}

/// A `MAP<STRING, STRING>` column in the Parquet spec's canonical layout (`key_value`, `key`,
/// `value`); every row has a map, possibly empty.
pub fn string_map_field(name: &str) -> Field {
    Field::new_map(
        name,
        "key_value",
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
        false,
        false,
    )
}

/// A list column with the Parquet spec's element name (`element`), for readers that expect it.
pub fn list_field(name: &str, element: DataType, element_nullable: bool) -> Field {
    Field::new(
        name,
        DataType::List(list_element(element, element_nullable)),
        true,
    )
}

/// The element field of a list column.
pub fn list_element(element: DataType, nullable: bool) -> FieldRef {
    Arc::new(Field::new("element", element, nullable))
}

/// A trace id (16 bytes) or span id (8 bytes) column, null when the id is absent.
pub fn id_field(name: &str, bytes: i32) -> Field {
    Field::new(name, DataType::FixedSizeBinary(bytes), true)
}

/// The columns every signal has about where the data comes from.
pub fn resource_fields() -> Vec<Field> {
    vec![
        string_map_field("resource_attributes"),
        string_map_field("resource_attribute_types"),
        Field::new("scope_name", DataType::Utf8, true),
        Field::new("scope_version", DataType::Utf8, true),
    ]
}

/// A Unix-nanosecond time as `(microseconds, nanoseconds past the microsecond)`.
pub fn split_time(nanos: i64) -> (i64, i32) {
    (
        nanos.div_euclid(NANOS_PER_MICRO),
        nanos.rem_euclid(NANOS_PER_MICRO) as i32,
    )
}

/// An OTLP time (unsigned nanoseconds) as the signed nanoseconds the model uses, saturating
/// past the year 2262.
pub fn otlp_time(nanos: u64) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Builds a timestamp column and its extra-nanoseconds companion. Time 0 means unknown and is
/// stored as null in both.
#[derive(Default)]
pub struct TimeColumns {
    micros: Vec<i64>,
    extra_nanos: Vec<i32>,
    known: Vec<bool>,
}

impl TimeColumns {
    /// Room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        TimeColumns {
            micros: Vec::with_capacity(rows),
            extra_nanos: Vec::with_capacity(rows),
            known: Vec::with_capacity(rows),
        }
    }

    /// Appends a Unix-nanosecond time (0 = unknown).
    pub fn push(&mut self, nanos: i64) {
        let (micros, extra) = split_time(nanos);
        self.micros.push(micros);
        self.extra_nanos.push(extra);
        self.known.push(nanos != 0);
    }

    /// The timestamp column and its extra-nanoseconds column.
    pub fn finish(self) -> [ArrayRef; 2] {
        let nulls = if self.known.iter().all(|known| *known) {
            None
        } else {
            Some(NullBuffer::from(self.known))
        };
        [
            Arc::new(
                TimestampMicrosecondArray::new(ScalarBuffer::from(self.micros), nulls.clone())
                    .with_timezone(UTC),
            ),
            Arc::new(Int32Array::new(ScalarBuffer::from(self.extra_nanos), nulls)),
        ]
    }
}

/// A column of fixed-width ids (`width` bytes each, concatenated), null where an id is all
/// zero bytes (OTLP's "absent"). Ids of another width than `width` are absent too.
pub fn id_column(ids: &[u8], width: usize) -> Result<ArrayRef, ArrowError> {
    let present: Vec<bool> = ids
        .chunks_exact(width)
        .map(|id| id.iter().any(|byte| *byte != 0))
        .collect();
    let nulls = if present.iter().all(|p| *p) {
        None
    } else {
        Some(NullBuffer::from(present))
    };
    Ok(Arc::new(FixedSizeBinaryArray::try_new(
        width as i32,
        Buffer::from(ids),
        nulls,
    )?))
}

/// Collects ids of one width from OTLP byte strings (any length; a wrong length is absent).
pub struct IdColumn {
    width: usize,
    bytes: Vec<u8>,
}

impl IdColumn {
    /// An empty column of `width`-byte ids.
    pub fn new(width: usize) -> Self {
        IdColumn {
            width,
            bytes: Vec::new(),
        }
    }

    /// Appends one id; anything but exactly `width` bytes is stored as absent.
    pub fn push(&mut self, id: &[u8]) {
        if id.len() == self.width {
            self.bytes.extend_from_slice(id);
        } else {
            self.bytes.extend(std::iter::repeat_n(0, self.width));
        }
    }

    /// The finished column.
    pub fn finish(self) -> Result<ArrayRef, ArrowError> {
        id_column(&self.bytes, self.width)
    }
}

/// A string column straight from a [`StringColumn`]'s buffers (one copy, no per-row work).
pub fn string_column(column: &StringColumn) -> Result<StringArray, ArrowError> {
    let offsets = column
        .offsets()
        .iter()
        .map(|&offset| i32::try_from(offset))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| ArrowError::InvalidArgumentError("string column over 2 GiB".into()))?;
    StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from(column.bytes()),
        None,
    )
}

/// The type name stored in an `*_attribute_types` map for a value that is not a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// Text: the default, not named in the types map.
    String,
    /// Signed 64-bit integer, in decimal.
    Int,
    /// 64-bit float, in Rust's shortest round-trip form (`NaN`, `inf`, `-inf` included).
    Double,
    /// `true` or `false`.
    Bool,
    /// Bytes, as lower-case hex.
    Bytes,
    /// An OTLP array value, as JSON.
    Array,
    /// An OTLP key-value list, as a JSON object.
    Kvlist,
}

impl ValueType {
    /// The name in the types map, or `None` for strings (which are not listed).
    pub fn name(self) -> Option<&'static str> {
        match self {
            ValueType::String => None,
            ValueType::Int => Some("int"),
            ValueType::Double => Some("double"),
            ValueType::Bool => Some("bool"),
            ValueType::Bytes => Some("bytes"),
            ValueType::Array => Some("array"),
            ValueType::Kvlist => Some("kvlist"),
        }
    }
}

/// Writes `value` as text into `out` and returns its type.
pub fn render_model_value(value: &AttributeValue, out: &mut StringBuilder) -> ValueType {
    match value {
        AttributeValue::Str(text) => {
            out.append_value(text);
            ValueType::String
        }
        AttributeValue::Int(number) => {
            let _ = write!(out, "{number}");
            out.append_value("");
            ValueType::Int
        }
        AttributeValue::Double(number) => {
            let _ = write!(out, "{number}");
            out.append_value("");
            ValueType::Double
        }
        AttributeValue::Bool(flag) => {
            out.append_value(if *flag { "true" } else { "false" });
            ValueType::Bool
        }
        AttributeValue::Bytes(bytes) => {
            out.append_value(hex::encode(bytes));
            ValueType::Bytes
        }
    }
}

/// Writes an OTLP value as text into `out` (null when it has no value) and returns its type.
fn render_any_value(value: Option<&AnyValue>, out: &mut StringBuilder) -> ValueType {
    let Some(value) = value.and_then(|value| value.value.as_ref()) else {
        out.append_null();
        return ValueType::String;
    };
    match value {
        any_value::Value::StringValue(text) => {
            out.append_value(text);
            ValueType::String
        }
        any_value::Value::IntValue(number) => {
            let _ = write!(out, "{number}");
            out.append_value("");
            ValueType::Int
        }
        any_value::Value::DoubleValue(number) => {
            let _ = write!(out, "{number}");
            out.append_value("");
            ValueType::Double
        }
        any_value::Value::BoolValue(flag) => {
            out.append_value(if *flag { "true" } else { "false" });
            ValueType::Bool
        }
        any_value::Value::BytesValue(bytes) => {
            out.append_value(hex::encode(bytes));
            ValueType::Bytes
        }
        any_value::Value::ArrayValue(array) => {
            let json = serde_json::Value::Array(array.values.iter().map(any_value_json).collect());
            out.append_value(json.to_string());
            ValueType::Array
        }
        any_value::Value::KvlistValue(list) => {
            out.append_value(kvlist_json(&list.values).to_string());
            ValueType::Kvlist
        }
        // An index into the profiling signal's string table: meaningless here.
        _ => {
            out.append_null();
            ValueType::String
        }
    }
}

/// An OTLP value as JSON (bytes as hex), for nested values.
fn any_value_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value;
    match &value.value {
        Some(any_value::Value::StringValue(text)) => Value::from(text.as_str()),
        Some(any_value::Value::IntValue(number)) => Value::from(*number),
        Some(any_value::Value::DoubleValue(number)) => Value::from(*number),
        Some(any_value::Value::BoolValue(flag)) => Value::from(*flag),
        Some(any_value::Value::BytesValue(bytes)) => Value::from(hex::encode(bytes)),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(any_value_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => kvlist_json(&list.values),
        _ => Value::Null,
    }
}

fn kvlist_json(values: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|pair| {
                let value = pair.value.as_ref().map(any_value_json).unwrap_or_default();
                (pair.key.clone(), value)
            })
            .collect(),
    )
}

fn string_map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(
        Some(MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    )
}

/// Builds an `*_attribute_types` column: per row, the type of each attribute whose value is not
/// a string.
pub struct TypeMap {
    types: MapBuilder<StringBuilder, StringBuilder>,
}

impl Default for TypeMap {
    fn default() -> Self {
        TypeMap {
            types: string_map_builder(),
        }
    }
}

impl TypeMap {
    /// Notes the type of attribute `key` of the current row (strings are not listed).
    pub fn note(&mut self, key: &str, value_type: ValueType) {
        if let Some(name) = value_type.name() {
            self.types.keys().append_value(key);
            self.types.values().append_value(name);
        }
    }

    /// Ends the current row.
    pub fn end_row(&mut self) -> Result<(), ArrowError> {
        self.types.append(true)
    }

    /// The finished column.
    pub fn finish(mut self) -> ArrayRef {
        Arc::new(self.types.finish())
    }
}

/// Builds an attributes column (every value as text) and its types column (the type of each
/// value that is not a string), one row at a time.
pub struct AttributeMaps {
    values: MapBuilder<StringBuilder, StringBuilder>,
    types: TypeMap,
}

impl Default for AttributeMaps {
    fn default() -> Self {
        AttributeMaps {
            values: string_map_builder(),
            types: TypeMap::default(),
        }
    }
}

impl AttributeMaps {
    /// Adds a model attribute to the current row.
    pub fn push_model(&mut self, key: &str, value: &AttributeValue) {
        self.values.keys().append_value(key);
        let value_type = render_model_value(value, self.values.values());
        self.types.note(key, value_type);
    }

    /// Adds an OTLP attribute to the current row.
    pub fn push_otlp(&mut self, attribute: &KeyValue) {
        self.values.keys().append_value(&attribute.key);
        let value_type = render_any_value(attribute.value.as_ref(), self.values.values());
        self.types.note(&attribute.key, value_type);
    }

    /// Adds all OTLP attributes to the current row and ends it.
    pub fn push_otlp_row(&mut self, attributes: &[KeyValue]) -> Result<(), ArrowError> {
        for attribute in attributes {
            self.push_otlp(attribute);
        }
        self.end_row()
    }

    /// Ends the current row.
    pub fn end_row(&mut self) -> Result<(), ArrowError> {
        self.values.append(true)?;
        self.types.end_row()
    }

    /// The attributes column and the types column.
    pub fn finish(mut self) -> [ArrayRef; 2] {
        [Arc::new(self.values.finish()), self.types.finish()]
    }
}

/// Builds the resource columns ([`resource_fields`]) and `service_name`: one entry per distinct
/// resource and scope, then spread to every row with a `take` by each row's entry.
#[derive(Default)]
pub struct ResourceColumns {
    attributes: AttributeMaps,
    service_name: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    entries: usize,
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

impl ResourceColumns {
    /// Adds a model resource as the next entry; returns its index.
    pub fn push_model(&mut self, resource: &Resource) -> Result<u32, ArrowError> {
        for (key, value) in &resource.attributes {
            self.attributes.push_model(key, value);
        }
        self.attributes.end_row()?;
        self.service_name.append_option(resource.service_name());
        self.scope_name
            .append_option(non_empty(&resource.scope_name));
        self.scope_version
            .append_option(non_empty(&resource.scope_version));
        self.entries += 1;
        Ok(self.entries as u32 - 1)
    }

    /// Adds an OTLP resource and scope as the next entry; returns its index.
    pub fn push_otlp(
        &mut self,
        resource: Option<&OtlpResource>,
        scope: Option<&InstrumentationScope>,
    ) -> Result<u32, ArrowError> {
        let attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        self.attributes.push_otlp_row(attributes)?;
        let service_name = attributes
            .iter()
            .find(|pair| pair.key == "service.name")
            .and_then(|pair| pair.value.as_ref())
            .and_then(|value| match &value.value {
                Some(any_value::Value::StringValue(text)) => Some(text.as_str()),
                _ => None,
            });
        self.service_name.append_option(service_name);
        self.scope_name
            .append_option(scope.and_then(|s| non_empty(&s.name)));
        self.scope_version
            .append_option(scope.and_then(|s| non_empty(&s.version)));
        self.entries += 1;
        Ok(self.entries as u32 - 1)
    }

    /// `service_name` and the [`resource_fields`] columns for rows whose entries are
    /// `row_entries`.
    pub fn finish(mut self, row_entries: Vec<u32>) -> Result<ResourceArrays, ArrowError> {
        let indices = UInt32Array::from(row_entries);
        let spread = |array: &dyn Array| arrow::compute::take(array, &indices, None);
        let [attributes, types] = self.attributes.finish();
        Ok(ResourceArrays {
            service_name: spread(&self.service_name.finish())?,
            columns: vec![
                spread(&attributes)?,
                spread(&types)?,
                spread(&self.scope_name.finish())?,
                spread(&self.scope_version.finish())?,
            ],
        })
    }
}

/// The finished resource columns of a batch.
pub struct ResourceArrays {
    /// `service_name`.
    pub service_name: ArrayRef,
    /// The [`resource_fields`] columns, in their order.
    pub columns: Vec<ArrayRef>,
}

/// How the columns of one schema are written, beyond the file-wide settings.
#[derive(Clone, Copy, Debug)]
pub struct ColumnTuning {
    /// Columns whose values are (nearly) all distinct: dictionary encoding only costs there.
    pub unique: &'static [&'static str],
    /// Time columns: DELTA_BINARY_PACKED (dictionary off too).
    pub times: &'static [&'static str],
}

/// Parquet writer settings of one signal's files: zstd at `compression_level`, row groups of
/// `row_group_rows`, dictionary off for unique-valued columns, delta encoding for times, and the
/// schema version in the key-value metadata.
pub fn writer_properties(
    signal: &str,
    tuning: ColumnTuning,
    compression_level: i32,
    row_group_rows: usize,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(compression_level)?))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_key_value_metadata(Some(vec![ParquetKeyValue::new(
            SCHEMA_VERSION_KEY.to_owned(),
            format!("{signal}/{SCHEMA_VERSION}"),
        )]));
    for column in tuning.unique.iter().chain(tuning.times) {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    for column in tuning.times {
        builder =
            builder.set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_time_keeps_every_nanosecond() {
        assert_eq!(
            split_time(1_795_428_000_123_456_789),
            (1_795_428_000_123_456, 789)
        );
        assert_eq!(split_time(-1), (-1, 999));
        let (micros, extra) = split_time(1_234_567);
        assert_eq!(micros * 1000 + extra as i64, 1_234_567);
    }

    #[test]
    fn attribute_maps_name_only_non_string_types() {
        let mut maps = AttributeMaps::default();
        maps.push_model("s", &AttributeValue::Str("x".into()));
        maps.push_model("i", &AttributeValue::Int(-3));
        maps.push_model("d", &AttributeValue::Double(0.1));
        maps.push_model("b", &AttributeValue::Bool(true));
        maps.push_model("y", &AttributeValue::Bytes(vec![0xab, 1]));
        maps.end_row().unwrap();
        let [values, types] = maps.finish();
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::MapArray>()
            .unwrap();
        let text = values
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let rendered: Vec<&str> = text.iter().map(Option::unwrap).collect();
        assert_eq!(rendered, ["x", "-3", "0.1", "true", "ab01"]);
        let types = types
            .as_any()
            .downcast_ref::<arrow::array::MapArray>()
            .unwrap();
        let keys = types.keys().as_any().downcast_ref::<StringArray>().unwrap();
        let keys: Vec<&str> = keys.iter().map(Option::unwrap).collect();
        assert_eq!(keys, ["i", "d", "b", "y"]);
    }
}
