// portctl dashboard. Everything a process controls (its name, command line,
// cgroup, user) reaches the page as text nodes only: this file never
// parses a string as markup.
'use strict';

const $ = (sel) => document.querySelector(sel);

// el builds an element; string and number children become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  return e;
}

// fill replaces an element's children: nested arrays are flattened, and
// null, undefined and false are left out.
function fill(e, ...children) {
  e.replaceChildren(...children.flat(2).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (typeof c === 'object' ? c : document.createTextNode(String(c)))));
}

// table builds a table from its header names and its rows of cells; a
// cell is a td element, or what goes into a plain one.
function table(attrs, headers, rows) {
  const cell = (c) => (c instanceof HTMLTableCellElement ? c : el('td', {}, c));
  return el('table', attrs, el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map(cell)))));
}

// mono is a cell in a fixed-width font, for addresses and names.
const mono = (x) => el('td', { class: 'mono' }, x);

function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: 'same-origin', headers: { Accept: 'application/json' } }, opts));
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || (r.status + ' ' + r.statusText));
  return body;
}

const app = {
  session: null,
  rows: new Map(),      // id → row
  fresh: new Map(),     // id → time it appeared
  summary: null,
  history: [],
  view: 'sockets',
  renderQueued: false,
};

function setStatus(text, error) {
  const s = $('#status');
  s.textContent = text;
  s.classList.toggle('error', !!error);
}

// ---- the live socket table -------------------------------------------------

function connect() {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('snapshot', (m) => {
    const ev = JSON.parse(m.data);
    app.rows = new Map((ev.snapshot || []).map((r) => [r.id, r])); // left out when empty
    onSummary(ev);
    queueRender();
  });
  es.addEventListener('diff', (m) => {
    const ev = JSON.parse(m.data);
    for (const id of ev.removed || []) { app.rows.delete(id); app.fresh.delete(id); }
    const now = Date.now();
    for (const r of ev.added || []) { app.rows.set(r.id, r); app.fresh.set(r.id, now); }
    onSummary(ev);
    queueRender();
  });
  es.onerror = () => setStatus('reconnecting…', true);
}

function onSummary(ev) {
  app.summary = ev;
  const t = new Date(ev.time);
  let text = ev.total + ' sockets, ' + ev.listening + ' listening · ' + t.toLocaleTimeString();
  if (ev.shown < ev.total) text += ' · showing ' + ev.shown;
  setStatus(ev.error ? 'error: ' + ev.error : text, !!ev.error);
  const bad = (ev.findings.high || 0) + (ev.findings.medium || 0);
  $('#findings-badge').textContent = bad ? String(bad) : '';
}

function queueRender() {
  if (app.renderQueued) return;
  app.renderQueued = true;
  // Another view hides the table: route() draws it when it shows again.
  requestAnimationFrame(() => { app.renderQueued = false; if (app.view === 'sockets') renderSockets(); });
}

function filters() {
  return {
    text: $('#filter-text').value.trim().toLowerCase(),
    proto: $('#filter-proto').value,
    state: $('#filter-state').value,
  };
}

function listening(r) { return r.state === 'LISTEN' || (r.protocol === 'udp' && !r.remote); }

function rowMatches(r, f) {
  if (f.proto && r.protocol !== f.proto) return false;
  if (f.state === 'listening' && !listening(r)) return false;
  if (f.state !== 'listening' && f.state !== 'all' && r.state !== f.state) return false;
  if (!f.text) return true;
  return [r.local, r.remote, r.service, r.process, (r.cmdline || []).join(' '), r.user, r.unit, r.container, r.pid ? String(r.pid) : '', r.state]
    .some((x) => x && String(x).toLowerCase().includes(f.text));
}

