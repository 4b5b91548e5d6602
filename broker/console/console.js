// Tandem's web console: polls the admin JSON and renders it (see index.html). Runs in any
// current browser; no build step. Libraries (pinned by package-lock.json, put in
// node_modules by npm ci, compiled into tandemd): Chart.js for the timeline charts,
// @stomp/stompjs for the send panel; without them the page works and says what is missing. The page is served by the broker it talks
// to, so every request is same-origin and carries the browser's Basic credentials.
"use strict";

const poll_ms = 2000;
const page_size = 50;
const view = { offset: 0, filter: "", sort: "name", last: null, masters: [], gaps: {} };

function $(id) { return document.getElementById(id); }
function text(v) { return v === undefined || v === null ? "" : String(v); }
function cell(row, value, numeric) {
  const td = row.insertCell();
  td.textContent = text(value);
  if (numeric) td.className = "n";
  return td;
}
function time(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "-"; }
function bytes(n) {
  if (n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}
async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (r.status === 503) return null;  // not master: no broker state here
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function renderHealth(h) {
  $("broker-name").textContent = h.broker_name;
  $("role").textContent = h.role;
  $("role").className = "role " + h.role;
  $("epoch").textContent = h.epoch;
  $("journal-bytes").textContent = bytes(h.journal_bytes);
  document.body.dataset.role = h.role;
}

function renderGroup(group) {
  const tbody = $("group").tBodies[0];
  tbody.replaceChildren();
  const summary = [];
  for (const m of group.members) {
    const row = tbody.insertRow();
    const h = m.health;
    if (!h) {
      cell(row, m.admin_url);
      const r = cell(row, "unreachable");
      r.className = "role unreachable";
      cell(row, m.error);
      summary.push(m.admin_url + ":unreachable");
      continue;
    }
    cell(row, h.broker_name + (m.self ? " (this)" : ""));
    const r = cell(row, h.role);
    r.className = "role " + h.role;
    cell(row, h.epoch, true);
    cell(row, time(h.since_ms));
    cell(row, h.holder ? `${h.holder.broker_name} (epoch ${h.holder.epoch}, pid ${h.holder.pid})` : (h.role === "master" ? "itself" : "-"));
    cell(row, (h.client_urls || []).join("  "));
    const a = cell(row, "");
    if (h.admin_url) {
      const link = document.createElement("a");
      link.href = h.admin_url + "/console";
      link.textContent = h.admin_url;
      a.appendChild(link);
    }
    summary.push(h.broker_name + ":" + h.role);
  }
  document.body.dataset.group = summary.sort().join(",");
}

// The masters of the store: the history file each broker serves (lockmgr/history.h), newest
// view per epoch, plus the in-memory stints of running brokers that the file lacks (a store
// whose file could not be written). And the gaps this page saw between two masters.
function mastersOf(group) {
  const byEpoch = new Map();
  for (const m of group.members) {
    if (!m.health) continue;
    for (const h of m.health.history || []) byEpoch.set(h.epoch, { ...h, broker: h.broker_name, since_ms: h.serving_at_ms });
  }
  for (const m of group.members) {
    if (!m.health) continue;
    for (const s of m.health.stints || []) {
      if (!byEpoch.has(s.epoch)) byEpoch.set(s.epoch, { epoch: s.epoch, broker: m.health.broker_name, since_ms: s.since_ms, start_ms: s.takeover_ms });
    }
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function noteGaps(group, now) {
  const master = group.members.find((m) => m.health && m.health.role === "master");
  const key = master ? master.health.broker_name + "/" + master.health.epoch : null;
  const last = view.masters[view.masters.length - 1];
  if (!last || last.key !== key) {
    if (last && last.key && !key) last.lost_at = now;
    if (key) {
      const gapFrom = last ? (last.lost_at || last.seen_at) : null;
      view.masters.push({ key, seen_at: now });
      if (gapFrom) view.gaps[master.health.epoch] = now - gapFrom;
    } else if (!last || last.key) {
      view.masters.push({ key: null, seen_at: now, lost_at: now });
    }
  } else if (last) {
    last.seen_at = now;
  }
}

function renderTimeline(group) {
  const now = Date.now();
  noteGaps(group, now);
  const list = mastersOf(group);
  const tbody = $("stints").tBodies[0];
  tbody.replaceChildren();
  for (const s of list.slice().reverse()) {
    const row = tbody.insertRow();
    cell(row, s.epoch, true);
    cell(row, s.broker);
    cell(row, s.host || "-");
    cell(row, time(s.since_ms));
    cell(row, s.previous_epoch ? (s.previous_clean ? "clean stop of " : "crash of ") + s.previous_broker : "-");
    cell(row, s.failover_ms === undefined || s.failover_ms === null ? "-" : s.failover_ms + " ms", true);
    cell(row, s.start_ms === undefined ? "-" : s.start_ms + " ms", true);
    cell(row, view.gaps[s.epoch] !== undefined ? "<= " + view.gaps[s.epoch] + " ms (2 s polling)" : "-", true);
  }
  document.body.dataset.timeline = list.map((s) => s.epoch + ":" + s.broker).join(",");
  drawCharts(list.slice(-50), now);
}

const charts = { timeline: null, failover: null };
const palette = ["#2a7", "#57a", "#c83", "#a5a", "#3aa", "#a33", "#777"];

// Two Chart.js charts: who was master when (one row per broker), and each takeover's
// failover time by epoch. Created once, then fed new data without animation.
function drawCharts(list, now) {
  if (!window.Chart) {
    $("timeline").textContent = "Charts unavailable: chart.umd.min.js was not built into this broker (run ./tandem.sh setup).";
    return;
  }
  const brokers = [...new Set(list.map((s) => s.broker))].sort();
  const color = (b) => palette[brokers.indexOf(b) % palette.length];
  const bars = list.map((s, i) => ({ x: [s.since_ms, i + 1 < list.length ? list[i + 1].since_ms : now], y: s.broker, epoch: s.epoch }));
  const clock = (ms) => new Date(ms).toISOString().slice(11, 19);
  if (!charts.timeline) {
    charts.timeline = new Chart($("timeline-chart"), {
      type: "bar",
      data: { datasets: [{ label: "master", data: [], backgroundColor: [] }] },
      options: {
        indexAxis: "y", animation: false, maintainAspectRatio: false,
        parsing: { xAxisKey: "x", yAxisKey: "y" },
        scales: { x: { type: "linear", beginAtZero: false, ticks: { callback: (v) => clock(v), maxTicksLimit: 6 } }, y: { type: "category", labels: [] } },
        plugins: { legend: { display: false }, title: { display: true, text: "master over time (UTC)" },
                   tooltip: { callbacks: { label: (c) => `epoch ${c.raw.epoch}: ${clock(c.raw.x[0])} - ${clock(c.raw.x[1])}` } } },
      },
    });
    charts.failover = new Chart($("failover-chart"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "failover (ms)", data: [], backgroundColor: [] }] },
      options: { animation: false, maintainAspectRatio: false,
                 scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } }, x: { title: { display: true, text: "epoch" } } },
                 plugins: { legend: { display: false }, title: { display: true, text: "failover time per takeover (red: after a crash)" } } },
    });
  }
  const t = charts.timeline;
  // A bar chart's value axis starts at 0 by default: here it spans the stints only.
  t.options.scales.x.min = list.length ? list[0].since_ms : now - 60000;
  t.options.scales.x.max = now;
  t.options.scales.y.labels = brokers;
  t.data.datasets[0].data = bars;
  t.data.datasets[0].backgroundColor = list.map((s) => color(s.broker));
  t.update("none");
  const withFailover = list.filter((s) => s.failover_ms !== undefined && s.failover_ms !== null);
  const f = charts.failover;
  f.data.labels = withFailover.map((s) => String(s.epoch));
  f.data.datasets[0].data = withFailover.map((s) => s.failover_ms);
  f.data.datasets[0].backgroundColor = withFailover.map((s) => (s.previous_clean ? "#57a" : "#c33"));
  f.update("none");
  document.body.dataset.charts = `${t.data.datasets[0].data.length} stints, ${f.data.datasets[0].data.length} failovers`;
}

