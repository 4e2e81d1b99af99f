import assert from "node:assert/strict";
import { Lifecycle, type State } from "../src/service/lifecycle.ts";

function recorded() {
  const changes: string[] = [];
  const lifecycle = new Lifecycle((from, to, reason) => changes.push(`${from}->${to} ${reason}`));
  return { lifecycle, changes };
}

Deno.test("Lifecycle.transition() goes round asleep, starting, awake, stopping and reports each change", () => {
  const { lifecycle, changes } = recorded();
  const path: State[] = ["asleep", "starting", "awake", "stopping", "asleep"];
  for (let i = 1; i < path.length; i++) {
    assert.equal(lifecycle.transition(path[i - 1], path[i], `step ${i}`), true);
  }
  assert.deepEqual(changes, [
    "asleep->starting step 1",
    "starting->awake step 2",
    "awake->stopping step 3",
    "stopping->asleep step 4",
  ]);
});

Deno.test("Lifecycle.transition() refuses a change from a state the service is not in", () => {
  const { lifecycle, changes } = recorded();
  assert.equal(lifecycle.transition("awake", "stopping", "idle"), false);
  assert.equal(lifecycle.state, "asleep");
  assert.deepEqual(changes, []);
});

Deno.test("Lifecycle.transition() refuses changes the life cycle does not allow", () => {
  const { lifecycle } = recorded();
  assert.equal(lifecycle.transition("asleep", "awake", "skip starting"), false);
  assert.equal(lifecycle.transition("asleep", "asleep", "no change"), false);
  lifecycle.transition("asleep", "starting", "wake");
  assert.equal(lifecycle.transition("starting", "starting", "again"), false);
  assert.equal(lifecycle.state, "starting");
});
