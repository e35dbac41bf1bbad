//! A compact binary form of a [`Batch`], for the durable intake log.
//!
//! Columns are written as they are held (lengths, then little-endian values or raw bytes), so
//! encoding a log batch is a few large copies; metric and span batches are written as their OTLP
//! protobuf messages. Decoding checks every length and offset, so damaged input is an error,
//! never a panic; the log's per-record checksum is what catches damage in the first place.

use std::sync::Arc;

use opentelemetry_proto::tonic::{metrics::v1::ResourceMetrics, trace::v1::ResourceSpans};
use prost::Message;

use super::{
    AttributeValue, Batch, LineBatch, LogBatch, MetricBatch, Resource, SpanBatch, StringColumn,
};

/// Why bytes could not be decoded into a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable batch: {0}")]
pub struct CodecError(pub String);

const LOGS: u8 = 1;
const METRICS: u8 = 2;
const SPANS: u8 = 3;
const LINES: u8 = 4;

/// Appends the encoding of `batch` to `out`.
pub fn encode_batch(batch: &Batch, out: &mut Vec<u8>) {
    let mut writer = Writer(out);
    match batch {
        Batch::Logs(logs) => {
            writer.u8(LOGS);
            logs.encode(&mut writer);
        }
        Batch::Metrics(metrics) => {
            writer.u8(METRICS);
            writer.messages(&metrics.resource_metrics);
        }
        Batch::Spans(spans) => {
            writer.u8(SPANS);
            writer.messages(&spans.resource_spans);
        }
        Batch::Lines(lines) => {
            writer.u8(LINES);
            writer.strings(&lines.lines);
            writer.str(&lines.source);
            writer.resource(&lines.resource);
        }
    }
}

/// About how many bytes [`encode_batch`] writes for `batch`, to size its buffer once.
pub fn encoded_len_hint(batch: &Batch) -> usize {
    1 + match batch {
        Batch::Logs(logs) => logs.encoded_len_hint(),
        Batch::Metrics(metrics) => messages_len(&metrics.resource_metrics),
        Batch::Spans(spans) => messages_len(&spans.resource_spans),
        Batch::Lines(lines) => {
            8 + lines.lines.bytes().len()
                + 4 * lines.lines.offsets().len()
                + 4
                + lines.source.len()
                + 128
        }
    }
}

fn messages_len<M: Message>(messages: &[M]) -> usize {
    4 + messages
        .iter()
        .map(|message| 4 + message.encoded_len())
        .sum::<usize>()
}

/// Decodes what [`encode_batch`] wrote; the whole input must be consumed.
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, CodecError> {
    let mut reader = Reader(bytes);
    let batch = match reader.u8()? {
        LOGS => Batch::Logs(LogBatch::decode(&mut reader)?),
        METRICS => Batch::Metrics(MetricBatch {
            resource_metrics: reader.messages::<ResourceMetrics>()?,
        }),
        SPANS => Batch::Spans(SpanBatch {
            resource_spans: reader.messages::<ResourceSpans>()?,
        }),
        LINES => Batch::Lines(LineBatch {
            lines: reader.strings()?,
            source: reader.string()?,
            resource: Arc::new(reader.resource()?),
        }),
        kind => return Err(CodecError(format!("unknown batch kind {kind}"))),
    };
    if !reader.0.is_empty() {
        return Err(CodecError(format!("{} bytes left over", reader.0.len())));
    }
    Ok(batch)
}

