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

/**
 * A button that runs `action`; destructive ones ask for a second click within a few seconds
 * (rather than a modal dialog, which blocks the page and its refresh).
 */
function actionButton(label, ariaLabel, action, destructive = false) {
  const button = el('button', { type: 'button', 'aria-label': ariaLabel, class: destructive ? 'danger' : '' }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (destructive && !armed) {
      armed = true;
      button.textContent = `Confirm ${label.toLowerCase()}`;
      setTimeout(() => { armed = false; button.textContent = label; }, 4000);
      return;
    }
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

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const status = await call('getStatus');
    renderOverview(status);
    renderVats(status);
    renderSubclusters(status);
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    clearError();
  } catch (e) {
    $('kernel-state').textContent = 'not answering';
    showError(`Cannot refresh: ${e.message}`);
  } finally {
    refreshing = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
