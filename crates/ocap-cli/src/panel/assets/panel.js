// The panel's page logic: plain JavaScript, no build step, no dependencies.
// Every call goes to POST /api/call, the daemon's control-method table; the cookie set when
// the page was opened with its token authorizes it, and X-Ocap-Panel marks it as ours (the
// server refuses state-changing requests without it).
'use strict';

const REFRESH_MS = 3000;

/** Calls a control method; resolves with its result, rejects with an Error (code, data). */
async function call(method, params = []) {
  const response = await fetch('/api/call', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Ocap-Panel': '1' },
    body: JSON.stringify({ method, params }),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new Error(`${method}: HTTP ${response.status} ${response.statusText}`);
  }
  if (answer.error) {
    const e = new Error(`${method}: ${answer.error.message} (code ${answer.error.code})`);
    e.code = answer.error.code;
    e.rpcMessage = answer.error.message;
    e.data = answer.error.data;
    throw e;
  }
  return answer.result;
}

const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $('error').hidden = true;
}

/** An element with text; children are elements or strings. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** Destructive buttons waiting for their confirming click: the refresh waits for them, so
 * it cannot redraw a row (and disarm its button) between the two clicks. */
let armedButtons = 0;

/**
 * A button that runs `action`; destructive ones ask for a second click within a few seconds
 * (rather than a modal dialog, which blocks the page and its refresh).
 */
function actionButton(label, ariaLabel, action, destructive = false) {
  const button = el('button', { type: 'button', 'aria-label': ariaLabel, class: destructive ? 'danger' : '' }, label);
  let armed = false;
  const disarm = () => {
    if (armed) {
      armed = false;
      armedButtons -= 1;
    }
  };
  button.addEventListener('click', async () => {
    if (destructive && !armed) {
      armed = true;
      armedButtons += 1;
      button.textContent = `Confirm ${label.toLowerCase()}`;
      setTimeout(() => { disarm(); button.textContent = label; }, 4000);
      return;
    }
    disarm();
    button.disabled = true;
    const out = $('action-result');
    out.className = '';
    out.textContent = `${ariaLabel}…`;
    try {
      const result = await action();
      out.textContent = `${ariaLabel}: ${result === null ? 'done' : JSON.stringify(result)}`;
    } catch (e) {
      // Stays until the next action: a refresh does not clear it.
      out.className = 'failed';
      out.textContent = `${ariaLabel} failed: ${e.message}`;
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  return button;
}

/** Replaces a table body's rows, unless they are unchanged (keeps focus on a button). */
function setRows(tbody, key, rows, empty) {
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  const columns = String(tbody.closest('table').querySelectorAll('thead th').length);
  tbody.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: columns }, empty))]));
}

function renderOverview(status) {
  const stopped = status.notRunning.length;
  $('kernel-state').textContent = stopped ? `running (${stopped} vat(s) not running)` : 'running';
  $('crank-count').textContent = status.crankCount;
  $('run-queue').textContent = status.runQueueLength;
  $('gc-pending').textContent = status.gcActionsPending;
  const rc = status.remoteComms;
  const peers = rc.peers ? `, ${rc.peers.length} peer(s)` : '';
  $('remote-comms').textContent = `${rc.state}${peers}`;
}

function renderVats(status) {
  // A vat's name is its key in its subcluster's `vats`.
  const names = {};
  for (const s of status.subclusters) for (const [name, id] of Object.entries(s.vats)) names[id] = name;
  const notRunning = new Set(status.notRunning);
  const key = JSON.stringify([status.vats, status.vatRoots, status.notRunning]);
  const rows = status.vats.map((v) => {
    const running = !notRunning.has(v.id);
    const name = names[v.id] ?? '';
    return el('tr', { 'data-vat': v.id },
      el('td', {}, el('code', {}, v.id)),
      el('td', {}, name),
      el('td', {}, v.subclusterId ?? '—'),
      el('td', { class: running ? 'running' : 'stopped' }, running ? 'running' : 'not running'),
      el('td', {}, el('code', {}, status.vatRoots[v.id] ?? '—')),
      el('td', {},
        actionButton('Ping', `Ping ${v.id}`, () => call('pingVat', { id: v.id })),
        actionButton('Restart', `Restart ${v.id}`, () => call('restartVat', { id: v.id })),
        actionButton('Terminate', `Terminate ${v.id}`, () => call('terminateVat', { id: v.id }), true)));
  });
  setRows($('vat-rows'), key, rows, 'No vats.');
}

