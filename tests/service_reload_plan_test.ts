import assert from "node:assert/strict";
import type { ServiceConfig } from "../src/config/types.ts";
import { planReload } from "../src/service/reload_plan.ts";
import { command, serviceConfig } from "./_service.ts";

/** A service's settings, as a configuration file would give them. */
function svc(name: string, port: number, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return serviceConfig({
    name,
    port,
    listenAddresses: ["::"],
    startCmd: command(`start ${name}`),
    ...extra,
  });
}

Deno.test("planReload() keeps the listeners of services whose settings did not change", () => {
  const plan = planReload([svc("a", 80)], [{
    ...svc("a", 80),
    source: { file: "b.conf", line: 9 },
    portSource: { file: "b.conf", line: 10 },
    morePortsSource: { file: "b.conf", line: 11 },
  }]);
  assert.deepEqual(plan, {
    added: [],
    removed: [],
    changed: [],
    unchanged: ["a"],
    renamed: [],
    listenBefore: [],
    listenAfter: [],
    relisten: [],
  });
});

Deno.test("planReload() changes a service in place when its port stays", () => {
  const plan = planReload([svc("a", 80)], [svc("a", 80, { idleTime: 5 })]);
  assert.deepEqual([plan.changed, plan.relisten, plan.listenBefore], [["a"], [], []]);
});

Deno.test("planReload() opens a moved or added service's listener before the swap, so a failure changes nothing", () => {
  const plan = planReload([svc("a", 80)], [svc("a", 81), svc("b", 82)]);
  assert.deepEqual(plan.changed, ["a"]);
  assert.deepEqual(plan.added, ["b"]);
  assert.deepEqual(plan.relisten, ["a"]);
  assert.deepEqual(plan.listenBefore, ["a", "b"]);
  assert.deepEqual(plan.listenAfter, []);
});

Deno.test("planReload() opens a port taken over from a removed service after the swap", () => {
  const plan = planReload([svc("old", 80), svc("kept", 90)], [svc("kept", 90), svc("new", 80)]);
  assert.deepEqual(plan.removed, ["old"]);
  assert.deepEqual(plan.added, ["new"]);
  assert.deepEqual(plan.listenBefore, []);
  assert.deepEqual(plan.listenAfter, ["new"]);
});

Deno.test("planReload() opens a service's new addresses on its own port after its old listener closes", () => {
  const plan = planReload(
    [svc("a", 80)],
    [svc("a", 80, { listenAddresses: ["127.0.0.1"] })],
  );
  assert.deepEqual(plan.relisten, ["a"]);
  assert.deepEqual(plan.listenAfter, ["a"]);
});

Deno.test("planReload() swaps the ports of two services after the swap", () => {
  const plan = planReload([svc("a", 80), svc("b", 81)], [svc("a", 81), svc("b", 80)]);
  assert.deepEqual(plan.relisten, ["a", "b"]);
  assert.deepEqual(plan.listenAfter, ["a", "b"]);
});

Deno.test("planReload() takes a section renamed with the same commands as that service, moved or not", () => {
  const same = { startCmd: command("start vm"), stopCmd: command("stop vm") };
  const plan = planReload(
    [svc("old", 80, same), svc("moved", 81, same)],
    [svc("new", 80, same), svc("elsewhere", 82, same)],
  );
  assert.deepEqual(plan.renamed, [{ from: "old", to: "new" }, { from: "moved", to: "elsewhere" }]);
  assert.deepEqual([plan.added, plan.removed, plan.unchanged], [[], [], []]);
  assert.deepEqual(plan.changed, ["new", "elsewhere"]);
  assert.deepEqual([plan.relisten, plan.listenBefore], [["elsewhere"], ["elsewhere"]]);
});

Deno.test("planReload() renames nothing whose commands differ, or read the name or the moved port", () => {
  const byName = command("start $SLEEPINGD_SERVICE");
  const byPort = command("start $SLEEPINGD_PORT");
  const plan = planReload(
    [svc("a", 80), svc("b", 81, { startCmd: byName }), svc("c", 82, { startCmd: byPort })],
    [svc("x", 80), svc("y", 81, { startCmd: byName }), svc("z", 83, { startCmd: byPort })],
  );
  assert.deepEqual(plan.renamed, []);
  assert.deepEqual(plan.removed, ["a", "b", "c"]);
  assert.deepEqual(plan.added, ["x", "y", "z"]);
  // The same port under a new name is still the same backend when only the port is read.
  const kept = planReload([svc("c", 82, { startCmd: byPort })], [
    svc("z", 82, { startCmd: byPort }),
  ]);
  assert.deepEqual(kept.renamed, [{ from: "c", to: "z" }]);
});

Deno.test("planReload() moves a service whose PORT turns routed by name, or back: the port's router listens then", () => {
  const shared = { hostnames: ["a.test"] };
  const onto = planReload([svc("a", 80)], [svc("a", 80, shared)]);
  assert.deepEqual([onto.changed, onto.relisten, onto.listenAfter], [["a"], ["a"], ["a"]]);
  const off = planReload([svc("a", 80, shared)], [svc("a", 80)]);
  assert.deepEqual([off.changed, off.relisten, off.listenAfter], [["a"], ["a"], ["a"]]);
  // New names on a port that stays shared change the service in place.
  const names = planReload([svc("a", 80, shared)], [svc("a", 80, { hostnames: ["b.test"] })]);
  assert.deepEqual([names.changed, names.relisten], [["a"], []]);
});
