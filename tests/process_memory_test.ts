import assert from "node:assert/strict";
import { returnMemoryWhenQuiet } from "../src/control/memory_return.ts";
import { returnMemory } from "../src/process/memory.ts";
import { waitFor } from "./_helpers.ts";
import { captureLog } from "./_service.ts";

const MIB = 1024 * 1024;

Deno.test("returnMemory() collects the garbage of a burst and gives its memory back", () => {
  // About 150 MiB that nothing refers to any more, but that no allocation made V8 collect yet.
  let garbage: unknown[] | undefined = Array.from(
    { length: 200_000 },
    (_, index) => ({ index, bytes: new Uint8Array(512) }),
  );
  assert.equal(garbage.length, 200_000);
  garbage = undefined;
  const { before, after } = returnMemory();
  assert.ok(
    before - after > 64 * MIB,
    `resident memory ${(before / MIB).toFixed(0)} MiB -> ${(after / MIB).toFixed(0)} MiB`,
  );
});

Deno.test("returnMemoryWhenQuiet() waits until connections stop coming and going", async () => {
  await using log = await captureLog("debug");
  const returned = () => log.lines().filter((line) => line.includes("connection events: memory"));
  let busy = true;
  let looks = 0;
  let events = 0;
  // Busy: every look sees 300 more connection events than the one before.
  const stop = returnMemoryWhenQuiet(() => {
    looks++;
    if (busy) events += 300;
    return events;
  }, 10);
  try {
    await waitFor("ten looks", () => looks >= 10);
    assert.deepEqual(returned(), [], "no return while connections come and go");
    busy = false;
    await waitFor("the memory returned once quiet", () => returned().length > 0);
    assert.match(
      returned()[0],
      /quiet after \d+ connection events: memory [\d.]+ MiB -> [\d.]+ MiB/,
    );
    const count = returned().length;
    const quietLooks = looks;
    await waitFor("ten more looks", () => looks >= quietLooks + 10);
    assert.equal(returned().length, count, "nothing happened since: no return again");
  } finally {
    stop();
  }
});
