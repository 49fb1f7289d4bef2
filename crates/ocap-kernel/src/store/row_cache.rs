//! Hot rows of the `clist`, `promises` and `objects` tables, the ID counters and the
//! endpoints' states, kept in memory in front of SQLite.
//!
//! A crank reads the same few rows again and again: a send's target and result are looked
//! up in the sender's c-list, then in the receiver's, their promises' state and refcount read
//! after each update. Counted with SQLite's trace hook in `remote-pipelined` (BENCHMARKS.md,
//! session of 2026-12-02, fourth), about 45 % of each run loop's statements were such reads.
//!
//! **Write-through, one writer.** The store's connection is the only writer of its file (the
//! daemon holds a lock; the panel, `ocap check` and inspection only read, and a read-only
//! store keeps no cache). Every write to the cached tables and columns goes through
//! `clist.rs`, `promises.rs`, `objects.rs`, the counter functions (`mod.rs` `next_id`,
//! `endpoints.rs` `next_import_index`) and the endpoint-state functions (`endpoints.rs`,
//! `vats.rs`, `remotes.rs`: created, terminated, deleted), which update the cache only after
//! SQLite accepted the write (or forget the entry before a write of several statements). A
//! row is cached as `Some(value)` or as known to be absent (`None`); a key not in the map is
//! unknown and read from SQLite. Should another connection commit all the same (two
//! kernels started on one file), `PRAGMA data_version` says so when the next transaction
//! begins and the cache is emptied.
//!
//! **Rollbacks.** Every change to the cache made inside a savepoint (a unit, a speculation
//! inside it) is journalled with the entry it replaced, reads that filled a miss included,
//! so rolling a savepoint back puts the cache back exactly as it was when the savepoint
//! began; rolling the unit back undoes a speculation still open inside it too, and releasing
//! the unit drops the journal (the outer transaction is only ever committed), as SQLite does.
//! If a transaction-control statement itself fails, the store empties the cache: SQLite may
//! have rolled back more than asked.
//!
//! **Bounds.** At most [`MAX_ENTRIES`] entries; reaching it empties the cache (a rollback
//! past that point empties it again, since entries read after it may be stale). Erefs are
//! chosen by vats and peers, so an eref known to be absent is not kept: only entries that
//! exist are, and their number is the c-lists'. A promise
//! whose value's JSON is longer than [`MAX_VALUE_BYTES`] is not cached.

use std::collections::HashMap;
use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use super::rows::{CListEntry, ObjectRecord, PromiseRow};
use crate::refs::{EndpointId, KRef};

/// Entries over all maps before the cache is emptied. A few thousand messages in flight
/// use about four entries each.
pub(super) const MAX_ENTRIES: usize = 32_768;

/// Promise values longer than this (JSON bytes) are read from SQLite each time.
pub(super) const MAX_VALUE_BYTES: usize = 4096;

/// What an entry was before a change: `None` when the key was not in the map.
enum Undo {
    Kref(EndpointId, KRef, Option<Option<CListEntry>>),
    Eref(EndpointId, Box<str>, Option<KRef>),
    Promise(u64, Option<Option<PromiseRow>>),
    Object(u64, Option<Option<ObjectRecord>>),
    Counter(Box<str>, Option<u64>),
    ImportIndex(EndpointId, bool, Option<u64>),
    Active(EndpointId, Option<bool>),
    /// The whole cache was emptied: what was read after this may be stale once rolled back.
    Cleared,
}

/// For keys the kernel allocates (krefs, promise ids, endpoint ids): a fast hash. Erefs are
/// chosen by vats and peers, so their map keeps std's keyed hash (no collision flooding).
type Map<K, V> = HashMap<K, V, FxBuildHasher>;

