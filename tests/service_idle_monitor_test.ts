import assert from "node:assert/strict";
import type { ServiceConfig } from "../src/config/types.ts";
import { runShell } from "../src/process/run_shell.ts";
import { IdleMonitor, type IdleVerdict } from "../src/service/idle_monitor.ts";
import { newStats } from "../src/service/stats.ts";
import { WhyAwake } from "../src/service/why_awake.ts";
import { tempFiles, waitFor } from "./_helpers.ts";
import { command, serviceConfig } from "./_service.ts";

/**
 * An idle monitor over a service whose readings the test sets, asking why it
 * is awake as the service does; its IDLE_CMD really runs.
 */
function monitor(settings: Partial<ServiceConfig>) {
  const state = {
    config: serviceConfig(settings),
    open: 0,
    lastActivity: 0,
    awakeSince: Date.now(),
    keptAwakeUntil: 0,
    stops: [] as IdleVerdict[],
    /** How many stops to refuse (the service stays awake, as when another instance says no). */
    refusals: 0,
    /** How many times othersBusy() fails (as when etcd answers garbage) before it answers. */
    othersFail: 0,
  };
  const stats = newStats();
  const why = new WhyAwake({
    config: () => state.config,
    stats,
    life: {
      state: "awake",
      get since() {
        return state.awakeSince;
      },
    },
    wake: () => Promise.resolve(),
    wakeCancelledAt: () => 0,
    closing: new AbortController().signal,
  });
  const idle = new IdleMonitor({
    config: () => state.config,
    whyAwake: (now) => {
      stats.openConnections = state.open;
      why.keepAwakeUntil(state.keptAwakeUntil);
      return why.reasons(now);
    },
    lastActivity: () => state.lastActivity,
    awakeSince: () => state.awakeSince,
    othersBusy: () =>
      state.othersFail-- > 0
        ? Promise.reject(new Error("etcd answered garbage"))
        : Promise.resolve(undefined),
    runIdleCmd: (signal) => runShell(state.config.idleCmd!.text, { signal }),
    stop: (verdict) => {
      state.stops.push(verdict);
      if (state.refusals-- <= 0) idle.stop();
      return Promise.resolve();
    },
  });
  return { idle, state };
}

Deno.test("IdleMonitor.shouldSleep() says busy while a connection is open", async () => {
  const { idle, state } = monitor({ idleTime: 1 });
  state.open = 2;
  state.awakeSince = Date.now() - 60_000;
  assert.deepEqual(await idle.shouldSleep(), { outcome: "busy", reason: "2 open connections" });
});

Deno.test("IdleMonitor.shouldSleep() says busy while kept awake, and until MIN_AWAKE_TIME", async () => {
  const { idle, state } = monitor({ idleTime: 1, minAwakeTime: 60 });
  state.awakeSince = Date.now() - 120_000;
  state.keptAwakeUntil = Date.now() + 60_000;
  assert.match((await idle.shouldSleep()).reason, /^kept awake until \d{4}-/);
  state.keptAwakeUntil = 0;
  assert.equal((await idle.shouldSleep()).outcome, "sleep");
  state.awakeSince = Date.now() - 30_000;
  const young = await idle.shouldSleep();
  assert.equal(young.outcome, "busy");
  assert.match(young.reason, /^awake for 30\.\ds of MIN_AWAKE_TIME 60s$/);
});

Deno.test("IdleMonitor.shouldSleep() counts idleness from the last activity and says sleep after IDLE_TIME", async () => {
  const { idle, state } = monitor({ idleTime: 10 });
  state.awakeSince = Date.now() - 60_000;
  state.lastActivity = Date.now() - 4_000;
  const counting = await idle.shouldSleep();
  assert.equal(counting.outcome, "idle");
  assert.match(counting.reason, /^idle for 4\.\ds of IDLE_TIME 10s$/);
  state.lastActivity = Date.now() - 11_000;
  const verdict = await idle.shouldSleep();
  assert.equal(verdict.outcome, "sleep");
  assert.match(verdict.reason, /^idle for 11\.\ds$/);
});

Deno.test("IdleMonitor.shouldSleep() runs IDLE_CMD and counts from the first check it said idle", async () => {
  await using dir = await tempFiles({});
  const { idle, state } = monitor({
    idleTime: 0.2,
    idleCmd: command(`[ -f '${dir.path}/idle' ]`),
  });
  state.awakeSince = Date.now() - 60_000;
  const busy = await idle.shouldSleep();
  assert.equal(busy.outcome, "busy");
  assert.match(busy.reason, /^IDLE_CMD exit 1 after \d+\.\ds$/);
  await Deno.writeTextFile(`${dir.path}/idle`, "");
  const first = await idle.shouldSleep();
  assert.equal(first.outcome, "idle", "the command knows nothing of the time before");
  await waitFor("IDLE_TIME to pass", async () => (await idle.shouldSleep()).outcome === "sleep");
});

Deno.test("IdleMonitor.start() stops the service once it has been idle for IDLE_TIME", async () => {
  const { idle, state } = monitor({ idleTime: 0.1, idleCheckInterval: 0.05 });
  idle.start();
  assert.equal(idle.running, true);
  await waitFor("the idle stop", () => state.stops.length === 1);
  assert.equal(state.stops[0].outcome, "sleep");
  assert.equal(idle.running, false);
});

Deno.test("IdleMonitor.start() survives a refused stop and a failed check: it asks again at the next check", async () => {
  const { idle, state } = monitor({ idleTime: 0.1, idleCheckInterval: 0.05 });
  state.refusals = 2;
  state.othersFail = 1;
  idle.start();
  await waitFor("the third idle stop, after two refusals", () => state.stops.length === 3);
  assert.equal(idle.running, false);
  assert.deepEqual(state.stops.map((stop) => stop.outcome), ["sleep", "sleep", "sleep"]);
});

Deno.test("IdleMonitor.start() runs nothing when IDLE_TIME or IDLE_CHECK_INTERVAL is blank or 0", () => {
  for (
    const settings of [{ idleTime: 10 }, { idleCheckInterval: 1 }, {
      idleTime: 0,
      idleCheckInterval: 1,
    }]
  ) {
    const { idle } = monitor(settings);
    idle.start();
    assert.equal(idle.running, false, JSON.stringify(settings));
  }
});

Deno.test("IdleMonitor.start() with settings that turn idle stops off ends the loop running", () => {
  const { idle, state } = monitor({ idleTime: 10, idleCheckInterval: 1 });
  idle.start();
  assert.equal(idle.running, true);
  state.config = { ...state.config, idleTime: undefined };
  idle.start();
  assert.equal(idle.running, false);
});
