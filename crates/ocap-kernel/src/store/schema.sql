-- The ocap kernel schema. Every statement is idempotent: it runs at every open.
-- Krefs are stored as text ('ko5', 'kp3') wherever a column can hold either kind;
-- the objects and promises tables key on the numeric part.

CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- Kernel objects. owner: 'vN', 'kernel', or NULL when orphaned (its exporter is gone).
-- reachable/recognizable: SwingSet's counts (import c-list entries, queue and promise-value
-- references, pins); the exporter's own c-list entry is not counted.
CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  owner TEXT,
  reachable INTEGER NOT NULL DEFAULT 0 CHECK (reachable >= 0),
  recognizable INTEGER NOT NULL DEFAULT 0 CHECK (recognizable >= reachable),
  revoked INTEGER NOT NULL DEFAULT 0,
  pins INTEGER NOT NULL DEFAULT 0 CHECK (pins >= 0)
);
CREATE INDEX IF NOT EXISTS objects_by_owner ON objects(owner) WHERE owner IS NOT NULL;

-- Kernel promises. state: 'unresolved' | 'fulfilled' | 'rejected'. value: JSON CapData once
-- settled. decider: 'vN', 'kernel', or NULL (kernel-created, not yet delivered; or settled).
-- refcount: every c-list entry, queue reference and promise-value reference, plus host_watch
-- (1 while the host awaits it).
CREATE TABLE IF NOT EXISTS promises (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  decider TEXT,
  value TEXT,
  refcount INTEGER NOT NULL DEFAULT 0 CHECK (refcount >= 0),
  host_watch INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS promises_by_decider ON promises(decider) WHERE decider IS NOT NULL;

-- Endpoints to notify when a promise settles. vat: the endpoint ID ('vN' or 'rN'; the column
-- keeps its first name so existing stores open unchanged).
CREATE TABLE IF NOT EXISTS promise_subscribers (
  kpid INTEGER NOT NULL, vat TEXT NOT NULL, PRIMARY KEY (kpid, vat)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscribers_by_vat ON promise_subscribers(vat);

-- Messages parked on an unresolved promise, in arrival order. A parked message counts its
-- result and slots; the target is the promise that owns the queue and is not counted.
CREATE TABLE IF NOT EXISTS promise_queue (
  kpid INTEGER NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (kpid, seq)
) WITHOUT ROWID;

-- C-lists, both directions in one row. reachable: the flag of SwingSet's model (for an import:
-- the endpoint holds it reachably; for an export: the kernel holds it reachably).
CREATE TABLE IF NOT EXISTS clist (
  endpoint TEXT NOT NULL, kref TEXT NOT NULL, eref TEXT NOT NULL, reachable INTEGER NOT NULL,
  PRIMARY KEY (endpoint, kref)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS clist_by_eref ON clist(endpoint, eref);
CREATE INDEX IF NOT EXISTS clist_by_kref ON clist(kref);

-- The run queue (sends and notifies), FIFO by seq. Items are the JS kernel's RunQueueItem JSON.
CREATE TABLE IF NOT EXISTS run_queue (seq INTEGER PRIMARY KEY, item TEXT NOT NULL);

-- Pending GC actions (a set). kind: 0 dropExport, 1 retireExport, 2 retireImport.
CREATE TABLE IF NOT EXISTS gc_actions (
  endpoint TEXT NOT NULL, kind INTEGER NOT NULL, kref TEXT NOT NULL, PRIMARY KEY (endpoint, kind, kref)
) WITHOUT ROWID;

-- Vats waiting for bring-out-your-dead, FIFO, each at most once.
CREATE TABLE IF NOT EXISTS reap_queue (seq INTEGER PRIMARY KEY, vat TEXT NOT NULL UNIQUE);

-- Vats. state: 'active' | 'terminated' (awaiting c-list cleanup). config: JSON VatConfig.
CREATE TABLE IF NOT EXISTS vats (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  subcluster TEXT,
  config TEXT NOT NULL,
  state TEXT NOT NULL,
  next_object INTEGER NOT NULL DEFAULT 1,
  next_promise INTEGER NOT NULL DEFAULT 1,
  reap_interval INTEGER NOT NULL,
  reap_countdown INTEGER NOT NULL
) WITHOUT ROWID;
-- The crank loop looks for terminated vats before every crank; this keeps that a lookup.
CREATE INDEX IF NOT EXISTS vats_terminated ON vats(id) WHERE state = 'terminated';

-- Remote kernels as endpoints ('rN', remote-comms.md §2): state as for vats, and the counters of
-- the import rrefs the kernel allocates (ro-N, rp-N).
CREATE TABLE IF NOT EXISTS remotes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  next_object INTEGER NOT NULL DEFAULT 1,
  next_promise INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- Remote kernels reached over the network (remote-comms.md §5): one row per remote endpoint
-- that is a peer. peer_id: its libp2p peer ID; hints: JSON list of multiaddrs from the URLs
-- redeemed from it; next_send_seq: the last seq assigned; highest_received_seq: the last seq
-- taken from it (committed with the unit that processed it: exactly-once receive);
-- incarnation: the incarnation ID it last presented (§7).
CREATE TABLE IF NOT EXISTS remote_peers (
  remote TEXT PRIMARY KEY,
  peer_id TEXT NOT NULL UNIQUE,
  hints TEXT NOT NULL DEFAULT '[]',
  next_send_seq INTEGER NOT NULL DEFAULT 0,
  highest_received_seq INTEGER NOT NULL DEFAULT 0,
  incarnation TEXT
) WITHOUT ROWID;

-- The sender's log (§5.1): every sequenced frame sent to a peer and not yet acked, exactly as
-- sent, written in the unit that produced it; deleted when acked or given up.
CREATE TABLE IF NOT EXISTS remote_pending (
  remote TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (remote, seq)
) WITHOUT ROWID;

-- OCAP URLs this kernel issued, by oid (remote-comms.md §3; the oid is the URL's encrypted
-- object part, random per issue). An unrevoked URL pins its object (objects.pins), so the
-- object lives as long as the URL can be redeemed; revoking releases the pin and keeps the
-- row, so a later redemption says "revoked" rather than "bad object reference".
CREATE TABLE IF NOT EXISTS ocap_urls (
  oid TEXT PRIMARY KEY, kref TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Each vat's private key/value store, ordered by key (liveslots' vatstore).
CREATE TABLE IF NOT EXISTS vatstore (
  vat TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (vat, key)
) WITHOUT ROWID;

-- Kernel services: name -> kref, stable across restarts.
CREATE TABLE IF NOT EXISTS kernel_services (name TEXT PRIMARY KEY, kref TEXT NOT NULL) WITHOUT ROWID;

-- Subclusters: vats launched together. config: JSON ClusterConfig. system_name: set for
-- system subclusters (unique).
CREATE TABLE IF NOT EXISTS subclusters (
  id TEXT PRIMARY KEY, config TEXT NOT NULL, system_name TEXT UNIQUE
) WITHOUT ROWID;
