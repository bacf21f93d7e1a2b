// The dashboard page: reads the server-sent snapshots (`events`), draws the service cards, the
// charts and the decision timeline, and scales through the control API (`../v1/scale`).
//
// The stream is read with fetch() rather than EventSource, because EventSource cannot send an
// Authorization header, and a control API bound beyond loopback wants `Bearer <token>`. On a
// 401 the page asks for the token and keeps it for this tab only (sessionStorage). Every value
// from the server goes into the page as text, never as HTML.
import { Charts } from './charts.js';

const HISTORY = 300;
const TIMELINE = 100;
const RETRY_MS = 2000;

const $ = (id) => document.getElementById(id);
const state = {
  info: {},
  snapshots: [],
  timeline: new Map(),
  token: sessionStorage.getItem('tide-token') ?? '',
  cards: new Map(),
};
const charts = new Charts($('charts'));
// for the end-to-end test and for poking around in the console
window.tideDashboard = { charts: charts.instances, state };

function authHeaders() {
  return state.token ? { authorization: `Bearer ${state.token}` } : {};
}

function setConnection(kind, text) {
  const el = $('connection');
  el.dataset.state = kind;
  el.textContent = text ?? kind;
}

function askToken(message) {
  $('token-form').hidden = false;
  $('token-error').textContent = message ?? '';
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = $('token-input').value.trim();
  sessionStorage.setItem('tide-token', state.token);
  $('token-form').hidden = true;
  void connect();
});

let retryTimer = null;
function retry(why) {
  setConnection('error', `reconnecting: ${why}`);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => void connect(), RETRY_MS);
}

async function connect() {
  setConnection('connecting');
  let res;
  try {
    res = await fetch('events', { headers: { accept: 'text/event-stream', ...authHeaders() }, cache: 'no-store' });
  } catch (err) {
    return retry(`the server does not answer (${err.message})`);
  }
  if (res.status === 401) {
    setConnection('error', 'needs the token');
    return askToken(state.token ? 'The server refused that token.' : '');
  }
  if (!res.ok || !res.body) return retry(`the server answered ${res.status}`);
  setConnection('live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatch(block);
      }
    }
  } catch {
    // the connection dropped: reconnect below
  }
  retry('the stream ended');
}

/** One SSE block: `event:` and `data:` lines; comments (heartbeats) start with a colon. */
function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  const payload = JSON.parse(data.join('\n'));
  if (event === 'hello') onHello(payload);
  else if (event === 'snapshot') onSnapshot(payload);
}

function onHello(hello) {
  state.info = hello.info ?? {};
  // the server's ring is the truth after a reconnect
  state.snapshots = hello.history.slice(-HISTORY);
  for (const entry of hello.timeline) state.timeline.set(entry.id, entry);
  renderInfo();
  render();
}

function onSnapshot(snapshot) {
  state.snapshots.push(snapshot);
  if (state.snapshots.length > HISTORY) state.snapshots.splice(0, state.snapshots.length - HISTORY);
  for (const entry of snapshot.timeline) state.timeline.set(entry.id, entry);
  render();
}

function renderInfo() {
  const { project, balancer, database, remote } = state.info;
  $('project').textContent = project ?? '';
  const parts = [];
  if (remote) parts.push(`control ${remote}`);
  if (balancer) parts.push(`balancer ${balancer}`);
  if (database) parts.push(`database ${database}`);
  $('meta').textContent = parts.join(' · ');
  document.title = project ? `${project}: Tidescale` : 'Tidescale dashboard';
}

function render() {
  const latest = state.snapshots[state.snapshots.length - 1];
  if (!latest) return;
  renderDatabase(latest.database);
  for (const service of latest.services) renderCard(service);
  for (const [name, card] of state.cards) if (!latest.services.some((s) => s.name === name)) (card.root.remove(), state.cards.delete(name));
  charts.update(state.snapshots);
  renderTimeline();
  const problems = $('problems');
  problems.replaceChildren(...latest.problems.map((p) => el('li', {}, p)));
}

