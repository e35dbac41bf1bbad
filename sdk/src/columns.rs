//! Pieces every batch type of the SDK shares: columns fetched from the host once per call, and
//! attribute columns fetched once per key.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use crate::Value;

/// One attribute value per entry of a batch.
pub type AttributeColumn = Rc<[Option<Value>]>;

/// Attribute columns fetched so far, by key.
#[derive(Default)]
pub(crate) struct AttributeColumns(RefCell<Vec<(String, AttributeColumn)>>);

impl AttributeColumns {
    /// The column of `key`, fetched with `fetch` the first time.
    pub(crate) fn get(
        &self,
        key: &str,
        fetch: impl FnOnce() -> AttributeColumn,
    ) -> AttributeColumn {
        if let Some((_, column)) = self.0.borrow().iter().find(|(k, _)| k == key) {
            return column.clone();
        }
        let column = fetch();
        self.0.borrow_mut().push((key.to_owned(), column.clone()));
        column
    }
}

/// A cell already holding `value`.
pub(crate) fn filled<T>(value: T) -> OnceCell<T> {
    let cell = OnceCell::new();
    let _ = cell.set(value);
    cell
}

/// The column of `key` built from per-entry attribute lists (native batches).
pub(crate) fn column_of(entries: &[Vec<(String, Value)>], key: &str) -> AttributeColumn {
    entries
        .iter()
        .map(|attributes| {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.clone())
        })
        .collect()
}

/// The attribute table of per-entry attribute lists (native batches).
pub(crate) fn table_of(entries: &[Vec<(String, Value)>]) -> crate::AttributeTable {
    let mut table = crate::AttributeTable::new();
    for (index, attributes) in entries.iter().enumerate() {
        for (key, value) in attributes {
            table.push(index as u32, key, value.clone());
        }
    }
    table
}
