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
      // An action may answer with its own display (an element); else its JSON.
      if (result instanceof Node) out.replaceChildren(`${ariaLabel}: `, result);
      else out.textContent = `${ariaLabel}: ${result === null ? 'done' : JSON.stringify(result)}`;
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

/**
 * Reloads a subcluster as the JS kernel's `reloadSubcluster` did (host-surface.md §3.6), with
 * the control methods: terminate it (its vats, in reverse order), then launch its config as a
 * new subcluster (a new ID), which re-runs its bootstrap. The config is the one the status
 * read, so a launch the daemon refuses leaves the old subcluster terminated: said so.
 */
async function reloadSubcluster(s) {
  await call('terminateSubcluster', { id: s.id });
  let r;
  try {
    r = await call('launchSubcluster', { config: s.config });
  } catch (e) {
    throw new Error(`${s.id} was terminated, but launching its config again failed: ${e.message}`);
  }
  return el('span', {},
    `now `, el('code', { id: 'reload-subcluster' }, r.subclusterId), ` (was ${s.id}); bootstrap result: `,
    el('span', { class: 'value', id: 'reload-bootstrap' }, displayResult(r.bootstrapResult)));
}

function renderSubclusters(status) {
  const key = JSON.stringify(status.subclusters.map((s) => [s.id, s.vats, s.systemName ?? null]));
  const rows = status.subclusters.map((s) => {
    const vats = Object.entries(s.vats).map(([name, id]) => `${name}=${id}`).join(', ');
    // A system subcluster is the kernel's own: no reload from here.
    const reload = s.systemName || !s.config
      ? []
      : [actionButton('Reload', `Reload subcluster ${s.id}`, () => reloadSubcluster(s), true)];
    return el('tr', { 'data-subcluster': s.id },
      el('td', {}, el('code', {}, s.id), s.systemName ? ` (system: ${s.systemName})` : ''),
      el('td', {}, s.config?.bootstrap ?? ''),
      el('td', {}, vats),
      el('td', {},
        ...reload,
        actionButton('Terminate', `Terminate subcluster ${s.id}`, () => call('terminateSubcluster', { id: s.id }), true)));
  });
  setRows($('subcluster-rows'), key, rows, 'No subclusters.');
}

// ---- Launch -----------------------------------------------------------------------------