/** The supervised database's state beside the header (an external one is not ours to tell). */
function renderDatabase(db) {
  const node = $('database');
  node.hidden = !db || !db.state;
  if (node.hidden) return;
  const restarts = db.restarts ? `, restarted ${db.restarts}×` : '';
  const last = db.lastCrash && db.lastCrash.downMs !== null ? ` (last down ${(db.lastCrash.downMs / 1000).toFixed(1)} s)` : '';
  node.textContent = `database ${db.state}${restarts}${last}`;
  node.dataset.state = db.state === 'running' ? 'running' : db.state === 'failed' ? 'failed' : 'degraded';
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.dataset[k.slice(5)] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

function renderCard(service) {
  let card = state.cards.get(service.name);
  if (!card) {
    card = makeCard(service.name);
    state.cards.set(service.name, card);
    $('services').append(card.root);
  }
  card.service = service;
  card.ready.textContent = String(service.ready);
  card.desired.textContent = ` / ${service.desired}`;
  card.kind.textContent = `${service.kind} · ${service.min}..${service.max}`;
  card.stateText.textContent = service.state;
  card.stateText.dataset.state = service.state;
  card.root.dataset.ready = String(service.ready);
  card.root.dataset.desired = String(service.desired);
  const base = card.target ?? service.desired;
  card.minus.disabled = card.pending || base <= service.min;
  card.plus.disabled = card.pending || base >= service.max;
  card.set.disabled = card.pending;
  if (document.activeElement !== card.input && !card.edited) card.input.value = String(service.desired);
  card.input.min = String(service.min);
  card.input.max = String(service.max);
  const auto = service.autoscaler;
  if (!auto) card.auto.textContent = 'not autoscaled';
  else {
    const parts = [`autoscaler wants ${auto.desired ?? '-'}`];
    if (auto.dryRun) parts.push('dry run');
    if (auto.pausedUntil) parts.push(`paused until ${time(auto.pausedUntil)} (manual scale)`);
    const d = auto.lastDecision;
    if (d && d.reasons.length > 0) parts.push(`${d.limitedBy ?? d.reasons[d.reasons.length - 1].code}: ${d.reasons[d.reasons.length - 1].message}`);
    card.auto.textContent = parts.join(' · ');
  }
}

function makeCard(name) {
  const card = { pending: false, target: null, edited: false };
  card.ready = el('span', { class: 'ready' });
  card.desired = el('small', { class: 'desired' });
  card.kind = el('span', { class: 'kind' });
  card.stateText = el('span', { class: 'state' });
  card.minus = el('button', { type: 'button', class: 'minus', 'aria-label': `${name} one replica less` }, '−');
  card.plus = el('button', { type: 'button', class: 'plus', 'aria-label': `${name} one replica more` }, '+');
  card.input = el('input', { type: 'number', step: '1', class: 'count', 'aria-label': `${name} replicas` });
  card.set = el('button', { type: 'button', class: 'set' }, 'Scale');
  card.message = el('span', { class: 'error' });
  card.auto = el('div', { class: 'auto' });
  card.root = el(
    'article',
    { class: 'card', 'data-service': name },
    el('header', {}, el('span', { class: 'name' }, name), card.kind),
    el('div', { class: 'counts' }, card.ready, card.desired, ' ', el('small', {}, 'ready / desired')),
    el('div', {}, card.stateText),
    el('div', { class: 'controls' }, card.minus, card.plus, card.input, card.set),
    card.message,
    card.auto,
  );
  const current = () => card.target ?? card.service.desired;
  card.minus.addEventListener('click', () => void scale(card, current() - 1));
  card.plus.addEventListener('click', () => void scale(card, current() + 1));
  card.input.addEventListener('input', () => (card.edited = true));
  card.set.addEventListener('click', () => void scale(card, Number(card.input.value)));
  card.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void scale(card, Number(card.input.value));
  });
  return card;
}

/** POST /v1/scale; it answers once the new replicas are ready (or the old ones drained). */
async function scale(card, replicas) {
  const name = card.service.name;
  card.pending = true;
  card.target = replicas;
  card.edited = false;
  card.message.textContent = `scaling to ${replicas}…`;
  renderCard(card.service);
  try {
    const res = await fetch('../v1/scale', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ replicas: { [name]: replicas } }),
    });
    const body = await res.json().catch(() => null);
    if (res.status === 401) {
      card.message.textContent = 'scaling needs the token';
      askToken('Scaling needs the control API token.');
    } else if (!res.ok) {
      card.message.textContent = body?.error ? `${body.error.code}: ${body.error.message}` : `the server answered ${res.status}`;
    } else {
      card.message.textContent = '';
    }
  } catch (err) {
    card.message.textContent = `the server does not answer (${err.message})`;
  } finally {
    card.pending = false;
    card.target = null;
    renderCard(card.service);
  }
}

function time(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function renderTimeline() {
  const entries = [...state.timeline.values()].sort((a, b) => b.at - a.at);
  // keep the map bounded too
  for (const old of entries.slice(TIMELINE)) state.timeline.delete(old.id);
  const items = entries.slice(0, TIMELINE).map((e) => {
    const flags = [];
    if (!e.applied) flags.push('not applied');
    if (e.limitedBy) flags.push(`limited by ${e.limitedBy}`);
    return el(
      'li',
      { 'data-service': e.service },
      el('time', { datetime: new Date(e.at).toISOString() }, time(e.at)),
      el('span', { class: 'change' }, `${e.service} ${e.from} → ${e.to}`),
      el('span', { class: 'by' }, `by ${e.by}${flags.length ? ` (${flags.join(', ')})` : ''}`),
      el('ul', { class: 'reasons' }, ...e.reasons.map((r) => el('li', {}, el('code', {}, r.code), ` ${r.message}`))),
    );
  });
  $('timeline').replaceChildren(...items);
  $('timeline-empty').hidden = items.length > 0;
}

void connect();
