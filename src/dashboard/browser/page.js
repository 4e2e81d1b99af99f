/**
 * The dashboard's script, run once the markup of page.html is parsed. It draws
 * the state the page came with (the `first-state` JSON the daemon put in it),
 * then keeps the page live: a status on each change from /api/live, the
 * history again from /api/history when an event is written or the period
 * changes, and a clock that moves the timelines on.
 *
 * A timeline is drawn in two steps: buildTimeline() makes a row's spans (one
 * element per state) and marks (a button per wake or stop), and layout()
 * places them, with the grid and the tick labels, for the window as of now.
 *
 * Plain JavaScript, sent to the browser as it is written, and checked with the
 * DOM's types by `deno check --config src/dashboard/browser/tsconfig.json`. It
 * is a classic script: it imports nothing, and the daemon inlines it into the
 * page with the answer's CSP nonce.
 */
"use strict";

/**
 * A service as /api/status gives it (control/status.ts), as far as the page reads it.
 *
 * @typedef {object} ServiceStatus
 * @property {string} name
 * @property {number} port
 * @property {string[]} ports PORT and MORE_PORTS, e.g. `5353/udp`
 * @property {string} state
 * @property {string} stateSince an ISO time
 * @property {string | null} target the backend, when known
 * @property {number} openConnections
 * @property {string[]} [hostnames] HOSTNAMES, on a port shared by name
 * @property {"proxy" | "kernel"} [path] which path carries new connections now (FORWARD)
 * @property {string | null} [pathNote] with FORWARD=kernel, how the kernel reaches the backend, or why not
 * @property {{ openConnections: number } | null} [kernel] with FORWARD=kernel, what the kernel forwards
 * @property {boolean} [waitingPage] whether browsers get a waiting page (WAITING_PAGE)
 */

/**
 * /api/status: the daemon and its services.
 *
 * @typedef {object} DaemonStatus
 * @property {number} pid
 * @property {string} version
 * @property {string} startedAt an ISO time
 * @property {string[]} configFiles
 * @property {boolean} actions whether the Wake API takes actions (API_TOKEN_FILE is set)
 * @property {ServiceStatus[]} services in configuration order
 */

/**
 * A service's timeline in /api/history (history/timeline.ts); times are ISO.
 *
 * @typedef {object} Timeline
 * @property {string} name
 * @property {{ state: string, from: string, to: string }[]} spans
 * @property {Wake[]} wakes
 * @property {Stop[]} stops
 * @property {number} asleepSeconds
 * @property {number} watchedSeconds
 * @property {number | null} asleepShare
 * @property {{ currency: string, saved: number } | null} cost
 */

/**
 * @typedef {object} Wake
 * @property {string} at
 * @property {string} cause
 * @property {boolean | null} ok null while it runs
 * @property {number | null} seconds
 * @property {string} [error]
 * @property {string} [target]
 */

/**
 * @typedef {object} Stop
 * @property {string} at
 * @property {string} reason
 * @property {string} detail
 * @property {number | null} seconds STOP_CMD's
 */

/**
 * /api/history: every service's timeline over a period.
 *
 * @typedef {{ from: string, to: string, now: string, services: Timeline[] }} History
 */

/**
 * What the daemon puts into the page as it answers: its status and the last 24 hours.
 *
 * @typedef {{ status: DaemonStatus, history: History }} FirstState
 */

/** @typedef {"24h" | "7d"} Period */

/**
 * A window of time, in ms.
 *
 * @typedef {{ from: number, to: number, now: number }} Window
 */

/**
 * A span drawn on a timeline.
 *
 * @typedef {{ node: HTMLElement, state: string, from: number, to: number, open: boolean }} SpanItem
 */

