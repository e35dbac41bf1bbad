//! Filters: keep, drop or edit log records.

use crate::{Change, Edit, FilterResult, LogBatch, LogRecordView, Plugin, Selection};

/// What a per-record filter decides for one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Keep the record unchanged.
    Keep,
    /// Drop the record.
    Drop,
    /// Keep the record with these changes.
    Edit(Vec<Change>),
}

/// A filter plugin. Implement [`filter`](Filter::filter) to decide record by record, or
/// [`filter_batch`](Filter::filter_batch) to work on whole columns.
pub trait Filter: Plugin {
    /// Decides on one record. The default keeps everything.
    fn filter(&mut self, record: &LogRecordView<'_, '_>) -> Verdict {
        let _ = record;
        Verdict::Keep
    }

    /// Decides on a whole batch. The default calls [`filter`](Filter::filter) for each record
    /// and answers with a keep mask only when something was dropped.
    fn filter_batch(&mut self, batch: &LogBatch<'_>) -> FilterResult {
        let mut mask: Option<Vec<u8>> = None;
        let mut edits = Vec::new();
        for record in batch.records() {
            match self.filter(&record) {
                Verdict::Keep => {}
                Verdict::Drop => {
                    mask.get_or_insert_with(|| vec![1; batch.len()])[record.index()] = 0
                }
                Verdict::Edit(changes) => edits.extend(changes.into_iter().map(|change| Edit {
                    index: record.index() as u32,
                    change,
                })),
            }
        }
        FilterResult {
            keep: mask.map_or(Selection::All, Selection::Mask),
            edits,
        }
    }
}

impl FilterResult {
    /// Whether the record at `index` is kept.
    pub fn keeps(&self, index: usize) -> bool {
        match &self.keep {
            Selection::All => true,
            Selection::None => false,
            Selection::Mask(mask) => mask.get(index).is_some_and(|keep| *keep != 0),
        }
    }

    /// Indices of the kept records among `len`.
    pub fn kept_indices(&self, len: usize) -> Vec<usize> {
        (0..len).filter(|index| self.keeps(*index)).collect()
    }
}
