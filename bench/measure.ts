/**
 * Measuring one workload against every variant: a few runs each, round by
 * round, each round starting with another variant, with the CPU time of
 * proxy, client and server during every run.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import { CpuMeter, type CpuSource } from "./cpu.ts";
import { tail, throwIfInterrupted } from "./processes.ts";
import type { Server } from "./servers.ts";
import type { Variant } from "./variants.ts";

/** Longest one run of one workload may take before the variant counts as failed. */
const RUN_TIMEOUT_MS = 60_000;

/** One run of a workload: its main number, and others shown after the ratios. */
export interface Sample {
  /** The number the ratios are taken of, in the workload's unit. */
  value: number;
  /** Further numbers, by `"label unit"` (e.g. `"p99 ms"`), printed as `label N unit`. */
  extras?: Record<string, number>;
  /** New connections the run made, for the proxy's CPU time per connection. */
  connections?: number;
}

/** A measurement repeated for every variant. */
export interface Workload {
  /** The heading of its table. */
  title: string;
  /** Unit of {@linkcode Sample.value}. */
  unit: string;
  /** True for latencies: a smaller number is better, and so is a ratio below 1. */
  lowerIsBetter?: boolean;
  /**
   * How rows compare: by ratio (`0.62× direct`), or by difference in the
   * unit (`+0.4 socat`), for percentages such as a loss, where 0 is common.
   * @default "ratio"
   */
  compare?: "ratio" | "difference";
  /** Whose CPU is the client's: the bench's own (`self`), or the program it runs (`reaped`). */
  client: "self" | "reaped";
  /**
   * Runs it once against 127.0.0.1:`port`, or against `reach` when given (the
   * kernel part's clients run on a host of their own); aborting `signal` ends it
   * with an error.
   */
  run(port: number, signal: AbortSignal, reach?: Reach): Promise<Sample>;
}

/** Where a client program runs and which address it connects to, when not 127.0.0.1 here. */
export interface Reach {
  /** The address to connect to. */
  host: string;
  /** What runs the client on its own host: `ip netns exec NS`. */
  prefix: string[];
}

/** One run of a workload for one variant, with the CPU each process used during it. */
export interface Run {
  /** What the workload measured. */
  sample: Sample;
  /** Percent of one core used during the run, by `proxy`, `client` and `server`. */
  cpu: Record<string, number>;
  /** The proxy's CPU seconds per new connection, in µs, where the run counted connections. */
  proxyMicrosPerConnection?: number;
}

/** What one variant got in one workload: its runs, or why it has none. */
export type Outcome = { runs: Run[] } | { failed: string };

/** Runs `workload` once against `variant`, timed out after {@linkcode RUN_TIMEOUT_MS}. */
async function runOnce(workload: Workload, variant: Variant, server: Server): Promise<Run> {
  const sources: Record<string, CpuSource> = { client: workload.client, server: server.pid };
  if (variant.pid !== undefined) sources.proxy = variant.pid;
  const meter = new CpuMeter(sources);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), RUN_TIMEOUT_MS);
  const timedOut = new Promise<never>((_, reject) => {
    abort.signal.addEventListener("abort", () => {
      reject(new Error(`took longer than ${RUN_TIMEOUT_MS / 1000} s`));
    });
  });
  meter.start();
  const started = performance.now();
  try {
    const sample = await Promise.race([
      workload.run(variant.port, abort.signal, variant.reach),
      timedOut,
    ]);
    const seconds = (performance.now() - started) / 1000;
    const used = meter.seconds();
    const cpu = Object.fromEntries(
      Object.entries(used).map(([name, cpuSeconds]) => [name, cpuSeconds / seconds * 100]),
    );
    const run: Run = { sample, cpu };
    if (sample.connections && used.proxy !== undefined) {
      run.proxyMicrosPerConnection = used.proxy / sample.connections * 1e6;
    }
    return run;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/**
 * Runs `workload` `repeats` times for every variant. Each round starts with
 * another variant, so none always runs first or last. A variant whose run
 * fails is not run again for this workload; a server that exits fails the whole table.
 */
export async function measure(
  workload: Workload,
  variants: Variant[],
  server: Server,
  repeats: number,
): Promise<Map<VariantName, Outcome>> {
  const runs = new Map<VariantName, Run[]>(variants.map((variant) => [variant.name, []]));
  const failed = new Map<VariantName, string>();
  for (let round = 0; round < repeats; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length];
      if (failed.has(variant.name)) continue;
      throwIfInterrupted();
      try {
        runs.get(variant.name)!.push(await runOnce(workload, variant, server));
      } catch (error) {
        throwIfInterrupted();
        if (server.gone()) throw new Error(`${server.name} exited:\n${tail(server.lines)}`);
        failed.set(variant.name, (error as Error).message);
      }
    }
  }
  return new Map(variants.map((variant): [VariantName, Outcome] => {
    const failure = failed.get(variant.name);
    return [variant.name, failure ? { failed: failure } : { runs: runs.get(variant.name)! }];
  }));
}