/**
 * A service's card, and the elements inside that change.
 *
 * @typedef {object} Row
 * @property {HTMLElement} el
 * @property {HTMLElement} badge
 * @property {HTMLElement} since
 * @property {HTMLElement} sinceLine
 * @property {HTMLElement} facts
 * @property {HTMLElement} figs
 * @property {HTMLElement} bar
 * @property {HTMLElement} track
 * @property {HTMLElement} ticks
 * @property {HTMLElement} actions
 * @property {HTMLButtonElement} wakeButton
 * @property {HTMLButtonElement} sleepButton
 * @property {number} stateSince ms, NaN until the status says
 * @property {SpanItem[]} spans
 * @property {{ node: HTMLElement, at: number }[]} marks
 */

/** @type {Record<Period, string>} */
const PERIOD_NOTES = { "24h": "in the last 24 hours", "7d": "in the last 7 days" };
const TIP_TARGETS = "[data-span], [data-wake], [data-stop]";

/**
 * What the page knows.
 *
 * @type {{
 *   period: Period,
 *   shown: Period,
 *   status: DaemonStatus | null,
 *   history: (Window & { services: Timeline[] }) | null,
 *   fetchedAt: number,
 *   skew: number,
 *   rows: Map<string, Row>,
 *   errors: Map<string, string>,
 *   seq: number,
 *   loads: number,
 *   liveDown: boolean,
 * }}
 */
const app = {
  period: "24h", // the period chosen
  shown: "24h", // the period of the history drawn
  status: null, // the last status
  history: null, // the last history: { from, to, now } in ms, and its services
  fetchedAt: 0, // Date.now() when that history arrived
  skew: 0, // the daemon's clock minus ours, in ms
  rows: new Map(), // service name -> its card and the elements inside
  errors: new Map(), // what failed ("status", "history") -> message
  seq: 0, // numbers history requests, so that a late answer is dropped
  loads: 0,
  // Until /api/live opens; then the history is loaded again, for the events since the page was made.
  liveDown: true,
};
/** @type {WeakMap<Element, () => string[]>} */
const tips = new WeakMap(); // element -> () => its tooltip's lines
/** @type {{ node: HTMLElement, target: HTMLElement | null, pinned: boolean, x?: number }} */
const tip = { node: byId("tooltip"), target: null, pinned: false };

// ---- helpers

/**
 * An element of page.html.
 *
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error("page.html has no #" + id);
  return node;
}

/**
 * A new element, with a class and text when given (text is never parsed as HTML).
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A <b> holding a value, with a data-* hook for tests.
 *
 * @param {string} hook
 * @param {string} text
 */
function value(hook, text) {
  const node = make("b", "", text);
  node.setAttribute("data-" + hook, "");
  return node;
}

/** @param {unknown} error */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * @param {number} n
 * @param {string} word
 */
function plural(n, word) {
  return n + " " + word + (n === 1 ? "" : "s");
}
/** @param {number} n */
function pad(n) {
  return String(n).padStart(2, "0");
}
function serverNow() {
  return Date.now() + app.skew;
}

const fmtTime = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});
const fmtHm = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
const fmtDay = new Intl.DateTimeFormat(undefined, { weekday: "short" });

/**
 * "Tue " before a time when the period spans several days.
 *
 * @param {number} ms
 */
function day(ms) {
  return app.shown === "7d" ? fmtDay.format(ms) + " " : "";
}
/** @param {number} ms */
function clock(ms) {
  return day(ms) + fmtTime.format(ms);
}
/** @param {number} ms */
function hm(ms) {
  return day(ms) + fmtHm.format(ms);
}

/**
 * Compact: "45s", "3m 20s", "2h 05m", "3d 4h".
 *
 * @param {number} seconds
 */