function renderSockets() {
  const f = filters();
  const tbody = $('#sockets tbody');
  const out = [];
  const now = Date.now();
  for (const r of app.rows.values()) {
    if (!rowMatches(r, f)) continue;
    const fresh = app.fresh.get(r.id);
    if (fresh && now - fresh > 4000) app.fresh.delete(r.id);
    const where = r.container ? 'container ' + r.container : (r.unit || '');
    out.push(el('tr', { class: fresh && now - fresh <= 4000 ? 'new' : null, 'data-id': r.id, 'data-port': r.port },
      el('td', { 'data-label': 'Proto' }, r.protocol),
      el('td', { class: 'mono', 'data-label': 'Local' }, el('a', { href: '#/port/' + r.port }, r.local)),
      el('td', { class: 'mono', 'data-label': 'Remote' }, r.remote || ''),
      el('td', { 'data-label': 'State' }, r.state),
      el('td', { 'data-label': 'Service' }, r.service || ''),
      el('td', { 'data-label': 'PID' }, r.pid ? String(r.pid) : ''),
      el('td', { 'data-label': 'Process', class: 'proc' },
        el('strong', { class: 'pname' }, r.process || ''), r.holders > 1 ? ' +' + (r.holders - 1) : '',
        r.cmdline && r.cmdline.length ? el('div', { class: 'cmd mono' }, r.cmdline.join(' ')) : null),
      el('td', { 'data-label': 'User' }, r.user || (r.pid ? String(r.uid) : '')),
      el('td', { 'data-label': 'Where' }, where),
      reachCell(r.reach)));
  }
  fill(tbody, out);
  $('#count').textContent = out.length + ' shown';
}

// reachWords spells who may reach a listener; the word carries the
// meaning, the colour only repeats it.
const reachWords = {
  internet: 'internet', lan: 'LAN', loopback: 'loopback only', nobody: 'nobody', unknown: 'unknown',
};

function reachCell(reach) {
  return el('td', { 'data-label': 'Reach', class: reach ? 'reach reach-' + reach : 'reach', 'data-reach': reach || '' },
    reach ? (reachWords[reach] || reach) : '');
}

// ---- a port's page ---------------------------------------------------------

async function showPort(port) {
  const v = $('#view-port');
  fill(v, el('p', { class: 'muted' }, 'Loading port ' + port + '…'));
  let p;
  try { p = await api('/api/v1/ports/' + encodeURIComponent(port)); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  const facts = el('dl', { class: 'kv' },
    el('dt', {}, 'Range'), el('dd', {}, p.class + ' (' + p.class_range + ')'),
    el('dt', {}, 'Privileged here'), el('dd', {}, p.privileged ? 'yes' : 'no'),
    el('dt', {}, 'Ephemeral range'), el('dd', {}, p.ephemeral ? 'inside (' + p.ephemeral_range + ')' : 'outside (' + p.ephemeral_range + ')'),
    p.reserved ? [el('dt', {}, 'Reserved'), el('dd', {}, 'yes')] : null);
  const assigned = p.assignments.length
    ? table({ id: 'assignments' }, ['Name', 'Protocol', 'Description', 'Reference'],
      p.assignments.map((a) => [mono(a.name || '(reserved)'), a.protocol, a.description, a.reference || '']))
    : el('p', { class: 'muted' }, 'No IANA assignment.');
  const uses = p.uses.length ? el('ul', {}, p.uses.map((u) => el('li', {}, u.text, el('span', { class: 'muted' }, ' · ' + u.category)))) : null;
  const notes = p.security_notes.length
    ? el('ul', {}, p.security_notes.map((n) => el('li', {}, el('span', { class: 'sev sev-' + n.severity }, n.severity), ' ', n.text)))
    : null;
  const holders = p.sockets.length
    ? table({}, ['Proto', 'Local', 'Remote', 'State', 'PID', 'Process'], p.sockets.map((r) => [
      r.protocol, mono(r.local), mono(r.remote || ''), r.state, r.pid ? String(r.pid) : '',
      el('td', {}, el('strong', {}, r.process || ''), r.cmdline ? el('div', { class: 'cmd mono' }, r.cmdline.join(' ')) : null)]))
    : el('p', { class: 'muted' }, 'Nothing holds port ' + p.port + ' on this machine now.');
  let kill = null;
  if (app.session && app.session.allow_kill && p.sockets.some(listening)) {
    const out = el('p', { class: 'muted', id: 'kill-result' });
    kill = el('div', { class: 'card' },
      el('h3', {}, 'Stop the holders'),
      el('p', {}, 'Sends SIGTERM to the processes listening on port ' + p.port + ' and waits for them to exit.'),
      el('button', { class: 'danger', id: 'kill', onclick: () => killPort(p.port, out) }, 'Stop port ' + p.port + '…'), out);
  }
  fill(v, 
    el('h2', {}, 'Port ' + p.port),
    el('div', { class: 'card' }, facts),
    el('div', { class: 'card' }, el('h3', {}, 'IANA registry'), assigned),
    uses ? el('div', { class: 'card' }, el('h3', {}, 'Used in practice by'), uses) : null,
    notes ? el('div', { class: 'card' }, el('h3', {}, 'Security notes'), notes) : null,
    el('div', { class: 'card', id: 'holders' }, el('h3', {}, 'Held here by'), holders),
    kill);
}

async function killPort(port, out) {
  const typed = window.prompt('Type the port number, ' + port + ', to stop its holders:');
  if (typed === null) return;
  out.textContent = 'Stopping…';
  try {
    const res = await api('/api/v1/ports/' + port + '/kill', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': app.session.csrf_token, Accept: 'application/json' },
      body: JSON.stringify({ confirm: typed }),
    });
    out.textContent = res.freed ? 'Port ' + port + ' is free.' : 'Signalled; the port is not free yet.';
  } catch (e) {
    out.textContent = e.message;
  }
}