function renderDestinations(page, previous, seconds) {
  const tbody = $("destinations").tBodies[0];
  tbody.replaceChildren();
  if (!page) {
    $("dest-count").textContent = "(served by the master only)";
    return;
  }
  $("dest-count").textContent = `(${page.matched} of ${page.total})`;
  $("page").textContent = page.matched ? `${page.offset + 1}-${Math.min(page.offset + page.limit, page.matched)}` : "0";
  const before = new Map((previous ? previous.items : []).map((d) => [d.type + d.name, d]));
  for (const d of page.items) {
    const row = tbody.insertRow();
    cell(row, d.name);
    cell(row, d.type);
    cell(row, d.pending, true);
    cell(row, d.inflight, true);
    cell(row, d.consumers, true);
    cell(row, d.enqueued, true);
    const p = before.get(d.type + d.name);
    cell(row, p && seconds > 0 ? ((d.enqueued - p.enqueued) / seconds).toFixed(1) : "", true);
    cell(row, d.dequeued, true);
    cell(row, p && seconds > 0 ? ((d.dequeued - p.dequeued) / seconds).toFixed(1) : "", true);
    cell(row, d.dead_lettered, true);
    const actions = cell(row, "");
    if (d.type === "queue") {
      const b = document.createElement("button");
      b.className = "purge";
      b.textContent = "purge";
      b.onclick = () => purge(d.name);
      actions.appendChild(b);
      const br = document.createElement("button");
      br.className = "browse";
      br.textContent = "browse";
      br.onclick = () => browse(d.name, 0);
      actions.appendChild(br);
    }
  }
}

