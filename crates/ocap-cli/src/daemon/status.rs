//! The `getStatus` answer: the JS kernel's `KernelStatus` shape, plus what our kernel adds.

use ocap_kernel::KernelStatus;
use ocap_kernel::VatId;
use serde_json::{json, Value as Json};

/// The JS kernel's `KernelStatus` (`vats`, `subclusters`, `remoteComms`), plus `services`,
/// queue lengths, each vat's root kref, vats without a running worker, and vats that failed
/// to come back at start.
pub fn status_json(d: &KernelStatus, resume_failures: &[(VatId, String)]) -> Json {
    let parse = |s: &str| serde_json::from_str::<Json>(s).unwrap_or_else(|_| Json::String(s.to_owned()));
    let vats: Vec<Json> = d
        .vats
        .iter()
        .map(|v| json!({"id": v.id.to_string(), "config": parse(&v.config), "subclusterId": v.subcluster}))
        .collect();
    let subclusters: Vec<Json> = d
        .subclusters
        .iter()
        .map(|s| {
            // In launch order (vat ID order), as the JS kernel's record is built.
            let members: serde_json::Map<String, Json> =
                s.vats.iter().map(|(n, v)| (n.clone(), json!(v.to_string()))).collect();
            let mut j = json!({"id": s.record.id, "config": parse(&s.record.config), "vats": members});
            if let (Some(name), Some(obj)) = (&s.record.system_name, j.as_object_mut()) {
                obj.insert("systemName".into(), json!(name));
            }
            j
        })
        .collect();
    let services: Vec<Json> = d
        .services
        .iter()
        .map(|s| json!({"name": s.name, "kref": s.kref.to_string(), "systemOnly": s.system_only, "registered": s.registered}))
        .collect();
    let not_running: Vec<String> =
        d.vats.iter().filter(|v| !d.attached.contains(&v.id)).map(|v| v.id.to_string()).collect();
    let roots: serde_json::Map<String, Json> =
        d.roots.iter().map(|(v, k)| (v.to_string(), json!(k.to_string()))).collect();
    let failures: Vec<Json> =
        resume_failures.iter().map(|(v, why)| json!({"vat": v.to_string(), "error": why})).collect();
    // The JS kernel's three states (remote-comms.md §1.2), plus each peer (ours).
    let rc = &d.remote_comms;
    let mut remote_comms = match (&d.peer_id, rc.running) {
        (Some(peer_id), true) => {
            json!({"state": "connected", "peerId": peer_id, "listenAddresses": rc.listen_addresses})
        }
        (Some(peer_id), false) => json!({"state": "identity-only", "peerId": peer_id}),
        (None, _) => json!({"state": "disconnected"}),
    };
    if !rc.peers.is_empty() {
        let peers: Vec<Json> = rc
            .peers
            .iter()
            .map(|p| {
                let link = rc.links.iter().find(|l| l.peer_id == p.peer_id);
                json!({
                    "peerId": p.peer_id,
                    "remoteId": p.remote.to_string(),
                    "state": link.map_or("idle", |l| l.state.as_str()),
                    "backlog": p.backlog,
                    "sentSeq": p.next_send_seq,
                    "receivedSeq": p.highest_received_seq,
                    "lastError": p.last_error.clone().or_else(|| link.and_then(|l| l.last_error.clone())),
                })
            })
            .collect();
        if let Some(o) = remote_comms.as_object_mut() {
            o.insert("peers".into(), Json::Array(peers));
        }
    }
    json!({
        "vats": vats,
        "subclusters": subclusters,
        "remoteComms": remote_comms,
        "services": services,
        "runQueueLength": d.run_queue_length,
        "gcActionsPending": d.gc_actions_pending,
        "crankCount": d.crank_count,
        "vatRoots": roots,
        "notRunning": not_running,
        "resumeFailures": failures,
    })
}