// ---- audit -----------------------------------------------------------------

async function showAudit() {
  const v = $('#view-audit');
  let rep;
  try { rep = await api('/api/v1/audit'); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  const findings = rep.findings || [];
  const excepted = rep.excepted || [];
  const where = (f) => {
    const sock = f.socket ? f.socket.protocol + ' ' + f.socket.local
      : (f.port ? f.protocol + '/' + f.port + ' (firewall)' : (f.setting ? f.setting + ' = ' + f.value : ''));
    const proc = f.process ? f.process.name + ' (pid ' + f.process.pid + ')' : '';
    return [f.rule, sock, proc].filter(Boolean).join(' · ');
  };
  fill(v, el('h2', {}, 'Audit'),
    findings.length ? null : el('p', { class: 'muted' }, 'No findings.'),
    findings.map((f) => el('div', { class: 'card finding', 'data-rule': f.rule },
      el('h3', {}, el('span', { class: 'sev sev-' + f.severity }, f.severity), ' ', f.title),
      el('p', { class: 'mono muted' }, where(f)),
      f.why ? el('p', {}, f.why) : null,
      f.fix ? el('p', {}, el('strong', {}, 'Fix: '), f.fix) : null)),
    excepted.length ? el('h3', {}, 'Set aside by the policy') : null,
    excepted.map((f) => el('div', { class: 'card excepted muted' },
      el('p', {}, el('span', { class: 'sev sev-' + f.severity }, f.severity), ' ', f.title),
      el('p', { class: 'mono' }, where(f)),
      el('p', {}, 'Reason: ', f.exception_reason || '(none given)', f.exception_line ? ' (policy line ' + f.exception_line + ')' : ''))));
}

// ---- ephemeral ports -------------------------------------------------------

async function showEphemeral() {
  const v = $('#view-ephemeral');
  let e;
  try { e = await api('/api/v1/ephemeral'); } catch (err) {
    fill(v, el('p', { class: 'sev-high' }, err.message));
    return;
  }
  app.history = e.history;
  const now = e.now;
  fill(v, 
    el('h2', {}, 'Ephemeral ports'),
    el('div', { class: 'card' }, el('dl', { class: 'kv' },
      el('dt', {}, 'Range'), el('dd', {}, now.range + (now.range_is_os_default ? ' (OS default)' : '')),
      el('dt', {}, 'Usable'), el('dd', {}, String(now.available)),
      el('dt', {}, 'In use'), el('dd', { id: 'eph-inuse' }, String(now.sockets_in_range)))),
    el('div', { class: 'card' }, el('h3', {}, 'Sockets in the range over time'),
      el('div', { id: 'chart' }),
      el('p', { class: 'muted' }, 'Solid: all sockets in the range. Dashed: TIME-WAIT.')),
    el('div', { class: 'card' }, el('h3', {}, 'Busiest destinations'),
      now.groups.length ? table({}, ['Proto', 'Source', 'Destination', 'Sockets', 'Share'], now.groups.map((g) => [
        g.protocol, mono(g.source), mono(g.destination), String(g.sockets), g.share_percent.toFixed(g.share_percent < 1 ? 2 : 1) + '%']))
        : el('p', { class: 'muted' }, 'No outgoing connections use the range.')),
    (now.advice || []).length ? el('div', { class: 'card' }, el('h3', {}, 'Advice'), el('ul', {}, now.advice.map((a) => el('li', {}, a)))) : null);
  drawChart();
}

function drawChart() {
  const box = $('#chart');
  if (!box) return;
  const h = app.history;
  // Drawn at the box's own width, so that the labels keep their shape.
  const W = Math.max(240, box.clientWidth || 600), H = 200, L = 40, B = 20;
  const s = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + (H + B), role: 'img', 'aria-label': 'Sockets in the ephemeral range over time' });
  const maxY = Math.max(10, ...h.map((p) => p.sockets_in_range));
  const x = (i) => L + (h.length <= 1 ? W - L : (i * (W - L)) / (h.length - 1));
  const y = (v) => H - (v / maxY) * (H - 10);
  for (const frac of [0, 0.5, 1]) {
    s.append(svg('line', { class: 'grid', x1: L, x2: W, y1: y(maxY * frac), y2: y(maxY * frac) }));
    const t = svg('text', { x: 2, y: y(maxY * frac) + 4 });
    t.textContent = String(Math.round(maxY * frac));
    s.append(t);
  }
  if (h.length) {
    const pts = h.map((p, i) => x(i).toFixed(1) + ',' + y(p.sockets_in_range).toFixed(1)).join(' ');
    s.append(svg('polygon', { class: 'area', points: L + ',' + H + ' ' + pts + ' ' + x(h.length - 1).toFixed(1) + ',' + H }));
    s.append(svg('polyline', { class: 'line', points: pts }));
    s.append(svg('polyline', { class: 'tw', points: h.map((p, i) => x(i).toFixed(1) + ',' + y(p.time_wait).toFixed(1)).join(' ') }));
    const t0 = svg('text', { x: L, y: H + 15 });
    t0.textContent = new Date(h[0].time).toLocaleTimeString();
    const t1 = svg('text', { x: W - 2, y: H + 15, 'text-anchor': 'end' });
    t1.textContent = new Date(h[h.length - 1].time).toLocaleTimeString();
    s.append(t0, t1);
  }
  fill(box, s);
  const inuse = $('#eph-inuse');
  if (inuse && h.length) inuse.textContent = String(h[h.length - 1].sockets_in_range);
}

