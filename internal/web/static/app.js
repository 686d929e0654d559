// The dashboard: queues, tasks, workers and throughput, kept live by the
// event stream. Calls go to /rpc; events come over /ws.

import {call, taskEvents, Live, AuthError, RPCError, getToken, setToken} from './api.js';
import {h, fill, badge, ago, clock, duration, json} from './dom.js';
import {Throughput} from './chart.js';

const $ = (id) => document.getElementById(id);
const STATUSES = ['pending', 'in_progress', 'completed', 'failed'];
const TASK_EVENTS_KEPT = 5000;
const RESULT_SHOWN = 64 * 1024;

const state = {
  offset: 0,
  tasks: [],
  total: 0,
  shownIds: new Set(),
  workers: [],
  selected: null,     // id of the task in the drawer
  logged: null,       // {id, events}: the selected task's events from the server's log, events null until fetched
  events: [],         // recent events, oldest first
  listAt: 0,          // when task.list last ran (rate limits apply to it)
  workersRefused: false, // the token's role may not list workers (an admin's)
  refusal: '',        // why the server refused this token the live events
};

const chart = new Throughput($('chart'));

// ---- refreshes, throttled: events may come by the thousand ----

// throttle returns a function that runs fn at most once per gap ms, and
// always once more after the last request.
function throttle(fn, gap) {
  let timer = null, last = 0, again = false;
  const run = async () => {
    timer = null;
    last = Date.now();
    again = false;
    try {
      await fn();
    } catch (e) {
      report(e);
    }
    if (again) request();
  };
  const request = (retryMs) => {
    if (timer) { again = true; return; }
    const wait = retryMs ?? Math.max(0, last + gap - Date.now());
    timer = setTimeout(run, wait);
  };
  return request;
}

const refreshTasks = throttle(loadTasks, 1500);
const refreshMetrics = throttle(loadMetrics, 1000);
const refreshWorkers = throttle(loadWorkers, 1000);
const refreshDetail = throttle(loadDetail, 500);

function refreshAll() {
  refreshTasks();
  refreshMetrics();
  refreshWorkers();
  if (state.selected) refreshDetail();
}

// report shows an error; a 401 asks for a token.
function report(e) {
  if (e instanceof AuthError) {
    askToken();
    return;
  }
  if (e instanceof RPCError && e.code === -32000 && e.data) {
    notice('Rate limited on ' + e.data.method + '; retrying in ' + duration(e.data.retryAfterMs));
    return;
  }
  notice(e.message || String(e));
}

