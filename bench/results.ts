/**
 * The JSON results file: the machine, every table with every run, the
 * memory, leak and wake numbers, and what was skipped and why.
 *
 * @module
 */

import type { PartName } from "./args.ts";
import type { LeakResult } from "./leak.ts";
import type { Machine } from "./machine.ts";
import type { MemoryPlan, MemoryRow } from "./memory.ts";
import type { Table } from "./report.ts";
import type { OneWake, WakeOverhead } from "./wake.ts";

/** Everything one run of the bench measured. */
export interface Results {
  /** When the bench began, ISO 8601. */
  startedAt: string;
  /** Seconds the whole bench took. */
  seconds?: number;
  /** The command line. */
  args: string[];
  /** Whether it was a `--quick` run. */
  quick: boolean;
  /** The machine and the tools' versions. */
  machine?: Machine;
  /** Tables of the table parts (client, iperf3, redis, wrk), by part. */
  tables: Partial<Record<PartName, Table[]>>;
  /** The memory part's tables and leak test. */
  memory?: {
    /** Each memory table: how it ran, and a row per proxy. */
    tables: { plan: MemoryPlan; rows: MemoryRow[] }[];
    /** Rounds of opening and closing connections through one sleepingd. */
    leak?: LeakResult | { failed: string };
  };
  /** The wake part's numbers. */
  wake?: {
    /** The cost of a wake on top of START_CMD. */
    overhead?: WakeOverhead | { failed: string };
    /** 1000 clients in one wake. */
    oneWake?: OneWake | { failed: string };
  };
  /** Seconds each part took. */
  partSeconds: Partial<Record<PartName, number>>;
  /** Every variant, server or client left out, and every part that failed, and why. */
  skipped: string[];
  /** The error that ended the bench early, if one did. */
  error?: string;
}

/** Writes `results` as indented JSON to `path`. */
export async function writeResults(path: string, results: Results): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
}
