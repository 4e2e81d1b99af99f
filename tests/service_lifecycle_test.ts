import assert from "node:assert/strict";
import { type Change, Lifecycle, TransitionError } from "../src/service/lifecycle.ts";
import type { Recorder } from "../src/service/recorder.ts";
import { newStats } from "../src/service/stats.ts";
import { listenLocal } from "./_net.ts";

const TARGET = { hostname: "127.0.0.1", port: 9 };

/** A life cycle whose recorder and idle monitor write down what they are told. */
function recorded(onChange?: (change: Change) => void) {
  const events: string[] = [];
  const recorder: Recorder = {
    wakeEnded: (_service, ok) => events.push(`wake ${ok ? "ok" : "failed"}`),
    commandEnded: () => {},
    stopped: (_service, reason) => events.push(`stopped ${reason}`),
    refused: () => {},
    dropped: () => {},
  };
  const idle = { start: () => events.push("idle on"), stop: () => events.push("idle off") };
  const stats = newStats();
  const life = new Lifecycle({ name: "web", recorder, stats, idle, onChange });
  return { life, events, stats };
}

Deno.test("Lifecycle.transition() goes round the states and does what entering each one does", () => {
  const { life, events, stats } = recorded();
  life.transition("asleep", { to: "starting", reason: "connection" });
  assert.deepEqual(events, []);
  life.transition("starting", { to: "awake", target: TARGET, reason: "accepted" });
  assert.deepEqual(life.target, TARGET);
  assert.deepEqual(events, ["wake ok", "idle on"]);
  life.transition("awake", { to: "stopping", stopReason: "idle", reason: "idle for 3s" });
  assert.deepEqual(life.target, TARGET, "STOP_CMD still gets the target");
  life.transition("stopping", { to: "asleep", reason: "STOP_CMD done" });
  assert.equal(life.target, undefined);
  assert.deepEqual(life.lastTarget, TARGET, "kept for a CHECK_CMD that names no target");
  assert.deepEqual(events, ["wake ok", "idle on", "idle off", "idle off", "stopped idle"]);
  assert.equal(stats.wakes, 1);
  assert.equal(stats.idleStops, 1);
});

Deno.test("Lifecycle.transition() counts a failed wake, and the stop that cleans up after it", () => {
  const { life, events, stats } = recorded();
  life.transition("asleep", { to: "starting", reason: "connection" });
  life.transition("starting", { to: "asleep", reason: "wake failed: no target" });
  life.transition("asleep", { to: "starting", reason: "connection" });
  life.transition("starting", {
    to: "stopping",
    stopReason: "failed_wake",
    target: TARGET,
    reason: "wake failed: never ready",
  });
  assert.deepEqual(life.target, TARGET, "STOP_CMD gets the target START_CMD printed");
  life.transition("stopping", { to: "asleep", reason: "STOP_CMD ran" });
  assert.equal(stats.wakeFailures, 2);
  assert.equal(stats.wakes, 0);
  assert.deepEqual(events, [
    "idle off",
    "wake failed",
    "idle off",
    "wake failed",
    "idle off",
    "stopped failed_wake",
  ]);
});

Deno.test("Lifecycle.transition() records a backend found gone while awake", () => {
  const { life, events } = recorded();
  life.transition("asleep", { to: "starting", reason: "connection" });
  life.transition("starting", { to: "awake", target: TARGET, reason: "accepted" });
  life.transition("awake", { to: "asleep", reason: "127.0.0.1:9 is gone: refused" });
  assert.deepEqual(events.slice(-2), ["idle off", "stopped gone"]);
});

Deno.test("Lifecycle.transition() throws for a change from a state the service is not in", () => {
  const { life, events } = recorded();
  assert.throws(
    () => life.transition("awake", { to: "stopping", stopReason: "idle", reason: "idle" }),
    (error) => {
      assert.ok(error instanceof TransitionError);
      assert.equal(
        error.message,
        "Cannot change [web] from awake to stopping: the service is asleep",
      );
      return true;
    },
  );
  assert.equal(life.state, "asleep");
  assert.deepEqual(events, []);
});