async function purge(name) {
  if (!confirm(`Drop every pending message of ${name}?`)) return;
  const r = await fetch("/api/destinations/" + encodeURIComponent(name) + "/purge",
                        { method: "POST", headers: { "X-Tandem-Admin": "console" } });
  const body = await r.json().catch(() => ({}));
  alert(r.ok ? `${name}: ${body.purged} purged` : `purge refused (HTTP ${r.status}): ${body.error || ""}`);
}

// The browse panel: one page of a queue's pending messages, paged by msg_seq (`after`).
const browse_page = 20;
const browsing = { name: null, pages: [] };

async function browse(name, after) {
  browsing.name = name;
  if (after === 0) browsing.pages = [];
  $("browse-panel").hidden = false;
  $("browse-name").textContent = name;
  $("browse-problem").textContent = "";
  const q = new URLSearchParams({ after, limit: browse_page });
  const r = await fetch("/api/destinations/" + encodeURIComponent(name) + "/browse?" + q, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    $("browse-problem").textContent = `browse refused (HTTP ${r.status}): ${body.error || ""}`;
    return;
  }
  browsing.pages.push(body);
  renderBrowse(body);
}

function renderBrowse(page) {
  const tbody = $("browse").tBodies[0];
  tbody.replaceChildren();
  const first = (browsing.pages.length - 1) * browse_page;
  $("browse-range").textContent = page.messages.length
    ? `(${first + 1}-${first + page.messages.length}${page.more ? ", more after" : ", the last"})` : "(none pending)";
  page.messages.forEach((m, i) => {
    const row = tbody.insertRow();
    cell(row, first + i + 1, true);
    cell(row, m.message_id);
    cell(row, m.persistent ? "yes" : "no");
    cell(row, m.priority, true);
    const h = cell(row, m.headers.map(([k, v]) => `${k}:${v}`).join("\n"));
    h.className = "pre";
    cell(row, m.body_bytes, true);
    const b = cell(row, m.body_preview + (m.body_truncated ? " \u2026" : ""));
    b.className = "pre body";
  });
  $("browse-more").disabled = !page.more;
  $("browse-more").onclick = () => browse(page.destination, page.next);
}

// The send panel: one STOMP-over-WebSocket session per click, to the master's WebSocket URL.
const send_state = { group: null };

function websocketUrl(group) {
  const master = group && group.members.find((m) => m.health && m.health.role === "master");
  const urls = (master ? master.health.client_urls : []) || [];
  const url = urls.find((u) => u.startsWith("ws://") || u.startsWith("wss://"));
  if (!url) return null;
  // A listener on every address names itself 0.0.0.0 or [::]: use the host this page came from.
  return url.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, "//" + location.hostname);
}

