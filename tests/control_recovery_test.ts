/**
 * Crash recovery on its own, from a state file written by hand: what a
 * daemon killed at an instant no test can gate leaves behind.
 */
import assert from "node:assert/strict";
import { recover } from "../src/control/recovery.ts";
import { isAlive } from "../src/process/proc_stat.ts";
import { bounded, waitFor } from "./_helpers.ts";
import { startHarness } from "./_service.ts";

Deno.test("recover() ends a START_CMD saved as it began (its run id, no pid yet) and runs STOP_CMD", async () => {
  const harness = await startHarness();
  const runId = crypto.randomUUID();
  // The START_CMD the killed daemon had just spawned: a process group of its own with the run id.
  const left = new Deno.Command("setsid", {
    args: ["sleep", "1000"],
    env: { SLEEPINGD_RUN_ID: runId },
    stdin: "null",
  }).spawn();
  try {
    await waitFor("the leftover to run", () => isAlive(left.pid));
    await recover([harness.service], {
      pid: 1,
      services: [{ name: "echo", state: "starting", commands: [{ action: "start", runId }] }],
    });
    const ended = await bounded(left.status, "the leftover START_CMD to be ended");
    assert.equal(ended.signal, "SIGTERM");
    assert.equal(harness.stops(), 1, "STOP_CMD cleaned up after it");
    assert.equal(harness.service.state, "asleep");
  } finally {
    if (isAlive(left.pid)) left.kill("SIGKILL");
    await harness.close();
  }
});
