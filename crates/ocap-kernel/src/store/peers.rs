//! Remote endpoints that are network peers (remote-comms.md §5): the `remote_peers` row (peer
//! ID, hints, sequence numbers, last incarnation) and the pending log `remote_pending`. Written
//! inside the unit that produced the frame or processed the received one, so the sender's log
//! and the receiver's dedup mark commit with the crank (§5.2's crash-ordering problems of the
//! JS kernel's KV do not arise: one SQLite transaction holds all of it).

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::RemoteId;

/// One row of `remote_peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub remote: RemoteId,
    pub peer_id: String,
    /// Multiaddrs the peer may be reached at (from the URLs redeemed from it).
    pub hints: Vec<String>,
    /// The last seq assigned to a frame for it (0: none yet).
    pub next_send_seq: u64,
    /// The last seq processed from it (0: none yet).
    pub highest_received_seq: u64,
    /// The incarnation ID it last presented in a handshake.
    pub incarnation: Option<String>,
}

fn parse_remote(s: String) -> Result<RemoteId, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("remote id {s:?}: {e}")))
}

type PeerRow = (String, String, String, i64, i64, Option<String>);

fn peer_from_row(row: PeerRow) -> Result<PeerRecord, StoreError> {
    let (remote, peer_id, hints, next, highest, incarnation) = row;
    let hints: Vec<String> =
        serde_json::from_str(&hints).map_err(|e| StoreError::Corrupt(format!("hints of {remote}: {e}")))?;
    Ok(PeerRecord {
        remote: parse_remote(remote)?,
        peer_id,
        hints,
        next_send_seq: next as u64,
        highest_received_seq: highest as u64,
        incarnation,
    })
}

/// Hints kept per peer: the most recently given.
pub const MAX_PEER_HINTS: usize = 16;

const PEER_COLUMNS: &str = "remote, peer_id, hints, next_send_seq, highest_received_seq, incarnation";

impl Store {
    /// Records that remote endpoint `remote` is the network peer `peer_id`.
    pub(crate) fn create_peer(&self, remote: RemoteId, peer_id: &str, hints: &[String]) -> Result<(), StoreError> {
        let hints = &hints[hints.len().saturating_sub(MAX_PEER_HINTS)..];
        let hints = serde_json::to_string(hints).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached("INSERT INTO remote_peers(remote, peer_id, hints) VALUES (?1, ?2, ?3)")
            .ctx("prepare create peer")?
            .execute(params![remote.to_string(), peer_id, hints])
            .ctx("create peer")?;
        Ok(())
    }

