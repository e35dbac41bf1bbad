//! A log batch's columns in the intake log's binary form (see `model::codec`).

use std::sync::Arc;

use super::{LogBatch, ValueColumns, ValueKind};
use crate::model::codec::{CodecError, Reader, Writer};

impl LogBatch {
    /// Bytes [`encode`](Self::encode) writes, give or take the resources.
    pub(in crate::model) fn encoded_len_hint(&self) -> usize {
        let strings =
            |column: &super::StringColumn| 8 + column.bytes().len() + 4 * column.offsets().len();
        let values = &self.attribute_values;
        16 * self.timestamps.len()
            + 8
            + self.severity_numbers.len()
            + 4
            + strings(&self.severity_texts)
            + strings(&self.bodies)
            + self.trace_ids.len()
            + self.span_ids.len()
            + 8
            + 4 * self.attribute_offsets.len()
            + 4
            + strings(&self.attribute_keys)
            + 4
            + values.kinds.len() * 9
            + 8
            + values.data.len()
            + 4
            + 4 * values.data_offsets.len()
            + 4
            + 4 * self.resource_of_record.len()
            + 4
            + 128 * self.resources.len()
    }

    pub(in crate::model) fn encode(&self, writer: &mut Writer<'_>) {
        writer.u64s(self.timestamps.iter().map(|&time| time as u64));
        writer.u64s(self.observed_timestamps.iter().map(|&time| time as u64));
        writer.bytes(&self.severity_numbers);
        writer.strings(&self.severity_texts);
        writer.strings(&self.bodies);
        writer.bytes(&self.trace_ids);
        writer.bytes(&self.span_ids);
        writer.u32s(&self.attribute_offsets);
        writer.strings(&self.attribute_keys);
        let values = &self.attribute_values;
        writer.bytes(
            &values
                .kinds
                .iter()
                .map(|&kind| kind as u8)
                .collect::<Vec<u8>>(),
        );
        writer.u64s(values.scalars.iter().copied());
        writer.bytes(&values.data);
        writer.u32s(&values.data_offsets);
        writer.len(self.resources.len());
        for resource in &self.resources {
            writer.resource(resource);
        }
        writer.u32s(&self.resource_of_record);
    }

    pub(in crate::model) fn decode(reader: &mut Reader<'_>) -> Result<LogBatch, CodecError> {
        let timestamps: Vec<i64> = reader.u64s()?.into_iter().map(|time| time as i64).collect();
        let observed_timestamps: Vec<i64> =
            reader.u64s()?.into_iter().map(|time| time as i64).collect();
        let severity_numbers = reader.bytes()?.to_vec();
        let severity_texts = reader.strings()?;
        let bodies = reader.strings()?;
        let trace_ids = reader.bytes()?.to_vec();
        let span_ids = reader.bytes()?.to_vec();
        let attribute_offsets = reader.u32s()?;
        let attribute_keys = reader.strings()?;
        let kinds = reader
            .bytes()?
            .iter()
            .map(|&kind| value_kind(kind))
            .collect::<Result<Vec<_>, _>>()?;
        let scalars = reader.u64s()?;
        let data = reader.bytes()?.to_vec();
        let data_offsets = reader.u32s()?;
        let resource_count = reader.len()?;
        let mut resources = Vec::with_capacity(resource_count.min(reader.0.len()));
        for _ in 0..resource_count {
            resources.push(Arc::new(reader.resource()?));
        }
        let resource_of_record = reader.u32s()?;

        let records = timestamps.len();
        let values = kinds.len();
        let consistent = observed_timestamps.len() == records
            && severity_numbers.len() == records
            && severity_texts.len() == records
            && bodies.len() == records
            && trace_ids.len() == records * 16
            && span_ids.len() == records * 8
            && resource_of_record.len() == records
            && resource_of_record
                .iter()
                .all(|&resource| (resource as usize) < resources.len())
            && (attribute_offsets.len() == records + 1
                || (records == 0 && attribute_offsets.is_empty()))
            && attribute_offsets.first().is_none_or(|&first| first == 0)
            && attribute_offsets.windows(2).all(|pair| pair[0] <= pair[1])
            && attribute_offsets
                .last()
                .is_none_or(|&last| last as usize == values)
            && attribute_keys.len() == values
            && scalars.len() == values
            && data_offsets.len() == values + 1
            && data_offsets[0] == 0
            && data_offsets.windows(2).all(|pair| pair[0] <= pair[1])
            && data_offsets[values] as usize == data.len();
        if !consistent {
            return Err(CodecError("log batch columns disagree in length".into()));
        }
        Ok(LogBatch {
            timestamps,
            observed_timestamps,
            severity_numbers,
            severity_texts,
            bodies,
            trace_ids,
            span_ids,
            attribute_offsets,
            attribute_keys,
            attribute_values: ValueColumns {
                kinds,
                scalars,
                data,
                data_offsets,
                owned: Default::default(),
            },
            resources,
            resource_of_record,
        })
    }
}

fn value_kind(kind: u8) -> Result<ValueKind, CodecError> {
    Ok(match kind {
        0 => ValueKind::Str,
        1 => ValueKind::Int,
        2 => ValueKind::Double,
        3 => ValueKind::Bool,
        4 => ValueKind::Bytes,
        other => return Err(CodecError(format!("unknown attribute kind {other}"))),
    })
}