#[derive(Default)]
pub(super) struct RowCache {
    by_kref: Map<(EndpointId, KRef), Option<CListEntry>>,
    /// Only entries that exist: an eref known to be absent is not kept, so a vat or a peer
    /// naming erefs that do not exist cannot fill the cache with its strings.
    by_eref: Map<EndpointId, HashMap<Box<str>, KRef>>,
    promises: Map<u64, Option<PromiseRow>>,
    objects: Map<u64, Option<ObjectRecord>>,
    /// The next value of each named counter (`counters`), and of each endpoint's import
    /// index (`vats`/`remotes` `next_promise`, `next_object`; keyed by `promise`).
    counters: HashMap<Box<str>, u64>,
    import_indexes: Map<(EndpointId, bool), u64>,
    /// Whether each endpoint exists and is active (`vats`/`remotes` `state`).
    active: Map<EndpointId, bool>,
    /// Changes since the outermost open savepoint, oldest first.
    journal: Vec<Undo>,
    /// Journal length at the start of each open savepoint, outermost first.
    marks: Vec<usize>,
    /// A store opened read-only (`ocap check`, inspection) keeps nothing: another
    /// connection, the kernel's, writes the file under it.
    off: bool,
}

impl RowCache {
    /// A cache that keeps nothing, for a read-only store.
    pub(super) fn off() -> Self {
        RowCache { off: true, ..RowCache::default() }
    }

    fn entries(&self) -> usize {
        self.by_kref.len()
            + self.by_eref.values().map(HashMap::len).sum::<usize>()
            + self.promises.len()
            + self.objects.len()
            + self.counters.len()
            + self.import_indexes.len()
            + self.active.len()
    }

    fn journal(&mut self, undo: Undo) {
        if !self.marks.is_empty() {
            self.journal.push(undo);
        }
    }

    /// Puts `value` under `key` in the map `pick` selects, journalling what it replaced.
    fn put<K, V, S>(
        &mut self,
        pick: fn(&mut Self) -> &mut HashMap<K, V, S>,
        key: K,
        value: V,
        undo: fn(K, Option<V>) -> Undo,
    ) where
        K: std::hash::Hash + Eq + Clone,
        S: BuildHasher,
    {
        if self.off {
            return;
        }
        if !pick(self).contains_key(&key) {
            self.reserve();
        }
        let old = pick(self).insert(key.clone(), value);
        self.journal(undo(key, old));
    }

    /// Takes `key` out of the map `pick` selects (it is unknown again), journalling it.
    fn forget<K, V, S>(&mut self, pick: fn(&mut Self) -> &mut HashMap<K, V, S>, key: K, undo: fn(K, Option<V>) -> Undo)
    where
        K: std::hash::Hash + Eq,
        S: BuildHasher,
    {
        if let Some(old) = pick(self).remove(&key) {
            self.journal(undo(key, Some(old)));
        }
    }

    /// Makes room for one more entry.
    fn reserve(&mut self) {
        debug_assert!(!self.off);
        if self.entries() >= MAX_ENTRIES {
            self.clear();
        }
    }

    /// Empties the cache (journalled: a rollback across it empties it again).
    pub(super) fn clear(&mut self) {
        self.empty_maps();
        self.journal(Undo::Cleared);
    }

    /// Empties the cache and forgets every savepoint: after a failed transaction-control
    /// statement, when SQLite's state is no longer known.
    pub(super) fn reset(&mut self) {
        self.empty_maps();
        self.journal.clear();
        self.marks.clear();
    }

    fn empty_maps(&mut self) {
        self.by_kref.clear();
        self.by_eref.clear();
        self.promises.clear();
        self.objects.clear();
        self.counters.clear();
        self.import_indexes.clear();
        self.active.clear();
    }

    // ---- savepoints --------------------------------------------------------------------

    pub(super) fn savepoint(&mut self) {
        self.marks.push(self.journal.len());
    }

    /// The outermost savepoint (a unit) is released, and with it, as in SQLite, any still
    /// open inside it: their changes are kept.
    pub(super) fn release_all(&mut self) {
        self.marks.clear();
        self.journal.clear();
    }

    /// Undoes the innermost savepoint's changes (a speculation), newest first, and closes it.
    pub(super) fn rollback(&mut self) {
        let Some(mark) = self.marks.pop() else {
            self.reset();
            return;
        };
        self.undo_to(mark);
    }

    /// Undoes the outermost savepoint's changes (a unit), and closes it with every savepoint
    /// still open inside it, as `ROLLBACK TO unit` does in SQLite.
    pub(super) fn rollback_all(&mut self) {
        let Some(&mark) = self.marks.first() else {
            self.reset();
            return;
        };
        self.marks.clear();
        self.undo_to(mark);
    }

