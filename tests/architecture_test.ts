/**
 * The module layers of docs/ARCHITECTURE.md, checked on the sources: imports
 * only go down, from main.ts to cli/ to control/, to cluster/, history/ and
 * dashboard/, to service/, to kernel/, to config/, net/ and process/, to
 * waiting/, to the leaf files, to fs/. Every folder and file at the top of
 * src/ has a row saying what its modules may not import.
 */
import assert from "node:assert/strict";
import { REPO } from "./_helpers.ts";

/** Every folder and file at the top of src/, from the top of the picture down. */
const LAYERS = [
  "main.ts",
  "cli",
  "control",
  "cluster",
  "history",
  "dashboard",
  "service",
  "kernel",
  "config",
  "net",
  "process",
  "waiting",
  "log.ts",
  "log_file.ts",
  "timers.ts",
  "clock.ts",
  "version.ts",
  "fs",
];

/** Every layer but `self` and `allowed`: what a layer that imports (almost) nothing of sleepingd's may not. */
function allBut(self: string, ...allowed: string[]): string[] {
  return LAYERS.filter((layer) => layer !== self && !allowed.includes(layer));
}

/** The layers above the service: nothing below them imports them. */
const ABOVE_SERVICE = ["main.ts", "cli", "control", "cluster", "history", "dashboard"];

/** Each layer, with the layers its modules must not import from. */
const FORBIDDEN: Record<string, string[]> = {
  "main.ts": [], // the entry: everything is below it
  cli: ["main.ts"],
  control: ["main.ts", "cli"],
  cluster: ["main.ts", "cli", "control", "history", "dashboard"],
  history: ["main.ts", "cli", "control", "cluster", "dashboard", "kernel"],
  dashboard: allBut("dashboard"),
  service: ABOVE_SERVICE,
  kernel: [...ABOVE_SERVICE, "service", "waiting"],
  config: [...ABOVE_SERVICE, "service", "kernel", "net", "process"],
  net: [...ABOVE_SERVICE, "service", "kernel", "config", "process"],
  process: [...ABOVE_SERVICE, "service", "kernel", "config", "net"],
  fs: allBut("fs"),
  waiting: allBut("waiting"),
  "log.ts": allBut("log.ts", "log_file.ts"),
  "log_file.ts": allBut("log_file.ts", "fs"),
  "timers.ts": allBut("timers.ts"),
  "clock.ts": allBut("clock.ts", "timers.ts"),
  "version.ts": allBut("version.ts"),
};

/** The first part of a path under src/: a folder, or a file at the top. */
function layerOf(path: string): string {
  return path.split("/")[0];
}

Deno.test("every folder and file at the top of src/ has a row of what it may not import", () => {
  const top = [...Deno.readDirSync(`${REPO}src`)]
    .filter((entry) => entry.isDirectory || entry.name.endsWith(".ts"))
    .map((entry) => entry.name);
  assert.deepEqual(top.toSorted(), LAYERS.toSorted());
  assert.deepEqual(Object.keys(FORBIDDEN).toSorted(), LAYERS.toSorted());
  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    for (const name of forbidden) assert.ok(LAYERS.includes(name), `${layer}: no layer ${name}`);
  }
});

Deno.test("no module of src/ imports from a layer above its own", () => {
  const src = `${REPO}src`;
  const upward: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(`${src}/${dir}`)) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory) walk(path);
      if (!/\.[jt]s$/.test(entry.name)) continue;
      const forbidden = FORBIDDEN[layerOf(path)];
      const text = Deno.readTextFileSync(`${src}/${path}`);
      for (const [, target] of text.matchAll(/^(?:import|export)[^"]*"(\.[^"]+)"/gm)) {
        const resolved = new URL(target, `file:///${path}`).pathname.slice(1);
        if (forbidden.includes(layerOf(resolved))) upward.push(`${path} imports ${resolved}`);
      }
    }
  };
  walk("");
  assert.deepEqual(upward, []);
});
