/**
 * `deno task bench`: measures sleepingd's data path and compares it with a
 * direct connection, socat and haproxy, all measured in the same run in
 * front of the same backend. See `bench/README.md`.
 *
 * @module
 */

import { parseBenchArgs, USAGE, type VariantName } from "./args.ts";
import { Connections } from "./client.ts";
import { CpuMeter } from "./cpu.ts";
import { describeMachine, loopbackCeiling } from "./machine.ts";
import {
  cleanUp,
  cleanUpOnSignals,
  freePort,
  Interrupted,
  onCleanUp,
  start,
  tail,
  throwIfInterrupted,
} from "./processes.ts";
import { type Outcome, type Run, table } from "./report.ts";
import { startVariant, type Variant } from "./variants.ts";
import { warmUp, type Workload, workloads } from "./workloads.ts";

/** Runs of every workload, per variant; their median is reported. */
const REPEATS = 3;
/** Longest one run of one workload may take before the variant counts as failed. */
const RUN_TIMEOUT_MS = 60_000;

/** The echo/sink backend every variant forwards to. */
interface Backend {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Its process id, for its CPU time. */
  pid: number;
  /** Its last lines of output, for an error message. */
  lines: string[];
  /** Whether it has exited: every number measured after that is void. */
  gone(): boolean;
}

/** Starts the echo/sink backend in its own process, once it listens. */
async function startBackend(): Promise<Backend> {
  const script = new URL("./backend.ts", import.meta.url).pathname;
  const backend = start("backend", Deno.execPath(), ["run", "--allow-net", script]);
  let exited = false;
  backend.exited.then(() => exited = true);
  const line = await backend.waitForLine((line) => /^\d+$/.test(line), 30_000);
  return { port: Number(line), pid: backend.pid, lines: backend.lines, gone: () => exited };
}

/** Starts and warms up every asked-for variant; prints why any is skipped. */
async function startVariants(
  names: VariantName[],
  backendPort: number,
  tempDir: string,
): Promise<Variant[]> {
  const variants: Variant[] = [];
  for (const name of names) {
    try {
      throwIfInterrupted();
      const started = await startVariant(name, { backendPort, tempDir });
      if ("skipped" in started) {
        console.log(`skipping ${name}: ${started.skipped}`);
        continue;
      }
      await warmUp(started.variant.port);
      variants.push(started.variant);
    } catch (error) {
      throwIfInterrupted();
      console.log(`skipping ${name}: it fails to start or to warm up: ${(error as Error).message}`);
    }
  }
  return variants;
}

/** Runs `workload` once against `variant`, timed out after {@linkcode RUN_TIMEOUT_MS}. */
async function runOnce(workload: Workload, variant: Variant, backendPid: number): Promise<Run> {
  const meter = new CpuMeter({
    ...(variant.pid === undefined ? {} : { proxy: variant.pid }),
    client: "self",
    backend: backendPid,
  });
  const conns = new Connections();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      conns.abort();
      reject(new Error(`took longer than ${RUN_TIMEOUT_MS / 1000} s`));
    }, RUN_TIMEOUT_MS);
  });
  meter.start();
  const started = performance.now();
  try {
    const sample = await Promise.race([workload.run(conns, variant.port), timeout]);
    return { sample, cpu: meter.percent((performance.now() - started) / 1000) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `workload` {@linkcode REPEATS} times for every variant. Each round
 * starts with another variant, so none always runs first or last.
 */
async function measure(
  workload: Workload,
  variants: Variant[],
  backend: Backend,
): Promise<Map<VariantName, Outcome>> {
  const runs = new Map<VariantName, Run[]>(variants.map((variant) => [variant.name, []]));
  const failed = new Map<VariantName, string>();
  for (let round = 0; round < REPEATS; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length];
      if (failed.has(variant.name)) continue;
      throwIfInterrupted();
      try {
        runs.get(variant.name)!.push(await runOnce(workload, variant, backend.pid));
      } catch (error) {
        throwIfInterrupted();
        if (backend.gone()) throw new Error(`the backend exited:\n${tail(backend.lines)}`);
        failed.set(variant.name, (error as Error).message);
      }
    }
  }
  return new Map(variants.map((variant): [VariantName, Outcome] => {
    const failure = failed.get(variant.name);
    return [variant.name, failure ? { failed: failure } : { runs: runs.get(variant.name)! }];
  }));
}

/** The bench: returns the exit code (0 done, 1 failed, 2 usage error). */
async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  cleanUpOnSignals();
  const began = performance.now();
  const tempDir = await Deno.makeTempDir({ prefix: "sleepingd-bench-" });
  onCleanUp(() => Deno.remove(tempDir, { recursive: true }));

  for (const line of await describeMachine()) console.log(line);
  if (!options.quick) {
    const ceiling = await loopbackCeiling(freePort(), 2);
    console.log(`loopback: ${ceiling} (iperf3, 1 connection, 2 s: C on both ends, no proxy)`);
  }
  const backend = await startBackend();
  console.log(`backend:  bench/backend.ts (Deno) on 127.0.0.1:${backend.port}`);
  const variants = await startVariants(options.variants, backend.port, tempDir);
  if (!variants.some((variant) => variant.name === "direct")) {
    console.error("bench: the direct connection to the backend fails; nothing to compare with");
    return 1;
  }
  const cores = navigator.hardwareConcurrency;
  console.log(
    `client:   this process (Deno, one thread)\n\nmedian of ${REPEATS} runs, higher is better; ` +
      `±: half the range of the runs; Nx name: this row's number / name's number;\n` +
      `cpu%: proxy/client/backend, percent of one core (${cores} cores = ${cores * 100})`,
  );
  for (const workload of workloads(options.quick)) {
    const outcomes = await measure(workload, variants, backend);
    throwIfInterrupted();
    console.log(`\n${workload.title}\n${table(workload.unit, outcomes)}`);
  }
  console.log(`\ndone in ${((performance.now() - began) / 1000).toFixed(0)} s`);
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main(Deno.args);
  } catch (error) {
    if (error instanceof Interrupted) code = error.message === "SIGINT" ? 130 : 143;
    else console.error(`bench: ${(error as Error).message ?? error}`);
  } finally {
    await cleanUp();
  }
  Deno.exit(code);
}
