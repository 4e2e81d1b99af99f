/**
 * KEEP_AWAKE windows: when a time is inside one (pure), and the loop that
 * wakes a service for them, on a real service whose START_CMD may fail, and
 * through a reload that gives a running service its first window.
 */
import assert from "node:assert/strict";
import { parseKeepAwake } from "../src/config/schedule.ts";
import { KeepAwakeSchedule } from "../src/service/schedule.ts";
import { waitFor } from "./_helpers.ts";
import { Service } from "../src/service/service.ts";
import { command, exchange, serviceConfig, startEchoBackend, startHarness } from "./_service.ts";

const at = (iso: string) => Date.parse(iso);

Deno.test("KeepAwakeSchedule: daily 08:00-08:00 is always open", () => {
  const schedule = new KeepAwakeSchedule(parseKeepAwake("daily 08:00-08:00"), "UTC");
  for (const time of ["2026-11-30T07:59:30Z", "2026-11-30T08:00:00Z", "2026-12-02T15:00:00Z"]) {
    const open = schedule.openAt(at(time));
    assert.ok(open, `open at ${time}`);
    assert.equal(open.until, Infinity, `never ends, at ${time}`);
  }
  const service = new Service(serviceConfig({ keepAwake: parseKeepAwake("daily 08:00-08:00") }));
  assert.equal(service.whyAwake.keptAwake(), "schedule daily 08:00-08:00 (always open)");
});

Deno.test("KeepAwakeSchedule: a 24-hour window lasts 24 hours, and days of them run on", () => {
  const wednesday = new KeepAwakeSchedule(parseKeepAwake("Wed 08:00-08:00"), "UTC");
  assert.equal(wednesday.openAt(at("2026-12-02T07:59:00Z")), undefined); // Wed 07:59
  assert.equal(wednesday.openAt(at("2026-12-02T08:00:00Z"))?.until, at("2026-12-03T08:00:00Z"));
  assert.equal(wednesday.openAt(at("2026-12-03T07:59:00Z"))?.until, at("2026-12-03T08:00:00Z"));
  assert.equal(wednesday.openAt(at("2026-12-03T08:00:30Z")), undefined); // Thu 08:00:30
  const weekdays = new KeepAwakeSchedule(parseKeepAwake("Mon-Fri 08:00-08:00"), "UTC");
  assert.equal(weekdays.openAt(at("2026-12-01T12:00:00Z"))?.until, at("2026-12-05T08:00:00Z"));
  assert.equal(weekdays.openAt(at("2026-12-05T09:00:00Z")), undefined); // Sat 09:00
  assert.equal(weekdays.openAt(at("2026-11-30T07:00:00Z")), undefined); // Mon 07:00
});

/** A daily window in UTC that holds now, from an hour ago to an hour ahead. */
function windowAroundNow(): string {
  const hhmm = (time: number) => new Date(time).toISOString().slice(11, 16);
  return `daily ${hhmm(Date.now() - 3_600_000)}-${hhmm(Date.now() + 3_600_000)}`;
}

Deno.test("a schedule wake that fails at the window's start is tried again inside the window", async () => {
  const window = windowAroundNow();
  const harness = await startHarness((dir, backendPort) => ({
    keepAwake: parseKeepAwake(window),
    timeZone: "UTC",
    startCmd: command(`if [ ! -f '${dir}/failed' ]; then touch '${dir}/failed'; exit 1; fi
${startEchoBackend(dir, backendPort)}`),
  }));
  try {
    harness.supervisor.startSchedules();
    await waitFor("the wake to fail once", () => harness.service.stats.wakeFailures === 1);
    await waitFor("the second try to wake it", () => harness.service.state === "awake");
    assert.equal(harness.starts(), 1);
    assert.match(harness.service.whyAwake.keptAwake()!, new RegExp(`^schedule ${window} until `));
    assert.equal(await exchange(harness.port, "inside"), "inside");
  } finally {
    await harness.close();
  }
});

Deno.test("a reload that gives a running service its first KEEP_AWAKE window begins its schedule", async () => {
  const harness = await startHarness();
  try {
    harness.supervisor.startSchedules();
    const config = harness.supervisor.config;
    const window = windowAroundNow();
    const scheduled = { ...config.services[0], keepAwake: parseKeepAwake(window), timeZone: "UTC" };
    const summary = await harness.supervisor.reload({ ...config, services: [scheduled] });
    assert.deepEqual(summary.changed, ["echo"]);
    await waitFor("the schedule to wake it", () => harness.service.state === "awake");
    assert.match(harness.service.whyAwake.keptAwake()!, new RegExp(`^schedule ${window} until `));
  } finally {
    await harness.close();
  }
});
