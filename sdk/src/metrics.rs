//! A batch of metric points as a detector sees it: every data point of every metric, flattened,
//! with columns fetched from the host on first use.

use std::cell::OnceCell;

use crate::bindings::sluice::plugin::types;
use crate::columns::{AttributeColumn, AttributeColumns, column_of, filled, table_of};
use crate::{AttributeTable, MetricKind, StringColumn, Value};

/// One batch of metric points. Columns are fetched from the host lazily, once per batch.
pub struct MetricBatch<'h> {
    host: Option<&'h types::MetricBatch>,
    len: OnceCell<usize>,
    names: OnceCell<StringColumn>,
    units: OnceCell<StringColumn>,
    kinds: OnceCell<Vec<MetricKind>>,
    monotonic: OnceCell<Vec<bool>>,
    timestamps: OnceCell<Vec<i64>>,
    values: OnceCell<Vec<f64>>,
    counts: OnceCell<Vec<u64>>,
    attributes: OnceCell<AttributeTable>,
    attribute_columns: AttributeColumns,
    resource_attribute_columns: AttributeColumns,
    owned_attributes: Vec<Vec<(String, Value)>>,
    owned_resource_attributes: Vec<Vec<(String, Value)>>,
}

/// One metric point with every field, for building batches natively (unit tests, samples).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// Metric name.
    pub name: String,
    /// Unit (may be empty).
    pub unit: String,
    /// Kind of the metric.
    pub kind: MetricKind,
    /// For sums: whether the sum only grows.
    pub monotonic: bool,
    /// Time of the point, Unix nanoseconds.
    pub timestamp: i64,
    /// Gauge or sum: the value; histogram or summary: the sum of the observations.
    pub value: f64,
    /// Histogram or summary: the number of observations.
    pub count: u64,
    /// Point attributes.
    pub attributes: Vec<(String, Value)>,
    /// Attributes of the point's resource (such as `service.name`).
    pub resource_attributes: Vec<(String, Value)>,
}

impl MetricPoint {
    fn new(name: &str, kind: MetricKind, timestamp: i64, value: f64, count: u64) -> Self {
        MetricPoint {
            name: name.to_owned(),
            unit: String::new(),
            kind,
            monotonic: false,
            timestamp,
            value,
            count,
            attributes: Vec::new(),
            resource_attributes: Vec::new(),
        }
    }

    /// A gauge point.
    pub fn gauge(name: &str, timestamp: i64, value: f64) -> Self {
        Self::new(name, MetricKind::Gauge, timestamp, value, 0)
    }

    /// A point of a monotonic (cumulative counter) sum.
    pub fn sum(name: &str, timestamp: i64, value: f64) -> Self {
        let mut point = Self::new(name, MetricKind::Sum, timestamp, value, 0);
        point.monotonic = true;
        point
    }

    /// A histogram point: `count` observations adding up to `sum`.
    pub fn histogram(name: &str, timestamp: i64, count: u64, sum: f64) -> Self {
        Self::new(name, MetricKind::Histogram, timestamp, sum, count)
    }

    /// Sets the unit.
    pub fn with_unit(mut self, unit: &str) -> Self {
        unit.clone_into(&mut self.unit);
        self
    }

    /// Adds a point attribute.
    pub fn with_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a resource attribute.
    pub fn with_resource_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource_attributes
            .push((key.to_owned(), value.into()));
        self
    }
}

impl<'h> MetricBatch<'h> {
    /// Wraps the host's batch resource; used by the export macros.
    #[doc(hidden)]
    pub fn from_host(batch: &'h types::MetricBatch) -> Self {
        MetricBatch {
            host: Some(batch),
            len: OnceCell::new(),
            names: OnceCell::new(),
            units: OnceCell::new(),
            kinds: OnceCell::new(),
            monotonic: OnceCell::new(),
            timestamps: OnceCell::new(),
            values: OnceCell::new(),
            counts: OnceCell::new(),
            attributes: OnceCell::new(),
            attribute_columns: AttributeColumns::default(),
            resource_attribute_columns: AttributeColumns::default(),
            owned_attributes: Vec::new(),
            owned_resource_attributes: Vec::new(),
        }
    }