Deno.test("Lifecycle.transition() and tryTransition() throw for a change the life cycle does not allow", () => {
  const { life } = recorded();
  const again = () => life.transition("asleep", { to: "asleep", reason: "again" });
  assert.throws(again, /Cannot change \[web\] from asleep to asleep: asleep never leads to asleep/);
  assert.throws(
    () => life.tryTransition("starting", { to: "starting", reason: "again" }),
    TransitionError,
  );
  assert.equal(life.state, "asleep");
});

Deno.test("Lifecycle.transition() adopts a running backend from asleep, counting no wake", () => {
  const { life, events, stats } = recorded();
  life.transition("asleep", { to: "awake", target: TARGET, reason: "adopted" });
  assert.deepEqual(life.target, TARGET);
  assert.deepEqual(events, ["idle on"], "its idle checks begin; no wake is counted");
  assert.equal(stats.wakes, 0);
});

Deno.test("Lifecycle.transition() cleans up after a killed daemon from asleep through stopping", () => {
  const { life, events } = recorded();
  life.transition("asleep", { to: "stopping", stopReason: "after_crash", reason: "leftover" });
  life.transition("stopping", { to: "asleep", reason: "STOP_CMD done" });
  assert.deepEqual(events, ["idle off", "idle off", "stopped after_crash"]);
});

Deno.test("Lifecycle.tryTransition() lets one caller win asleep -> starting", () => {
  const { life } = recorded();
  const wins = [1, 2, 3].map(() =>
    life.tryTransition("asleep", { to: "starting", reason: "connection" })
  );
  assert.deepEqual(wins, [true, false, false]);
  assert.equal(life.state, "starting");
});

Deno.test("Lifecycle.changed() tells every waiting client the next change and its reason", async () => {
  const { life } = recorded();
  life.transition("asleep", { to: "starting", reason: "connection" });
  const waiting = [life.changed(), life.changed()];
  life.transition("starting", { to: "asleep", reason: "wake failed: START_CMD exit 3" });
  for (const { lasted, ...change } of await Promise.all(waiting)) {
    assert.deepEqual(change, {
      from: "starting",
      to: "asleep",
      reason: "wake failed: START_CMD exit 3",
    });
    assert.ok(lasted >= 0);
  }
});

Deno.test("Lifecycle: each change says how long the state lasted, the target and why it stops", () => {
  const changes: Change[] = [];
  const { life } = recorded((change) => changes.push(change));
  life.transition("asleep", { to: "starting", reason: "connection" });
  life.transition("starting", { to: "awake", target: TARGET, reason: "accepted" });
  life.transition("awake", { to: "stopping", stopReason: "idle", reason: "idle for 60s" });
  life.transition("stopping", { to: "asleep", reason: "STOP_CMD exit 0" });
  life.transition("asleep", { to: "awake", target: TARGET, reason: "adopted" });
  life.transition("awake", { to: "asleep", reason: "refused" });
  assert.deepEqual(
    changes.map(({ to, target, stopReason }) => ({ to, target, stopReason })),
    [
      { to: "starting", target: undefined, stopReason: undefined },
      { to: "awake", target: TARGET, stopReason: undefined },
      { to: "stopping", target: undefined, stopReason: "idle" },
      { to: "asleep", target: undefined, stopReason: "idle" },
      { to: "awake", target: TARGET, stopReason: undefined },
      { to: "asleep", target: undefined, stopReason: "gone" },
    ],
  );
  assert.ok(changes.every((change) => change.lasted >= 0));
});

Deno.test("Lifecycle.takeSpare() gives the readiness connection once; leaving awake closes it untaken", async () => {
  const listener = listenLocal();
  const { life } = recorded();
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    (await listener.accept()).close();
    life.transition("asleep", { to: "starting", reason: "connection" });
    life.transition("starting", { to: "awake", target: TARGET, conn: first, reason: "accepted" });
    assert.equal(life.takeSpare(), first);
    assert.equal(life.takeSpare(), undefined);
    first.close();

    const second = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const accepted = await listener.accept();
    life.transition("awake", { to: "asleep", reason: "gone" });
    life.transition("asleep", { to: "starting", reason: "connection" });
    life.transition("starting", { to: "awake", target: TARGET, conn: second, reason: "accepted" });
    life.transition("awake", { to: "stopping", stopReason: "idle", reason: "idle" });
    assert.equal(await accepted.read(new Uint8Array(1)), null, "the spare was closed");
    accepted.close();
  } finally {
    listener.close();
  }
});