/// Appends fields to a buffer.
pub(super) struct Writer<'a>(pub(super) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(super) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub(super) fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(super) fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(super) fn len(&mut self, len: usize) {
        self.u32(u32::try_from(len).expect("a batch column is under 4 GiB"));
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    pub(super) fn u32s(&mut self, values: &[u32]) {
        self.len(values.len());
        self.0.reserve(values.len() * 4);
        for value in values {
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub(super) fn u64s(&mut self, values: impl ExactSizeIterator<Item = u64>) {
        self.len(values.len());
        self.0.reserve(values.len() * 8);
        for value in values {
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub(super) fn strings(&mut self, column: &StringColumn) {
        self.bytes(column.bytes());
        self.u32s(column.offsets());
    }

    pub(super) fn value(&mut self, value: &AttributeValue) {
        match value {
            AttributeValue::Str(text) => {
                self.u8(0);
                self.str(text);
            }
            AttributeValue::Int(number) => {
                self.u8(1);
                self.u64(*number as u64);
            }
            AttributeValue::Double(number) => {
                self.u8(2);
                self.u64(number.to_bits());
            }
            AttributeValue::Bool(flag) => {
                self.u8(3);
                self.u8(u8::from(*flag));
            }
            AttributeValue::Bytes(bytes) => {
                self.u8(4);
                self.bytes(bytes);
            }
        }
    }

    pub(super) fn resource(&mut self, resource: &Resource) {
        self.len(resource.attributes.len());
        for (key, value) in &resource.attributes {
            self.str(key);
            self.value(value);
        }
        self.str(&resource.scope_name);
        self.str(&resource.scope_version);
    }

    fn messages<M: Message>(&mut self, messages: &[M]) {
        self.len(messages.len());
        for message in messages {
            self.len(message.encoded_len());
            message
                .encode(self.0)
                .expect("a Vec grows to take any message");
        }
    }
}

/// Takes fields from the front of a byte slice, checking each length.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < len {
            return Err(CodecError(format!(
                "needs {len} bytes, {} left",
                self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(super) fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(super) fn len(&mut self) -> Result<usize, CodecError> {
        Ok(self.u32()? as usize)
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.len()?;
        self.take(len)
    }

    pub(super) fn string(&mut self) -> Result<String, CodecError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|error| CodecError(format!("text is not UTF-8: {error}")))
    }

    pub(super) fn u32s(&mut self) -> Result<Vec<u32>, CodecError> {
        let len = self.len()?;
        let bytes = self.take(len.checked_mul(4).ok_or_else(too_long)?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|chunk| u32::from_le_bytes(chunk.try_into().expect("4 bytes")))
            .collect())
    }

    pub(super) fn u64s(&mut self) -> Result<Vec<u64>, CodecError> {
        let len = self.len()?;
        let bytes = self.take(len.checked_mul(8).ok_or_else(too_long)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8 bytes")))
            .collect())
    }

    pub(super) fn strings(&mut self) -> Result<StringColumn, CodecError> {
        let bytes = self.bytes()?.to_vec();
        let offsets = self.u32s()?;
        StringColumn::from_parts(bytes, offsets).map_err(CodecError)
    }

    pub(super) fn value(&mut self) -> Result<AttributeValue, CodecError> {
        Ok(match self.u8()? {
            0 => AttributeValue::Str(self.string()?),
            1 => AttributeValue::Int(self.u64()? as i64),
            2 => AttributeValue::Double(f64::from_bits(self.u64()?)),
            3 => AttributeValue::Bool(self.u8()? != 0),
            4 => AttributeValue::Bytes(self.bytes()?.to_vec()),
            kind => return Err(CodecError(format!("unknown value kind {kind}"))),
        })
    }

    pub(super) fn resource(&mut self) -> Result<Resource, CodecError> {
        let count = self.len()?;
        let mut attributes = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            attributes.push((self.string()?, self.value()?));
        }
        Ok(Resource {
            attributes,
            scope_name: self.string()?,
            scope_version: self.string()?,
        })
    }

    fn messages<M: Message + Default>(&mut self) -> Result<Vec<M>, CodecError> {
        let count = self.len()?;
        let mut messages = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            let bytes = self.bytes()?;
            messages
                .push(M::decode(bytes).map_err(|error| CodecError(format!("protobuf: {error}")))?);
        }
        Ok(messages)
    }
}

fn too_long() -> CodecError {
    CodecError("length overflows".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttributeValueRef;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ScopeMetrics, metric, number_data_point,
    };
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};

    fn logs() -> LogBatch {
        let service = Arc::new(Resource {
            attributes: vec![("service.name".into(), AttributeValue::from("checkout"))],
            scope_name: "scope".into(),
            scope_version: "1.2".into(),
        });
        let other = Arc::new(Resource::default());
        let mut batch = LogBatch::new();
        batch.push_fields(10, 11, 9, "INFO", "hello ✓", &[7; 16], &[3; 8], &service);
        batch.push_attribute_ref("text", AttributeValueRef::Str("a"));
        batch.push_attribute_ref("int", AttributeValueRef::Int(-5));
        batch.push_attribute_ref("double", AttributeValueRef::Double(1.5));
        batch.push_fields(20, 21, 17, "ERROR", "", &[0; 16], &[0; 8], &other);
        batch.push_fields(30, 31, 13, "WARN", "third", &[1; 16], &[2; 8], &service);
        batch.push_attribute_ref("bool", AttributeValueRef::Bool(true));
        batch.push_attribute_ref("bytes", AttributeValueRef::Bytes(&[0, 255]));
        batch
    }

    fn round_trip(batch: &Batch) -> Batch {
        let mut bytes = Vec::new();
        encode_batch(batch, &mut bytes);
        decode_batch(&bytes).expect("decodes")
    }

    #[test]
    fn every_kind_of_batch_survives_a_round_trip() {
        let logs = Batch::Logs(logs());
        assert_eq!(round_trip(&logs), logs);

        let mut lines = StringColumn::default();
        lines.push("{\"a\":1}");
        lines.push("second line");
        let lines = Batch::Lines(LineBatch {
            lines,
            source: "10.0.0.1:5000".into(),
            resource: Arc::new(Resource::with_attributes(vec![(
                "host".into(),
                AttributeValue::Int(3),
            )])),
        });
        assert_eq!(round_trip(&lines), lines);

        let point = NumberDataPoint {
            time_unix_nano: 5,
            value: Some(number_data_point::Value::AsDouble(0.5)),
            ..Default::default()
        };
        let metrics = Batch::Metrics(MetricBatch {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "disk".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![point],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        assert_eq!(round_trip(&metrics), metrics);

        let spans = Batch::Spans(SpanBatch {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "GET /".into(),
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        attributes: vec![KeyValue {
                            key: "http.status".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(200)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        assert_eq!(round_trip(&spans), spans);
    }

    #[test]
    fn the_length_hint_is_close_to_the_encoding() {
        let batch = Batch::Logs(logs());
        let mut bytes = Vec::new();
        encode_batch(&batch, &mut bytes);
        let hint = encoded_len_hint(&batch);
        assert!(
            hint >= bytes.len() && hint <= bytes.len() + 512,
            "hint {hint}, encoded {}",
            bytes.len()
        );
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let mut bytes = Vec::new();
        encode_batch(&Batch::Logs(logs()), &mut bytes);
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for index in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[index] ^= flip;
                // Either an error or some batch: never a panic.
                let _ = decode_batch(&damaged);
            }
        }
    }
}