    /// The peer row of a remote endpoint, if it is a network peer.
    pub fn peer(&self, remote: RemoteId) -> Result<Option<PeerRecord>, StoreError> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM remote_peers WHERE remote = ?1");
        let row: Option<PeerRow> = self
            .conn
            .prepare_cached(&sql)
            .ctx("prepare get peer")?
            .query_row([remote.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .optional()
            .ctx("get peer")?;
        row.map(peer_from_row).transpose()
    }

    /// The remote endpoint that is `peer_id`, if any.
    pub(crate) fn remote_of_peer(&self, peer_id: &str) -> Result<Option<RemoteId>, StoreError> {
        let row: Option<String> = self
            .conn
            .prepare_cached("SELECT remote FROM remote_peers WHERE peer_id = ?1")
            .ctx("prepare peer remote")?
            .query_row([peer_id], |r| r.get(0))
            .optional()
            .ctx("peer remote")?;
        row.map(parse_remote).transpose()
    }

    /// Every peer, in remote order.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM remote_peers");
        let mut stmt = self.conn.prepare_cached(&sql).ctx("prepare peers")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .ctx("peers")?;
        let mut out = rows.map(|r| peer_from_row(r.ctx("peer row")?)).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|p| p.remote);
        Ok(out)
    }

    /// Adds hints (set union, newest last), keeping the `MAX_PEER_HINTS` most recent.
    pub(crate) fn add_peer_hints(&self, remote: RemoteId, hints: &[String]) -> Result<Vec<String>, StoreError> {
        let Some(peer) = self.peer(remote)? else { return Ok(Vec::new()) };
        let mut all = peer.hints;
        for h in hints {
            all.retain(|old| old != h);
            all.push(h.clone());
        }
        let excess = all.len().saturating_sub(MAX_PEER_HINTS);
        all.drain(..excess);
        let text = serde_json::to_string(&all).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached("UPDATE remote_peers SET hints = ?2 WHERE remote = ?1")
            .ctx("prepare peer hints")?
            .execute(params![remote.to_string(), text])
            .ctx("peer hints")?;
        Ok(all)
    }

    /// Assigns the next seq for a frame to `remote`; returns it with the ack to piggyback
    /// (`highest_received_seq`, 0 when nothing was received).
    pub(crate) fn next_send_seq(&self, remote: RemoteId) -> Result<(u64, u64), StoreError> {
        let id = remote.to_string();
        self.conn
            .prepare_cached("UPDATE remote_peers SET next_send_seq = next_send_seq + 1 WHERE remote = ?1")
            .ctx("prepare next seq")?
            .execute([&id])
            .ctx("next seq")?;
        let (seq, ack): (i64, i64) = self
            .conn
            .prepare_cached("SELECT next_send_seq, highest_received_seq FROM remote_peers WHERE remote = ?1")
            .ctx("prepare read next seq")?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("read next seq")?;
        Ok((seq as u64, ack as u64))
    }

    pub(crate) fn set_highest_received_seq(&self, remote: RemoteId, seq: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE remote_peers SET highest_received_seq = ?2 WHERE remote = ?1")
            .ctx("prepare received seq")?
            .execute(params![remote.to_string(), seq as i64])
            .ctx("received seq")?;
        Ok(())
    }

    /// Forgets the sequence state (a peer that lost its state starts again at 1, §7).
    pub(crate) fn reset_peer_seqs(&self, remote: RemoteId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE remote_peers SET next_send_seq = 0, highest_received_seq = 0 WHERE remote = ?1")
            .ctx("prepare reset seqs")?
            .execute([remote.to_string()])
            .ctx("reset seqs")?;
        self.drop_pending(remote, u64::MAX).map(|_| ())
    }

    pub(crate) fn set_peer_incarnation(&self, remote: RemoteId, incarnation: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE remote_peers SET incarnation = ?2 WHERE remote = ?1")
            .ctx("prepare peer incarnation")?
            .execute(params![remote.to_string(), incarnation])
            .ctx("peer incarnation")?;
        Ok(())
    }

    /// Logs a frame sent to `remote` until it is acked.
    pub(crate) fn add_pending(&self, remote: RemoteId, seq: u64, frame: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO remote_pending(remote, seq, frame) VALUES (?1, ?2, ?3)")
            .ctx("prepare add pending")?
            .execute(params![remote.to_string(), seq as i64, frame])
            .ctx("add pending")?;
        Ok(())
    }

    /// Rewrites a pending frame (`give_up_peer` withdraws what it asked of the peer).
    pub(crate) fn replace_pending(&self, remote: RemoteId, seq: u64, frame: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE remote_pending SET frame = ?3 WHERE remote = ?1 AND seq = ?2")
            .ctx("prepare replace pending")?
            .execute(params![remote.to_string(), seq as i64, frame])
            .ctx("replace pending")?;
        Ok(())
    }

    /// Deletes the pending frames up to and including `seq` (a cumulative ack); returns how many.
    pub(crate) fn drop_pending(&self, remote: RemoteId, seq: u64) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM remote_pending WHERE remote = ?1 AND seq <= ?2")
            .ctx("prepare ack pending")?
            .execute(params![remote.to_string(), seq.min(i64::MAX as u64) as i64])
            .ctx("ack pending")
    }

    /// Whether any frame to `remote` waits for an ack.
    pub(crate) fn has_pending(&self, remote: RemoteId) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM remote_pending WHERE remote = ?1)")
            .ctx("prepare has pending")?
            .query_row([remote.to_string()], |r| r.get(0))
            .ctx("has pending")
    }

    /// The last seq processed from `remote` (0: none, or not a peer).
    pub(crate) fn highest_received_seq(&self, remote: RemoteId) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT highest_received_seq FROM remote_peers WHERE remote = ?1")
            .ctx("prepare highest received")?
            .query_row([remote.to_string()], |r| r.get(0))
            .optional()
            .ctx("highest received")?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// How many frames to `remote` wait for an ack. The log holds a run of consecutive
    /// seqs (frames are added at the next seq and leave only by acks, which take a prefix,
    /// or all at once), so its two ends give the count without walking it: this is asked
    /// before every message to the peer, with up to `max_pending` frames logged.
    pub(crate) fn pending_count(&self, remote: RemoteId) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(seq) FROM remote_pending WHERE remote = ?1) \
                 - (SELECT MIN(seq) FROM remote_pending WHERE remote = ?1) + 1, 0)",
            )
            .ctx("prepare pending count")?
            .query_row([remote.to_string()], |r| r.get(0))
            .ctx("pending count")?;
        Ok(n as u64)
    }

    /// The frames to `remote` waiting for an ack, in seq order.
    pub fn pending_frames(&self, remote: RemoteId) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, frame FROM remote_pending WHERE remote = ?1 ORDER BY seq")
            .ctx("prepare pending frames")?;
        let rows = stmt
            .query_map([remote.to_string()], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .ctx("pending frames")?;
        rows.map(|r| r.ctx("pending row")).collect()
    }

    /// Deletes a remote's peer row and pending log (with its endpoint row).
    pub(crate) fn delete_peer(&self, remote: RemoteId) -> Result<(), StoreError> {
        for sql in ["DELETE FROM remote_pending WHERE remote = ?1", "DELETE FROM remote_peers WHERE remote = ?1"] {
            self.conn
                .prepare_cached(sql)
                .ctx("prepare delete peer")?
                .execute([remote.to_string()])
                .ctx("delete peer")?;
        }
        Ok(())
    }
}