// ---- forwarders ------------------------------------------------------------

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

async function showForward() {
  const v = $('#view-forward');
  let procs;
  try { procs = await api('/api/v1/forwarders'); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  const rows = procs.flatMap((p) => p.rules.map((r) => {
    let listen = r.proto + '/' + r.listen;
    let targets = (r.backends || []).map((b) => b.target + (b.healthy ? '' : ' (down)'));
    if (r.mode === 'remote') listen = r.listen + ' on ' + r.via;
    if (r.mode === 'socks5') { listen = 'socks5/' + r.listen; targets = ["the clients' choice"]; }
    if (r.via && r.mode !== 'remote') targets.push('via ' + r.via);
    return [String(p.pid), mono(r.name), mono(listen), String(r.connections), String(r.active),
      bytes(r.bytes_in), bytes(r.bytes_out), String(r.refused), String(r.errors), mono(targets.join(', '))];
  }));
  const hosts = procs.flatMap((p) => (p.ssh || []).map((h) => [
    String(p.pid), mono(h.target + (h.address ? ' (' + h.address + ')' : '')),
    el('span', { class: h.state === 'reconnecting' ? 'sev-high' : '' }, h.state),
    ago(h.since), h.rtt_ns ? (h.rtt_ns / 1e6).toFixed(2) + ' ms' : '-', String(h.conns), String(h.active),
    bytes(h.bytes_out), bytes(h.bytes_in), h.last_error || '-']));
  fill(v, el('h2', {}, 'Forwarding'),
    rows.length ? table({}, ['PID', 'Rule', 'Listen', 'Conns', 'Active', 'In', 'Out', 'Refused', 'Errors', 'Targets'], rows)
      : el('p', { class: 'muted' }, 'No portctl forward runs on this machine.'),
    ...(hosts.length ? [el('h3', {}, 'SSH servers'),
      table({ id: 'ssh-hosts' }, ['PID', 'Server', 'State', 'Since', 'RTT', 'Conns', 'Active', 'Sent', 'Received', 'Last error'], hosts)] : []));
}

// ---- port mappings at the router -----------------------------------------------

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? s + ' s ago' : (s < 7200 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago');
}

function secs(s) {
  return s % 3600 === 0 ? s / 3600 + ' h' : (s % 60 === 0 ? s / 60 + ' min' : s + ' s');
}

async function showMap() {
  const v = $('#view-map');
  let keepers;
  try { keepers = await api('/api/v1/mappings'); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  const rows = keepers.flatMap((k) => k.mappings.map((m) => el('tr', { 'data-proto': m.proto, 'data-internal': m.internal },
    el('td', { 'data-label': 'PID' }, String(k.pid)),
    el('td', { class: 'mono', 'data-label': 'External' }, m.proto + '/' + m.external),
    el('td', { class: 'mono', 'data-label': 'Internal' }, m.internal),
    el('td', { 'data-label': 'Via' }, m.protocol + ' at ' + k.gateway),
    el('td', { 'data-label': 'Lease' }, m.lease ? secs(Math.round(m.lease / 1e9)) : 'permanent'),
    el('td', { 'data-label': 'Renewed' }, ago(m.renewed) + ' (' + m.renewals + ' renewals, ' + m.remaps + ' remaps)'),
    el('td', { 'data-label': 'State', class: m.error ? 'sev-high' : '' }, m.error ? 'renewal failing: ' + m.error : 'kept'),
    el('td', { 'data-label': 'Description' }, m.description || ''))));
  fill(v, el('h2', {}, 'Port mappings at the router'),
    rows.length ? el('table', { id: 'mappings' },
      el('thead', {}, el('tr', {}, ['PID', 'External', 'Internal', 'Via', 'Lease', 'Renewed', 'State', 'Description'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows))
      : el('p', { class: 'muted' }, 'No portctl map add runs on this machine.'));
}

// ---- firewall ----------------------------------------------------------------

async function showFirewall() {
  const v = $('#view-firewall');
  let fw;
  try { fw = await api('/api/v1/firewall'); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  if (!fw.readable) {
    fill(v, el('h2', {}, 'Firewall'), el('p', { class: 'muted', id: 'fw-error' }, 'The ruleset could not be read: ' + (fw.error || 'unknown error')));
    return;
  }
  const classes = ['internet', 'lan', 'loopback'];
  const classLabel = { internet: 'From the internet', lan: 'From the LAN', loopback: 'From loopback' };
  const admission = (a) => {
    if (!a) return el('td', {}, '');
    const word = a.verdict === 'accept' ? 'let in' + (a.partial ? ' (part)' : '') : (a.verdict === 'unknown' ? 'unknown' : 'kept out');
    const by = a.layer === 'firewall' ? (a.decided_by || 'no rule') : a.layer + (a.depends_on && a.depends_on.length ? ': ' + a.depends_on.join('; ') : '');
    return el('td', { class: 'adm adm-' + a.verdict, 'data-class': a.class, 'data-label': classLabel[a.class] || a.class },
      el('strong', {}, word), el('div', { class: 'mono muted' }, by),
      a.bypasses ? el('div', { class: 'sev-high' }, 'goes around ' + a.bypasses.table + ' ' + a.bypasses.chain + ' (' + a.bypasses.owner.name + ')') : null,
      a.nat ? el('div', { class: 'mono muted' }, 'NAT → ' + a.nat.to) : null);
  };
  const ports = fw.ports.map((p) => {
    const by = Object.fromEntries(p.from.map((a) => [a.class, a]));
    return el('tr', { 'data-port': p.port, 'data-proto': p.protocol },
      el('td', { class: 'mono', 'data-label': 'Port' }, p.protocol + '/' + p.port),
      el('td', { 'data-label': 'Process' }, el('strong', { class: 'pname' }, p.process || ''), p.service ? el('div', { class: 'muted' }, p.service) : null),
      reachCell(p.reachable_from),
      classes.map((c) => admission(by[c])));
  });
  const rules = fw.rules.map((r) => [mono(r.family + ' ' + r.table + (r.source === 'iptables-legacy' ? ' (legacy)' : '')), r.owner === 'hand' ? 'written by hand' : r.owner, String(r.rules)]);
  const blocks = fw.blocks.map((b) => [mono(b.proto || 'tcp/udp'), mono(b.ports[0] === b.ports[1] ? String(b.ports[0]) : b.ports[0] + '-' + b.ports[1]),
    mono(b.from || 'anywhere'), b.expires ? Math.round(b.expires / 1e9) + ' s left' : 'until unblocked']);
  fill(v, el('h2', {}, 'Firewall'),
    el('div', { class: 'card' }, el('h3', {}, 'Who may reach each listening port'),
      ports.length ? el('table', { id: 'fw-ports' },
        el('thead', {}, el('tr', {}, ['Port', 'Process', 'Reach', 'From the internet', 'From the LAN', 'From loopback'].map((h) => el('th', {}, h)))),
        el('tbody', {}, ports)) : el('p', { class: 'muted' }, 'Nothing listens.')),
    el('div', { class: 'card' }, el('h3', {}, 'Rules by table and owner (' + fw.total_rules + ')'),
      rules.length ? table({ id: 'fw-rules' }, ['Table', 'Owner', 'Rules'], rules) : el('p', { class: 'muted' }, 'The ruleset is empty.')),
    el('div', { class: 'card' }, el('h3', {}, 'Blocked by portctl (table inet portctl)'),
      blocks.length ? table({ id: 'fw-blocks' }, ['Protocol', 'Ports', 'From', 'Lasts'], blocks) : el('p', { class: 'muted' }, 'portctl blocks nothing (portctl fw block PORT).')),
    (fw.incomplete || []).length ? el('p', { class: 'sev-medium' }, 'Not read: ' + fw.incomplete.join('; ')) : null);
}

// ---- guard's events ----------------------------------------------------------

// guardClass colours an event's type; the word says it, the colour only
// repeats it.
const guardClass = {
  scan: 'sev-medium', sweep: 'sev-medium', refused: 'sev-medium', block: 'sev-high', error: 'sev-high',
  knock: 'sev-low', spa: 'sev-low', tarpit: 'sev-low',
};

function guardPorts(ev) {
  const ps = (ev.ports || []).map(String);
  const list = ps.length > 12 ? ps.slice(0, 12).join(',') + '… (' + ps.length + ' in all)' : ps.join(',');
  return list && ev.proto ? ev.proto + '/' + list : list;
}

// guardDetail says what portctl guard's own lines say of an event.
function guardDetail(ev) {
  const parts = [];
  if (ev.type === 'scan') {
    parts.push((ev.failures || 0) + ' of ' + (ev.probes || 0) + ' first contacts failed' +
      (ev.spoofable ? '; not blocked: such probes can be forged' : ''));
  }
  if (ev.type === 'sweep') parts.push('contacted ' + (ev.hosts || []).length + ' of this host\'s addresses');
  if (ev.for) parts.push('for ' + ev.for);
  if (ev.message) parts.push(ev.message);
  return parts.join(' · ');
}

async function showGuard() {
  const v = $('#view-guard');
  let g;
  try { g = await api('/api/v1/guard'); } catch (e) {
    fill(v, el('p', { class: 'sev-high' }, e.message));
    return;
  }
  const counts = Object.entries(g.counts).sort((a, b) => b[1] - a[1]).map(([t, n]) => n + ' ' + t).join(' · ');
  // Newest first.
  const rows = g.events.slice().reverse().map((ev) => el('tr', { 'data-type': ev.type, 'data-source': ev.source || '' },
    el('td', { class: 'mono', 'data-label': 'Time' }, new Date(ev.time).toLocaleString()),
    el('td', { class: Object.hasOwn(guardClass, ev.type) ? guardClass[ev.type] : null, 'data-label': 'Type' }, ev.type),
    el('td', { class: 'mono', 'data-label': 'Source' }, ev.source || ''),
    el('td', { 'data-label': 'Kind' }, ev.kind || ''),
    el('td', { class: 'mono ports', 'data-label': 'Ports' }, guardPorts(ev)),
    el('td', { 'data-label': 'Message' }, guardDetail(ev))));
  fill(v, el('h2', {}, 'Guard'),
    g.error ? el('p', { class: 'sev-medium', id: 'guard-error' }, 'The events file cannot be read now: ' + g.error) : null,
    el('p', { class: 'muted', id: 'guard-counts' },
      counts ? 'Counted (the file\'s last 500 lines when serve started, and every line since): ' + counts : 'No events yet.',
      g.malformed_lines ? ' · ' + g.malformed_lines + ' malformed lines skipped' : ''),
    el('div', { class: 'card' }, el('h3', {}, 'Latest events'),
      rows.length ? el('table', { id: 'guard-events' },
        el('thead', {}, el('tr', {}, ['Time', 'Type', 'Source', 'Kind', 'Ports', 'Message'].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)) : el('p', { class: 'muted' }, 'portctl guard has written no event to the file yet.')));
}

// ---- routing ---------------------------------------------------------------

let refreshTimer = null;

function route() {
  const hash = location.hash || '#/';
  let view = 'sockets', arg = null;
  let m;
  if ((m = hash.match(/^#\/port\/(\d+)$/))) { view = 'port'; arg = m[1]; }
  else if (hash === '#/audit') view = 'audit';
  else if (hash === '#/ephemeral') view = 'ephemeral';
  else if (hash === '#/forward') view = 'forward';
  else if (hash === '#/map') view = 'map';
  else if (hash === '#/firewall') view = 'firewall';
  else if (hash === '#/guard') view = 'guard';
  app.view = view;
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + view;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === view);
  clearInterval(refreshTimer);
  const every = Math.max(1000, (app.session && app.session.interval_ms) || 2000);
  const refresh = { port: () => showPort(arg), audit: showAudit, ephemeral: showEphemeral, forward: showForward, map: showMap, firewall: showFirewall, guard: showGuard }[view];
  if (refresh) {
    refresh();
    if (view !== 'port') refreshTimer = setInterval(refresh, every);
  } else {
    renderSockets();
  }
}

async function main() {
  try { app.session = await api('/api/v1/session'); } catch (e) {
    setStatus(e.message, true);
    return;
  }
  document.title = 'portctl · ' + app.session.hostname;
  $('#nav-guard').hidden = !app.session.guard;
  for (const id of ['#filter-text', '#filter-proto', '#filter-state']) $(id).addEventListener('input', queueRender);
  window.addEventListener('hashchange', route);
  route();
  connect();
}

main();
