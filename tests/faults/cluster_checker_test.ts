/**
 * The checker of the cluster's nemesis run, on histories made by hand: each
 * rule flags what breaks it, and a fault excuses what it explains, only that.
 */
import assert from "node:assert/strict";
import {
  type Bounds,
  checkHistory,
  type ClusterHistory,
  idleStopDeadline,
} from "./_cluster_checker.ts";

const BOUNDS: Bounds = {
  idleTime: 2_000,
  idleCheckInterval: 500,
  leaseTtl: 5_000,
  callTimeout: 2_000,
  publication: 2_000,
  readyTimeout: 5_000,
  holdTimeout: 20_000,
};

/** A quiet history: one wake, one client, one idle stop, no fault. */
function history(changes: Partial<ClusterHistory> = {}): ClusterHistory {
  return {
    commands: [
      { kind: "start", instance: 0, begin: 1_000, end: 1_300 },
      { kind: "stop", instance: 1, begin: 6_000, end: 6_300 },
    ],
    sessions: [{ instance: 2, begin: 900, end: 3_000, ok: true }],
    faults: [],
    starting: [{ instance: 0, begin: 950, end: 1_400 }],
    healed: 0,
    ended: 30_000,
    runningAtDeadline: false,
    deadline: 12_000,
    ...changes,
  };
}

Deno.test("checkHistory() passes a quiet history", () => {
  assert.deepEqual(checkHistory(history(), BOUNDS), { violations: [], excused: [] });
});

Deno.test("checkHistory() flags two START_CMDs, or a START_CMD and a STOP_CMD, that overlap", () => {
  const { commands } = history();
  const twoStarts = checkHistory(
    history({ commands: [...commands, { kind: "start", instance: 1, begin: 1_200, end: 1_500 }] }),
    BOUNDS,
  );
  assert.equal(twoStarts.violations.length, 1);
  assert.match(
    twoStarts.violations[0],
    /START_CMD of instance 1 at \S+ overlaps START_CMD of instance 0/,
  );
  const startAndStop = checkHistory(
    history({ commands: [...commands, { kind: "start", instance: 2, begin: 6_100, end: 6_400 }] }),
    BOUNDS,
  );
  assert.match(
    startAndStop.violations[0],
    /START_CMD of instance 2 .* overlaps STOP_CMD of instance 1/,
  );
  // A command that never ended overlaps whatever begins after it.
  const endless = checkHistory(
    history({ commands: [{ kind: "start", instance: 0, begin: 1_000 }, ...commands.slice(1)] }),
    BOUNDS,
  );
  assert.equal(endless.violations.length, 1);
});

Deno.test("checkHistory() excuses an overlap whose instance was paused, or cut off from etcd, within a lease", () => {
  const commands = [
    { kind: "start" as const, instance: 0, begin: 1_000, end: 9_000 },
    { kind: "start" as const, instance: 1, begin: 8_000, end: 8_300 },
  ];
  const paused = checkHistory(
    history({ commands, faults: [{ kind: "pause", target: 0, begin: 1_500, end: 7_000 }] }),
    BOUNDS,
  );
  assert.deepEqual(paused.violations, []);
  assert.match(paused.excused[0], /\(excused: pause of instance 0 from/);
  // A fault of another instance, or one over long before, excuses nothing.
  const unrelated = checkHistory(
    history({
      commands,
      faults: [
        { kind: "blackhole", target: 2, begin: 1_500, end: 7_000 },
        { kind: "kill", target: 0, begin: -20_000, end: -10_000 },
      ],
    }),
    BOUNDS,
  );
  assert.equal(unrelated.violations.length, 1);
  // etcd's own faults disturb every instance.
  const etcd = checkHistory(
    history({ commands, faults: [{ kind: "kill", target: "etcd", begin: 2_000, end: 3_000 }] }),
    BOUNDS,
  );
  assert.deepEqual(etcd.violations, []);
});

Deno.test("checkHistory() flags a STOP_CMD while a client connected before the last publication is there", () => {
  const sessions = [{ instance: 2, begin: 3_000, end: 7_000, ok: false, error: "reset" }];
  const verdict = checkHistory(history({ sessions }), BOUNDS);
  assert.equal(verdict.violations.length, 1);
  assert.match(verdict.violations[0], /STOP_CMD of instance 1 .* while a client of instance 2/);
  // Connected after the publication the stopping instance could read: not counted yet.
  const late = [{ instance: 2, begin: 5_000, end: 7_000, ok: true }];
  assert.deepEqual(checkHistory(history({ sessions: late }), BOUNDS).violations, []);
  // A fault of the stopping instance's link explains a stale read.
  const faults = [{ kind: "delay" as const, target: 1, begin: 4_000, end: 5_000 }];
  assert.deepEqual(checkHistory(history({ sessions, faults }), BOUNDS).violations, []);
});

Deno.test("checkHistory() flags a backend still running at the idle stop's deadline, never excused", () => {
  const faults = [{ kind: "kill" as const, target: "etcd" as const, begin: 1_000, end: 2_000 }];
  const verdict = checkHistory(history({ runningAtDeadline: true, faults }), BOUNDS);
  assert.equal(verdict.violations.length, 1);
  assert.match(verdict.violations[0], /^the backend still ran at/);
  // The deadline counts from the later of the faults healed and the last client gone.
  assert.equal(idleStopDeadline(history({ healed: 4_000 }), BOUNDS), 4_000 + 2_000 + 1_000 + 5_000);
  assert.equal(idleStopDeadline(history({ healed: 1_000 }), BOUNDS), 3_000 + 2_000 + 1_000 + 5_000);
});

Deno.test("checkHistory() flags an instance starting past READY_TIMEOUT + HOLD_TIMEOUT, unless paused", () => {
  const starting = [{ instance: 1, begin: 2_000, end: 28_000 }];
  assert.match(
    checkHistory(history({ starting }), BOUNDS).violations[0],
    /instance 1 stayed starting from \S+ for 26\.0s/,
  );
  assert.match(
    checkHistory(history({ starting: [{ instance: 1, begin: 2_000 }] }), BOUNDS).violations[0],
    /for 28\.0s/,
  );
  const faults = [{ kind: "pause" as const, target: 1, begin: 3_000, end: 20_000 }];
  assert.deepEqual(checkHistory(history({ starting, faults }), BOUNDS).violations, []);
});

Deno.test("checkHistory() flags a client that failed while its instance and the backend were up, never excused by etcd", () => {
  const failed = {
    instance: 2,
    begin: 2_000,
    end: 2_500,
    ok: false,
    error: "Gave up after 3 wakes",
  };
  const faults = [{ kind: "blackhole" as const, target: 2, begin: 1_500, end: 2_500 }];
  const verdict = checkHistory(history({ sessions: [failed], faults }), BOUNDS);
  assert.equal(verdict.violations.length, 1);
  assert.match(
    verdict.violations[0],
    /a client of instance 2 at \S+ failed while it and the backend were up: Gave up/,
  );
  // Its instance killed, or the backend not up yet: not a refusal to flag.
  const killed = [{ kind: "kill" as const, target: 2, begin: 2_100, end: 4_000 }];
  assert.deepEqual(
    checkHistory(history({ sessions: [failed], faults: killed }), BOUNDS).violations,
    [],
  );
  const early = { ...failed, begin: 800, end: 1_100 };
  assert.deepEqual(checkHistory(history({ sessions: [early] }), BOUNDS).violations, []);
});
