//! A bounded map of tracked series (or services, budgets...), least recently seen first out:
//! how a detector keeps its state within `limits.max_state_bytes`.

use std::collections::{BTreeMap, HashMap};

/// Keys longer than this (in bytes) are cut, to bound the state.
pub const MAX_KEY_BYTES: usize = 1024;

/// Entries by key, with their recency.
#[derive(Debug)]
pub struct Registry<V> {
    entries: HashMap<String, (u64, V)>,
    /// Keys by recency stamp, least recently seen first.
    recency: BTreeMap<u64, String>,
    next_stamp: u64,
    /// Entries stamped from this one on were seen during the current batch already.
    fresh_from: u64,
}

impl<V> Default for Registry<V> {
    fn default() -> Self {
        Registry {
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            next_stamp: 0,
            fresh_from: 0,
        }
    }
}

impl<V> Registry<V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is tracked.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The entry of `key`, without marking it as seen.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Removes and returns the least recently seen entries until at most `max` remain.
    #[must_use]
    pub fn shrink_to(&mut self, max: usize) -> Vec<(String, V)> {
        let mut evicted = Vec::new();
        while self.entries.len() > max {
            let Some((_, key)) = self.recency.pop_first() else {
                break;
            };
            if let Some((_, value)) = self.entries.remove(&key) {
                evicted.push((key, value));
            }
        }
        evicted
    }

    /// Starts a batch: the first `touch` of an entry in it marks the entry as the most recently
    /// seen, later ones cost a lookup only.
    pub fn begin_batch(&mut self) {
        self.fresh_from = self.next_stamp;
    }

    /// The entry of `key`, created by `create` if new, marked as the most recently seen. The
    /// caller makes room first (`shrink_to(max - 1)` when `key` is new).
    pub fn touch(&mut self, key: &str, create: impl FnOnce() -> V) -> &mut V {
        // (Two lookups: returning the borrow of one `get_mut` from a branch is refused.)
        if self.entries.contains_key(key) {
            let entry = self.entries.get_mut(key).expect("the entry was just found");
            if entry.0 < self.fresh_from {
                let owned = self
                    .recency
                    .remove(&entry.0)
                    .unwrap_or_else(|| key.to_owned());
                entry.0 = self.next_stamp;
                self.recency.insert(self.next_stamp, owned);
                self.next_stamp += 1;
            }
            return &mut entry.1;
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.recency.insert(stamp, key.to_owned());
        &mut self
            .entries
            .entry(key.to_owned())
            .or_insert((stamp, create()))
            .1
    }

    /// Removes the entries `keep` refuses, returning them.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) -> Vec<(String, V)> {
        let drop: Vec<String> = self
            .entries
            .iter_mut()
            .filter_map(|(key, (_, value))| (!keep(key, value)).then(|| key.clone()))
            .collect();
        drop.into_iter()
            .filter_map(|key| {
                let (stamp, value) = self.entries.remove(&key)?;
                self.recency.remove(&stamp);
                Some((key, value))
            })
            .collect()
    }

    /// Every entry, least recently seen first (the snapshot order).
    pub fn in_recency_order(&self) -> impl Iterator<Item = (&str, &V)> {
        self.recency.values().filter_map(|key| {
            self.entries
                .get_key_value(key)
                .map(|(key, (_, value))| (key.as_str(), value))
        })
    }

    /// A registry of `entries` given least recently seen first. Refuses a repeated key.
    pub fn from_ordered(entries: Vec<(String, V)>) -> Result<Self, String> {
        let mut registry = Registry::default();
        for (key, value) in entries {
            if registry.contains(&key) {
                return Err(format!("series `{key}` appears twice"));
            }
            registry.touch(&key, || value);
        }
        Ok(registry)
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(registry: &Registry<u32>) -> Vec<&str> {
        registry.in_recency_order().map(|(key, _)| key).collect()
    }

    #[test]
    fn least_recently_seen_goes_first() {
        let mut registry = Registry::default();
        for key in ["a", "b", "c"] {
            *registry.touch(key, || 0) += 1;
        }
        // Within a batch, only the first touch moves an entry.
        registry.begin_batch();
        *registry.touch("a", || 0) += 1;
        registry.touch("b", || 0);
        registry.touch("a", || 0);
        assert_eq!(keys(&registry), vec!["c", "a", "b"]);
        registry.begin_batch();
        registry.touch("c", || 0);
        registry.touch("a", || 0);
        assert_eq!(keys(&registry), vec!["b", "c", "a"]);
        assert_eq!(registry.get("a"), Some(&2));
        let evicted = registry.shrink_to(1);
        assert_eq!(evicted, vec![("b".to_owned(), 1), ("c".to_owned(), 1)]);
        assert_eq!(keys(&registry), vec!["a"]);
        let removed = registry.retain(|_, value| *value != 2);
        assert_eq!(removed.len(), 1);
        assert_eq!(registry.len(), 0);
        assert!(registry.recency.is_empty());
    }

    #[test]
    fn rebuilds_in_order() {
        let registry =
            Registry::from_ordered(vec![("x".to_owned(), 1), ("y".to_owned(), 2)]).unwrap();
        assert_eq!(registry.recency.len(), 2);
        assert_eq!(keys(&registry), vec!["x", "y"]);
        assert!(Registry::from_ordered(vec![("x".to_owned(), 1), ("x".to_owned(), 2)]).is_err());
    }

    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
