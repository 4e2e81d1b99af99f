/**
 * Timelines made from event logs written by hand: spans, wakes, stops, the
 * share asleep and what it saved, across daemon restarts and crashes.
 */
import assert from "node:assert/strict";
import type { ChangeEvent, DaemonEvent, HistoryEvent } from "../src/history/event.ts";
import { history, timelines } from "../src/history/timeline.ts";
import type { State } from "../src/service/lifecycle.ts";

const T0 = Date.parse("2026-11-30T00:00:00Z");
const MINUTE = 60_000;

/** ISO time `minutes` after T0. */
function at(minutes: number): string {
  return new Date(T0 + minutes * MINUTE).toISOString();
}

function daemon(minutes: number, what: DaemonEvent["daemon"], states = {}): DaemonEvent {
  return { time: at(minutes), daemon: what, pid: 1, states };
}

function change(
  minutes: number,
  from: State,
  to: State,
  reason: string,
  extra: Partial<ChangeEvent> = {},
): ChangeEvent {
  return { time: at(minutes), service: "web", from, to, reason, lasted: 0, ...extra };
}

/** A wake at `minutes` that takes 1 minute, then awake for 10, then an idle stop of 1. */
function wakeAndSleep(minutes: number): HistoryEvent[] {
  return [
    change(minutes, "asleep", "starting", "connection from 127.0.0.1:5000"),
    change(minutes + 1, "starting", "awake", "accepted", { lasted: 60, target: "127.0.0.1:80" }),
    change(minutes + 11, "awake", "stopping", "idle for 600s", { lasted: 600, stop: "idle" }),
    change(minutes + 12, "stopping", "asleep", "STOP_CMD exit 0", { lasted: 60, stop: "idle" }),
  ];
}

const period = (from: number, to: number, now = to) => ({
  from: T0 + from * MINUTE,
  to: T0 + to * MINUTE,
  now: T0 + now * MINUTE,
});

Deno.test("timelines(): spans, the wake with its cause and duration, the stop with its reason", () => {
  const events = [daemon(0, "started", { web: "asleep" }), ...wakeAndSleep(30)];
  const [web] = timelines(events, [{ name: "web", cost: { amount: 0.6, currency: "USD" } }], {
    ...period(0, 60),
  });
  assert.deepEqual(web.spans.map((span) => [span.state, span.from, span.to]), [
    ["asleep", at(0), at(30)],
    ["starting", at(30), at(31)],
    ["awake", at(31), at(41)],
    ["stopping", at(41), at(42)],
    ["asleep", at(42), at(60)],
  ]);
  assert.deepEqual(web.wakes, [{
    at: at(30),
    cause: "connection from 127.0.0.1:5000",
    ok: true,
    seconds: 60,
    target: "127.0.0.1:80",
  }]);
  assert.deepEqual(web.stops, [{
    at: at(41),
    reason: "idle",
    detail: "idle for 600s",
    seconds: 60,
  }]);
  assert.equal(web.asleepSeconds, 48 * 60);
  assert.equal(web.watchedSeconds, 60 * 60);
  assert.equal(web.asleepShare, 0.8);
  // 48 minutes asleep at 0.6 an hour.
  assert.deepEqual(web.cost, { amount: 0.6, currency: "USD", saved: 0.48 });
});

Deno.test("timelines(): a failed wake keeps its error; one under way has no outcome yet", () => {
  const events = [
    daemon(0, "started", { web: "asleep" }),
    change(10, "asleep", "starting", "connection from 127.0.0.1:5000"),
    change(11, "starting", "asleep", "START_CMD exit 1: no such VM", { lasted: 60 }),
    change(20, "asleep", "starting", "connection from 127.0.0.1:6000"),
  ];
  const [web] = timelines(events, [{ name: "web" }], period(0, 30, 25));
  assert.deepEqual(web.wakes.map(({ ok, seconds, error }) => ({ ok, seconds, error })), [
    { ok: false, seconds: 60, error: "START_CMD exit 1: no such VM" },
    { ok: null, seconds: null, error: undefined },
  ]);
  // Nothing after now (minute 25) is drawn.
  assert.equal(web.spans.at(-1)!.to, at(25));
  assert.equal(web.cost, null);
});

