//! The invariant checker: reads the whole store and verifies it is self-consistent.
//!
//! Every refcount must equal what the c-lists, queue entries, promise values, pins and host
//! watches imply (SwingSet's model); no c-list entry may point nowhere; every decider and
//! subscriber must exist and hold the promise. Written for endpoints: vats and remotes are
//! checked alike (each eref against its endpoint's grammar). Tests call this at the end, and
//! the randomised test after every crank. It is read-only and may be run on any store.
//!
//! It lives in `store/` because it reads the tables directly: the schema stays here.

use std::collections::HashMap;

use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};
use crate::store::{eref_is_export, Message, RunQueueItem, Store};

#[derive(Default)]
struct Expected {
    reachable: u64,
    recognizable: u64,
}

struct ObjRow {
    owner: Option<String>,
    reachable: u64,
    recognizable: u64,
    pins: u64,
}

struct PromRow {
    state: String,
    decider: Option<String>,
    value: Option<String>,
    refcount: u64,
    host_watch: bool,
}

/// Checks a store another process may be writing (`ocap check --db`): the same checks, on
/// one consistent snapshot (a read transaction), so a crank committed half-way through the
/// check cannot show up as a violation.
pub fn check_snapshot(store: &Store) -> Result<(), Vec<String>> {
    if let Err(e) = store.connection().execute_batch("BEGIN DEFERRED") {
        return Err(vec![format!("could not start a read transaction: {e}")]);
    }
    let result = check(store);
    let _ = store.connection().execute_batch("COMMIT");
    result
}

/// Checks the store; returns every violation found.
pub fn check(store: &Store) -> Result<(), Vec<String>> {
    match check_inner(store) {
        Ok(errs) if errs.is_empty() => Ok(()),
        Ok(errs) => Err(errs),
        Err(e) => Err(vec![format!("could not read the store: {e}")]),
    }
}

fn table_exists(conn: &rusqlite::Connection, name: &str) -> Result<bool, rusqlite::Error> {
    conn.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)", [name], |r| {
        r.get(0)
    })
}

