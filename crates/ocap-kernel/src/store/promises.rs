//! Kernel promises: state, decider, subscribers, value, refcount, and parked messages.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::objects::parse_endpoint;
use super::queues::Message;
use super::rows::PromiseRow;
pub use super::rows::PromiseState;
use super::{Ctx, Store, StoreError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};

/// One row of the `promises` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseRecord {
    pub state: PromiseState,
    pub decider: Option<EndpointId>,
    pub value: Option<CapData<KRef>>,
    pub refcount: u64,
    pub host_watch: bool,
}

/// A promise's state without its value: what routing and syscall validation look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PromiseStatus {
    pub state: PromiseState,
    pub decider: Option<EndpointId>,
    pub host_watch: bool,
}

impl Store {
    /// Creates an unresolved promise. Its first references are counted in the same insert
    /// (`refcount`, and the host's watch) rather than by later updates of the new row.
    pub(crate) fn create_promise(
        &self,
        decider: Option<EndpointId>,
        refcount: u64,
        host_watch: bool,
    ) -> Result<KRef, StoreError> {
        let id = self.next_id("promise")?;
        self.conn
            .prepare_cached(
                "INSERT INTO promises(id, state, decider, refcount, host_watch) VALUES (?1, 'unresolved', ?2, ?3, ?4)",
            )
            .ctx("prepare create promise")?
            .execute(params![id as i64, decider.map(|d| d.to_string()), refcount as i64, host_watch])
            .ctx("create promise")?;
        let row = PromiseRow { state: PromiseState::Unresolved, decider, value: None, refcount, host_watch };
        self.cache.borrow_mut().set_promise(id, Some(row));
        Ok(KRef::Promise(id))
    }

    /// A promise's row, from the row cache or else from SQLite (then cached: `row_cache.rs`).
    fn promise_row(&self, kpid: KRef) -> Result<Option<PromiseRow>, StoreError> {
        let known = self.cache.borrow().promise(kpid.id());
        self.read_through(known, || self.read_promise_row(kpid), |cache, row| cache.set_promise(kpid.id(), row.clone()))
    }