function compact(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + pad(s % 60) + "s";
  const h = Math.floor(m / 60);
  if (h < 24) return h + "h " + pad(m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

/**
 * In words: "40 s", "49 min", "2 h 5 min", "3 d 4 h".
 *
 * @param {number} seconds
 */
function spell(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  const m = Math.round(s / 60);
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  if (h < 24) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  return Math.floor(h / 24) + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
}

/**
 * A command's duration: "0.21 s", "3.0 s", "125 s".
 *
 * @param {number} s
 */
function secs(s) {
  return (s < 1 ? String(Number(s.toFixed(2))) : s < 100 ? s.toFixed(1) : s.toFixed(0)) + " s";
}
/** @param {number} seconds */
function hours(seconds) {
  return (seconds / 3600).toFixed(1) + " h";
}
/** @param {number | null} share */
function percent(share) {
  return share === null ? "—" : Math.round(share * 100) + " %";
}

/**
 * "2.58 USD", "€2.58", or "2.58" without a currency.
 *
 * @param {number} amount
 * @param {string} currency
 */
function money(amount, currency) {
  const n = amount.toFixed(2);
  if (currency === "€" || currency === "$" || currency === "£") return currency + n;
  return currency ? n + " " + currency : n;
}

// ---- loading

/**
 * Shows or clears one line of the error banner.
 *
 * @param {string} source what failed: "status", "history", "action"
 * @param {string | null} message
 */
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

/**
 * GETs JSON from the daemon.
 *
 * @param {string} path
 * @returns {Promise<any>}
 */
async function fetchJson(path) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
  } catch (error) {
    throw new Error("sleepingd did not answer (" + messageOf(error) + ")");
  }
  if (!response.ok) throw new Error("HTTP " + response.status + " " + response.statusText);
  return await response.json();
}