function sendTestMessage() {
  const result = $("send-result");
  if (!window.StompJs) {
    result.textContent = "this tandemd was built without @stomp/stompjs (./tandem.sh setup, then rebuild)";
    return;
  }
  const url = websocketUrl(send_state.group);
  if (!url) {
    result.textContent = "no master with a ws:// or wss:// listener (set ws_listen)";
    return;
  }
  const destination = $("send-destination").value;
  const receipt = "console-" + Date.now();
  result.textContent = "connecting to " + url;
  const headers = {};
  if ($("send-login").value) Object.assign(headers, { login: $("send-login").value, passcode: $("send-passcode").value });
  const client = new StompJs.Client({
    webSocketFactory: () => new WebSocket(url, ["v12.stomp", "v11.stomp", "v10.stomp"]),
    connectHeaders: headers, reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
  });
  let finished = false;
  const done = (text) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    result.textContent = text;
    client.deactivate();
  };
  const timer = setTimeout(() => done("no RECEIPT within 10 s"), 10000);
  client.onConnect = () => {
    client.watchForReceipt(receipt, () => {
      done(`sent to ${destination} via ${url}: RECEIPT ${receipt}`);
      document.body.dataset.sent = receipt;
    });
    client.publish({ destination, body: $("send-body").value,
                     headers: { receipt, persistent: String($("send-persistent").checked) } });
  };
  client.onStompError = (frame) => done("ERROR: " + (frame.headers.message || frame.body));
  client.onWebSocketClose = (e) => done(`the WebSocket to ${url} closed (code ${e.code}) before the RECEIPT`);
  client.activate();
}

// `page`: the first page of GET /api/connections (paged since issue 17: {total, items}).
function renderConnections(page) {
  const tbody = $("connections").tBodies[0];
  tbody.replaceChildren();
  const list = page ? page.items : [];
  $("conn-count").textContent = !page ? "(served by the master only)"
    : page.total > list.length ? `(${page.total}, the first ${list.length} shown)` : `(${page.total})`;
  for (const c of list) {
    const row = tbody.insertRow();
    cell(row, c.session, true);
    cell(row, c.remote);
    cell(row, c.transport || (c.tls ? "tls" : "tcp"));
    cell(row, c.login);
    cell(row, c.version);
    cell(row, (c.subscriptions || []).length, true);
    cell(row, c.frames_in, true);
  }
}

async function refresh() {
  try {
    const q = new URLSearchParams({ offset: view.offset, limit: page_size, filter: view.filter, sort: view.sort });
    const [health, group, destinations, connections] = await Promise.all([
      fetch("/health", { cache: "no-store" }).then((r) => r.json()), get("/api/group"),
      get("/api/destinations?" + q), get("/api/connections?limit=500")]);
    const now = Date.now();
    renderHealth(health);
    renderGroup(group);
    renderTimeline(group);
    send_state.group = group;
    renderDestinations(destinations, view.last && view.last.page, view.last ? (now - view.last.at) / 1000 : 0);
    renderConnections(connections);
    view.last = { page: destinations, at: now };
    $("updated").textContent = "updated " + new Date(now).toISOString().slice(11, 19) + "Z";
    $("problem").textContent = "";
    document.body.dataset.loaded = "yes";
  } catch (e) {
    $("problem").textContent = String(e);
  }
}

function start() {
  $("filter").oninput = (e) => { view.filter = e.target.value; view.offset = 0; view.last = null; refresh(); };
  $("sort").onchange = (e) => { view.sort = e.target.value; view.offset = 0; view.last = null; refresh(); };
  $("prev").onclick = () => { view.offset = Math.max(0, view.offset - page_size); view.last = null; refresh(); };
  $("next").onclick = () => { view.offset += page_size; view.last = null; refresh(); };
  $("browse-first").onclick = () => browsing.name && browse(browsing.name, 0);
  $("send-button").onclick = sendTestMessage;
  $("browse-close").onclick = () => { $("browse-panel").hidden = true; browsing.name = null; };
  refresh();
  setInterval(refresh, poll_ms);
}

document.addEventListener("DOMContentLoaded", start);