Deno.test("timelines(): unknown before the first event and while no daemon ran", () => {
  const events = [
    daemon(10, "started", { web: "asleep" }),
    daemon(20, "stopped"),
    daemon(40, "started", { web: "asleep" }),
  ];
  const [web] = timelines(events, [{ name: "web" }], period(0, 60));
  assert.deepEqual(web.spans.map((span) => [span.state, span.from, span.to]), [
    ["unknown", at(0), at(10)],
    ["asleep", at(10), at(20)],
    ["unknown", at(20), at(40)],
    ["asleep", at(40), at(60)],
  ]);
  assert.equal(web.watchedSeconds, 30 * 60);
  assert.equal(web.asleepShare, 1);
});

Deno.test("timelines(): after a crash, the state it left lasts until the next daemon starts", () => {
  const events = [
    daemon(0, "started", { web: "asleep" }),
    ...wakeAndSleep(5).slice(0, 2), // awake at minute 6, then the daemon is killed
    daemon(30, "started", { web: "asleep" }),
    change(30, "asleep", "awake", "adopted 127.0.0.1:80", { target: "127.0.0.1:80" }),
  ];
  const [web] = timelines(events, [{ name: "web" }], period(0, 40));
  assert.deepEqual(web.spans.map((span) => [span.state, span.from, span.to]), [
    ["asleep", at(0), at(5)],
    ["starting", at(5), at(6)],
    ["awake", at(6), at(40)],
  ]);
  assert.equal(web.wakes.length, 1, "an adoption is not a wake");
});

Deno.test("timelines(): the state at the period's start comes from events before it", () => {
  const events = [
    daemon(0, "started", { web: "asleep" }),
    ...wakeAndSleep(10),
    ...wakeAndSleep(60),
  ];
  const [web] = timelines(events, [{ name: "web" }], period(35, 90));
  // The first wake ended asleep at minute 22: the period begins asleep.
  assert.deepEqual(web.spans[0], { state: "asleep", from: at(35), to: at(60) });
  assert.equal(web.wakes.length, 1, "the wake before the period is not listed");
  assert.equal(web.wakes[0].at, at(60));
  assert.equal(web.stops.length, 1);
});

Deno.test("timelines(): a file's head names each service's state; unnamed ones are not watched", () => {
  const events = [
    daemon(0, "continued", { web: "awake" }),
    daemon(10, "reloaded", { api: "asleep" }),
  ];
  const [web, api] = timelines(events, [{ name: "web" }, { name: "api" }], period(0, 20));
  assert.deepEqual(web.spans.map((span) => span.state), ["awake", "unknown"]);
  assert.deepEqual(api.spans.map((span) => span.state), ["unknown", "asleep"]);
});

Deno.test("timelines(): a clock that stepped back is taken as standing still", () => {
  const events = [
    daemon(0, "started", { web: "asleep" }),
    change(20, "asleep", "starting", "connection from 127.0.0.1:5000"),
    change(15, "starting", "awake", "accepted", { lasted: 1 }), // the clock went back 5 minutes
  ];
  const [web] = timelines(events, [{ name: "web" }], period(0, 30));
  assert.deepEqual(web.spans.map((span) => [span.state, span.from, span.to]), [
    ["asleep", at(0), at(20)],
    ["awake", at(20), at(30)],
  ]);
  let covered = 0;
  for (const span of web.spans) covered += Date.parse(span.to) - Date.parse(span.from);
  assert.equal(covered, 30 * MINUTE, "the spans still cover the period exactly");
});

Deno.test("history(): the period's events, of the services asked for and of the daemon", () => {
  const other: ChangeEvent = { ...change(31, "asleep", "starting", "x"), service: "other" };
  const events = [daemon(0, "started", { web: "asleep" }), ...wakeAndSleep(30), other];
  const answer = history(events, [{ name: "web" }], period(31, 60));
  assert.equal(answer.from, at(31));
  assert.deepEqual(answer.events.map((event) => event.time), [at(31), at(41), at(42)]);
  assert.deepEqual(answer.services.map((service) => service.name), ["web"]);
});
