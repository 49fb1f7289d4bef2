//! The vat-local key/value store that liveslots' vatstore syscalls use
//! (spec vat-side §8.1). Reads are served from memory; writes are recorded
//! and handed to the kernel as a checkpoint at the end of each delivery.

use std::collections::BTreeMap;

/// The vatstore of one vat, with the changes made since the last checkpoint.
#[derive(Debug, Default)]
pub(crate) struct VatStore {
    map: BTreeMap<String, String>,
    /// key -> Some(value) for a set, None for a delete. A later write of the
    /// same key replaces the earlier one.
    pending: BTreeMap<String, Option<String>>,
}

impl VatStore {
    pub(crate) fn load(&mut self, entries: Vec<(String, String)>) {
        self.map = entries.into_iter().collect();
        self.pending.clear();
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.map.get(key).cloned()
    }

    /// The smallest key strictly greater than `prior`.
    pub(crate) fn get_next_key(&self, prior: &str) -> Option<String> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.map.range::<str, _>((Excluded(prior), Unbounded)).next().map(|(k, _)| k.clone())
    }

    pub(crate) fn set(&mut self, key: String, value: String) {
        self.map.insert(key.clone(), value.clone());
        self.pending.insert(key, Some(value));
    }

    pub(crate) fn delete(&mut self, key: String) {
        self.map.remove(&key);
        self.pending.insert(key, None);
    }

    /// Sets and deletes since the last checkpoint (keys in sorted order).
    pub(crate) fn checkpoint(&mut self) -> (Vec<(String, String)>, Vec<String>) {
        let mut sets = Vec::new();
        let mut deletes = Vec::new();
        for (key, change) in std::mem::take(&mut self.pending) {
            match change {
                Some(value) => sets.push((key, value)),
                None => deletes.push(key),
            }
        }
        (sets, deletes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_write_of_a_key_cancels_the_earlier_one_in_the_checkpoint() {
        let mut store = VatStore::default();
        store.load(vec![("a".into(), "1".into())]);
        store.delete("a".into());
        store.set("a".into(), "2".into());
        store.set("b".into(), "3".into());
        store.delete("b".into());
        assert_eq!(store.checkpoint(), (vec![("a".into(), "2".into())], vec!["b".into()]));
        assert_eq!(store.checkpoint(), (vec![], vec![]));
    }

    #[test]
    fn get_next_key_is_strictly_greater() {
        let mut store = VatStore::default();
        store.load(vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(store.get_next_key(""), Some("a".into()));
        assert_eq!(store.get_next_key("a"), Some("b".into()));
        assert_eq!(store.get_next_key("b"), None);
    }
}
