//! Remote-kernel endpoints (`rN`): one row per peer this kernel holds a c-list for
//! (remote-comms.md §2). The row carries what every endpoint needs (state, import counters);
//! the transport's own state (peer ID, sequence numbers, the pending log) is the remote-comms
//! layer's and gets tables of its own.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, RemoteId};

/// Whether a remote endpoint takes deliveries or is being cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteState {
    Active,
    /// Terminated; its c-list entries are being cleaned up in bounded steps.
    Terminated,
}

/// One row of the `remotes` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    pub id: RemoteId,
    /// What the host calls it (a peer ID, or a test's label).
    pub name: String,
    pub state: RemoteState,
}

impl Store {
    /// Records a new remote endpoint with an ID from the `remote` counter (IDs are never reused).
    pub(crate) fn create_remote(&self, name: &str) -> Result<RemoteId, StoreError> {
        let id = RemoteId(self.next_id("remote")?);
        self.conn
            .prepare_cached("INSERT INTO remotes(id, name, state) VALUES (?1, ?2, 'active')")
            .ctx("prepare create remote")?
            .execute(params![id.to_string(), name])
            .ctx("create remote")?;
        self.cache.borrow_mut().forget_endpoint(EndpointId::Remote(id));
        Ok(id)
    }

    pub fn remote(&self, id: RemoteId) -> Result<Option<RemoteRecord>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT name, state FROM remotes WHERE id = ?1")
            .ctx("prepare get remote")?
            .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("get remote")?;
        row.map(|(name, state)| {
            let state = match state.as_str() {
                "active" => RemoteState::Active,
                "terminated" => RemoteState::Terminated,
                other => return Err(StoreError::Corrupt(format!("remote {id} has state {other:?}"))),
            };
            Ok(RemoteRecord { id, name, state })
        })
        .transpose()
    }

    /// Every remote endpoint, in ID order.
    pub fn remotes(&self) -> Result<Vec<RemoteRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM remotes").ctx("prepare remote ids")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).ctx("remote ids")?;
        let mut ids = rows
            .map(|r| r.ctx("remote id row")?.parse().map_err(|e| StoreError::Corrupt(format!("remote id: {e}"))))
            .collect::<Result<Vec<RemoteId>, _>>()?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.remote(id)?);
        }
        Ok(out)
    }
}
