import assert from "node:assert/strict";
import { sleep, startTimer, within } from "../src/timers.ts";

/** What a promise has done after `ms` milliseconds: "settled" or "pending". */
function after(promise: Promise<unknown>, ms: number): Promise<string> {
  return Promise.race([
    promise.then(() => "settled", () => "settled"),
    new Promise<string>((resolve) => setTimeout(() => resolve("pending"), ms)),
  ]);
}

Deno.test("sleep() waits past 2^31 ms instead of firing at once", async () => {
  const stop = new AbortController();
  const long = sleep(2 ** 31 + 60_000, stop.signal); // 24.9 days, like IDLE_CHECK_INTERVAL=2150000
  assert.equal(await after(long, 50), "pending");
  stop.abort(new Error("done"));
  await assert.rejects(long, /done/);
});

Deno.test("startTimer() chains past 2^31 ms and can be cancelled", async () => {
  let fired = false;
  const cancel = startTimer(30 * 24 * 3600 * 1000, () => fired = true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(fired, false);
  cancel();
});

Deno.test("sleep() resolves after a short wait and rejects at once when already aborted", async () => {
  await sleep(1);
  await assert.rejects(sleep(1, AbortSignal.abort(new Error("stopped"))), /stopped/);
});

Deno.test("within() says whether a promise settled in time, a rejection included", async () => {
  assert.equal(await within(Promise.reject(new Error("x")), 1000), true);
  assert.equal(await within(new Promise(() => {}), 10), false);
});
