/**
 * The dashboard page: each service's state, a timeline of the last 24 hours
 * or 7 days (asleep, starting, awake, stopping, not watched), its wakes and
 * stops, and what sleeping saved, kept live from `/api/live`. One document
 * with its style and script inline: every byte of it is served by sleepingd
 * itself, no CDN, font or image from elsewhere.
 *
 * @module
 */

/** The page's style sheet. */
const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f3f4f7; --panel: #fff; --text: #1b1e25; --muted: #667085; --line: #e4e7ec;
  --track: #eceef2; --tip-bg: #101828; --tip-text: #f9fafb; --mark: #344054;
  --asleep: #6366f1; --starting: #f59e0b; --awake: #16a34a; --stopping: #ea580c;
  --failed: #dc2626; --unknown: #98a2b3; --hatch-a: #c9ced8; --hatch-b: #eef0f3;
  --shadow: 0 1px 2px rgb(16 24 40 / 6%), 0 1px 3px rgb(16 24 40 / 10%);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1014; --panel: #171a21; --text: #e8eaef; --muted: #98a2b3; --line: #2a2f38;
    --track: #23272f; --tip-bg: #f2f4f7; --tip-text: #101828; --mark: #d0d5dd;
    --asleep: #818cf8; --starting: #fbbf24; --awake: #22c55e; --stopping: #fb923c;
    --failed: #f87171; --unknown: #667085; --hatch-a: #3b414d; --hatch-b: #23272f;
    --shadow: 0 1px 2px rgb(0 0 0 / 45%);
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body {
  margin: 0; background: var(--bg); color: var(--text); -webkit-text-size-adjust: 100%;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-variant-numeric: tabular-nums;
}
.page { max-width: 1240px; margin: 0 auto; padding: 22px 24px 40px; }
[data-state=asleep], [data-span=asleep], [data-legend=asleep] { --c: var(--asleep); }
[data-state=starting], [data-span=starting], [data-legend=starting] { --c: var(--starting); }
[data-state=awake], [data-span=awake], [data-legend=awake] { --c: var(--awake); }
[data-state=stopping], [data-span=stopping], [data-legend=stopping] { --c: var(--stopping); }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; }
.brand { display: flex; align-items: center; gap: 12px; margin-right: auto; }
.logo { width: 38px; height: 38px; padding: 8px; border-radius: 11px; background: var(--asleep); }
.logo path { fill: #fff; }
h1 { margin: 0; font-size: 21px; line-height: 1.2; letter-spacing: -0.01em; }
.version { margin-left: 6px; font-size: 12px; font-weight: 500; color: var(--muted); }
.sub { font-size: 12.5px; }
.controls { display: flex; align-items: center; gap: 16px; }
.live { display: inline-flex; align-items: center; gap: 6px; font-size: 12.5px; }
.live, .sub { color: var(--muted); }
.live::before {
  content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--unknown);
}
.live[data-live=live]::before {
  background: var(--awake); box-shadow: 0 0 0 3px color-mix(in srgb, var(--awake) 25%, transparent);
}
.live[data-live=reconnecting]::before { background: var(--starting); animation: pulse 1s infinite; }
.switch { display: inline-flex; padding: 3px; border-radius: 10px; background: var(--track); }
.switch button {
  font: inherit; font-size: 13px; color: var(--muted); background: none; border: 0;
  padding: 5px 13px; border-radius: 7px; cursor: pointer;
}
.switch button[aria-pressed=true] {
  background: var(--panel); color: var(--text); font-weight: 600; box-shadow: var(--shadow);
}
button:focus-visible { outline: 2px solid var(--asleep); outline-offset: 2px; }
.banner {
  margin-top: 16px; padding: 10px 14px; border-radius: 10px;
  background: color-mix(in srgb, var(--failed) 12%, var(--panel));
  border: 1px solid color-mix(in srgb, var(--failed) 45%, transparent);
}
.banner p { margin: 0; }
.banner strong { color: var(--failed); }
.summary {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px;
  margin: 18px 0 14px;
}
.tile, .card { border-radius: 12px; background: var(--panel); box-shadow: var(--shadow); }
.tile { padding: 12px 16px; }
.tile .label { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; }
.tile .label, .tile .note { color: var(--muted); }
.tile .value { font-size: 24px; font-weight: 650; line-height: 1.3; }
.tile .note { font-size: 12px; }
.legend {
  display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 0 0 12px; padding: 0 2px;
  list-style: none; font-size: 12.5px; color: var(--muted);
}
.legend li { display: inline-flex; align-items: center; gap: 7px; }
.swatch { width: 16px; height: 10px; border-radius: 3px; background: var(--c); }
.swatch[data-legend=unknown], .span[data-span=unknown] {
  background: repeating-linear-gradient(135deg, var(--hatch-a) 0 3px, var(--hatch-b) 3px 7px);
}
.legend .tri { position: relative; width: 12px; height: 10px; }
.services { display: grid; gap: 12px; }
.card {
  display: grid; grid-template-columns: 250px minmax(0, 1fr); gap: 10px 28px;
  padding: 14px 20px 10px 18px; border-left: 4px solid var(--c, var(--line));
}
.head { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 10px; }
.name { margin: 0; font-size: 15.5px; font-weight: 650; overflow-wrap: anywhere; }
.badge {
  display: inline-flex; align-items: center; gap: 6px; padding: 1px 9px 1px 8px;
  border-radius: 999px; font-size: 12px; font-weight: 600;
  background: color-mix(in srgb, var(--c, var(--unknown)) 15%, transparent);
  color: color-mix(in srgb, var(--c, var(--unknown)) 62%, var(--text));
}
.badge::before {
  content: ""; width: 7px; height: 7px; border-radius: 50%; background: var(--c, var(--unknown));
}
.card[data-state=starting] .badge::before, .card[data-state=stopping] .badge::before {
  animation: pulse 1s infinite;
}
.facts {
  display: flex; flex-direction: column; gap: 1px; margin-top: 6px;
  font-size: 12.5px; color: var(--muted);
}
.facts b { color: var(--text); font-weight: 600; }
.actions { display: flex; gap: 6px; margin-top: 8px; }
.token {
  font: inherit; font-size: 12.5px; width: 9em; padding: 4px 8px; border-radius: 8px;
  border: 1px solid var(--line); background: var(--panel); color: var(--text);
}
.token[hidden] { display: none; }
.actions[hidden] { display: none; }
.act {
  font: inherit; font-size: 12px; padding: 3px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--panel); color: var(--text);
}
.act:disabled { opacity: .4; cursor: default; }
.facts .bad, .figs .bad b { color: var(--failed); }
.since { font-size: 12.5px; color: var(--muted); }
.since b { color: var(--text); font-weight: 600; }
.timeline { align-self: center; transition: opacity .2s .15s; }
[data-stale] .timeline { opacity: .45; }
.route b { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.figs { display: flex; flex-wrap: wrap; gap: 2px 18px; font-size: 12.5px; color: var(--muted); }
.figs b { color: var(--text); font-size: 14px; font-weight: 650; }
.figs .saved b { color: var(--awake); }
.track { position: relative; height: 46px; }
.bar {
  position: absolute; inset: 13px 0 11px; border-radius: 5px; background: var(--track);
  overflow: hidden;
}
.span { position: absolute; top: 0; bottom: 0; min-width: 2px; background: var(--c); }
.span:hover, .span.tipped { filter: brightness(1.15) saturate(1.1); }
.gridline { position: absolute; top: 0; bottom: 0; width: 1px; pointer-events: none;
  background: color-mix(in srgb, var(--panel) 60%, transparent); }
.mark {
  position: absolute; width: 16px; height: 13px; margin-left: -8px; padding: 0;
  border: 0; border-radius: 3px; background: none; cursor: pointer;
}
.mark::before, .legend .tri::before {
  content: ""; position: absolute; left: 3px; width: 10px; height: 8px; background: var(--m);
}
.legend .tri::before { left: 1px; top: 1px; }
[data-wake], [data-legend-mark=wake] { --m: var(--mark); }
[data-wake=failed], [data-legend-mark=failed] { --m: var(--failed); }
[data-wake=pending] { --m: var(--starting); }
[data-stop], [data-legend-mark=stop] { --m: var(--muted); }
.mark[data-wake] { top: 0; }
[data-shown-period="7d"] .mark::before { width: 8px; height: 7px; margin-left: 1px; }
.mark[data-wake]::before, [data-legend-mark=wake]::before, [data-legend-mark=failed]::before {
  top: 3px; clip-path: polygon(0 0, 100% 0, 50% 100%);
}
.mark[data-stop] { bottom: 0; height: 11px; }
.mark[data-stop]::before, [data-legend-mark=stop]::before {
  top: 2px; clip-path: polygon(50% 0, 100% 100%, 0 100%);
}
.mark:hover::after, .mark.tipped::after {
  content: ""; position: absolute; left: 7.5px; width: 1px; height: 22px; background: var(--m);
}
.mark[data-wake]::after { top: 13px; }
.mark[data-stop]::after { bottom: 11px; }
.ticks { position: relative; height: 17px; font-size: 11px; color: var(--muted); }
.tick { position: absolute; top: 0; transform: translateX(-50%); white-space: nowrap; }
.tick.now { right: 0; transform: none; font-weight: 600; }
.empty {
  padding: 36px 20px; border: 1px dashed var(--line); border-radius: 12px;
  background: var(--panel); color: var(--muted); text-align: center;
}
.empty strong { display: block; margin-bottom: 4px; color: var(--text); font-size: 15px; }
.foot { margin-top: 22px; font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.tooltip {
  position: fixed; z-index: 10; max-width: min(360px, calc(100vw - 16px)); padding: 8px 11px;
  border-radius: 8px; background: var(--tip-bg); color: var(--tip-text); font-size: 12.5px;
  line-height: 1.4; box-shadow: 0 8px 24px rgb(0 0 0 / 25%); pointer-events: none;
  overflow-wrap: anywhere;
}
.tooltip strong { display: block; }
.tooltip span { display: block; opacity: .88; }
@keyframes pulse { 50% { opacity: .35; } }
@media (prefers-reduced-motion: reduce) { * { animation: none !important; } }
@media (pointer: coarse) { /* a larger target for a finger */
  .mark { width: 22px; margin-left: -11px; }
  .mark::before { left: 6px; }
  .mark::after { left: 10.5px; }
}
@media (max-width: 720px) {
  .page { padding: 14px 12px 32px; }
  .brand { width: 100%; }
  .controls { width: 100%; justify-content: space-between; }
  .summary { grid-template-columns: 1fr 1fr; gap: 8px; margin-top: 14px; }
  .tile { padding: 10px 12px; }
  .tile .value { font-size: 19px; }
  .card { grid-template-columns: minmax(0, 1fr); gap: 8px; padding: 12px 14px 8px 12px; }
  .facts { flex-direction: row; flex-wrap: wrap; gap: 2px 14px; margin-top: 4px; }
}
`;

/** The page's markup, between its style and its script; filled in by the script. */
const BODY = `
<div class="page">
  <header class="top">
    <div class="brand">
      <svg class="logo" viewBox="0 0 24 24" aria-hidden="true">
        <path d="M20.5 14.6A8.6 8.6 0 0 1 9.4 3.5a8.6 8.6 0 1 0 11.1 11.1Z"/>
      </svg>
      <div>
        <h1>sleepingd<span class="version" id="version"></span></h1>
        <div class="sub" id="uptime" data-uptime>connecting to the daemon…</div>
      </div>
    </div>
    <div class="controls">
      <span class="live" id="live" data-live="connecting" role="status">connecting…</span>
      <input class="token" id="token" type="password" placeholder="API token" autocomplete="off"
        aria-label="The token of API_TOKEN_FILE, for the Wake now and Sleep now buttons" hidden>
      <div class="switch" role="group" aria-label="Period shown">
        <button type="button" data-period="24h" aria-pressed="true">24 hours</button>
        <button type="button" data-period="7d" aria-pressed="false">7 days</button>
      </div>
    </div>
  </header>
  <div class="banner" id="error" data-error role="alert" hidden></div>
  <section class="summary" aria-label="Summary">
    <div class="tile"><div class="label">Services</div>
      <div class="value" id="total-services" data-total-services>—</div>
      <div class="note" id="total-states"></div></div>
    <div class="tile"><div class="label">Hours asleep</div>
      <div class="value" id="total-hours" data-total-asleep-hours>—</div>
      <div class="note" id="period-note">in the last 24 hours</div></div>
    <div class="tile"><div class="label">Share asleep</div>
      <div class="value" id="total-share" data-total-asleep-share>—</div>
      <div class="note">of the time watched</div></div>
    <div class="tile" id="saved-tile" hidden><div class="label">Saved</div>
      <div class="value" id="total-saved" data-total-saved></div>
      <div class="note">hours asleep × COST_PER_HOUR</div></div>
  </section>
  <ul class="legend" aria-label="Legend">
    <li><span class="swatch" data-legend="asleep"></span>asleep</li>
    <li><span class="swatch" data-legend="starting"></span>starting</li>
    <li><span class="swatch" data-legend="awake"></span>awake</li>
    <li><span class="swatch" data-legend="stopping"></span>stopping</li>
    <li><span class="swatch" data-legend="unknown"></span>sleepingd not running</li>
    <li><span class="tri" data-legend-mark="wake"></span>wake</li>
    <li><span class="tri" data-legend-mark="failed"></span>failed wake</li>
    <li><span class="tri" data-legend-mark="stop"></span>stop</li>
  </ul>
  <main class="services" id="services" aria-label="Services"></main>
  <div class="empty" id="empty" data-empty hidden>
    <strong>No services yet</strong>
    Add a service section to the configuration file, then reload sleepingd.
  </div>
  <footer class="foot" id="foot"></footer>
</div>
<div class="tooltip" id="tooltip" role="tooltip" hidden></div>
`;

/** The page's script: plain JavaScript, run once the markup above is parsed. */
const SCRIPT = `
"use strict";
const PERIOD_NOTES = { "24h": "in the last 24 hours", "7d": "in the last 7 days" };
const TIP_TARGETS = "[data-span], [data-wake], [data-stop]";
const app = {
  period: "24h", // the period chosen
  shown: "24h", // the period of the history drawn
  status: null, // the last /api/status
  history: null, // the last /api/history: { from, to, now } in ms, and its services
  fetchedAt: 0, // Date.now() when that history arrived
  skew: 0, // the daemon's clock minus ours, in ms
  rows: new Map(), // service name -> its card and the elements inside
  errors: new Map(), // what failed ("status", "history") -> message
  seq: 0, // numbers history requests, so that a late answer is dropped
  loads: 0,
  liveDown: false,
};
const tips = new WeakMap(); // element -> () => its tooltip's lines
const tip = { node: document.getElementById("tooltip"), target: null, pinned: false };

// ---- helpers

function byId(id) { return document.getElementById(id); }

/** A new element, with a class and text when given (text is never parsed as HTML). */
function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A <b> holding a value, with a data-* hook for tests. */
function value(hook, text) {
  const node = make("b", "", text);
  node.setAttribute("data-" + hook, "");
  return node;
}

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
function pad(n) { return String(n).padStart(2, "0"); }
function serverNow() { return Date.now() + app.skew; }

const fmtTime = new Intl.DateTimeFormat(undefined,
  { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const fmtHm = new Intl.DateTimeFormat(undefined,
  { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const fmtDay = new Intl.DateTimeFormat(undefined, { weekday: "short" });

/** "Tue " before a time when the period spans several days. */
function day(ms) { return app.shown === "7d" ? fmtDay.format(ms) + " " : ""; }
function clock(ms) { return day(ms) + fmtTime.format(ms); }
function hm(ms) { return day(ms) + fmtHm.format(ms); }

/** Compact: "45s", "3m 20s", "2h 05m", "3d 4h". */
function compact(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + pad(s % 60) + "s";
  const h = Math.floor(m / 60);
  if (h < 24) return h + "h " + pad(m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

/** In words: "40 s", "49 min", "2 h 5 min", "3 d 4 h". */
function spell(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  const m = Math.round(s / 60);
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  if (h < 24) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  return Math.floor(h / 24) + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
}

/** A command's duration: "0.21 s", "3.0 s", "125 s". */
function secs(s) {
  return (s < 1 ? String(Number(s.toFixed(2))) : s < 100 ? s.toFixed(1) : s.toFixed(0)) + " s";
}
function hours(seconds) { return (seconds / 3600).toFixed(1) + " h"; }
function percent(share) { return share === null ? "—" : Math.round(share * 100) + " %"; }

/** "2.58 USD", "€2.58", or "2.58" without a currency. */
function money(amount, currency) {
  const n = amount.toFixed(2);
  if (currency === "€" || currency === "$" || currency === "£") return currency + n;
  return currency ? n + " " + currency : n;
}

// ---- loading

/** Shows or clears one line of the error banner. */
function setError(source, message) {
  if (message) app.errors.set(source, message);
  else app.errors.delete(source);
  const lines = [...app.errors.values()].map((text) => {
    const p = make("p");
    p.append(make("strong", "", "Error: "), text);
    return p;
  });
  byId("error").replaceChildren(...lines);
  byId("error").hidden = lines.length === 0;
}

async function fetchJson(path) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
  } catch (error) {
    throw new Error("sleepingd did not answer (" + error.message + ")");
  }
  if (!response.ok) throw new Error("HTTP " + response.status + " " + response.statusText);
  return await response.json();
}

async function loadStatus() {
  try {
    renderStatus(await fetchJson("api/status"));
    setError("status", null);
  } catch (error) {
    setError("status", "could not load /api/status: " + error.message);
  }
}

async function loadHistory() {
  const seq = ++app.seq;
  const period = app.period;
  try {
    const history = await fetchJson("api/history?period=" + period);
    if (seq !== app.seq) return; // a newer request is under way (the period changed)
    renderHistory(history, period);
    setError("history", null);
  } catch (error) {
    if (seq === app.seq) setError("history", "could not load /api/history: " + error.message);
  }
}

let historyTimer = 0;
/** Reloads the history soon, once for a burst of events. */
function historySoon() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(loadHistory, 300);
}

function markReady() {
  if (app.status && app.loads > 0) document.body.dataset.ready = "yes";
}

// ---- service cards

/** The card of a service, made on first sight; the element lives as long as the service. */
function rowFor(name) {
  let row = app.rows.get(name);
  if (row) return row;
  const el = make("article", "card");
  el.dataset.service = name;
  el.dataset.state = "unknown";
  const badge = make("span", "badge", "unknown");
  const since = value("since", "");
  const head = make("div", "head");
  const sinceLine = make("span", "since");
  sinceLine.append("for ", since);
  sinceLine.hidden = true; // until the status says since when
  head.append(make("h2", "name", name), badge, sinceLine);
  const facts = make("div", "facts");
  const info = make("div", "info");
  const actions = make("div", "actions");
  actions.hidden = true;
  const wakeButton = make("button", "act", "Wake now");
  const sleepButton = make("button", "act", "Sleep now");
  for (const [button, action] of [[wakeButton, "wake"], [sleepButton, "sleep"]]) {
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => act(name, action, button));
  }
  actions.append(wakeButton, sleepButton);
  info.append(head, facts, actions);
  const figs = make("div", "figs");
  const bar = make("div", "bar");
  const track = make("div", "track");
  track.dataset.timeline = "";
  track.append(bar);
  const ticks = make("div", "ticks");
  ticks.setAttribute("aria-hidden", "true");
  const timeline = make("div", "timeline");
  timeline.append(figs, track, ticks);
  el.append(info, timeline);
  row = {
    el, badge, since, sinceLine, facts, figs, bar, track, ticks, actions, wakeButton, sleepButton,
    stateSince: NaN,
  };
  row.spans = []; // { node, from, to, state, open }
  row.marks = []; // { node, at }
  app.rows.set(name, row);
  return row;
}

/** Keeps exactly the cards of \`names\`, in that order, moving only those out of place. */
function syncRows(names) {
  const list = byId("services");
  for (const [name, row] of app.rows) {
    if (!names.includes(name)) {
      row.el.remove();
      app.rows.delete(name);
    }
  }
  names.forEach((name, i) => {
    const el = rowFor(name).el;
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] ?? null);
  });
  byId("empty").hidden = names.length > 0;
}

/** Fills a card's facts from the service's status. */
function updateRow(row, service) {
  row.el.dataset.state = service.state;
  row.badge.textContent = service.state;
  row.stateSince = Date.parse(service.stateSince);
  row.sinceLine.hidden = false;
  const route = make("span", "route");
  const ports = service.ports.length > 1 || service.ports[0].endsWith("/udp");
  route.append(ports ? "ports " : "port ", value("port", ports ? service.ports.join(" ") : String(service.port)), " → ",
    value("target", service.target ?? "—"));
  const open = make("span");
  open.append(value("open", String(service.openConnections)),
    service.openConnections === 1 ? " open connection" : " open connections");
  const facts = [route, open];
  if (service.kernel) { // FORWARD=kernel: which path carries new connections now
    const path = make("span", "path");
    path.dataset.path = service.path;
    path.title = service.pathNote ?? "";
    path.append(service.path === "kernel" ? "kernel path, " : "proxy path now, ",
      value("kernel-open", String(service.kernel.openConnections)), " open through the kernel");
    facts.push(path);
  }
  row.facts.replaceChildren(...facts);
  row.actions.hidden = !app.status?.actions;
  row.wakeButton.disabled = service.state !== "asleep";
  row.sleepButton.disabled = service.state !== "awake";
}

/**
 * Asks sleepingd to wake or put a service to sleep, with the token typed in
 * the header (kept for this tab only).
 */
async function act(name, action, button) {
  const field = byId("token");
  const token = field.value.trim();
  if (!token) {
    setError("action", "type the token of API_TOKEN_FILE in the field above to " + action + " " + name);
    field.focus();
    return;
  }
  sessionStorage.setItem("sleepingd-token", token);
  button.disabled = true;
  try {
    const response = await fetch("api/services/" + encodeURIComponent(name) + "/" + action, {
      method: "POST",
      headers: { authorization: "Bearer " + token, "content-type": "application/json" },
      body: "{}",
    });
    const answer = await response.json().catch(() => ({}));
    setError("action", response.ok ? null : action + " " + name + ": " + (answer.error ?? response.status));
  } catch (error) {
    setError("action", action + " " + name + ": " + error.message);
  } finally {
    button.disabled = false;
    loadStatus();
  }
}

function renderStatus(status) {
  app.status = status;
  const field = byId("token");
  if (field.hidden && status.actions) field.value = sessionStorage.getItem("sleepingd-token") ?? "";
  field.hidden = !status.actions;
  byId("version").textContent = "v" + status.version.replace(/^v/, "");
  for (const service of status.services) updateRow(rowFor(service.name), service);
  syncRows(status.services.map((service) => service.name));
  const files = status.configFiles.length ? status.configFiles.join(", ") : "none";
  byId("foot").textContent = "pid " + status.pid + " · configuration: " + files +
    " · this page and all its data are served by sleepingd itself";
  renderSummary();
  tickClock();
  markReady();
}

// ---- timelines

/** The window drawn now: a period ending now slides with the clock between loads. */
function viewWindow() {
  const h = app.history;
  const elapsed = Date.now() - app.fetchedAt;
  if (Math.abs(h.to - h.now) < 2000) {
    return { from: h.from + elapsed, to: h.to + elapsed, now: h.now + elapsed };
  }
  return { from: h.from, to: h.to, now: Math.min(h.to, h.now + elapsed) };
}

function spanLines(span) {
  const to = span.open ? viewWindow().now : span.to;
  const what = span.state === "unknown" ? "sleepingd not running" : span.state;
  const end = span.open ? "now" : hm(to);
  return [what + " " + hm(span.from) + " – " + end + " (" + spell((to - span.from) / 1000) + ")"];
}

function wakeLines(wake) {
  const lines = ["Wake at " + clock(Date.parse(wake.at)), wake.cause];
  const took = wake.seconds === null ? "" : " after " + secs(wake.seconds);
  if (wake.ok === true) lines.push("awake" + took + (wake.target ? " at " + wake.target : ""));
  else if (wake.ok === false) lines.push("failed" + took + (wake.error ? ": " + wake.error : ""));
  else lines.push("starting…");
  return lines.filter(Boolean);
}

function stopLines(stop) {
  const why = stop.reason.replaceAll("_", " ") + (stop.detail ? ": " + stop.detail : "");
  const lines = ["Stop at " + clock(Date.parse(stop.at)), why];
  if (stop.seconds !== null) lines.push("STOP_CMD " + secs(stop.seconds));
  return lines;
}

/** A wake or stop marker: a focusable button whose title and tooltip tell what happened. */
function addMark(row, kind, what, at, lines) {
  const node = make("button", "mark");
  node.type = "button";
  node.tabIndex = 0;
  node.setAttribute("data-" + kind, what);
  node.dataset.key = kind + at;
  node.title = lines.join(" — ");
  node.setAttribute("aria-label", node.title);
  tips.set(node, () => lines);
  row.track.append(node);
  row.marks.push({ node, at });
}

/** Remembers the focused marker and the tooltip's target in a row, to find them after a rebuild. */
function remember(row) {
  const active = document.activeElement;
  const focused = row.track.contains(active) ? active.dataset.key : null;
  const tipped = row.track.contains(tip.target) ? tip.target.dataset.key : null;
  const pinned = tip.pinned;
  return () => {
    const find = (key) => key && row.track.querySelector('[data-key="' + CSS.escape(key) + '"]');
    find(focused)?.focus({ preventScroll: true });
    if (!tipped) return;
    if (find(tipped)) showTip(find(tipped), pinned);
    else hideTip();
  };
}

/** Rebuilds the spans and markers of a row's timeline; positions come from layout(). */
function buildTimeline(row, timeline) {
  const restore = remember(row);
  row.bar.replaceChildren();
  row.track.replaceChildren(row.bar);
  row.spans = [];
  row.marks = [];
  const spans = timeline ? timeline.spans : [];
  spans.forEach((span, i) => {
    const node = make("div", "span");
    node.dataset.span = span.state;
    const item = { node, state: span.state, from: Date.parse(span.from), to: Date.parse(span.to) };
    item.open = i === spans.length - 1 && item.to >= app.history.now - 1000;
    node.dataset.key = "span" + item.from;
    tips.set(node, () => spanLines(item));
    row.bar.append(node);
    row.spans.push(item);
  });
  for (const wake of timeline ? timeline.wakes : []) {
    const kind = wake.ok === true ? "ok" : wake.ok === false ? "failed" : "pending";
    addMark(row, "wake", kind, Date.parse(wake.at), wakeLines(wake));
  }
  for (const stop of timeline ? timeline.stops : []) {
    addMark(row, "stop", stop.reason, Date.parse(stop.at), stopLines(stop));
  }
  const figs = [];
  const fig = (hook, text, label, className) => {
    const node = make("span", className);
    node.append(value(hook, text), " " + label);
    figs.push(node);
  };
  fig("asleep-hours", timeline ? hours(timeline.asleepSeconds) : "—", "asleep");
  fig("asleep-share", timeline ? percent(timeline.asleepShare) : "—", "of the time");
  const wakes = timeline ? timeline.wakes.length : 0;
  const failed = timeline ? timeline.wakes.filter((wake) => wake.ok === false).length : 0;
  fig("wakes", String(wakes), (wakes === 1 ? "wake" : "wakes") + (failed ? "," : ""));
  if (failed) fig("wake-failures", String(failed), "failed", "bad");
  const cost = timeline?.cost;
  if (cost) fig("saved", money(cost.saved, cost.currency), "saved", "saved");
  row.figs.replaceChildren(...figs);
  restore();
}

/** Grid lines and labels: every 6 hours over a day, each day (its name centred) over a week. */
function ticksOf(view) {
  const ticks = [];
  const at = new Date(view.from);
  at.setHours(app.shown === "7d" ? 0 : at.getHours() - (at.getHours() % 6), 0, 0, 0);
  while (at.getTime() < view.to) {
    const start = at.getTime();
    if (app.shown === "7d") {
      at.setDate(at.getDate() + 1);
      const middle = (Math.max(start, view.from) + Math.min(at.getTime(), view.to)) / 2;
      ticks.push({ line: start, at: middle, label: fmtDay.format(start) });
    } else {
      at.setHours(at.getHours() + 6);
      ticks.push({ line: start, at: start, label: fmtHm.format(start) });
    }
  }
  return ticks.filter((tick) => tick.at > view.from);
}

/** Places every span, marker and tick for the window as of now. */
function layout() {
  if (!app.history) return;
  const view = viewWindow();
  const pct = (ms) => ((ms - view.from) / (view.to - view.from)) * 100;
  const ticks = ticksOf(view);
  const width = byId("services").querySelector(".ticks")?.clientWidth ?? 0;
  const right = view.now === view.to ? width - 30 : width; // room kept for "now"
  for (const row of app.rows.values()) {
    for (const span of row.spans) {
      const from = Math.max(span.from, view.from);
      const to = Math.min(span.open ? view.now : span.to, view.to);
      span.node.hidden = to < from;
      span.node.style.left = pct(from) + "%";
      span.node.style.width = pct(to) - pct(from) + "%";
    }
    for (const mark of row.marks) {
      mark.node.hidden = mark.at < view.from || mark.at > view.to;
      mark.node.style.left = pct(mark.at) + "%";
    }
    row.bar.querySelectorAll(".gridline").forEach((line) => line.remove());
    const labels = [];
    for (const tick of ticks) {
      if (tick.line > view.from) {
        const line = row.bar.appendChild(make("div", "gridline"));
        line.style.left = pct(tick.line) + "%";
      }
      const x = (pct(tick.at) / 100) * width;
      const half = tick.label.length * 3.5; // about half the label's width, in px
      if (x - half < 0 || x + half > right) continue; // it would be cut off, or cover "now"
      const label = make("span", "tick", tick.label);
      label.style.left = pct(tick.at) + "%";
      labels.push(label);
    }
    if (right < width) labels.push(make("span", "tick now", "now"));
    row.ticks.replaceChildren(...labels);
  }
  if (tip.target?.matches("[data-span]")) placeTip();
}

function renderHistory(history, period) {
  app.shown = period;
  const [from, to, now] = [history.from, history.to, history.now].map(Date.parse);
  app.history = { from, to, now, services: history.services };
  app.fetchedAt = Date.now();
  app.skew = app.history.now - app.fetchedAt;
  document.body.dataset.shownPeriod = period;
  delete document.body.dataset.stale;
  const byName = new Map(history.services.map((timeline) => [timeline.name, timeline]));
  if (!app.status) syncRows(history.services.map((timeline) => timeline.name));
  for (const [name, row] of app.rows) buildTimeline(row, byName.get(name));
  layout();
  renderSummary();
  app.loads += 1;
  document.body.dataset.historyLoads = String(app.loads);
  markReady();
}

// ---- header

/** The totals over every service: states now, and hours asleep and money saved in the period. */
function renderSummary() {
  const services = app.status ? app.status.services : [];
  const counts = new Map();
  for (const service of services) counts.set(service.state, (counts.get(service.state) ?? 0) + 1);
  byId("total-services").textContent = String(app.status ? services.length : "—");
  byId("total-states").textContent = ["awake", "starting", "stopping", "asleep"]
    .filter((state) => counts.has(state))
    .map((state) => counts.get(state) + " " + state)
    .join(" · ");
  byId("period-note").textContent = PERIOD_NOTES[app.shown];
  if (!app.history) return;
  let asleep = 0;
  let watched = 0;
  const saved = new Map();
  for (const timeline of app.history.services) {
    if (!app.rows.has(timeline.name)) continue;
    asleep += timeline.asleepSeconds;
    watched += timeline.watchedSeconds;
    const cost = timeline.cost;
    if (cost) saved.set(cost.currency, (saved.get(cost.currency) ?? 0) + cost.saved);
  }
  byId("total-hours").textContent = hours(asleep);
  byId("total-share").textContent = percent(watched > 0 ? asleep / watched : null);
  const amounts = [...saved].map(([currency, amount]) => money(amount, currency));
  byId("total-saved").textContent = amounts.join(" · ");
  byId("saved-tile").hidden = saved.size === 0;
}

/** Once a second: how long each service has been in its state, and the daemon up. */
function tickClock() {
  const now = serverNow();
  for (const row of app.rows.values()) {
    if (row.stateSince) row.since.textContent = compact((now - row.stateSince) / 1000);
  }
  if (app.status) {
    byId("uptime").textContent = "up " + compact((now - Date.parse(app.status.startedAt)) / 1000) +
      " · " + plural(app.status.services.length, "service");
  }
}

function choosePeriod(period) {
  if (period === app.period) return;
  app.period = period;
  for (const button of document.querySelectorAll("[data-period]")) {
    button.setAttribute("aria-pressed", String(button.dataset.period === period));
  }
  hideTip();
  document.body.dataset.stale = ""; // the timelines show the other period until the new one loads
  loadHistory();
}

// ---- live updates

function setLive(state) {
  const node = byId("live");
  node.dataset.live = state;
  node.textContent = state === "live" ? "live" : state + "…";
}

/** Follows /api/live: a status on each change, and history events that call for a reload. */
function connectLive() {
  const source = new EventSource("api/live");
  source.addEventListener("open", () => {
    setLive("live");
    if (app.liveDown) loadHistory(); // events may have been missed meanwhile
    app.liveDown = false;
  });
  source.addEventListener("status", (event) => {
    renderStatus(JSON.parse(event.data));
    setError("status", null);
  });
  source.addEventListener("history", historySoon);
  source.addEventListener("error", () => {
    setLive("reconnecting");
    app.liveDown = true;
    if (source.readyState === EventSource.CLOSED) { // the browser gave up: try again later
      source.close();
      setTimeout(connectLive, 5000);
    }
  });
}

// ---- tooltip: hover with a mouse, tap on a phone, focus with the keyboard

function showTip(target, pinned, x) {
  if (tip.target && tip.target !== target) hideTip();
  const [head, ...rest] = tips.get(target)();
  tip.node.replaceChildren(make("strong", "", head), ...rest.map((line) => make("span", "", line)));
  tip.node.hidden = false;
  tip.target = target;
  tip.pinned = pinned;
  tip.x = x;
  target.classList.add("tipped");
  target.setAttribute("aria-describedby", "tooltip");
  placeTip();
}

function hideTip() {
  tip.node.hidden = true;
  tip.target?.classList.remove("tipped");
  tip.target?.removeAttribute("aria-describedby");
  tip.target = null;
  tip.pinned = false;
}

/** Puts the tooltip above its target (below when there is no room), inside the viewport. */
function placeTip() {
  if (!tip.target) return;
  if (!tip.target.isConnected) return hideTip();
  const box = tip.target.getBoundingClientRect();
  const size = tip.node.getBoundingClientRect();
  const x = tip.x ?? box.left + box.width / 2;
  const left = Math.max(8, Math.min(x - size.width / 2, innerWidth - size.width - 8));
  const top = box.top - size.height - 8 >= 8 ? box.top - size.height - 8 : box.bottom + 8;
  tip.node.style.left = left + "px";
  tip.node.style.top = top + "px";
}

function tipTarget(event) {
  return event.target instanceof Element ? event.target.closest(TIP_TARGETS) : null;
}

document.addEventListener("pointerover", (event) => {
  const target = tipTarget(event);
  if (event.pointerType === "mouse" && target && !tip.pinned) showTip(target, false, event.clientX);
});
document.addEventListener("pointermove", (event) => {
  if (event.pointerType !== "mouse" || tip.pinned || !tip.target?.matches("[data-span]")) return;
  if (tipTarget(event) !== tip.target) return;
  tip.x = event.clientX;
  placeTip();
});
document.addEventListener("pointerout", (event) => {
  if (event.pointerType !== "mouse" || tip.pinned || !tip.target) return;
  if (tipTarget(event) === tip.target && !tip.target.contains(event.relatedTarget)) hideTip();
});
document.addEventListener("click", (event) => {
  const period = event.target instanceof Element && event.target.closest("button[data-period]");
  if (period) return choosePeriod(period.dataset.period);
  const target = tipTarget(event);
  if (!target) return hideTip();
  if (tip.target === target && tip.pinned) return hideTip();
  showTip(target, true, target.matches("[data-span]") ? event.clientX : undefined);
});
document.addEventListener("focusin", (event) => {
  const target = tipTarget(event);
  if (target && !tip.pinned) showTip(target, false);
});
document.addEventListener("focusout", (event) => {
  if (event.target === tip.target && !tip.pinned) hideTip();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") hideTip();
});
addEventListener("scroll", placeTip, { passive: true, capture: true });
addEventListener("resize", placeTip);

// ---- start

loadStatus();
loadHistory();
connectLive();
setInterval(tickClock, 1000);
setInterval(layout, 5000); // the last span grows to now between loads
setInterval(() => {
  loadHistory();
  if (app.liveDown) loadStatus();
}, 60000);
`;

/** Escapes `text` for an HTML attribute value in double quotes. */
function attribute(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");
}

/**
 * The dashboard: one self-contained HTML page, its script and style carrying
 * `nonce` for the Content-Security-Policy.
 */
export function dashboardPage(nonce: string): string {
  const n = attribute(nonce);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>sleepingd</title>
<link rel="icon" href="data:,">
<style nonce="${n}">${STYLE}</style>
</head>
<body>${BODY}<script nonce="${n}">${SCRIPT}</script>
</body>
</html>
`;
}