    /// Builds a batch from points, for unit tests and native runs.
    pub fn from_points(points: &[MetricPoint]) -> MetricBatch<'static> {
        let attributes: Vec<_> = points.iter().map(|p| p.attributes.clone()).collect();
        MetricBatch {
            host: None,
            len: filled(points.len()),
            names: filled(StringColumn::from_strs(
                points.iter().map(|p| p.name.as_str()),
            )),
            units: filled(StringColumn::from_strs(
                points.iter().map(|p| p.unit.as_str()),
            )),
            kinds: filled(points.iter().map(|p| p.kind).collect()),
            monotonic: filled(points.iter().map(|p| p.monotonic).collect()),
            timestamps: filled(points.iter().map(|p| p.timestamp).collect()),
            values: filled(points.iter().map(|p| p.value).collect()),
            counts: filled(points.iter().map(|p| p.count).collect()),
            attributes: filled(table_of(&attributes)),
            attribute_columns: AttributeColumns::default(),
            resource_attribute_columns: AttributeColumns::default(),
            owned_attributes: attributes,
            owned_resource_attributes: points
                .iter()
                .map(|p| p.resource_attributes.clone())
                .collect(),
        }
    }

    fn host(&self) -> &'h types::MetricBatch {
        // Every column of a native batch is filled at construction, so the host is never asked.
        self.host.expect("native batches have every column")
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        *self.len.get_or_init(|| match self.timestamps.get() {
            Some(column) => column.len(),
            None => self.host().len() as usize,
        })
    }

    /// True when there is no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Metric name of each point.
    pub fn names(&self) -> &StringColumn {
        self.names.get_or_init(|| self.host().names())
    }

    /// Unit of each point (empty when absent).
    pub fn units(&self) -> &StringColumn {
        self.units.get_or_init(|| self.host().units())
    }

    /// Kind of each point.
    pub fn kinds(&self) -> &[MetricKind] {
        self.kinds.get_or_init(|| self.host().kinds())
    }

    /// For sums, whether the sum only grows; false for other kinds.
    pub fn monotonic(&self) -> &[bool] {
        self.monotonic.get_or_init(|| self.host().monotonic())
    }

    /// Time of each point, Unix nanoseconds.
    pub fn timestamps(&self) -> &[i64] {
        self.timestamps.get_or_init(|| self.host().timestamps())
    }

    /// Gauge or sum: the value; histogram or summary: the sum of the observations.
    pub fn values(&self) -> &[f64] {
        self.values.get_or_init(|| self.host().values())
    }

    /// Histogram or summary: the number of observations; 0 for gauges and sums.
    pub fn counts(&self) -> &[u64] {
        self.counts.get_or_init(|| self.host().counts())
    }

    /// Every point attribute of every point.
    pub fn attributes(&self) -> &AttributeTable {
        self.attributes.get_or_init(|| self.host().attributes())
    }

    /// One point attribute for every point (`None` where absent); fetched once per key.
    pub fn attribute(&self, key: &str) -> AttributeColumn {
        self.attribute_columns.get(key, || match self.host {
            Some(batch) => batch.attribute(key).into(),
            None => column_of(&self.owned_attributes, key),
        })
    }

    /// One resource attribute (such as `service.name`) for every point; fetched once per key.
    pub fn resource_attribute(&self, key: &str) -> AttributeColumn {
        self.resource_attribute_columns
            .get(key, || match self.host {
                Some(batch) => batch.resource_attribute(key).into(),
                None => column_of(&self.owned_resource_attributes, key),
            })
    }

    /// A view of the point at `index`.
    pub fn point(&self, index: usize) -> MetricPointView<'_, 'h> {
        MetricPointView { batch: self, index }
    }

    /// Views of every point, in order.
    pub fn points(&self) -> impl Iterator<Item = MetricPointView<'_, 'h>> + '_ {
        (0..self.len()).map(move |index| self.point(index))
    }
}

/// One point of a [`MetricBatch`]. Reading a field fetches its column for the whole batch once.
#[derive(Clone, Copy)]
pub struct MetricPointView<'b, 'h> {
    batch: &'b MetricBatch<'h>,
    index: usize,
}

impl<'b> MetricPointView<'b, '_> {
    /// Position of the point in its batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Metric name.
    pub fn name(&self) -> &'b str {
        self.batch.names().get(self.index)
    }

    /// Unit.
    pub fn unit(&self) -> &'b str {
        self.batch.units().get(self.index)
    }

    /// Kind.
    pub fn kind(&self) -> MetricKind {
        self.batch.kinds()[self.index]
    }

    /// Time, Unix nanoseconds.
    pub fn timestamp(&self) -> i64 {
        self.batch.timestamps()[self.index]
    }

    /// Gauge or sum: the value; histogram or summary: the sum of the observations.
    pub fn value(&self) -> f64 {
        self.batch.values()[self.index]
    }

    /// Histogram or summary: the number of observations.
    pub fn count(&self) -> u64 {
        self.batch.counts()[self.index]
    }

    /// For sums, whether the sum only grows.
    pub fn is_monotonic(&self) -> bool {
        self.batch.monotonic()[self.index]
    }

    /// A point attribute.
    pub fn attribute(&self, key: &str) -> Option<Value> {
        self.batch.attribute(key)[self.index].clone()
    }

    /// A resource attribute.
    pub fn resource_attribute(&self, key: &str) -> Option<Value> {
        self.batch.resource_attribute(key)[self.index].clone()
    }
}