    fn undo_to(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some(undo) = self.journal.pop() else { break };
            match undo {
                Undo::Kref(ep, kref, old) => restore(&mut self.by_kref, (ep, kref), old),
                Undo::Eref(ep, eref, old) => restore(self.by_eref.entry(ep).or_default(), eref, old),
                Undo::Promise(id, old) => restore(&mut self.promises, id, old),
                Undo::Object(id, old) => restore(&mut self.objects, id, old),
                Undo::Counter(name, old) => restore(&mut self.counters, name, old),
                Undo::ImportIndex(ep, promise, old) => restore(&mut self.import_indexes, (ep, promise), old),
                Undo::Active(ep, old) => restore(&mut self.active, ep, old),
                Undo::Cleared => {
                    self.empty_maps();
                    self.journal.truncate(mark);
                }
            }
        }
    }

    // ---- c-lists -----------------------------------------------------------------------

    /// `Some(entry)` if known (`Some(None)`: known to be absent).
    pub(super) fn clist_by_kref(&self, ep: EndpointId, kref: KRef) -> Option<Option<CListEntry>> {
        self.by_kref.get(&(ep, kref)).cloned()
    }

    pub(super) fn set_clist_by_kref(&mut self, ep: EndpointId, kref: KRef, entry: Option<CListEntry>) {
        self.put(|c| &mut c.by_kref, (ep, kref), entry, |(ep, kref), old| Undo::Kref(ep, kref, old));
    }

    /// Updates a known entry's reachable flag; an unknown one stays unknown.
    pub(super) fn set_clist_reachable(&mut self, ep: EndpointId, kref: KRef, reachable: bool) {
        if let Some(Some(entry)) = self.by_kref.get(&(ep, kref)) {
            let mut entry = entry.clone();
            entry.reachable = reachable;
            self.set_clist_by_kref(ep, kref, Some(entry));
        }
    }

    /// `Some(kref)` if the entry is known to exist; `None` if unknown (absence is not kept).
    pub(super) fn clist_by_eref(&self, ep: EndpointId, eref: &str) -> Option<KRef> {
        self.by_eref.get(&ep).and_then(|m| m.get(eref)).copied()
    }

    pub(super) fn set_clist_by_eref(&mut self, ep: EndpointId, eref: &str, kref: KRef) {
        if self.off {
            return;
        }
        if !self.by_eref.get(&ep).is_some_and(|m| m.contains_key(eref)) {
            self.reserve();
        }
        let old = self.by_eref.entry(ep).or_default().insert(eref.into(), kref);
        self.journal(Undo::Eref(ep, eref.into(), old));
    }

    /// The entry was deleted.
    pub(super) fn forget_clist_by_eref(&mut self, ep: EndpointId, eref: &str) {
        let Some(map) = self.by_eref.get_mut(&ep) else { return };
        if let Some(old) = map.remove(eref) {
            self.journal(Undo::Eref(ep, eref.into(), Some(old)));
        }
    }

    // ---- promises ----------------------------------------------------------------------

    pub(super) fn promise(&self, id: u64) -> Option<Option<PromiseRow>> {
        self.promises.get(&id).cloned()
    }

    /// Caches a row (or its absence); a row whose value is too long to keep is forgotten.
    pub(super) fn set_promise(&mut self, id: u64, row: Option<PromiseRow>) {
        if row.as_ref().and_then(|r| r.value.as_ref()).is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
            self.forget_promise(id);
            return;
        }
        self.put(|c| &mut c.promises, id, row, Undo::Promise);
    }

    /// Changes a known row in place; an unknown one stays unknown.
    pub(super) fn update_promise(&mut self, id: u64, change: impl FnOnce(&mut PromiseRow)) {
        if let Some(Some(row)) = self.promises.get(&id) {
            let mut row = row.clone();
            change(&mut row);
            self.set_promise(id, Some(row));
        }
    }

    pub(super) fn forget_promise(&mut self, id: u64) {
        self.forget(|c| &mut c.promises, id, Undo::Promise);
    }

    // ---- objects -----------------------------------------------------------------------

    pub(super) fn object(&self, id: u64) -> Option<Option<ObjectRecord>> {
        self.objects.get(&id).cloned()
    }

    pub(super) fn set_object(&mut self, id: u64, row: Option<ObjectRecord>) {
        self.put(|c| &mut c.objects, id, row, Undo::Object);
    }

    /// Changes a known row in place; an unknown one stays unknown.
    pub(super) fn update_object(&mut self, id: u64, change: impl FnOnce(&mut ObjectRecord)) {
        if let Some(Some(row)) = self.objects.get(&id) {
            let mut row = row.clone();
            change(&mut row);
            self.set_object(id, Some(row));
        }
    }

    // ---- counters ----------------------------------------------------------------------

    /// The value the named counter hands out next, if known.
    pub(super) fn counter(&self, name: &str) -> Option<u64> {
        self.counters.get(name).copied()
    }

    pub(super) fn set_counter(&mut self, name: &str, next: u64) {
        self.put(|c| &mut c.counters, name.into(), next, Undo::Counter);
    }

    /// The import index an endpoint hands out next, if known.
    pub(super) fn import_index(&self, ep: EndpointId, promise: bool) -> Option<u64> {
        self.import_indexes.get(&(ep, promise)).copied()
    }

    pub(super) fn set_import_index(&mut self, ep: EndpointId, promise: bool, next: u64) {
        self.put(
            |c| &mut c.import_indexes,
            (ep, promise),
            next,
            |(ep, promise), old| Undo::ImportIndex(ep, promise, old),
        );
    }

    // ---- endpoint states ---------------------------------------------------------------

    pub(super) fn endpoint_active(&self, ep: EndpointId) -> Option<bool> {
        self.active.get(&ep).copied()
    }

    pub(super) fn set_endpoint_active(&mut self, ep: EndpointId, active: bool) {
        self.put(|c| &mut c.active, ep, active, Undo::Active);
    }

    /// The endpoint's row was created, changed or deleted: read it again next time.
    pub(super) fn forget_endpoint(&mut self, ep: EndpointId) {
        self.forget(|c| &mut c.active, ep, Undo::Active);
    }
}