    fn read_promise_row(&self, kpid: KRef) -> Result<Option<PromiseRow>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT state, decider, value, refcount, host_watch FROM promises WHERE id = ?1")
            .ctx("prepare get promise")?
            .query_row([kpid.id() as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })
            .optional()
            .ctx("get promise")?;
        row.map(|(state, decider, value, refcount, host_watch)| {
            Ok::<_, StoreError>(PromiseRow {
                state: PromiseState::parse(&state)?,
                decider: parse_endpoint(decider)?,
                value: value.map(Arc::from),
                refcount: refcount as u64,
                host_watch,
            })
        })
        .transpose()
    }

    /// State, decider and host watch of a promise, without parsing its value.
    pub(crate) fn promise_status(&self, kpid: KRef) -> Result<Option<PromiseStatus>, StoreError> {
        Ok(self.promise_row(kpid)?.map(|r| PromiseStatus {
            state: r.state,
            decider: r.decider,
            host_watch: r.host_watch,
        }))
    }

    /// Whether a promise exists and is unresolved.
    pub(crate) fn promise_is_unresolved(&self, kpid: KRef) -> Result<bool, StoreError> {
        Ok(matches!(self.promise_status(kpid)?, Some(p) if p.state == PromiseState::Unresolved))
    }

    pub fn promise(&self, kpid: KRef) -> Result<Option<PromiseRecord>, StoreError> {
        self.promise_row(kpid)?
            .map(|r| {
                Ok(PromiseRecord {
                    state: r.state,
                    decider: r.decider,
                    value: r
                        .value
                        .map(|v| {
                            serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(format!("value of {kpid}: {e}")))
                        })
                        .transpose()?,
                    refcount: r.refcount,
                    host_watch: r.host_watch,
                })
            })
            .transpose()
    }

    /// Adds to the refcount; returns the new count, or `None` if the promise is gone.
    pub(crate) fn adjust_promise(&self, kpid: KRef, delta: i64) -> Result<Option<u64>, StoreError> {
        let changed = self
            .conn
            .prepare_cached("UPDATE promises SET refcount = refcount + ?2 WHERE id = ?1")
            .ctx("prepare adjust promise")?
            .execute(params![kpid.id() as i64, delta])
            .map_err(|e| StoreError::Corrupt(format!("refcount of {kpid} would go out of range ({delta}): {e}")))?;
        let mut cache = self.cache.borrow_mut();
        if changed == 0 {
            cache.set_promise(kpid.id(), None);
            return Ok(None);
        }
        let mut count = None;
        cache.update_promise(kpid.id(), |row| {
            row.refcount = row.refcount.saturating_add_signed(delta);
            count = Some(row.refcount);
        });
        drop(cache);
        match count {
            Some(count) => Ok(Some(count)),
            // Not cached: read the row (the count just written with it).
            None => Ok(self.promise_row(kpid)?.map(|r| r.refcount)),
        }
    }

    pub(crate) fn set_decider(&self, kpid: KRef, decider: Option<EndpointId>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE promises SET decider = ?2 WHERE id = ?1")
            .ctx("prepare set decider")?
            .execute(params![kpid.id() as i64, decider.map(|d| d.to_string())])
            .ctx("set decider")?;
        self.cache.borrow_mut().update_promise(kpid.id(), |row| row.decider = decider);
        Ok(())
    }

    pub(crate) fn set_host_watch(&self, kpid: KRef, watch: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE promises SET host_watch = ?2 WHERE id = ?1")
            .ctx("prepare host watch")?
            .execute(params![kpid.id() as i64, watch])
            .ctx("host watch")?;
        self.cache.borrow_mut().update_promise(kpid.id(), |row| row.host_watch = watch);
        Ok(())
    }

    /// Promises the host was awaiting when the previous process stopped.
    pub(crate) fn host_watched_promises(&self) -> Result<Vec<KRef>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM promises WHERE host_watch = 1 ORDER BY id")
            .ctx("prepare watched")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).ctx("watched")?;
        rows.map(|r| r.map(|id| KRef::Promise(id as u64)).ctx("watched row")).collect()
    }

    /// Records the settlement: clears the decider and the host's watch (the caller releases
    /// the watch's count), removes the subscribers and returns them, in endpoint-ID text order.
    pub(crate) fn settle_promise(
        &self,
        kpid: KRef,
        rejected: bool,
        value: &CapData<KRef>,
    ) -> Result<Vec<EndpointId>, StoreError> {
        let state = if rejected { PromiseState::Rejected } else { PromiseState::Fulfilled };
        let json = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached("UPDATE promises SET state = ?2, value = ?3, decider = NULL, host_watch = 0 WHERE id = ?1")
            .ctx("prepare settle")?
            .execute(params![kpid.id() as i64, state.as_str(), &json])
            .ctx("settle")?;
        self.cache.borrow_mut().update_promise(kpid.id(), |row| {
            row.state = state;
            row.value = Some(Arc::from(json));
            row.decider = None;
            row.host_watch = false;
        });
        // Read, then delete (no RETURNING on hot paths: module doc of `store`).
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vat FROM promise_subscribers WHERE kpid = ?1 ORDER BY vat")
            .ctx("prepare subscribers of settled")?;
        let rows = stmt.query_map([kpid.id() as i64], |r| r.get::<_, String>(0)).ctx("subscribers of settled")?;
        let vats = rows
            .map(|r| {
                let s = r.ctx("subscriber row")?;
                s.parse::<EndpointId>().map_err(|e| StoreError::Corrupt(format!("subscriber of {kpid}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !vats.is_empty() {
            self.conn
                .prepare_cached("DELETE FROM promise_subscribers WHERE kpid = ?1")
                .ctx("prepare take subscribers")?
                .execute([kpid.id() as i64])
                .ctx("take subscribers")?;
        }
        Ok(vats)
    }

    /// Deletes a settled promise. Settling removed its subscribers and parked messages, and
    /// neither can be added to a settled promise, so only its own row is left.
    pub(crate) fn delete_settled_promise(&self, kpid: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM promises WHERE id = ?1")
            .ctx("prepare delete settled promise")?
            .execute([kpid.id() as i64])
            .ctx("delete settled promise")?;
        self.cache.borrow_mut().set_promise(kpid.id(), None);
        Ok(())
    }

    pub(crate) fn delete_promise(&self, kpid: KRef) -> Result<(), StoreError> {
        // Forgotten first: whichever statement fails, nothing stale is left.
        self.cache.borrow_mut().forget_promise(kpid.id());
        for sql in [
            "DELETE FROM promises WHERE id = ?1",
            "DELETE FROM promise_subscribers WHERE kpid = ?1",
            "DELETE FROM promise_queue WHERE kpid = ?1",
        ] {
            self.conn
                .prepare_cached(sql)
                .ctx("prepare delete promise")?
                .execute([kpid.id() as i64])
                .ctx("delete promise")?;
        }
        Ok(())
    }

    pub(crate) fn add_subscriber(&self, kpid: KRef, ep: EndpointId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO promise_subscribers(kpid, vat) VALUES (?1, ?2)")
            .ctx("prepare subscribe")?
            .execute(params![kpid.id() as i64, ep.to_string()])
            .ctx("subscribe")?;
        Ok(())
    }

    /// Takes one endpoint off a promise's subscribers.
    pub(crate) fn remove_subscriber(&self, kpid: KRef, ep: EndpointId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM promise_subscribers WHERE kpid = ?1 AND vat = ?2")
            .ctx("prepare remove subscriber")?
            .execute(params![kpid.id() as i64, ep.to_string()])
            .ctx("remove subscriber")?;
        Ok(())
    }

    pub(crate) fn remove_subscriptions_of(&self, ep: EndpointId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM promise_subscribers WHERE vat = ?1")
            .ctx("prepare unsubscribe")?
            .execute([ep.to_string()])
            .ctx("unsubscribe")?;
        Ok(())
    }

    /// Unresolved promises whose decider is `decider`, in id order.
    pub(crate) fn promises_decided_by(&self, decider: EndpointId) -> Result<Vec<KRef>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM promises WHERE decider = ?1 AND state = 'unresolved' ORDER BY id")
            .ctx("prepare decided by")?;
        let rows = stmt.query_map([decider.to_string()], |r| r.get::<_, i64>(0)).ctx("decided by")?;
        rows.map(|r| r.map(|id| KRef::Promise(id as u64)).ctx("decided row")).collect()
    }

    pub(crate) fn park_message(&self, kpid: KRef, message: &Message) -> Result<(), StoreError> {
        let json = serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached(
                "INSERT INTO promise_queue(kpid, seq, message)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM promise_queue WHERE kpid = ?1), ?2)",
            )
            .ctx("prepare park")?
            .execute(params![kpid.id() as i64, json])
            .ctx("park message")?;
        Ok(())
    }

    /// Whether messages are parked on a promise.
    pub(crate) fn has_parked(&self, kpid: KRef) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM promise_queue WHERE kpid = ?1)")
            .ctx("prepare has parked")?
            .query_row([kpid.id() as i64], |r| r.get(0))
            .ctx("has parked")
    }

    /// Removes and returns the parked messages of a promise, in arrival order.
    pub(crate) fn take_parked(&self, kpid: KRef) -> Result<Vec<Message>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT message FROM promise_queue WHERE kpid = ?1 ORDER BY seq")
            .ctx("prepare parked")?;
        let rows = stmt.query_map([kpid.id() as i64], |r| r.get::<_, String>(0)).ctx("parked")?;
        let out = rows.collect::<Result<Vec<_>, _>>().ctx("parked row")?;
        if !out.is_empty() {
            self.conn
                .prepare_cached("DELETE FROM promise_queue WHERE kpid = ?1")
                .ctx("prepare take parked")?
                .execute([kpid.id() as i64])
                .ctx("take parked")?;
        }
        out.into_iter()
            .map(|m| {
                serde_json::from_str(&m).map_err(|e| StoreError::Corrupt(format!("parked message on {kpid}: {e}")))
            })
            .collect()
    }
}
