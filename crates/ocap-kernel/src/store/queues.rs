//! The run queue, the GC action set and the reap queue.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Ctx, Store, StoreError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId};

/// A message in kernel space: `methargs` is the smallcaps `[method, args]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub methargs: CapData<KRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<KRef>,
    /// The endpoint that sent it (`None` for the host), so that a system-only service can
    /// refuse callers outside system subclusters at every invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<EndpointId>,
}

/// A run-queue item, in the JS kernel's JSON shape (kernel-core.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RunQueueItem {
    Send {
        target: KRef,
        message: Message,
    },
    Notify {
        #[serde(rename = "endpointId")]
        endpoint_id: EndpointId,
        kpid: KRef,
    },
}

/// The three GC action types, in delivery priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GcActionKind {
    DropExport = 0,
    RetireExport = 1,
    RetireImport = 2,
}

impl GcActionKind {
    fn from_i64(v: i64) -> Result<Self, StoreError> {
        Ok(match v {
            0 => GcActionKind::DropExport,
            1 => GcActionKind::RetireExport,
            2 => GcActionKind::RetireImport,
            _ => return Err(StoreError::Corrupt(format!("bad gc action kind {v}"))),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            GcActionKind::DropExport => "dropExport",
            GcActionKind::RetireExport => "retireExport",
            GcActionKind::RetireImport => "retireImport",
        }
    }
}

/// Which work queues are non-empty (`Store::pending_work`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PendingWork {
    pub gc: bool,
    /// A terminated endpoint awaits cleanup.
    pub cleanup: bool,
    pub reap: bool,
    pub run: bool,
}

impl PendingWork {
    pub(crate) fn any(self) -> bool {
        self.gc || self.cleanup || self.reap || self.run
    }
}

/// A batch of GC actions of one kind for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcAction {
    pub endpoint: EndpointId,
    pub kind: GcActionKind,
    pub krefs: Vec<KRef>,
}

fn decode_run_item(seq: i64, json: &str) -> Result<RunQueueItem, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("run queue item {seq}: {e}")))
}

impl Store {
    pub(crate) fn push_run(&self, item: &RunQueueItem) -> Result<(), StoreError> {
        let json = serde_json::to_string(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached("INSERT INTO run_queue(item) VALUES (?1)")
            .ctx("prepare push run")?
            .execute([json])
            .ctx("push run")?;
        Ok(())
    }

    /// Puts `items` at the head of the run queue, in their order, ahead of everything queued.
    ///
    /// This is how a resolved promise's parked messages keep E-order (issue 10, item 4): they
    /// were routed, and so sent, before anything still in the queue that targets the same
    /// promise, so they must be routed again before it. Appending them instead let later
    /// sends to the promise overtake them (the JS kernel's order `[5..9, 0..4]`). Seqs below
    /// the head are free (items only leave from the head), so the new ones are
    /// `head - n .. head - 1`; later appends still get `MAX + 1`.
    pub(crate) fn push_run_front(&self, items: &[RunQueueItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let head: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE((SELECT MIN(seq) FROM run_queue), 1)")
            .ctx("prepare run head")?
            .query_row([], |r| r.get(0))
            .ctx("run head")?;
        let first = head - items.len() as i64;
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO run_queue(seq, item) VALUES (?1, ?2)")
            .ctx("prepare push run front")?;
        for (i, item) in items.iter().enumerate() {
            let json = serde_json::to_string(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            stmt.execute(params![first + i as i64, json]).ctx("push run front")?;
        }
        Ok(())
    }

    /// Removes and returns the oldest run-queue item with its seq (it runs every crank).
    pub(crate) fn pop_run(&self) -> Result<Option<(i64, RunQueueItem)>, StoreError> {
        let head = self.peek_run()?;
        if let Some((seq, _)) = &head {
            self.remove_run(*seq)?;
        }
        Ok(head)
    }

    /// Removes run-queue item `seq`; false if it was not there.
    pub(crate) fn remove_run(&self, seq: i64) -> Result<bool, StoreError> {
        let removed = self
            .conn
            .prepare_cached("DELETE FROM run_queue WHERE seq = ?1")
            .ctx("prepare delete run")?
            .execute([seq])
            .ctx("delete run")?;
        Ok(removed > 0)
    }

    /// The oldest run-queue item and its seq, left in place: the item the crank after the
    /// current one takes (`core/overlap.rs`).
    pub(crate) fn peek_run(&self) -> Result<Option<(i64, RunQueueItem)>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT seq, item FROM run_queue ORDER BY seq LIMIT 1")
            .ctx("prepare peek run")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("peek run")?;
        row.map(|(seq, json)| Ok((seq, decode_run_item(seq, &json)?))).transpose()
    }

    /// The `notify` items to `endpoint` that follow item `after` (a notify of `first`) in the
    /// run queue with nothing else between: their seqs and kpids, in order, at most `limit`,
    /// stopping before a kpid already among them or `first` (a notify batch,
    /// `core/notify_batch.rs`). Rows are decoded one at a time, so the first item of another
    /// kind ends the read.
    pub(crate) fn notifies_after(
        &self,
        after: i64,
        endpoint: EndpointId,
        first: KRef,
        limit: usize,
    ) -> Result<Vec<(i64, KRef)>, StoreError> {
        let mut out: Vec<(i64, KRef)> = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, item FROM run_queue WHERE seq > ?1 ORDER BY seq")
            .ctx("prepare read run queue")?;
        let mut rows = stmt.query([after]).ctx("read run queue")?;
        while let Some(row) = rows.next().ctx("read run queue")? {
            let seq: i64 = row.get(0).ctx("read run seq")?;
            let json: String = row.get(1).ctx("read run item")?;
            match decode_run_item(seq, &json)? {
                RunQueueItem::Notify { endpoint_id, kpid }
                    if endpoint_id == endpoint && kpid != first && !out.iter().any(|(_, k)| *k == kpid) =>
                {
                    out.push((seq, kpid));
                    if out.len() == limit {
                        break;
                    }
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Removes and returns the run-queue item `seq`, wherever it is in the queue (None if it
    /// is not there any more).
    pub(crate) fn take_run(&self, seq: i64) -> Result<Option<RunQueueItem>, StoreError> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT item FROM run_queue WHERE seq = ?1")
            .ctx("prepare read run item")?
            .query_row([seq], |r| r.get(0))
            .optional()
            .ctx("read run item")?;
        let Some(json) = json else { return Ok(None) };
        self.remove_run(seq)?;
        decode_run_item(seq, &json).map(Some)
    }

    /// Which kinds of work are waiting, in one statement: the crank loop asks before every
    /// crank, and most of the time only the run queue has anything.
    pub(crate) fn pending_work(&self) -> Result<PendingWork, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM gc_actions),
                        EXISTS(SELECT 1 FROM vats WHERE state = 'terminated')
                          OR EXISTS(SELECT 1 FROM remotes WHERE state = 'terminated'),
                        EXISTS(SELECT 1 FROM reap_queue),
                        EXISTS(SELECT 1 FROM run_queue)",
            )
            .ctx("prepare pending work")?
            .query_row([], |r| Ok(PendingWork { gc: r.get(0)?, cleanup: r.get(1)?, reap: r.get(2)?, run: r.get(3)? }))
            .ctx("pending work")
    }

    /// Whether the run queue holds fewer than `limit` items. Checked at every `send`
    /// syscall, so it avoids `COUNT(*)` (which walks the whole table): items are only ever
    /// removed from the head, so their seqs are distinct integers between the smallest and
    /// the largest, and `MAX - MIN + 1` bounds the count from above. Only when that bound
    /// reaches the limit is the exact count taken.
    pub(crate) fn run_queue_below(&self, limit: u64) -> Result<bool, StoreError> {
        let span: i64 = self
            .conn
            // Two subqueries: SQLite answers a lone MIN or MAX from the index's end, but
            // scans the whole table for a query that asks for both.
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(seq) FROM run_queue) - (SELECT MIN(seq) FROM run_queue) + 1, 0)",
            )
            .ctx("prepare run span")?
            .query_row([], |r| r.get(0))
            .ctx("run span")?;
        if (span as u64) < limit {
            return Ok(true);
        }
        Ok(self.run_queue_len()? < limit)
    }