function renderSubclusters(status) {
  const key = JSON.stringify(status.subclusters.map((s) => [s.id, s.vats]));
  const rows = status.subclusters.map((s) => {
    const vats = Object.entries(s.vats).map(([name, id]) => `${name}=${id}`).join(', ');
    return el('tr', { 'data-subcluster': s.id },
      el('td', {}, el('code', {}, s.id)),
      el('td', {}, s.config?.bootstrap ?? ''),
      el('td', {}, vats),
      el('td', {},
        actionButton('Terminate', `Terminate subcluster ${s.id}`, () => call('terminateSubcluster', { id: s.id }), true)));
  });
  setRows($('subcluster-rows'), key, rows, 'No subclusters.');
}

// ---- Pages ------------------------------------------------------------------------------

const PAGES = ['overview', 'messages', 'objects', 'database'];
let currentPage = 'overview';

/** Shows the page the URL hash names (the overview for anything else); `focus` on navigation. */
function showPage(focus) {
  const wanted = location.hash.slice(1);
  currentPage = PAGES.includes(wanted) ? wanted : 'overview';
  for (const page of document.querySelectorAll('.page')) page.hidden = page.dataset.page !== currentPage;
  for (const link of document.querySelectorAll('nav a[data-page]')) {
    if (link.dataset.page === currentPage) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const title = currentPage === 'overview' ? 'ocap kernel panel' : `${currentPage[0].toUpperCase()}${currentPage.slice(1)} · ocap kernel panel`;
  document.title = title;
  if (currentPage === 'objects') loadObjects();
  if (focus) {
    // An action's outcome belongs to the page it was taken on.
    $('action-result').textContent = '';
    $('action-result').className = '';
    document.querySelector(`.page[data-page="${currentPage}"] h2`)?.focus();
  }
}

// ---- Values -----------------------------------------------------------------------------

/**
 * A smallcaps CapData `{body, slots}` as text for people, as `ocap send` prints it: a string
 * bare, a reference `<iface ko3>`, a bigint `5n`, an error `Name: message`, anything else as
 * compact JSON-like text.
 */
function displayCapData(capData) {
  const body = capData?.body;
  if (typeof body !== 'string' || !body.startsWith('#')) return JSON.stringify(capData);
  let value;
  try {
    value = JSON.parse(body.slice(1));
  } catch {
    return body;
  }
  const slots = capData.slots ?? [];
  const special = (s) => {
    const rest = s.slice(1);
    switch (s[0]) {
      case '!': return { text: rest };
      case '%': return { raw: `Symbol(${rest})` };
      case '#': return { raw: rest };
      case '+': return { raw: `${rest}n` };
      case '-': return { raw: `${s}n` };
      case '$': {
        const [index, iface] = rest.split('.');
        return { raw: `<${iface ?? 'object'} ${slots[Number(index)] ?? s}>` };
      }
      case '&': return { raw: `<promise ${slots[Number(rest)] ?? s}>` };
      default: return { text: s };
    }
  };
  const show = (v, top) => {
    if (typeof v === 'string') {
      const d = special(v);
      if (d.raw !== undefined) return d.raw;
      return top ? d.text : JSON.stringify(d.text);
    }
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map((i) => show(i, false)).join(',')}]`;
    if ('#error' in v) {
      const text = (t) => (typeof t === 'string' ? (special(t).text ?? t) : String(t));
      return `${text(v.name ?? 'Error')}: ${text(v['#error'])}`;
    }
    if ('#tag' in v) return `${show(v['#tag'], true)}(${show(v.payload, false)})`;
    const fields = Object.entries(v).map(([k, i]) => `${JSON.stringify(special(k).text ?? k)}:${show(i, false)}`);
    return `{${fields.join(',')}}`;
  };
  return show(value, true);
}

/** A CapData as the database stores it (JSON text), for people; the text itself if not JSON. */
function displayStored(text) {
  try {
    return displayCapData(JSON.parse(text));
  } catch {
    return text;
  }
}

// ---- Messages ---------------------------------------------------------------------------

/** Offers the vats' root objects in the target box. */
function renderRootKrefs(status) {
  const list = $('root-krefs');
  const key = JSON.stringify(status.vatRoots);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...Object.entries(status.vatRoots).map(([vat, kref]) => el('option', { value: kref, label: `${kref} (root of ${vat})` })));
}

function setUpMessages() {
  const form = $('send-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const target = $('send-target').value.trim();
    const method = $('send-method').value.trim();
    const argsText = $('send-args').value.trim() || '[]';
    const out = $('send-result');
    out.className = 'outcome';
    let args;
    try {
      args = JSON.parse(argsText);
      if (!Array.isArray(args)) throw new Error('not an array');
    } catch (e) {
      out.className = 'outcome failed';
      out.textContent = `The arguments must be a JSON array: ${e.message}`;
      $('send-args').focus();
      return;
    }
    const label = `${target}.${method}(${args.map((a) => JSON.stringify(a)).join(', ')})`;
    const button = $('send-button');
    button.disabled = true;
    out.textContent = `Sending ${label}…`;
    let entry;
    try {
      const result = await call('queueMessage', [target, method, args]);
      const text = displayCapData(result);
      out.replaceChildren(
        el('strong', {}, 'Result: '), el('span', { class: 'value', id: 'send-value' }, text),
        el('details', {}, el('summary', {}, 'CapData'), el('code', { class: 'value' }, JSON.stringify(result))));
      entry = { label, ok: true, text };
    } catch (e) {
      out.className = 'outcome failed';
      const text = e.code === -32000 ? `Rejected: ${e.rpcMessage}` : `Failed: ${e.message}`;
      out.replaceChildren(el('strong', {}, text));
      entry = { label, ok: false, text };
    } finally {
      button.disabled = false;
    }
    const time = new Date();
    $('send-history').prepend(el('li', { class: entry.ok ? '' : 'failed' },
      el('time', { datetime: time.toISOString() }, time.toLocaleTimeString()),
      el('code', {}, entry.label), ' → ', el('span', { class: 'value' }, entry.text)));
  });
}

// ---- Database ---------------------------------------------------------------------------

/** Rows of an `executeDBQuery` answer, and its truncation, if any. */
function queryRows(answer) {
  if (Array.isArray(answer)) return { rows: answer, truncated: false };
  return { rows: answer.rows ?? [], truncated: !!answer.truncated, limit: answer.limit };
}

/** A SQL string literal. */
function sqlText(s) {
  return `'${String(s).replaceAll("'", "''")}'`;
}