/** A config path's segments as the kernel writes them: `vats.alice.globals[1]`. */
function pathOf(parent, key) {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** The config's fields as a nested list, each item marked with its path. */
function fieldTree(value, parent) {
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.map(([key, v]) => {
    const path = pathOf(parent, key);
    const name = typeof key === 'number' ? `[${key}]` : key;
    const item = el('li', { 'data-path': path }, el('code', { class: 'key' }, name));
    if (v !== null && typeof v === 'object') {
      const children = fieldTree(v, path);
      if (children.length) item.append(el('ul', {}, ...children));
      else item.append(': ', el('code', {}, Array.isArray(v) ? '[]' : '{}'));
    } else {
      item.append(': ', el('code', { class: 'value' }, JSON.stringify(v)));
    }
    return item;
  });
}

/** Shows the textarea's fields; the parsed config, or undefined if it is not JSON. */
function renderLaunchFields() {
  const list = $('launch-fields');
  let config;
  try {
    config = JSON.parse($('launch-config').value);
  } catch {
    list.replaceChildren(el('li', { class: 'hint' }, 'Not JSON yet.'));
    return undefined;
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    list.replaceChildren(el('li', { class: 'hint' }, 'Not a JSON object.'));
  } else {
    const items = fieldTree(config, '');
    list.replaceChildren(...(items.length ? items : [el('li', { class: 'hint' }, 'No fields.')]));
  }
  return config;
}

/** Removes the errors shown at fields and under the textarea. */
function clearLaunchErrors() {
  for (const old of document.querySelectorAll('#launch-fields .field-error')) old.remove();
  for (const old of document.querySelectorAll('#launch-fields [aria-invalid]')) old.removeAttribute('aria-invalid');
  $('launch-error').hidden = true;
  $('launch-error').textContent = '';
  $('launch-config').removeAttribute('aria-invalid');
}

/** The line of the textarea where `path`'s last key is, found key by key; or null. */
function lineOf(text, path) {
  let at = 0;
  for (const part of path.split(/\.|(?=\[)/)) {
    if (part.startsWith('[')) continue;
    const found = text.indexOf(JSON.stringify(part), at);
    if (found < 0) return null;
    at = found;
  }
  return text.slice(0, at).split('\n').length;
}

/**
 * Shows a refused config's error: at the field the message names (`invalid cluster config at
 * vats.alice.sourceSpec: …`), or its nearest shown parent; else under the textarea.
 */
function showLaunchError(message) {
  const named = /invalid cluster config at (\S+?): (.*)$/s.exec(message);
  $('launch-config').setAttribute('aria-invalid', 'true');
  if (named && named[1] !== '(root)') {
    const [, path, said] = named;
    // Its line and column are in the JSON the daemon was sent, not in this text: ours instead.
    const detail = said.replace(/ at line \d+ column \d+$/, '');
    const parent = (p) => p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    let item = null;
    for (let p = path; p && !item; p = parent(p) === p ? '' : parent(p)) {
      item = document.querySelector(`#launch-fields li[data-path="${CSS.escape(p)}"]`);
    }
    if (item) {
      const line = lineOf($('launch-config').value, path);
      const where = line ? ` (line ${line})` : '';
      item.setAttribute('aria-invalid', 'true');
      const error = el('div', { class: 'field-error', id: 'launch-field-error', role: 'alert' },
        el('strong', {}, `${path}${where}: `), detail);
      // Right after the field's name and value, before its children.
      const sub = item.querySelector(':scope > ul');
      if (sub) item.insertBefore(error, sub); else item.append(error);
      error.scrollIntoView({ block: 'nearest' });
      $('launch-error').textContent = `The daemon refused the config at ${path}${where}: see the field.`;
      $('launch-error').hidden = false;
      return;
    }
  }
  $('launch-error').textContent = message;
  $('launch-error').hidden = false;
}

/** A launch's bootstrap result for people: CapData decoded, anything else as JSON. */
function displayResult(value) {
  if (value && typeof value === 'object' && typeof value.body === 'string') return displayCapData(value);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function setUpLaunch() {
  const textarea = $('launch-config');
  textarea.addEventListener('input', () => { clearLaunchErrors(); renderLaunchFields(); });
  $('launch-file').addEventListener('change', () => {
    const file = $('launch-file').files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.addEventListener('load', () => {
      textarea.value = String(reader.result);
      clearLaunchErrors();
      renderLaunchFields();
    });
    reader.addEventListener('error', () => {
      clearLaunchErrors();
      showLaunchError(`Cannot read ${file.name}: ${reader.error?.message ?? 'unknown error'}`);
    });
    reader.readAsText(file);
  });
  $('launch-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearLaunchErrors();
    const out = $('launch-result');
    out.className = 'outcome';
    out.textContent = '';
    let config;
    try {
      config = JSON.parse(textarea.value);
    } catch (e) {
      renderLaunchFields();
      showLaunchError(`The config is not JSON: ${e.message}`);
      textarea.focus();
      return;
    }
    renderLaunchFields();
    const button = $('launch-button');
    button.disabled = true;
    out.textContent = 'Launching…';
    try {
      const r = await call('launchSubcluster', { config });
      out.replaceChildren(
        el('strong', {}, 'Launched.'),
        el('dl', { class: 'launched' },
          el('dt', {}, 'Subcluster'), el('dd', {}, el('code', { id: 'launch-subcluster' }, r.subclusterId)),
          el('dt', {}, 'Root kref'), el('dd', {}, el('code', { id: 'launch-root' }, r.rootKref)),
          el('dt', {}, 'Bootstrap result'), el('dd', { class: 'value', id: 'launch-bootstrap' }, displayResult(r.bootstrapResult))),
        el('details', {}, el('summary', {}, 'Answer'), el('code', { class: 'value' }, JSON.stringify(r))));
    } catch (e) {
      if (e.code === -32602) {
        out.textContent = '';
        showLaunchError(e.rpcMessage);
      } else {
        out.className = 'outcome failed';
        out.textContent = `Launch failed: ${e.message}`;
      }
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  renderLaunchFields();
}

// ---- Pages ------------------------------------------------------------------------------

const PAGES = ['overview', 'messages', 'objects', 'graph', 'database', 'trace'];
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
  if (currentPage === 'graph') loadGraph();
  if (currentPage === 'trace') startTrace();
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

/** `gc_actions.kind`, as the kernel numbers them (in delivery priority order). */
const GC_KINDS = { 0: 'dropExport', 1: 'retireExport', 2: 'retireImport' };

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
  // Its items are JSON (`{"type": "send", "target": "ko3", "message": {…}}`, `{"type":
  // "notify", "endpointId": "v1", "kpid": "kp4"}`): the filter keeps sends to an object the
  // endpoint owns or a promise it decides, and notifies to it.
  'run-queue': {
    body: 'run-queue-rows',
    from: (ep) => `FROM run_queue${ep ? ` WHERE json_extract(item, '$.endpointId') = ${sqlText(ep)}
      OR json_extract(item, '$.target') IN (SELECT 'ko' || id FROM objects WHERE owner = ${sqlText(ep)})
      OR json_extract(item, '$.target') IN (SELECT 'kp' || id FROM promises WHERE decider = ${sqlText(ep)})` : ''}`,
    select: "SELECT seq, json_extract(item, '$.type') AS type, coalesce(json_extract(item, '$.target'), json_extract(item, '$.kpid')) AS target, json_extract(item, '$.endpointId') AS endpoint, item",
    order: 'ORDER BY seq',
    offset: 0,
    row: (r) => el('tr', { 'data-seq': r.seq },
      el('td', {}, r.seq), el('td', {}, r.type ?? '?'), el('td', {}, el('code', {}, r.target ?? '—')),
      el('td', {}, r.endpoint ?? '—'), el('td', { class: 'cell' }, el('code', {}, r.item))),
  },
  'gc-actions': {
    body: 'gc-action-rows',
    from: (ep) => `FROM gc_actions${ep ? ` WHERE endpoint = ${sqlText(ep)}` : ''}`,
    select: 'SELECT endpoint, kind, kref',
    order: 'ORDER BY endpoint, kind, kref',
    offset: 0,
    row: (r) => el('tr', { 'data-gc': `${r.endpoint} ${r.kind} ${r.kref}` },
      el('td', {}, r.endpoint), el('td', {}, GC_KINDS[r.kind] ?? `kind ${r.kind}`), el('td', {}, el('code', {}, r.kref))),
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

/** Reads the tables' current pages (and their totals) and renders them. */
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

// ---- Graph ------------------------------------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element; children are elements or strings. */
function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** The last status the refresh read: the graph's vats, names and services come from it. */
let lastStatus = null;
let loadingGraph = false;
let graphStale = false;
let selectedNode = null;
/** The graph last drawn: its nodes by id, for the details of a selected one. */
let graphNodes = new Map();

const GRAPH_EDGES_SQL = `SELECT c.endpoint AS importer, o.owner AS owner,
  CASE WHEN o.owner = 'kernel' THEN c.kref END AS kref, count(*) AS n, sum(o.revoked) AS revoked
  FROM clist c JOIN objects o ON c.kref = 'ko' || o.id
  WHERE o.owner IS NULL OR c.endpoint <> o.owner
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;
const GRAPH_EXPORTS_SQL = `SELECT owner, CASE WHEN owner = 'kernel' THEN 'ko' || id END AS kref,
  count(*) AS n, sum(revoked) AS revoked FROM objects GROUP BY 1, 2 ORDER BY 1, 2`;
const GRAPH_ENDPOINTS_SQL = 'SELECT DISTINCT endpoint FROM clist ORDER BY endpoint';

/** Sorts node ids: vats, remotes, services, the kernel, the ownerless; numbers by value. */
function nodeOrder(a, b) {
  const rank = (n) => ({ vat: 0, remote: 1, service: 2, kernel: 3, other: 4, ownerless: 5 })[n.kind];
  const num = (n) => Number(/\d+$/.exec(n.id)?.[0] ?? 0);
  return rank(a) - rank(b) || num(a) - num(b) || a.id.localeCompare(b.id);
}

/** The graph's model from getStatus and the three queries. */
function graphModel(status, edgeRows, exportRows, endpointRows) {
  const names = {};
  for (const s of status.subclusters) for (const [name, id] of Object.entries(s.vats)) names[id] = name;
  const services = {};
  for (const s of status.services ?? []) services[s.kref] = s.name;
  const nodes = new Map();
  const node = (id) => {
    if (!nodes.has(id)) {
      let kind = 'other';
      let label = id;
      if (/^v\d+$/.test(id)) { kind = 'vat'; label = names[id] ? `${id} (${names[id]})` : id; }
      else if (/^r\d+$/.test(id)) { kind = 'remote'; label = `${id} (remote)`; }
      else if (id.startsWith('service:')) { kind = 'service'; label = `${id.slice(8)} (service)`; }
      else if (id === 'kernel') { kind = 'kernel'; label = 'kernel'; }
      else if (id === '(ownerless)') { kind = 'ownerless'; label = 'ownerless objects'; }
      nodes.set(id, { id, kind, label, name: names[id] ?? '', exports: 0, revoked: 0, imports: 0 });
    }
    return nodes.get(id);
  };
  /** The node owning an object: its service, the kernel, a vat or remote, or none. */
  const ownerNode = (owner, kref) => {
    if (owner === null || owner === undefined) return '(ownerless)';
    if (owner === 'kernel' && services[kref]) return `service:${services[kref]}`;
    return owner;
  };
  for (const v of status.vats) node(v.id);
  for (const s of status.services ?? []) node(`service:${s.name}`);
  for (const r of endpointRows) node(r.endpoint);
  for (const r of exportRows) {
    const n = node(ownerNode(r.owner, r.kref));
    n.exports += Number(r.n);
    n.revoked += Number(r.revoked ?? 0);
  }
  const edges = new Map();
  for (const r of edgeRows) {
    const from = node(r.importer).id;
    const to = node(ownerNode(r.owner, r.kref)).id;
    const key = `${from}→${to}`;
    const e = edges.get(key) ?? { from, to, n: 0, revoked: 0 };
    e.n += Number(r.n);
    e.revoked += Number(r.revoked ?? 0);
    edges.set(key, e);
    nodes.get(from).imports += Number(r.n);
  }
  return { nodes: [...nodes.values()].sort(nodeOrder), edges: [...edges.values()] };
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function edgeTitle(e) {
  const revoked = e.revoked ? `, ${e.revoked} revoked` : '';
  return `${graphNodes.get(e.from).label} imports ${plural(e.n, 'object')} of ${graphNodes.get(e.to).label}${revoked}`;
}

function nodeTitle(n) {
  const revoked = n.revoked ? ` (${n.revoked} revoked)` : '';
  return `${n.label}: exports ${plural(n.exports, 'object')}${revoked}, imports ${plural(n.imports, 'object')}`;
}

/** Draws the model as SVG: nodes on a circle in a fixed order, edges as arrows bent to one side. */
function drawGraph(model) {
  const size = 640;
  const centre = size / 2;
  const r = 24;
  const ring = model.nodes.length > 1 ? centre - 80 : 0;
  const at = new Map();
  model.nodes.forEach((n, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / model.nodes.length;
    at.set(n.id, { x: centre + ring * Math.cos(angle), y: centre + ring * Math.sin(angle), angle });
  });
  const svg = svgEl('svg', { viewBox: `0 0 ${size} ${size}`, id: 'graph-svg', role: 'group', 'aria-labelledby': 'graph-title', 'aria-describedby': 'graph-help' },
    svgEl('defs', {},
      svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        svgEl('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  const round = (v) => Math.round(v * 10) / 10;
  for (const e of model.edges) {
    const a = at.get(e.from);
    const b = at.get(e.to);
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    // Bent to the right of its direction: a reference each way between two nodes is two arcs.
    const c = { x: (a.x + b.x) / 2 - (dy / len) * 40, y: (a.y + b.y) / 2 + (dx / len) * 40 };
    const toward = (p, q, d) => {
      const l = Math.hypot(q.x - p.x, q.y - p.y) || 1;
      return { x: p.x + ((q.x - p.x) / l) * d, y: p.y + ((q.y - p.y) / l) * d };
    };
    const s = toward(a, c, r + 2);
    const t = toward(b, c, r + 3);
    const mid = { x: 0.25 * s.x + 0.5 * c.x + 0.25 * t.x, y: 0.25 * s.y + 0.5 * c.y + 0.25 * t.y };
    svg.append(svgEl('g', { class: e.revoked ? 'edge revoked' : 'edge', 'data-from': e.from, 'data-to': e.to },
      svgEl('title', {}, edgeTitle(e)),
      svgEl('path', { d: `M${round(s.x)},${round(s.y)} Q${round(c.x)},${round(c.y)} ${round(t.x)},${round(t.y)}`,
        'stroke-width': round(1.5 + Math.log2(e.n)), 'marker-end': 'url(#arrow)' }),
      svgEl('text', { x: round(mid.x), y: round(mid.y), 'text-anchor': 'middle', 'dominant-baseline': 'middle', class: 'count' }, e.n)));
  }
  for (const n of model.nodes) {
    const p = at.get(n.id);
    const short = n.kind === 'service' ? n.id.slice(8) : n.kind === 'ownerless' ? '∅' : n.id;
    const outside = { x: p.x + Math.cos(p.angle) * (r + 16), y: p.y + Math.sin(p.angle) * (r + 16) };
    const anchor = Math.abs(Math.cos(p.angle)) < 0.3 ? 'middle' : Math.cos(p.angle) > 0 ? 'start' : 'end';
    const classes = ['node', `kind-${n.kind}`];
    if (n.revoked) classes.push('has-revoked');
    if (n.id === selectedNode) classes.push('selected');
    const g = svgEl('g', { class: classes.join(' '), 'data-node': n.id, tabindex: 0, role: 'button',
      'aria-label': nodeTitle(n), 'aria-pressed': n.id === selectedNode ? 'true' : 'false' },
      svgEl('title', {}, nodeTitle(n)),
      svgEl('circle', { cx: round(p.x), cy: round(p.y), r }),
      svgEl('text', { x: round(p.x), y: round(p.y), 'text-anchor': 'middle', 'dominant-baseline': 'central', class: 'id' }, short.length > 8 ? `${short.slice(0, 7)}…` : short));
    if (n.name) g.append(svgEl('text', { x: round(outside.x), y: round(outside.y), 'text-anchor': anchor, 'dominant-baseline': 'central', class: 'name' }, n.name));
    const choose = () => selectNode(n.id);
    g.addEventListener('click', choose);
    g.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose();
      }
    });
    svg.append(g);
  }
  return svg;
}

/** Marks the selected node in the drawing (without redrawing it) and shows its details. */
function selectNode(id) {
  selectedNode = id;
  for (const g of document.querySelectorAll('#graph-svg g.node')) {
    const on = g.dataset.node === id;
    g.classList.toggle('selected', on);
    g.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  loadNodeDetails();
}

/** The SQL condition for the objects a node exports. */
function exportCondition(n) {
  const services = (lastStatus?.services ?? []).map((s) => sqlText(s.kref)).join(', ') || "''";
  switch (n.kind) {
    case 'service': {
      const kref = (lastStatus?.services ?? []).find((s) => `service:${s.name}` === n.id)?.kref ?? '';
      return `'ko' || o.id = ${sqlText(kref)}`;
    }
    case 'kernel': return `o.owner = 'kernel' AND 'ko' || o.id NOT IN (${services})`;
    case 'ownerless': return 'o.owner IS NULL';
    default: return `o.owner = ${sqlText(n.id)}`;
  }
}

function detailsTable(caption, columns, rows, truncated) {
  return el('div', {},
    el('h4', {}, caption),
    truncated ? el('p', { class: 'notice' }, 'Truncated at the daemon\'s row limit.') : '',
    rows.length
      ? el('table', {}, el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col' }, c)))),
        el('tbody', {}, ...rows))
      : el('p', { class: 'hint' }, 'None.'));
}

async function loadNodeDetails() {
  const box = $('graph-details');
  const n = graphNodes.get(selectedNode);
  if (!n) {
    box.replaceChildren(el('p', { class: 'hint' }, 'Select a node.'));
    return;
  }
  const id = n.id;
  try {
    const exportsSql = `SELECT 'ko' || o.id AS kref, o.revoked AS revoked,
      (SELECT group_concat(c.endpoint, ', ') FROM clist c WHERE c.kref = 'ko' || o.id AND c.endpoint IS NOT o.owner) AS importers
      FROM objects o WHERE ${exportCondition(n)} ORDER BY o.id LIMIT 500`;
    const importsSql = `SELECT c.kref AS kref, c.eref AS eref, o.owner AS owner, o.revoked AS revoked
      FROM clist c JOIN objects o ON c.kref = 'ko' || o.id
      WHERE c.endpoint = ${sqlText(id)} AND (o.owner IS NULL OR o.owner <> ${sqlText(id)}) ORDER BY o.id LIMIT 500`;
    const endpoint = n.kind === 'vat' || n.kind === 'remote' || n.kind === 'other';
    const [exp, imp] = await Promise.all([
      call('executeDBQuery', { sql: exportsSql }).then(queryRows),
      endpoint ? call('executeDBQuery', { sql: importsSql }).then(queryRows) : Promise.resolve({ rows: [] }),
    ]);
    if (selectedNode !== id) return;
    const services = {};
    for (const s of lastStatus?.services ?? []) services[s.kref] = s.name;
    const ownerLabel = (owner, kref) => {
      if (owner === null) return 'none (ownerless)';
      if (owner === 'kernel' && services[kref]) return `${services[kref]} (service)`;
      return graphNodes.get(owner)?.label ?? owner;
    };
    const revoked = (v) => (v === '1' ? 'yes' : 'no');
    box.replaceChildren(
      el('h3', { id: 'graph-details-title' }, n.label),
      detailsTable(`Exports (${exp.rows.length})`, ['Kref', 'Imported by', 'Revoked'],
        exp.rows.map((r) => el('tr', { 'data-export': r.kref, class: r.revoked === '1' ? 'revoked' : '' },
          el('td', {}, el('code', {}, r.kref)), el('td', {}, r.importers ?? '—'), el('td', {}, revoked(r.revoked)))),
        exp.truncated),
      endpoint
        ? detailsTable(`Imports (${imp.rows.length})`, ['Kref', 'Eref', 'Owner', 'Revoked'],
          imp.rows.map((r) => el('tr', { 'data-import': r.kref, class: r.revoked === '1' ? 'revoked' : '' },
            el('td', {}, el('code', {}, r.kref)), el('td', {}, el('code', {}, r.eref)),
            el('td', {}, ownerLabel(r.owner, r.kref)), el('td', {}, revoked(r.revoked)))),
          imp.truncated)
        : el('p', { class: 'hint' }, 'Not an endpoint: it has no c-list of its own.'));
  } catch (e) {
    if (selectedNode !== id) return;
    box.replaceChildren(el('p', { class: 'failed' }, `Cannot read ${n.label}: ${e.message}`));
  }
}

/** Reads the graph and redraws it if it changed (the refresh calls it while the page shows). */
async function loadGraph() {
  if (!lastStatus) return;
  if (loadingGraph) {
    graphStale = true;
    return;
  }
  loadingGraph = true;
  graphStale = false;
  const box = $('graph-error');
  try {
    const q = (sql) => call('executeDBQuery', { sql }).then(queryRows);
    const [edges, exported, endpoints] = await Promise.all([q(GRAPH_EDGES_SQL), q(GRAPH_EXPORTS_SQL), q(GRAPH_ENDPOINTS_SQL)]);
    const model = graphModel(lastStatus, edges.rows, exported.rows, endpoints.rows);
    const truncated = edges.truncated || exported.truncated || endpoints.truncated;
    const key = JSON.stringify([model, truncated]);
    box.hidden = true;
    const drawing = $('graph-box');
    if (drawing.dataset.key === key) return;
    drawing.dataset.key = key;
    graphNodes = new Map(model.nodes.map((n) => [n.id, n]));
    drawing.replaceChildren(drawGraph(model));
    const ownerless = graphNodes.get('(ownerless)')?.exports ?? 0;
    const revoked = model.nodes.reduce((sum, n) => sum + n.revoked, 0);
    $('graph-summary').replaceChildren(
      `${plural(model.nodes.length, 'node')}, ${plural(model.edges.length, 'edge')}; ${plural(revoked, 'revoked object')}, ${plural(ownerless, 'ownerless object')}.`,
      truncated ? el('span', { class: 'notice' }, ' Truncated at the daemon\'s row limit: the graph is incomplete.') : '');
    setRows($('graph-edge-rows'), key, model.edges.map((e) => el('tr', { 'data-edge': `${e.from} ${e.to}`, class: e.revoked ? 'revoked' : '' },
      el('td', {}, graphNodes.get(e.from).label), el('td', {}, graphNodes.get(e.to).label),
      el('td', {}, e.n), el('td', {}, e.revoked))), 'No references between endpoints.');
    setRows($('graph-node-rows'), key, model.nodes.map((n) => el('tr', { 'data-node': n.id },
      el('td', {}, n.label), el('td', {}, n.kind), el('td', {}, n.exports), el('td', {}, n.revoked), el('td', {}, n.imports))), 'No nodes.');
    if (selectedNode) loadNodeDetails();
  } catch (e) {
    box.textContent = `Cannot read the graph: ${e.message}`;
    box.hidden = false;
  } finally {
    loadingGraph = false;
    if (graphStale) loadGraph();
  }
}

// ---- Trace ------------------------------------------------------------------------------
// GET /api/trace streams one JSON crank per `crank` event (Server-Sent Events, read-only,
// authorized by the same cookie). The page keeps the last TRACE_ROWS; pausing stops the
// table from changing (cranks still arrive, and show on resume).

const TRACE_ROWS = 500;
const traces = [];
let traceSource = null;
let tracePaused = false;
let traceWaiting = 0;
let traceMissed = 0;
let traceConnected = false;

/** What a crank was given, as text. */
function traceWork(w) {
  switch (w.kind) {
    case 'send': return `send ${w.target}.${w.method ?? '?'}()${w.result ? ` → ${w.result}` : ''}`;
    case 'notify': return `notify ${[w.kpid, ...(w.batched ?? [])].join(' ')}`;
    case 'gc': return `${w.action} ${w.krefs.join(' ')}`;
    case 'reap': return 'bringOutYourDead';
    case 'cleanup': return 'cleanup step';
    case 'serviceReply': return `service reply ${w.kpid}`;
    case 'asyncSyscalls': return `${w.count} syscall(s) outside a delivery`;
    default: return JSON.stringify(w);
  }
}

function traceOutcome(o) {
  switch (o.kind) {
    case 'commit': return 'commit';
    case 'commitThenTerminate': return `commit, then terminate ${o.endpoint}: ${o.reason}`;
    case 'abort': return `abort, terminate ${o.endpoint}: ${o.reason}`;
    case 'error': return `error: ${o.message}`;
    default: return JSON.stringify(o);
  }
}

function traceRow(t) {
  const syscalls = t.syscalls.length
    ? el('ul', { class: 'syscalls' }, ...t.syscalls.map((s) => el('li', { class: s.error ? 'failed' : '' },
      el('code', {}, s.name), ' ', s.summary, s.error ? ` (refused: ${s.error})` : '')))
    : '—';
  if (t.syscallsOmitted) syscalls.append(el('li', {}, `and ${t.syscallsOmitted} more`));
  const ok = t.outcome.kind === 'commit';
  return el('tr', { 'data-crank': String(t.crank), 'data-endpoint': t.endpoint ?? '', 'data-outcome': t.outcome.kind },
    el('td', {}, String(t.crank)), el('td', {}, el('code', {}, traceWork(t.work))), el('td', {}, t.endpoint ?? '—'),
    el('td', {}, syscalls), el('td', { class: ok ? '' : 'failed' }, traceOutcome(t.outcome)),
    el('td', { class: 'number' }, String(t.durationUs)));
}

/** The endpoint filter's choices: every vat the status lists and every endpoint seen. */
function traceEndpoints() {
  const select = $('trace-endpoint');
  const known = new Set([...select.options].map((o) => o.value));
  const names = new Map();
  for (const sc of lastStatus?.subclusters ?? []) for (const [name, id] of Object.entries(sc.vats)) names.set(id, name);
  for (const v of lastStatus?.vats ?? []) if (!names.has(v.id)) names.set(v.id, '');
  const wanted = [...names.keys(), ...traces.map((t) => t.endpoint).filter(Boolean)];
  for (const id of wanted) {
    if (known.has(id)) continue;
    known.add(id);
    select.append(el('option', { value: id }, names.get(id) ? `${id} (${names.get(id)})` : id));
  }
}

function renderTrace() {
  const want = $('trace-endpoint').value;
  const shown = traces.filter((t) => !want || t.endpoint === want);
  const rows = shown.slice().reverse().map(traceRow);
  const body = $('trace-rows');
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '6' },
    want ? `No cranks for ${want} yet.` : 'No cranks yet.'))]));
  traceEndpoints();
  traceStatus(shown.length);
}

function traceStatus(shown) {
  const parts = [];
  if (!traceConnected) parts.push('Not connected (reconnecting).');
  else if (tracePaused) parts.push(`Paused: ${traceWaiting} new crank(s) since.`);
  else parts.push('Live.');
  parts.push(`${shown ?? $('trace-rows').querySelectorAll('tr[data-crank]').length} crank(s) shown.`);
  if (traceMissed) parts.push(`${traceMissed} crank(s) missed (the page fell behind).`);
  $('trace-status').textContent = parts.join(' ');
}

function startTrace() {
  if (traceSource) return;
  traceSource = new EventSource('/api/trace');
  traceSource.addEventListener('hello', () => { traceConnected = true; traceStatus(); });
  traceSource.addEventListener('crank', (event) => {
    traces.push(JSON.parse(event.data));
    if (traces.length > TRACE_ROWS) traces.splice(0, traces.length - TRACE_ROWS);
    if (tracePaused) {
      traceWaiting += 1;
      traceStatus();
    } else {
      renderTrace();
    }
  });
  traceSource.addEventListener('lagged', (event) => {
    traceMissed += Number(event.data) || 0;
    traceStatus();
  });
  // The browser reconnects by itself (after a daemon's clearState, or a dropped connection).
  traceSource.addEventListener('error', () => { traceConnected = false; traceStatus(); });
}

function setUpTrace() {
  $('trace-pause').addEventListener('click', () => {
    tracePaused = !tracePaused;
    $('trace-pause').setAttribute('aria-pressed', String(tracePaused));
    $('trace-pause').textContent = tracePaused ? 'Resume' : 'Pause';
    traceWaiting = 0;
    if (!tracePaused) renderTrace();
    else traceStatus();
  });
  $('trace-clear').addEventListener('click', () => {
    traces.length = 0;
    traceWaiting = 0;
    traceMissed = 0;
    renderTrace();
  });
  $('trace-endpoint').addEventListener('change', renderTrace);
}

let refreshing = false;

async function refresh() {
  if (refreshing || armedButtons > 0) return;
  refreshing = true;
  try {
    const status = await call('getStatus');
    lastStatus = status;
    renderOverview(status);
    renderVats(status);
    renderSubclusters(status);
    renderRootKrefs(status);
    if (currentPage === 'objects') loadObjects();
    if (currentPage === 'graph') loadGraph();
    if (traceSource) traceEndpoints();
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
setUpLaunch();
setUpTrace();
window.addEventListener('hashchange', () => showPage(true));
showPage(false);
refresh();
setInterval(refresh, REFRESH_MS);