    pub fn run_queue_len(&self) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM run_queue")
            .ctx("prepare run len")?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .ctx("run len")
    }

    pub(crate) fn add_gc_action(&self, endpoint: EndpointId, kind: GcActionKind, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO gc_actions(endpoint, kind, kref) VALUES (?1, ?2, ?3)")
            .ctx("prepare add gc action")?
            .execute(params![endpoint.to_string(), kind as i64, kref.to_string()])
            .ctx("add gc action")?;
        Ok(())
    }

    /// Removes and returns the first (endpoint, kind) group of pending GC actions.
    pub(crate) fn take_gc_group(&self) -> Result<Option<GcAction>, StoreError> {
        let head: Option<(String, i64)> = self
            .conn
            .prepare_cached("SELECT endpoint, kind FROM gc_actions ORDER BY endpoint, kind LIMIT 1")
            .ctx("prepare gc head")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("gc head")?;
        let Some((endpoint, kind)) = head else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kref FROM gc_actions WHERE endpoint = ?1 AND kind = ?2")
            .ctx("prepare gc krefs")?;
        let rows = stmt.query_map(params![endpoint, kind], |r| r.get::<_, String>(0)).ctx("gc krefs")?;
        let mut krefs = rows
            .map(|r| r.ctx("gc row")?.parse::<KRef>().map_err(|e| StoreError::Corrupt(format!("gc action: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.conn
            .prepare_cached("DELETE FROM gc_actions WHERE endpoint = ?1 AND kind = ?2")
            .ctx("prepare take gc")?
            .execute(params![endpoint, kind])
            .ctx("take gc")?;
        krefs.sort();
        Ok(Some(GcAction {
            endpoint: endpoint.parse().map_err(|e| StoreError::Corrupt(format!("gc action endpoint: {e}")))?,
            kind: GcActionKind::from_i64(kind)?,
            krefs,
        }))
    }

    pub fn gc_action_count(&self) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM gc_actions")
            .ctx("prepare gc count")?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .ctx("gc count")
    }

    /// Schedules bring-out-your-dead for a vat (at most once in the queue).
    pub(crate) fn schedule_reap(&self, vat: VatId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO reap_queue(vat) VALUES (?1)")
            .ctx("prepare reap")?
            .execute([vat.to_string()])
            .ctx("schedule reap")?;
        Ok(())
    }

    pub(crate) fn pop_reap(&self) -> Result<Option<VatId>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT seq, vat FROM reap_queue ORDER BY seq LIMIT 1")
            .ctx("prepare peek reap")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("peek reap")?;
        let Some((seq, vat)) = row else {
            return Ok(None);
        };
        self.conn
            .prepare_cached("DELETE FROM reap_queue WHERE seq = ?1")
            .ctx("prepare pop reap")?
            .execute([seq])
            .ctx("pop reap")?;
        vat.parse().map(Some).map_err(|e| StoreError::Corrupt(format!("reap queue: {e}")))
    }
}
