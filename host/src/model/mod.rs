//! The data model every stage shares: batches of records, held as columns.
//!
//! A [`LogBatch`] keeps each field as one column in Arrow's layout (fixed-width values in a `Vec`,
//! strings as concatenated bytes plus offsets). That layout is what crosses the plugin boundary as
//! typed lists (one copy, no per-record encoding) and what the Parquet sink writes without
//! reshaping.

mod batch;
pub mod codec;
mod log_batch;
pub mod otlp;
mod resource;
mod value;

pub use batch::{Batch, LineBatch, MetricBatch, Signal, SpanBatch, points_of};
pub use log_batch::{LogBatch, LogRecord, RecordChange, RecordEdit, StringColumn};
pub use resource::Resource;
pub use value::{AttributeValue, AttributeValueRef};