let noticeTimer = null;
function notice(text) {
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// ---- metrics: cards and queues ----

async function loadMetrics() {
  const m = await call('system.metrics');
  const by = m.byStatus || {};
  const online = (m.workers && m.workers.online) || 0;
  fill($('cards'),
    ...STATUSES.map((st) => h('div', {class: 'card ' + st},
      h('div', {class: 'n'}, by[st] || 0),
      h('div', {class: 'label'}, st.replace('_', ' ')))),
    h('div', {class: 'card online'}, h('div', {class: 'n'}, online), h('div', {class: 'label'}, 'workers online')),
    h('div', {class: 'card'}, h('div', {class: 'n'}, m.completionRatePerSec.toFixed(1)), h('div', {class: 'label'}, 'completed / s')));
  $('rates').textContent = 'claims ' + m.claimRatePerSec.toFixed(2) + '/s · completions ' +
    m.completionRatePerSec.toFixed(2) + '/s';

  const head = h('thead', null, h('tr', null,
    h('th', null, 'Queue'), h('th', {class: 'num'}, 'Pending'), h('th', {class: 'num'}, 'Running'),
    h('th', {class: 'num wide'}, 'Completed'), h('th', {class: 'num wide'}, 'Failed'), h('th', {class: 'num'}, 'Oldest pending')));
  const queues = m.queues || [];
  const rows = queues.map((q) => h('tr', null,
    h('td', null, h('button', {class: 'link', type: 'button', onclick: () => filterQueue(q.queue)}, q.queue)),
    h('td', {class: 'num'}, q.byStatus.pending || 0),
    h('td', {class: 'num'}, q.byStatus.in_progress || 0),
    h('td', {class: 'num wide'}, q.byStatus.completed || 0),
    h('td', {class: 'num wide'}, q.byStatus.failed || 0),
    h('td', {class: 'num'}, q.oldestPendingAgeMs ? duration(q.oldestPendingAgeMs) : '—')));
  if (!rows.length) rows.push(h('tr', null, h('td', {class: 'empty', colspan: 6}, 'No tasks yet')));
  fill($('queues'), head, h('tbody', null, rows));
  fill($('queue-names'), queues.map((q) => h('option', {value: q.queue})));
}

function filterQueue(queue) {
  $('filters').elements.queue.value = queue;
  state.offset = 0;
  refreshTasks();
}

// ---- workers ----

async function loadWorkers() {
  if (state.workersRefused) return;
  let workers;
  try {
    ({workers} = await call('system.workers'));
  } catch (e) {
    if (e instanceof RPCError && e.code === -32002) {
      // Only an admin may list workers: asking again will not change that.
      state.workersRefused = true;
      fill($('workers'), h('tbody', null, h('tr', null, h('td', {class: 'empty'}, 'The worker list needs an admin token.'))));
      return;
    }
    throw e;
  }
  state.workers = workers;
  const head = h('thead', null, h('tr', null,
    h('th', null, 'Worker'), h('th', null, 'Status'), h('th', null, 'Last seen'),
    h('th', {class: 'wide'}, 'Queues'), h('th', null, 'Current tasks')));
  workers.sort((a, b) => (a.status === b.status ? a.id.localeCompare(b.id) : a.status === 'online' ? -1 : 1));
  const rows = workers.map((w) => h('tr', null,
    h('td', {class: 'mono', title: w.id}, w.id),
    h('td', null, badge(w.status)),
    h('td', {title: w.lastSeen}, ago(w.lastSeen)),
    h('td', {class: 'wide'}, w.queues.length ? w.queues.join(', ') : 'default'),
    h('td', null, w.tasks.length ? w.tasks.map((id, i) => [i ? ', ' : null,
      h('button', {class: 'link mono', type: 'button', onclick: () => openTask(id)}, shortId(id))]) : h('span', {class: 'muted'}, 'idle'))));
  if (!rows.length) rows.push(h('tr', null, h('td', {class: 'empty', colspan: 5}, 'No workers registered')));
  fill($('workers'), head, h('tbody', null, rows));
  fill($('worker-names'), workers.map((w) => h('option', {value: w.id})));
}

// ---- tasks ----

function listParams() {
  const f = $('filters').elements;
  const p = {limit: Number(f.limit.value), offset: state.offset, orderBy: f.orderBy.value, order: f.order.value};
  if (f.status.value) p.status = f.status.value;
  if (f.queue.value.trim()) p.queue = f.queue.value.trim();
  if (f.assignedTo.value.trim()) p.assignedTo = f.assignedTo.value.trim();
  if (f.priority.value !== '') p.priority = Number(f.priority.value);
  return p;
}

async function loadTasks() {
  let p = listParams();
  let res = await listTasks(p);
  if (!res.tasks.length && p.offset > 0) {
    // The list shrank below this page: show its last page instead.
    state.offset = res.totalCount ? Math.floor((res.totalCount - 1) / p.limit) * p.limit : 0;
    p = listParams();
    res = await listTasks(p);
  }
  const previous = state.shownIds;
  state.tasks = res.tasks;
  state.total = res.totalCount;
  state.shownIds = new Set(res.tasks.map((t) => t.id));
  renderTasks(previous, p, res.hasMore);
}

// listTasks calls task.list; when rate limited, it asks for a refresh
// once the limit allows it.
async function listTasks(p) {
  try {
    return await call('task.list', p);
  } catch (e) {
    if (e instanceof RPCError && e.code === -32000 && e.data) {
      refreshTasks(e.data.retryAfterMs);
    }
    throw e;
  }
}

function renderTasks(previous, p, hasMore) {
  const head = h('thead', null, h('tr', null,
    h('th', null, 'Status'), h('th', null, 'Task'), h('th', {class: 'wide'}, 'Queue'),
    h('th', {class: 'num wide'}, 'Priority'), h('th', null, 'Assigned to'),
    h('th', {class: 'num wide'}, 'Attempt'), h('th', {class: 'wide'}, 'Created'), h('th', {class: 'wide'}, 'Updated')));
  const rows = state.tasks.map((t) => h('tr', {
    class: previous.size && !previous.has(t.id) ? 'fresh' : null,
    'data-id': t.id, 'data-status': t.status, tabindex: 0,
    onclick: () => openTask(t.id),
    onkeydown: (e) => { if (e.key === 'Enter') openTask(t.id); },
  },
  h('td', null, badge(t.status)),
  h('td', {class: 'text-cell', title: t.text}, t.text),
  h('td', {class: 'wide'}, t.queue),
  h('td', {class: 'num wide'}, t.priority),
  h('td', {class: 'mono', title: t.assignedTo}, t.assignedTo || '—'),
  h('td', {class: 'num wide'}, t.attempt + '/' + t.maxAttempts),
  h('td', {class: 'wide', title: t.createdAt}, ago(t.createdAt)),
  h('td', {class: 'wide', title: t.updatedAt}, ago(t.updatedAt))));
  if (!rows.length) rows.push(h('tr', null, h('td', {class: 'empty', colspan: 8}, 'No tasks match')));
  fill($('tasks'), head, h('tbody', null, rows));
  const first = state.total ? p.offset + 1 : 0;
  $('page-info').textContent = first + '–' + (p.offset + state.tasks.length) + ' of ' + state.total;
  $('prev').disabled = p.offset === 0;
  $('next').disabled = !hasMore;
}

// ---- task detail ----

function openTask(id) {
  state.selected = id;
  state.logged = {id, events: null};
  $('detail').hidden = false;
  fill($('detail-body'), h('p', {class: 'muted'}, 'Loading…'));
  refreshDetail();
}

function closeTask() {
  state.selected = null;
  $('detail').hidden = true;
}

async function loadDetail() {
  const id = state.selected;
  if (!id) return;
  let t;
  try {
    [t] = await Promise.all([call('task.get', {id}), loadLogged(id)]);
  } catch (e) {
    if (e instanceof RPCError && e.code === -32602) {
      fill($('detail-body'), h('p', {class: 'muted'}, 'This task no longer exists.'));
      return;
    }
    throw e;
  }
  if (state.selected !== id) return;
  $('detail-title').textContent = t.text;
  const final = t.status === 'completed' || t.status === 'failed';
  const field = (k, v) => [h('dt', null, k), h('dd', null, v)];
  fill($('detail-body'),
    h('div', null, badge(t.status)),
    h('div', {class: 'actions'},
      h('button', {type: 'button', 'data-action': 'requeue', disabled: t.status === 'pending', onclick: () => act('Requeued', 'task.update', {id, updates: {status: 'pending'}})}, 'Requeue'),
      h('button', {type: 'button', 'data-action': 'assign', disabled: t.status !== 'pending', onclick: () => assign(id)}, 'Assign…'),
      h('button', {type: 'button', 'data-action': 'unassign', disabled: !t.assignedTo || final, onclick: () => act('Unassigned', 'task.unassign', {taskId: id})}, 'Unassign'),
      h('button', {type: 'button', 'data-action': 'delete', class: 'danger', onclick: () => remove(t)}, 'Delete…')),
    h('dl', {class: 'fields'},
      field('id', h('span', {class: 'mono'}, t.id)),
      field('queue', t.queue),
      field('priority', t.priority),
      field('assigned to', t.assignedTo || '—'),
      field('attempts', t.attempt + ' of ' + t.maxAttempts),
      field('run at', clock(t.runAt)),
      t.leaseExpiresAt ? field('lease expires', clock(t.leaseExpiresAt)) : null,
      field('created', clock(t.createdAt)),
      field('updated', clock(t.updatedAt)),
      field('completed', clock(t.completedAt)),
      t.durationMs != null ? field('duration', duration(t.durationMs)) : null),
    t.error ? [h('h3', null, 'Error'), h('div', {class: 'error-box'}, t.error)] : null,
    h('h3', null, 'Metadata'),
    t.metadata ? h('pre', {class: 'json'}, json(t.metadata)) : h('p', {class: 'muted'}, 'none'),
    final && t.status === 'completed' ? [h('h3', null, 'Result'), resultView(t)] : null,
    h('h3', null, 'History'),
    history(t));
}

// resultView shows a task's result, cut to its first RESULT_SHOWN
// characters (laying out megabytes of text stalls the page), with a
// button to download it whole.
function resultView(t) {
  const text = json(t.result);
  if (text.length <= RESULT_SHOWN) return h('pre', {class: 'json result'}, text);
  return [
    h('p', {class: 'muted small result-note'},
      'Showing the first ' + kib(RESULT_SHOWN) + ' KiB of ' + kib(text.length) + ' KiB. ',
      h('button', {type: 'button', class: 'link', 'data-action': 'download-result', onclick: () => downloadResult(t.id)}, 'Download the whole result')),
    h('pre', {class: 'json result'}, text.slice(0, RESULT_SHOWN) + '\n…'),
  ];
}

function kib(chars) {
  return Math.ceil(chars / 1024).toLocaleString();
}

// downloadResult saves task id's stored result, as the server keeps it.
async function downloadResult(id) {
  try {
    const token = getToken();
    const res = await fetch('/v1/tasks/' + encodeURIComponent(id) + '/result',
      {headers: token ? {Authorization: 'Bearer ' + token} : {}});
    if (res.status === 401) throw new AuthError('token required');
    if (!res.ok) throw new Error('Result not available: HTTP ' + res.status);
    const url = URL.createObjectURL(await res.blob());
    h('a', {href: url, download: id + '.json'}).click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    report(e);
  }
}

// loadLogged fetches, once per opening, the events of task id that the
// server's event log holds; when that fails, the history shows the live
// events only.
async function loadLogged(id) {
  const logged = state.logged;
  if (!logged || logged.id !== id || logged.events) return;
  let events = [];
  try {
    events = await taskEvents(id);
  } catch (e) {
    report(e);
  }
  if (state.logged === logged) logged.events = events;
}

// history lists the task's events, newest first: those of the server's log
// fetched when the detail opened, then the live ones that came since (each
// event once, by id). The task's own record stands in for its creation
// once the log no longer holds it.
function history(t) {
  const logged = (state.logged && state.logged.id === t.id && state.logged.events) || [];
  const ids = new Set(logged.map((e) => e.id));
  const live = state.events.filter((e) => taskIdOf(e) === t.id && !ids.has(e.id));
  const seen = logged.concat(live).reverse();
  const items = seen.map((e) => h('li', null,
    h('span', {class: 'muted'}, new Date(e.timestamp).toLocaleTimeString()),
    h('span', null, e.type),
    h('span', {class: 'by'}, describe(e))));
  if (!seen.some((e) => e.type === 'task.created')) {
    items.push(h('li', null, h('span', {class: 'muted'}, new Date(t.createdAt).toLocaleTimeString()),
      h('span', null, 'task.created'), h('span', {class: 'by muted'}, 'no longer in the event log')));
  }
  return h('ul', {class: 'history'}, items);
}

function taskIdOf(e) {
  if (!e.type.startsWith('task.')) return null;
  return e.payload.taskId || e.payload.id || null;
}

// describe says who did what in one event.
function describe(e) {
  const p = e.payload || {}, m = e.metadata || {};
  switch (e.type) {
    case 'task.created': return 'by ' + (m.createdBy || '?');
    case 'task.claimed': return 'by ' + p.workerId;
    case 'task.updated': return (m.changes || []).join(', ') + ' by ' + (m.updatedBy || '?');
    case 'task.completed': return p.status + ' in ' + duration(p.duration) + ' by ' + (m.completedBy || '?');
    case 'task.assigned': return 'to ' + p.workerId;
    case 'task.unassigned': return 'from ' + (p.previousAssignment || 'nobody');
    case 'task.requeued': return (p.reason || '') + (p.previousWorker ? ' (was ' + p.previousWorker + ')' : '');
    case 'task.deleted': return 'by ' + (m.deletedBy || '?');
    default: return '';
  }
}

async function act(done, method, params) {
  try {
    await call(method, params);
    notice(done);
  } catch (e) {
    report(e);
  }
  refreshAll();
}

function assign(id) {
  const dialog = $('assign-dialog');
  $('assign-input').value = '';
  dialog.returnValue = '';
  dialog.onclose = () => {
    const worker = $('assign-input').value.trim();
    if (dialog.returnValue === 'ok' && worker) act('Assigned to ' + worker, 'task.assign', {taskId: id, workerId: worker});
  };
  dialog.showModal();
}

function remove(t) {
  if (!confirm('Delete this task, its result and its history?\n\n' + t.text)) return;
  act('Deleted', 'task.delete', {id: t.id}).then(closeTask);
}

function shortId(id) {
  return id.length > 12 ? '…' + id.slice(-8) : id;
}

// ---- live events ----

function onEvent(e) {
  // Events the server's log no longer held were missed: reload it all.
  if (e.type === 'events.gap') {
    refreshAll();
    return;
  }
  state.events.push(e);
  if (state.events.length > TASK_EVENTS_KEPT) state.events.splice(0, state.events.length - TASK_EVENTS_KEPT);
  if (e.type === 'task.completed') chart.add(e.payload.id, e.payload.status, e.timestamp);
  refreshMetrics();
  if (e.type.startsWith('task.')) refreshTasks();
  if (e.type.startsWith('worker.') || ['task.claimed', 'task.completed', 'task.requeued', 'task.unassigned'].includes(e.type)) refreshWorkers();
  if (state.selected && taskIdOf(e) === state.selected) refreshDetail();
}

const live = new Live({
  onEvent,
  onState(connected, resumed) {
    const el = $('live');
    el.textContent = connected ? 'live' : 'reconnecting…';
    el.className = 'pill ' + (connected ? 'pill-on' : 'pill-off');
    // A fresh subscription may have missed what happened while it was
    // down; a resumed one replays it.
    if (connected && !resumed) refreshAll();
  },
  onAuth: askToken,
  onRefused(e) {
    const el = $('live');
    el.textContent = 'not live';
    el.className = 'pill pill-off';
    const why = (e.data && e.data.reason) || e.message;
    if (e.code !== -32002) {
      refuse('The server refused the live events (' + why + '): reload the page to try again.');
      return;
    }
    refuse("This token's role cannot use the dashboard (" + why + '): it needs a producer or admin token.');
    askToken();
  },
  onReset() {
    if (state.selected) state.logged = {id: state.selected, events: null};
    chart.reset();
    seedChart().catch(report);
    refreshAll();
  },
});

// refuse says, until another token is in use, why the page cannot work
// with this one.
function refuse(text) {
  state.refusal = text;
  $('refusal').textContent = text;
  $('refusal').hidden = !text;
}

// ---- token ----

const tokenRefused = $('token-error').textContent;
let asking = false;
function askToken() {
  if (asking) return;
  asking = true;
  $('token-button').hidden = false;
  const dialog = $('token-dialog');
  // Asked again while holding a token: the server refused that token, or
  // its role the live events.
  $('token-error').hidden = !getToken();
  $('token-error').textContent = state.refusal || tokenRefused;
  $('token-input').value = '';
  dialog.returnValue = '';
  dialog.onclose = () => {
    asking = false;
    if (dialog.returnValue !== 'ok') return;
    setToken($('token-input').value.trim());
    refuse('');
    state.workersRefused = false;
    live.restart();
    start();
  };
  dialog.showModal();
}

// ---- start ----

async function seedChart() {
  const since = Date.now() - chart.spanMs;
  for (const status of ['completed', 'failed']) {
    const {tasks} = await call('task.list', {status, orderBy: 'completedAt', order: 'desc', limit: 1000});
    for (const t of tasks) {
      const at = Date.parse(t.completedAt);
      if (at >= since) chart.add(t.id, status, at);
    }
  }
}

async function start() {
  try {
    const health = await call('system.health');
    $('version').textContent = 'v' + health.version + ' · ' + Object.keys(health.backends).join(', ');
    await seedChart();
  } catch (e) {
    report(e);
    return;
  }
  refreshAll();
}

function wire() {
  $('filters').addEventListener('input', () => { state.offset = 0; refreshTasks(); });
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - Number($('filters').elements.limit.value));
    refreshTasks();
  });
  $('next').addEventListener('click', () => {
    state.offset += Number($('filters').elements.limit.value);
    refreshTasks();
  });
  $('detail-close').addEventListener('click', closeTask);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeTask(); });
  $('token-button').addEventListener('click', askToken);
  $('token-cancel').addEventListener('click', () => $('token-dialog').close('cancel'));
  $('assign-cancel').addEventListener('click', () => $('assign-dialog').close('cancel'));
  // The token button shows once a token is in use or the server asked.
  $('token-button').hidden = !getToken();
  // Ages and heartbeats move without events.
  setInterval(() => { refreshWorkers(); refreshMetrics(); }, 5000);
  setInterval(() => chart.draw(), 2000);
}

wire();
live.start();
start();
