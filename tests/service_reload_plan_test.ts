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
