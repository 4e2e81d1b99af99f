/**
 * The module layers of docs/ARCHITECTURE.md, checked on the sources: imports
 * only go down, from cli/ to control/ to history/ and dashboard/, to service/, to
 * kernel/, to net/, process/ and config/.
 */
import assert from "node:assert/strict";
import { REPO } from "./_helpers.ts";

/** Each layer, with the layers its modules must not import from. */
const FORBIDDEN: Record<string, string[]> = {
  "log.ts": ["service", "control", "cli", "config", "net", "process", "kernel"],
  "log_file.ts": ["service", "control", "cli", "config", "net", "process", "kernel"],
  "timers.ts": ["service", "control", "cli", "config", "net", "process", "kernel"],
  "clock.ts": ["service", "control", "cli", "config", "net", "process", "kernel"],
  config: ["service", "control", "cli", "net", "process", "kernel"],
  net: ["service", "control", "cli", "config", "process", "kernel"],
  process: ["service", "control", "cli", "config", "net", "kernel"],
  fs: [
    "service",
    "control",
    "cli",
    "config",
    "net",
    "process",
    "history",
    "cluster",
    "dashboard",
    "kernel",
  ],
  kernel: ["service", "control", "cli", "history", "dashboard", "cluster", "waiting"],
  service: ["control", "cli", "history", "dashboard", "cluster"],
  history: ["control", "cli", "dashboard", "kernel"],
  cluster: ["control", "cli", "dashboard", "history"],
  dashboard: ["service", "control", "cli", "config", "net", "process", "history", "kernel"],
  waiting: [
    "service",
    "control",
    "cli",
    "config",
    "net",
    "process",
    "history",
    "dashboard",
    "cluster",
    "fs",
    "kernel",
  ],
  control: ["cli"],
};

/** The first part of a path under src/: a folder, or a file at the top. */
function layerOf(path: string): string {
  return path.split("/")[0];
}

Deno.test("no module of src/ imports from a layer above its own", () => {
  const src = `${REPO}src`;
  const upward: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(`${src}/${dir}`)) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory) walk(path);
      if (!entry.name.endsWith(".ts")) continue;
      const forbidden = FORBIDDEN[layerOf(path)] ?? [];
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
