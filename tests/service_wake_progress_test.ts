/**
 * What a wake under way waits for, in words, at each step (times given, not waited for).
 */
import assert from "node:assert/strict";
import { WakeProgress } from "../src/service/wake_progress.ts";
import { serviceConfig } from "./_service.ts";

const target = { hostname: "10.0.0.5", port: 22 };
const source = { file: "t.conf", line: 1 };

Deno.test("WakeProgress says each step, how long of its limit, and who waits", () => {
  const config = serviceConfig({
    readyTimeout: 60,
    startCmd: { text: "boot", timeout: 120, source },
    checkCmd: { text: "probe", source },
    dependsOn: ["Database"],
  });
  let waiting = { clients: 3, datagrams: 0 };
  const progress = new WakeProgress(() => config, () => waiting);
  assert.equal(progress.describe(), undefined);
  progress.step({ step: "dependencies", since: 0 });
  assert.equal(
    progress.describe(2_000),
    "waking Database (DEPENDS_ON) first: 2 s, 3 clients held",
  );
  progress.step({ step: "check", since: 0 });
  assert.equal(progress.describe(1_500), "running CHECK_CMD: 1 s, 3 clients held");
  progress.step({ step: "start", since: 0 });
  assert.equal(
    progress.describe(45_000),
    "running START_CMD: 45 s of START_CMD_TIMEOUT 120 s, 3 clients held",
  );
  progress.step({ step: "ready", since: 0, target });
  progress.attemptFailed("READY_CMD exit 2 after 0.1s: no response");
  assert.equal(
    progress.describe(10_000),
    "waiting for READY_CMD to pass for 10.0.0.5:22: 10 s of READY_TIMEOUT 60 s, 3 clients " +
      "held; last try: READY_CMD exit 2 after 0.1s: no response",
  );
  progress.step({ step: "connect", since: 0, target });
  assert.equal(
    progress.describe(20_000),
    "waiting for 10.0.0.5:22: 20 s of READY_TIMEOUT 60 s, 3 clients held",
  );
  progress.attemptFailed("Connection refused (os error 111)");
  waiting = { clients: 1, datagrams: 12 };
  assert.equal(
    progress.describe(20_999),
    "waiting for 10.0.0.5:22: 20 s of READY_TIMEOUT 60 s, 1 client held, 12 datagrams " +
      "queued; last try: Connection refused",
  );
  waiting = { clients: 0, datagrams: 0 };
  assert.match(progress.describe(21_000)!, /, no client held; last try/);
});