function setUpDatabase() {
  $('sql-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const sql = $('sql').value;
    const status = $('sql-status');
    const button = $('sql-button');
    status.className = '';
    status.textContent = 'Running…';
    button.disabled = true;
    try {
      const { rows, truncated, limit } = queryRows(await call('executeDBQuery', { sql }));
      const columns = [];
      for (const row of rows) for (const c of Object.keys(row)) if (!columns.includes(c)) columns.push(c);
      $('sql-head').replaceChildren(...columns.map((c) => el('th', { scope: 'col' }, c)));
      $('sql-rows').replaceChildren(...rows.map((row) => el('tr', {}, ...columns.map((c) => {
        const v = row[c];
        return v === null || v === undefined ? el('td', { class: 'null' }, 'NULL') : el('td', { class: 'cell' }, v);
      }))));
      const count = `${rows.length} row${rows.length === 1 ? '' : 's'}.`;
      if (truncated) {
        status.replaceChildren(el('span', { class: 'notice', id: 'sql-truncated' },
          `Truncated: the answer stopped at ${rows.length} row(s), at the daemon's limit (${limit ?? 'unknown'}).`));
      } else {
        status.textContent = count;
      }
    } catch (e) {
      status.className = 'failed';
      status.textContent = `Query failed: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

// ---- Objects ----------------------------------------------------------------------------

const PAGE_SIZE = 25;

/**
 * The tables of the Objects page: each a query from a WHERE clause for the endpoint filter
 * (or none), its columns in the table, and its current offset.
 */
const OBJECT_TABLES = {
  objects: {
    body: 'object-rows',
    from: (ep) => `FROM objects${ep ? ` WHERE owner = ${sqlText(ep)}` : ''}`,
    select: "SELECT 'ko' || id AS kref, owner, reachable, recognizable, revoked, pins",
    order: 'ORDER BY id',
    offset: 0,
    row: (r) => el('tr', { 'data-kref': r.kref },
      el('td', {}, el('code', {}, r.kref)),
      el('td', {}, r.owner ?? '—'),
      el('td', {}, r.reachable), el('td', {}, r.recognizable),
      el('td', {}, r.revoked === '1' ? 'yes' : 'no'),
      el('td', {}, r.pins),
      el('td', {}, r.revoked === '1' ? '' : actionButton('Revoke', `Revoke ${r.kref}`, () => call('revoke', { kref: r.kref }), true))),
  },
  promises: {
    body: 'promise-rows',
    from: (ep) => `FROM promises${ep ? ` WHERE decider = ${sqlText(ep)} OR id IN (SELECT kpid FROM promise_subscribers WHERE vat = ${sqlText(ep)})` : ''}`,
    select: "SELECT 'kp' || id AS kpid, state, decider, refcount, value, (SELECT group_concat(vat, ', ') FROM promise_subscribers s WHERE s.kpid = promises.id) AS subscribers",
    order: 'ORDER BY id',
    offset: 0,
    row: (r) => el('tr', { 'data-kpid': r.kpid },
      el('td', {}, el('code', {}, r.kpid)),
      el('td', {}, r.state),
      el('td', {}, r.decider ?? '—'),
      el('td', {}, r.refcount),
      el('td', {}, r.subscribers ?? ''),
      el('td', { class: 'cell' }, r.value === null ? '' : displayStored(r.value))),
  },
  clist: {
    body: 'clist-rows',
    from: (ep) => `FROM clist${ep ? ` WHERE endpoint = ${sqlText(ep)}` : ''}`,
    select: 'SELECT endpoint, kref, eref, reachable',
    order: 'ORDER BY endpoint, kref',
    offset: 0,
    row: (r) => el('tr', { 'data-clist': `${r.endpoint} ${r.kref}` },
      el('td', {}, r.endpoint), el('td', {}, el('code', {}, r.kref)), el('td', {}, el('code', {}, r.eref)),
      el('td', {}, r.reachable === '1' ? 'yes' : 'no')),
  },
};

let objectsEndpoint = '';
let loadingObjects = false;
/** Set when a load is asked for during another (a filter, a page): it runs once that ends. */
let objectsStale = false;

/** One table's current page and its total; past the end (a filter, rows gone), its last page. */
async function readTable(t) {
  const from = t.from(objectsEndpoint);
  const count = call('executeDBQuery', { sql: `SELECT count(*) AS n ${from}` }).then(queryRows);
  const page = () => call('executeDBQuery', { sql: `${t.select} ${from} ${t.order} LIMIT ${PAGE_SIZE} OFFSET ${t.offset}` }).then(queryRows);
  const [{ rows: counted }, first] = await Promise.all([count, page()]);
  const total = Number(counted[0]?.n ?? 0);
  if (t.offset > 0 && t.offset >= total) {
    t.offset = Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
    return { total, rows: (await page()).rows };
  }
  return { total, rows: first.rows };
}

/** Reads the three tables' current pages (and their totals) and renders them. */
async function loadObjects() {
  if (loadingObjects) {
    objectsStale = true;
    return;
  }
  loadingObjects = true;
  objectsStale = false;
  const box = $('objects-error');
  try {
    // All read, then all shown: never one table filtered and another not yet.
    const tables = Object.entries(OBJECT_TABLES);
    const read = await Promise.all(tables.map(([, t]) => readTable(t)));
    const empty = objectsEndpoint ? `None for ${objectsEndpoint}.` : 'None.';
    tables.forEach(([name, t], i) => {
      const { total, rows } = read[i];
      setRows($(t.body), JSON.stringify([objectsEndpoint, rows]), rows.map(t.row), empty);
      renderPager(name, t, total);
    });
    box.hidden = true;
  } catch (e) {
    box.textContent = `Cannot read the objects: ${e.message}`;
    box.hidden = false;
  } finally {
    loadingObjects = false;
    if (objectsStale) loadObjects();
  }
}

function renderPager(name, t, total) {
  const pager = document.querySelector(`.pager[data-table="${name}"]`);
  const key = JSON.stringify([t.offset, total]);
  if (pager.dataset.key === key) return;
  pager.dataset.key = key;
  const first = total ? t.offset + 1 : 0;
  const last = Math.min(total, t.offset + PAGE_SIZE);
  const move = (delta) => () => { t.offset = Math.max(0, t.offset + delta); loadObjects(); };
  const prev = el('button', { type: 'button', 'aria-label': `Previous ${name}` }, 'Previous');
  const next = el('button', { type: 'button', 'aria-label': `Next ${name}` }, 'Next');
  prev.disabled = t.offset === 0;
  next.disabled = last >= total;
  prev.addEventListener('click', move(-PAGE_SIZE));
  next.addEventListener('click', move(PAGE_SIZE));
  pager.replaceChildren(prev, next, el('span', {}, `${first}–${last} of ${total}`));
}

function setUpObjects() {
  const apply = (endpoint) => {
    objectsEndpoint = endpoint;
    for (const t of Object.values(OBJECT_TABLES)) t.offset = 0;
    loadObjects();
  };
  $('objects-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    apply($('objects-endpoint').value.trim());
  });
  $('objects-clear').addEventListener('click', () => {
    $('objects-endpoint').value = '';
    apply('');
  });
}

let refreshing = false;

async function refresh() {
  if (refreshing || armedButtons > 0) return;
  refreshing = true;
  try {
    const status = await call('getStatus');
    renderOverview(status);
    renderVats(status);
    renderSubclusters(status);
    renderRootKrefs(status);
    if (currentPage === 'objects') loadObjects();
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    clearError();
  } catch (e) {
    $('kernel-state').textContent = 'not answering';
    showError(`Cannot refresh: ${e.message}`);
  } finally {
    refreshing = false;
  }
}

setUpMessages();
setUpDatabase();
setUpObjects();
window.addEventListener('hashchange', () => showPage(true));
showPage(false);
refresh();
setInterval(refresh, REFRESH_MS);