async function loadStatus() {
  try {
    renderStatus(await fetchJson("api/status"));
    setError("status", null);
  } catch (error) {
    setError("status", "could not load /api/status: " + messageOf(error));
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
    if (seq === app.seq) setError("history", "could not load /api/history: " + messageOf(error));
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

/**
 * The card of a service, made on first sight; the element lives as long as the service.
 *
 * @param {string} name
 * @returns {Row}
 */
function rowFor(name) {
  const known = app.rows.get(name);
  if (known) return known;
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
  /** @type {[HTMLButtonElement, "wake" | "sleep"][]} */
  const buttons = [[wakeButton, "wake"], [sleepButton, "sleep"]];
  for (const [button, action] of buttons) {
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
  /** @type {Row} */
  const row = {
    el,
    badge,
    since,
    sinceLine,
    facts,
    figs,
    bar,
    track,
    ticks,
    actions,
    wakeButton,
    sleepButton,
    stateSince: NaN,
    spans: [],
    marks: [],
  };
  app.rows.set(name, row);
  return row;
}

/**
 * Keeps exactly the cards of `names`, in that order, moving only those out of place.
 *
 * @param {string[]} names
 */
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

/**
 * Fills a card's facts from the service's status.
 *
 * @param {Row} row
 * @param {ServiceStatus} service
 */
function updateRow(row, service) {
  row.el.dataset.state = service.state;
  row.badge.textContent = service.state;
  row.stateSince = Date.parse(service.stateSince);
  row.sinceLine.hidden = false;
  const route = make("span", "route");
  const ports = service.ports.length > 1 || service.ports[0].endsWith("/udp");
  route.append(
    ports ? "ports " : "port ",
    value("port", ports ? service.ports.join(" ") : String(service.port)),
    " → ",
    value("target", service.target ?? "—"),
  );
  const open = make("span");
  open.append(
    value("open", String(service.openConnections)),
    service.openConnections === 1 ? " open connection" : " open connections",
  );
  row.facts.replaceChildren(route, open);
  // A port shared by name, a waiting page: one line, only when there is one.
  const byName = make("span", "route");
  if (service.hostnames?.length) {
    byName.append("names ", value("hostnames", service.hostnames.join(" ")));
  }
  if (service.waitingPage) byName.append(byName.childNodes.length ? " · " : "", "waiting page");
  if (byName.childNodes.length > 0) row.facts.append(byName);
  // FORWARD=kernel: which path carries new connections now, and the kernel's open connections.
  if (service.kernel) {
    const path = make("span", "route");
    path.dataset.path = service.path;
    path.title = service.pathNote ?? "";
    path.append(
      service.path === "kernel" ? "kernel path · " : "proxy path now · ",
      value("kernel-open", String(service.kernel.openConnections)),
      " through the kernel",
    );
    row.facts.append(path);
  }
  row.actions.hidden = !app.status?.actions;
  row.wakeButton.disabled = service.state !== "asleep";
  row.sleepButton.disabled = service.state !== "awake";
}

/** The token field of the header. */
function tokenField() {
  return /** @type {HTMLInputElement} */ (byId("token"));
}

/**
 * Asks sleepingd to wake or put a service to sleep, with the token typed in
 * the header (kept for this tab only).
 *
 * @param {string} name
 * @param {"wake" | "sleep"} action
 * @param {HTMLButtonElement} button
 */
async function act(name, action, button) {
  const field = tokenField();
  const token = field.value.trim();
  if (!token) {
    setError(
      "action",
      "type the token of API_TOKEN_FILE in the field above to " + action + " " + name,
    );
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
    setError(
      "action",
      response.ok ? null : action + " " + name + ": " + (answer.error ?? response.status),
    );
  } catch (error) {
    setError("action", action + " " + name + ": " + messageOf(error));
  } finally {
    button.disabled = false;
    loadStatus();
  }
}

/** @param {DaemonStatus} status */
function renderStatus(status) {
  app.status = status;
  const field = tokenField();
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

/**
 * The window drawn now: a period ending now slides with the clock between loads.
 *
 * @param {Window} h the history's window
 * @returns {Window}
 */
function viewWindow(h) {
  const elapsed = Date.now() - app.fetchedAt;
  if (Math.abs(h.to - h.now) < 2000) {
    return { from: h.from + elapsed, to: h.to + elapsed, now: h.now + elapsed };
  }
  return { from: h.from, to: h.to, now: Math.min(h.to, h.now + elapsed) };
}

/** @param {SpanItem} span */
function spanLines(span) {
  const to = span.open && app.history ? viewWindow(app.history).now : span.to;
  const what = span.state === "unknown" ? "sleepingd not running" : span.state;
  const end = span.open ? "now" : hm(to);
  return [what + " " + hm(span.from) + " – " + end + " (" + spell((to - span.from) / 1000) + ")"];
}

/** @param {Wake} wake */
function wakeLines(wake) {
  const lines = ["Wake at " + clock(Date.parse(wake.at)), wake.cause];
  const took = wake.seconds === null ? "" : " after " + secs(wake.seconds);
  if (wake.ok === true) lines.push("awake" + took + (wake.target ? " at " + wake.target : ""));
  else if (wake.ok === false) lines.push("failed" + took + (wake.error ? ": " + wake.error : ""));
  else lines.push("starting…");
  return lines.filter(Boolean);
}

/** @param {Stop} stop */
function stopLines(stop) {
  const why = stop.reason.replaceAll("_", " ") + (stop.detail ? ": " + stop.detail : "");
  const lines = ["Stop at " + clock(Date.parse(stop.at)), why];
  if (stop.seconds !== null) lines.push("STOP_CMD " + secs(stop.seconds));
  return lines;
}

/**
 * A wake or stop marker: a focusable button whose title and tooltip tell what happened.
 *
 * @param {Row} row
 * @param {"wake" | "stop"} kind
 * @param {string} what its outcome (a wake) or reason (a stop)
 * @param {number} at
 * @param {string[]} lines
 */
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

/**
 * Remembers the focused marker and the tooltip's target in a row, to find them after a rebuild.
 *
 * @param {Row} row
 * @returns {() => void} finds them again
 */
function remember(row) {
  const active = document.activeElement;
  const focused = active instanceof HTMLElement && row.track.contains(active)
    ? active.dataset.key
    : undefined;
  const tipped = row.track.contains(tip.target) ? tip.target?.dataset.key : undefined;
  const pinned = tip.pinned;
  return () => {
    /** @param {string | undefined} key */
    const find = (key) => key ? row.track.querySelector(`[data-key="${CSS.escape(key)}"]`) : null;
    /** @type {HTMLElement | null} */ (find(focused))?.focus({ preventScroll: true });
    if (!tipped) return;
    const again = /** @type {HTMLElement | null} */ (find(tipped));
    if (again) showTip(again, pinned);
    else hideTip();
  };
}

/**
 * Rebuilds the spans and markers of a row's timeline; positions come from layout().
 *
 * @param {Row} row
 * @param {Timeline | undefined} timeline
 * @param {number} now the history's now, in ms
 */
function buildTimeline(row, timeline, now) {
  const restore = remember(row);
  row.bar.replaceChildren();
  row.track.replaceChildren(row.bar);
  row.spans = [];
  row.marks = [];
  const spans = timeline ? timeline.spans : [];
  spans.forEach((span, i) => {
    const node = make("div", "span");
    node.dataset.span = span.state;
    const from = Date.parse(span.from);
    const to = Date.parse(span.to);
    const open = i === spans.length - 1 && to >= now - 1000;
    /** @type {SpanItem} */
    const item = { node, state: span.state, from, to, open };
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
  /** @type {HTMLElement[]} */
  const figs = [];
  /**
   * @param {string} hook
   * @param {string} text
   * @param {string} label
   * @param {string} [className]
   */
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

/**
 * Grid lines and labels: every 6 hours over a day, each day (its name centred) over a week.
 *
 * @param {Window} view
 */
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
  const view = viewWindow(app.history);
  /** @param {number} ms */
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

/**
 * @param {History} history
 * @param {Period} period the period it covers
 */
function renderHistory(history, period) {
  app.shown = period;
  const [from, to, now] = [history.from, history.to, history.now].map(Date.parse);
  app.history = { from, to, now, services: history.services };
  app.fetchedAt = Date.now();
  app.skew = now - app.fetchedAt;
  document.body.dataset.shownPeriod = period;
  delete document.body.dataset.stale;
  const byName = new Map(history.services.map((timeline) => [timeline.name, timeline]));
  if (!app.status) syncRows(history.services.map((timeline) => timeline.name));
  for (const [name, row] of app.rows) buildTimeline(row, byName.get(name), now);
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
  /** @type {Map<string, number>} */
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
  /** @type {Map<string, number>} */
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

/** @param {Period} period */
function choosePeriod(period) {
  if (period === app.period) return;
  app.period = period;
  for (const button of document.querySelectorAll("[data-period]")) {
    button.setAttribute("aria-pressed", String(button.getAttribute("data-period") === period));
  }
  hideTip();
  document.body.dataset.stale = ""; // the timelines show the other period until the new one loads
  loadHistory();
}

// ---- live updates

/** @param {"live" | "reconnecting"} state */
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

/**
 * @param {HTMLElement} target a span or a mark
 * @param {boolean} pinned whether it stays until a click elsewhere (a tap, a click)
 * @param {number} [x] where along a span the pointer is
 */
function showTip(target, pinned, x) {
  if (tip.target && tip.target !== target) hideTip();
  const [head, ...rest] = tips.get(target)?.() ?? [""];
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

/**
 * The span or mark an event happened on, if any.
 *
 * @param {Event} event
 * @returns {HTMLElement | null}
 */
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
  const leftFor = event.relatedTarget instanceof Node ? event.relatedTarget : null;
  if (tipTarget(event) === tip.target && !tip.target.contains(leftFor)) hideTip();
});
document.addEventListener("click", (event) => {
  const period = event.target instanceof Element && event.target.closest("button[data-period]");
  if (period) return choosePeriod(/** @type {Period} */ (period.getAttribute("data-period")));
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

/** The state the daemon put into the page as it answered: drawn at once, before any request. */
const first = /** @type {FirstState} */ (JSON.parse(byId("first-state").textContent ?? ""));
renderStatus(first.status);
renderHistory(first.history, "24h");
connectLive();
setInterval(tickClock, 1000);
setInterval(layout, 5000); // the last span grows to now between loads
setInterval(() => {
  loadHistory();
  if (app.liveDown) loadStatus();
}, 60000);