fn check_inner(store: &Store) -> Result<Vec<String>, rusqlite::Error> {
    let conn = store.connection();
    let mut errs = Vec::new();

    let mut objects: HashMap<u64, ObjRow> = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, owner, reachable, recognizable, pins FROM objects")?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            ObjRow {
                owner: r.get(1)?,
                reachable: r.get::<_, i64>(2)? as u64,
                recognizable: r.get::<_, i64>(3)? as u64,
                pins: r.get::<_, i64>(4)? as u64,
            },
        ))
    })? {
        let (id, o) = row?;
        objects.insert(id, o);
    }
    let mut promises: HashMap<u64, PromRow> = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, state, decider, value, refcount, host_watch FROM promises")?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            PromRow {
                state: r.get(1)?,
                decider: r.get(2)?,
                value: r.get(3)?,
                refcount: r.get::<_, i64>(4)? as u64,
                host_watch: r.get(5)?,
            },
        ))
    })? {
        let (id, p) = row?;
        promises.insert(id, p);
    }
    // Every endpoint (vats and remotes), by ID text, with its state.
    let mut endpoints: HashMap<String, String> = HashMap::new();
    // A store last written by an older build may lack the newer tables (`ocap check` opens it
    // read-only, without creating them): an absent table has no rows to check.
    let remotes_sql = if table_exists(conn, "remotes")? {
        "SELECT id, state FROM vats UNION ALL SELECT id, state FROM remotes"
    } else {
        "SELECT id, state FROM vats"
    };
    let mut stmt = conn.prepare(remotes_sql)?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (id, state) = row?;
        endpoints.insert(id, state);
    }

    let mut obj_expected: HashMap<u64, Expected> = HashMap::new();
    let mut prom_expected: HashMap<u64, u64> = HashMap::new();
    let exists = |k: KRef| match k {
        KRef::Object(id) => objects.contains_key(&id),
        KRef::Promise(id) => promises.contains_key(&id),
    };
    let count = |k: KRef,
                 reachable: bool,
                 obj_expected: &mut HashMap<u64, Expected>,
                 prom_expected: &mut HashMap<u64, u64>| match k {
        KRef::Object(id) => {
            let e = obj_expected.entry(id).or_default();
            e.recognizable += 1;
            if reachable {
                e.reachable += 1;
            }
        }
        KRef::Promise(id) => *prom_expected.entry(id).or_default() += 1,
    };

    // C-lists.
    let mut clist: HashMap<(String, KRef), String> = HashMap::new();
    let mut stmt = conn.prepare("SELECT endpoint, kref, eref, reachable FROM clist")?;
    for row in stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?))
    })? {
        let (ep, kref_text, eref, reachable) = row?;
        let Ok(kref) = kref_text.parse::<KRef>() else {
            errs.push(format!("c-list {ep}: bad kref {kref_text:?}"));
            continue;
        };
        if !endpoints.contains_key(&ep) {
            errs.push(format!("c-list entry {ep} {kref} -> {eref} belongs to no endpoint"));
        }
        let parsed = match ep.parse::<EndpointId>() {
            Ok(id) => id.parse_eref(&eref),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(e) if e.is_promise() != kref.is_promise() => {
                errs.push(format!("c-list {ep}: {eref} and {kref} disagree on object/promise"))
            }
            Ok(_) => {}
            Err(e) => errs.push(format!("c-list {ep}: {e}")),
        }
        if !exists(kref) {
            errs.push(format!("c-list entry {ep} {eref} -> {kref} points nowhere"));
            continue;
        }
        if let KRef::Object(id) = kref {
            if eref_is_export(&eref) {
                if objects[&id].owner.as_deref() != Some(ep.as_str()) {
                    errs.push(format!("{ep} has export entry {eref} for {kref}, owned by {:?}", objects[&id].owner));
                }
            } else {
                count(kref, reachable, &mut obj_expected, &mut prom_expected);
            }
        } else {
            count(kref, true, &mut obj_expected, &mut prom_expected);
        }
        clist.insert((ep, kref), eref);
    }

    let count_message = |target: Option<KRef>,
                         m: &Message,
                         what: &str,
                         errs: &mut Vec<String>,
                         obj_expected: &mut HashMap<u64, Expected>,
                         prom_expected: &mut HashMap<u64, u64>| {
        for k in target.into_iter().chain(m.result).chain(m.methargs.slots.iter().copied()) {
            if !exists(k) {
                errs.push(format!("{what} references {k}, which does not exist"));
            } else {
                count(k, true, obj_expected, prom_expected);
            }
        }
    };

    // Run queue.
    let mut stmt = conn.prepare("SELECT seq, item FROM run_queue")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (seq, json) = row?;
        match serde_json::from_str::<RunQueueItem>(&json) {
            Ok(RunQueueItem::Send { target, message }) => count_message(
                Some(target),
                &message,
                &format!("run-queue item {seq}"),
                &mut errs,
                &mut obj_expected,
                &mut prom_expected,
            ),
            Ok(RunQueueItem::Notify { kpid, .. }) => {
                if exists(kpid) {
                    count(kpid, true, &mut obj_expected, &mut prom_expected);
                } else {
                    errs.push(format!("notify item {seq} references missing {kpid}"));
                }
            }
            Err(e) => errs.push(format!("run-queue item {seq} is malformed: {e}")),
        }
    }

    // Parked messages.
    let mut stmt = conn.prepare("SELECT kpid, seq, message FROM promise_queue")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))? {
        let (kpid, seq, json) = row?;
        match promises.get(&kpid) {
            Some(p) if p.state == "unresolved" => {}
            Some(_) => errs.push(format!("kp{kpid} is settled but still has parked message {seq}")),
            None => errs.push(format!("parked message {seq} on missing kp{kpid}")),
        }
        match serde_json::from_str::<Message>(&json) {
            Ok(m) => count_message(
                None,
                &m,
                &format!("message {seq} parked on kp{kpid}"),
                &mut errs,
                &mut obj_expected,
                &mut prom_expected,
            ),
            Err(e) => errs.push(format!("message {seq} parked on kp{kpid} is malformed: {e}")),
        }
    }

    // Subscribers.
    let mut stmt = conn.prepare("SELECT kpid, vat FROM promise_subscribers")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)))? {
        let (kpid, ep) = row?;
        match promises.get(&kpid) {
            Some(p) if p.state == "unresolved" => {}
            Some(_) => errs.push(format!("settled kp{kpid} still lists subscriber {ep}")),
            None => errs.push(format!("subscriber {ep} of missing kp{kpid}")),
        }
        if endpoints.get(&ep).map(String::as_str) != Some("active") {
            errs.push(format!("kp{kpid} has subscriber {ep}, which is not an active endpoint"));
        } else if !clist.contains_key(&(ep.clone(), KRef::Promise(kpid))) {
            errs.push(format!("subscriber {ep} of kp{kpid} has no c-list entry for it"));
        }
    }

    // Promise values, deciders, host watches.
    for (&id, p) in &promises {
        let kpid = KRef::Promise(id);
        if p.host_watch {
            *prom_expected.entry(id).or_default() += 1;
        }
        match p.state.as_str() {
            "unresolved" => {
                if p.value.is_some() {
                    errs.push(format!("unresolved {kpid} has a value"));
                }
                if let Some(d) = &p.decider {
                    match d.parse::<EndpointId>() {
                        Ok(EndpointId::Kernel) => {}
                        Ok(ep) => {
                            if endpoints.get(&ep.to_string()).map(String::as_str) != Some("active") {
                                errs.push(format!("{kpid} is decided by {ep}, which is not an active endpoint"));
                            } else if !clist.contains_key(&(ep.to_string(), kpid)) {
                                errs.push(format!("decider {ep} of {kpid} has no c-list entry for it"));
                            }
                        }
                        Err(e) => errs.push(format!("{kpid} has bad decider: {e}")),
                    }
                }
            }
            "fulfilled" | "rejected" => {
                if p.decider.is_some() {
                    errs.push(format!("settled {kpid} still has decider {:?}", p.decider));
                }
                match p.value.as_deref().map(serde_json::from_str::<CapData<KRef>>) {
                    Some(Ok(v)) => {
                        for s in v.slots {
                            if s == kpid {
                                continue;
                            }
                            if !exists(s) {
                                errs.push(format!("value of {kpid} references {s}, which does not exist"));
                            } else {
                                count(s, true, &mut obj_expected, &mut prom_expected);
                            }
                        }
                    }
                    Some(Err(e)) => errs.push(format!("value of {kpid} is malformed: {e}")),
                    None => errs.push(format!("settled {kpid} has no value")),
                }
            }
            other => errs.push(format!("{kpid} has state {other:?}")),
        }
    }

    // A peer's pending log is a run of consecutive seqs (`Store::pending_count` counts on it).
    if table_exists(conn, "remote_pending")? {
        let mut stmt =
            conn.prepare("SELECT remote, COUNT(*), MAX(seq) - MIN(seq) + 1 FROM remote_pending GROUP BY remote")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))? {
            let (remote, count, span) = row?;
            if count != span {
                errs.push(format!("pending log of {remote} has {count} frames over {span} seqs: not consecutive"));
            }
        }
    }

    // Issued OCAP URLs: each unrevoked one pins an existing object.
    let mut url_pins: HashMap<u64, u64> = HashMap::new();
    if table_exists(conn, "ocap_urls")? {
        // The oid is not printed: with the public peer ID it is the bearer URL.
        let mut stmt = conn.prepare("SELECT kref FROM ocap_urls WHERE revoked = 0")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let kref = row?;
            match kref.parse::<KRef>() {
                Ok(KRef::Object(id)) if objects.contains_key(&id) => *url_pins.entry(id).or_default() += 1,
                _ => errs.push(format!("an unrevoked OCAP URL names {kref}, which is not an existing object")),
            }
        }
    }
    for (id, n) in url_pins {
        if objects.get(&id).is_some_and(|o| o.pins < n) {
            errs.push(format!("ko{id} has {} pins but {n} unrevoked OCAP URLs", objects[&id].pins));
        }
    }

    for (&id, o) in &objects {
        let kref = KRef::Object(id);
        let e = obj_expected.remove(&id).unwrap_or_default();
        let (er, ec) = (e.reachable + o.pins, e.recognizable + o.pins);
        if (o.reachable, o.recognizable) != (er, ec) {
            errs.push(format!(
                "{kref} has counts ({},{}) but references imply ({er},{ec})",
                o.reachable, o.recognizable
            ));
        }
        if let Some(owner) = &o.owner {
            if owner != "kernel" {
                match endpoints.get(owner).map(String::as_str) {
                    None => errs.push(format!("{kref} is owned by {owner}, which does not exist")),
                    Some("active") if !clist.contains_key(&(owner.clone(), kref)) => {
                        errs.push(format!("{kref} is owned by {owner}, which has no c-list entry for it"))
                    }
                    _ => {}
                }
            }
        }
    }
    for (&id, p) in &promises {
        let expected = prom_expected.remove(&id).unwrap_or(0);
        if p.refcount != expected {
            errs.push(format!("kp{id} has refcount {} but references imply {expected}", p.refcount));
        }
    }
    Ok(errs)
}
