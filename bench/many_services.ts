/**
 * `deno run -A bench/many_services.ts [--services N] [--runs R] [--main PATH]`:
 * the control plane with many services. A configuration of N services (1000
 * by default), all asleep, one port each, run by the real CLI: how long
 * `check`, `start`, `status`, `status --json`, `/api/status`, `reload` and
 * `stop` take (the median of R runs, 3 by default), the daemon's resident
 * memory and its CPU while idle. `--main` names the `src/main.ts` to run, so
 * that two checkouts can be compared on the same machine.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpuSeconds } from "./cpu.ts";
import { rssKiB } from "./proc.ts";

/** How long the daemon is watched while idle, for its CPU. */
const IDLE_SECONDS = 10;

/** What one run of a command gave. */
interface Timed {
  /** Wall time, in milliseconds. */
  ms: number;
  /** Its exit code. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    services: { type: "string", default: "1000" },
    runs: { type: "string", default: "3" },
    main: { type: "string", default: new URL("../src/main.ts", import.meta.url).pathname },
  },
});
const count = Number(values.services);
const runs = Number(values.runs);
const main = values.main;

/** `count` distinct free ports on 127.0.0.1: all held at once, then released. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** Runs `sleepingd -f FILE ARGS...` with the `main` asked for, timed. */
async function cli(file: string, ...args: string[]): Promise<Timed> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", main, "-f", file, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    ms: performance.now() - started,
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Fails unless `timed` exited 0, showing what it printed. */
function expectOk(what: string, timed: Timed): Timed {
  if (timed.code !== 0) {
    throw new Error(`${what} exited ${timed.code}:\n${timed.stderr.slice(0, 2000)}`);
  }
  return timed;
}

/** The median of `numbers`. */
function median(numbers: number[]): number {
  const sorted = numbers.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const dir = await Deno.makeTempDir({ prefix: "sleepingd-many-" });
try {
  const [metricsPort, ...ports] = freePorts(count + 1);
  const file = `${dir}/many.conf`;
  const sections = ports.map((port, index) =>
    `[service-${String(index + 1).padStart(4, "0")}]\nPORT=${port}\n`
  );
  await Deno.writeTextFile(
    file,
    [
      `VARRUN_PATH=${dir}/run`,
      `STATE_PATH=${dir}/state`,
      `METRICS_ADDRESS=127.0.0.1:${metricsPort}`,
      "LISTEN_ADDRESS=127.0.0.1",
      `START_CMD="echo '127.0.0.1 9'"`,
      "",
      ...sections,
    ].join("\n"),
  );
  const rows = new Map<string, number[]>();
  const note = (name: string, value: number) => rows.set(name, [...rows.get(name) ?? [], value]);
  for (let run = 0; run < runs; run++) {
    note("check (ms)", expectOk("check", await cli(file, "check")).ms);
    note("start (ms)", expectOk("start", await cli(file, "start")).ms);
    const pid = Number(Deno.readTextFileSync(`${dir}/run/sleepingd.pid`).split("\n")[0]);
    const cpuBefore = cpuSeconds(pid)!;
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    note("idle CPU (%)", (cpuSeconds(pid)! - cpuBefore) / IDLE_SECONDS * 100);
    note("RSS idle (MiB)", rssKiB(pid) / 1024);
    note("status (ms)", expectOk("status", await cli(file, "status")).ms);
    const json = expectOk("status --json", await cli(file, "status", "--json"));
    note("status --json (ms)", json.ms);
    note("status --json (KiB)", json.stdout.length / 1024);
    const api = performance.now();
    const response = await fetch(`http://127.0.0.1:${metricsPort}/api/status`);
    await response.arrayBuffer();
    note("/api/status (ms)", performance.now() - api);
    note("reload (ms)", expectOk("reload", await cli(file, "reload")).ms);
    note("RSS after (MiB)", rssKiB(pid) / 1024);
    const stop = await cli(file, "stop");
    note("stop (ms)", stop.ms);
    note("stop exit code", stop.code);
    if (stop.code !== 0) console.error(`stop: ${stop.stderr.trim().slice(0, 300)}`);
  }
  console.log(`${count} services, asleep, one port each; median of ${runs} run(s); ${main}`);
  for (const [name, numbers] of rows) {
    const shown = numbers.map((number) => number.toFixed(number < 10 ? 2 : 0)).join(" ");
    console.log(`  ${name.padEnd(20)} ${median(numbers).toFixed(2).padStart(9)}   (${shown})`);
  }
} finally {
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", main, "-f", `${dir}/many.conf`, "stop"],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  await Deno.remove(dir, { recursive: true });
}