fn restore<K: std::hash::Hash + Eq, V, S: BuildHasher>(map: &mut HashMap<K, V, S>, key: K, old: Option<V>) {
    match old {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::refs::VatId;
    use crate::store::rows::PromiseState;

    fn v1() -> EndpointId {
        EndpointId::Vat(VatId(1))
    }

    fn entry(eref: &str) -> Option<CListEntry> {
        Some(CListEntry { eref: eref.into(), reachable: true })
    }

    fn unresolved(refcount: u64) -> Option<PromiseRow> {
        Some(PromiseRow { state: PromiseState::Unresolved, decider: None, value: None, refcount, host_watch: false })
    }

    #[test]
    fn a_rolled_back_savepoint_leaves_the_cache_as_it_was_before_it() {
        let mut c = RowCache::default();
        c.savepoint();
        c.set_clist_by_kref(v1(), KRef::Object(1), entry("o+1"));
        c.set_promise(7, unresolved(1));
        c.release_all();
        c.savepoint();
        c.set_clist_by_kref(v1(), KRef::Object(1), None);
        c.set_clist_by_kref(v1(), KRef::Object(2), entry("o+2"));
        c.set_clist_by_eref(v1(), "o+2", KRef::Object(2));
        c.update_promise(7, |p| p.refcount = 5);
        c.set_object(3, None);
        c.rollback_all();
        assert_eq!(c.clist_by_kref(v1(), KRef::Object(1)), Some(entry("o+1")));
        assert_eq!(c.clist_by_kref(v1(), KRef::Object(2)), None, "filled inside the savepoint: unknown again");
        assert_eq!(c.clist_by_eref(v1(), "o+2"), None);
        assert_eq!(c.promise(7), Some(unresolved(1)));
        assert_eq!(c.object(3), None);
        assert_eq!(c.entries(), 2);
    }

    #[test]
    fn a_speculation_rolled_back_inside_a_unit_keeps_the_units_own_changes() {
        let mut c = RowCache::default();
        c.savepoint(); // unit
        c.set_promise(1, unresolved(1));
        c.savepoint(); // speculate
        c.update_promise(1, |p| p.refcount = 2);
        c.set_promise(2, unresolved(1));
        c.rollback(); // discard the speculation
        assert_eq!(c.promise(1), Some(unresolved(1)));
        assert_eq!(c.promise(2), None);
        c.rollback_all(); // and then the unit
        assert_eq!(c.promise(1), None);
        assert!(c.journal.is_empty() && c.marks.is_empty());
    }

    #[test]
    fn a_unit_rolled_back_with_a_speculation_still_open_undoes_both() {
        // `ROLLBACK TO unit` undoes the speculation inside it too, in SQLite and here.
        let mut c = RowCache::default();
        c.savepoint(); // unit
        c.set_promise(1, unresolved(1));
        c.savepoint(); // speculate, never discarded
        c.set_promise(2, unresolved(1));
        c.rollback_all();
        assert_eq!(c.entries(), 0);
        assert!(c.journal.is_empty() && c.marks.is_empty());
    }

    #[test]
    fn releasing_a_unit_keeps_what_a_speculation_inside_it_did() {
        let mut c = RowCache::default();
        c.savepoint();
        c.savepoint();
        c.set_promise(2, unresolved(1));
        c.release_all();
        assert_eq!(c.promise(2), Some(unresolved(1)));
        assert!(c.journal.is_empty() && c.marks.is_empty());
    }

    #[test]
    fn a_cache_that_is_off_keeps_nothing() {
        let mut c = RowCache::off();
        c.set_promise(1, unresolved(1));
        c.set_clist_by_kref(v1(), KRef::Object(1), entry("o+1"));
        c.set_clist_by_eref(v1(), "o+1", KRef::Object(1));
        c.set_endpoint_active(v1(), true);
        assert_eq!(c.entries(), 0);
        assert_eq!(c.promise(1), None);
    }

    #[test]
    fn an_eref_known_absent_is_not_kept() {
        let mut c = RowCache::default();
        c.set_clist_by_eref(v1(), "o+1", KRef::Object(1));
        c.forget_clist_by_eref(v1(), "o+1");
        c.forget_clist_by_eref(v1(), "o+2");
        assert_eq!(c.clist_by_eref(v1(), "o+1"), None);
        assert_eq!(c.entries(), 0);
    }

    #[test]
    fn a_rollback_across_a_clear_empties_the_cache() {
        let mut c = RowCache::default();
        c.set_promise(1, unresolved(1));
        c.savepoint();
        c.set_promise(2, unresolved(1));
        c.clear();
        c.set_promise(3, unresolved(1));
        c.rollback_all();
        assert_eq!(c.entries(), 0, "row 3 may have been read after a change the rollback undid");
    }

    #[test]
    fn the_cache_empties_itself_at_its_bound_and_stays_correct_on_rollback() {
        let mut c = RowCache::default();
        c.savepoint();
        for id in 0..MAX_ENTRIES as u64 {
            c.set_promise(id, unresolved(1));
        }
        assert_eq!(c.entries(), MAX_ENTRIES);
        c.set_object(1, None);
        assert_eq!(c.entries(), 1, "emptied, then the new entry");
        c.rollback_all();
        assert_eq!(c.entries(), 0);
    }

    #[test]
    fn a_long_promise_value_is_not_kept() {
        let mut c = RowCache::default();
        c.set_promise(1, unresolved(1));
        c.update_promise(1, |p| p.value = Some(Arc::from("x".repeat(MAX_VALUE_BYTES + 1))));
        assert_eq!(c.promise(1), None, "read from SQLite instead");
        c.set_promise(2, unresolved(1));
        c.update_promise(2, |p| p.value = Some(Arc::from("#\"pong\"")));
        assert!(c.promise(2).flatten().is_some_and(|p| p.value.as_deref() == Some("#\"pong\"")));
    }

    #[test]
    fn releasing_the_outermost_savepoint_drops_the_journal() {
        let mut c = RowCache::default();
        c.savepoint();
        c.set_promise(1, unresolved(1));
        c.release_all();
        assert!(c.journal.is_empty());
        c.set_promise(2, unresolved(1));
        assert!(c.journal.is_empty(), "no savepoint open: nothing to undo");
        assert_eq!(c.entries(), 2);
    }
}
