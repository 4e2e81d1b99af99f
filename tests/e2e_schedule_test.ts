/**
 * KEEP_AWAKE through the real CLI, with an injected clock
 * (SLEEPINGD_CLOCK, SLEEPINGD_CLOCK_RATE): the service woken at a window's
 * start, never idle-stopped inside it, stopped once it is over; and a daemon
 * started inside a window wakes it at once.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { startDaemon } from "./_daemon.ts";
import { runCli } from "./_helpers.ts";
import { historySetup } from "./_history.ts";

Deno.test("KEEP_AWAKE wakes the service at the window's start, holds off idle stops inside, and lets go after", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 0.3,
    cost: "",
    extra: "KEEP_AWAKE=Mon 08:00-08:01\nTIME_ZONE=Europe/Paris",
  });
  // Monday 07:59:58 in Paris, 20 times as fast: the window opens in 0.1 s and lasts 3 s.
  const daemon = await startDaemon(setup.file, {
    args: ["-v"],
    env: { SLEEPINGD_CLOCK: "2026-11-30T07:59:58+01:00", SLEEPINGD_CLOCK_RATE: "20" },
  });
  try {
    await daemon.waitForLine(/\[echo\] asleep -> starting: schedule Mon 08:00-08:01$/);
    await daemon.waitForLine(/\[echo\] not idle: schedule Mon 08:00-08:01 until Mon 08:01$/);
    const stop = daemon.lines.findIndex((line) => /awake -> stopping/.test(line));
    assert.equal(stop, -1, "no stop inside the window");
    // Over: idle as usual, stopped after IDLE_TIME.
    await daemon.waitForLine(/\[echo\] stopping -> asleep/);
    const idleStop = (await setup.firstStop())!;
    assert.equal(idleStop.stop, "idle");
    // The window lasted 60 clock seconds, 3 real ones: awake at least most of that.
    assert.ok(idleStop.lasted >= 2.5, `awake ${idleStop.lasted}s, less than the window`);
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("a daemon started inside a KEEP_AWAKE window wakes the service at once, and says why it is awake", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 0.3,
    cost: "",
    extra: "KEEP_AWAKE=Mon-Fri 08:00-18:00; Sat 10:00-14:00\nTIME_ZONE=Europe/Paris",
  });
  const daemon = await startDaemon(setup.file, {
    env: { SLEEPINGD_CLOCK: "2026-11-30T12:00:00+01:00" },
  });
  try {
    await daemon.waitForLine(/\[echo\] starting -> awake/);
    const { body } = await setup.api<DaemonStatus>("/api/status");
    assert.equal(body.services[0].awakeBecause, "schedule Mon-Fri 08:00-18:00 until Mon 18:00");
    const status = await runCli(["-f", setup.file, "status"]);
    assert.match(status.stdout, /state awake \(schedule Mon-Fri 08:00-18:00 until Mon 18:00\)/);
    const check = await runCli(["-f", setup.file, "check"]);
    assert.match(
      check.stdout,
      /keep awake: Mon-Fri 08:00-18:00; Sat 10:00-14:00 \(Europe\/Paris\)/,
    );
  } finally {
    await setup.cleanup(daemon);
  }
});
