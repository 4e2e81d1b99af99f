/**
 * What a proxy's memory does with many quiet connections: its RSS before,
 * with the connections open and quiet, right after they are closed and a few
 * seconds later; per connection, the difference divided by their number.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import { closeHeld, openHeld, sleep, waitForFiles } from "./held.ts";
import { hardFileLimit, openFiles, rssKiB } from "./proc.ts";
import { columns, formatNumber } from "./report.ts";
import { startVariant, type Variant, type VariantContext } from "./variants.ts";

/** The connections the memory rows aim for. */
export const TARGET_CONNECTIONS = 9000;
/** Files each process keeps for itself besides the connections (listeners, logs, pipes). */
const RESERVED_FILES = 500;
/** Files per forwarded connection in the proxy: the client's and the server's sockets. */
const FILES_PER_CONNECTION = 2;
/** systemd-socket-proxyd adds two pipes (four files) per connection for splice(). */
const PROXYD_FILES_PER_CONNECTION = 6;
/** Connections of the warm-up before the RSS is first read. */
const WARM_UP_CONNECTIONS = 200;
/** Longest a proxy may take to close the connections the bench closed. */
const CLOSE_TIMEOUT_MS = 30_000;

/** The proxies the memory rows are for: one process each, whatever the number of connections. */
export const MEMORY_PROXIES: readonly VariantName[] = [
  "sleepingd",
  "haproxy",
  "systemd-socket-proxyd",
];

/** One memory row: a proxy with its connections open and quiet, RSS in KiB. */
export interface MemoryRow {
  /** The proxy. */
  proxy: VariantName;
  /** Why it has no numbers. */
  failed?: string;
  /** Connections held open. */
  connections?: number;
  /** Why fewer than asked for. */
  note?: string;
  /** RSS before, after a warm-up. */
  startKiB?: number;
  /** RSS with the connections open and quiet. */
  openKiB?: number;
  /** (open - start) / connections. */
  perConnectionKiB?: number;
  /** RSS once the proxy has closed them all. */
  closedKiB?: number;
  /** RSS a few seconds after that. */
  laterKiB?: number;
}

/** How one memory table runs: how many connections, each echoing how much, how long quiet. */
export interface MemoryPlan {
  /** The heading of its table. */
  title: string;
  /** Connections to hold, before the open file limit scales them down. */
  connections: number;
  /** Bytes each connection echoes before it goes quiet. */
  burstBytes: number;
  /** How long the connections stay quiet before the RSS is read. */
  quietMs: number;
  /** How long after they are closed the last RSS is read. */
  laterMs: number;
}

/**
 * How long connections stay quiet, and how long after they close, before the
 * RSS is read: longer than sleepingd takes to notice it is quiet and give
 * memory back (2 to 4 s), so that the rows show what a proxy keeps, not what
 * it has not returned yet.
 */
export const SETTLE_MS = 6000;

/**
 * The memory tables of a full run, or of a `--quick` one (fewer connections,
 * and only the first table): many connections after a small echo each, and
 * fewer after a large one.
 */
export function memoryPlans(quick: boolean): MemoryPlan[] {
  const many = quick ? 2000 : TARGET_CONNECTIONS;
  const plans: MemoryPlan[] = [
    {
      title: `${many} connections open and quiet after a 16-byte echo each, RSS in MiB`,
      connections: many,
      burstBytes: 16,
      quietMs: SETTLE_MS,
      laterMs: SETTLE_MS,
    },
    {
      title: "300 connections open and quiet after a 1 MiB echo each, RSS in MiB",
      connections: 300,
      burstBytes: 1024 * 1024,
      quietMs: SETTLE_MS,
      laterMs: SETTLE_MS,
    },
  ];
  return quick ? plans.slice(0, 1) : plans;
}

/**
 * How many connections `proxy` can hold within the open file limit: at most
 * `wanted`, with the reason when fewer.
 */
export function connectionsFor(
  proxy: VariantName,
  wanted: number,
): { connections: number; note?: string } {
  const limit = hardFileLimit();
  const perConnection = proxy === "systemd-socket-proxyd"
    ? PROXYD_FILES_PER_CONNECTION
    : FILES_PER_CONNECTION;
  // The bench and the backend hold one file per connection, the proxy `perConnection`.
  const fits = Math.floor((limit - RESERVED_FILES) / perConnection);
  if (fits >= wanted) return { connections: wanted };
  return {
    connections: Math.max(fits, 0),
    note: `${perConnection} files per connection, open file limit ${limit}`,
  };
}

/** A proxy freshly started and warmed up, with what it held before a measurement. */
export interface Baseline {
  /** The proxy. */
  variant: Variant;
  /** Its process. */
  pid: number;
  /** Its open files. */
  files: number;
  /** Its RSS. */
  startKiB: number;
}

/**
 * Starts `proxy` in front of the echo backend, warms it up, reads its
 * baseline, runs `measure`, and stops it again.
 *
 * @returns what `measure` returned, or why the proxy was skipped
 */
export async function withFreshProxy<T>(
  proxy: VariantName,
  context: VariantContext,
  measure: (baseline: Baseline) => Promise<T>,
): Promise<T | { skipped: string }> {
  const started = await startVariant(proxy, context);
  if ("skipped" in started) return started;
  const { variant } = started;
  try {
    const pid = variant.pid!;
    await warmUpProxy(variant);
    return await measure({ variant, pid, files: openFiles(pid), startKiB: rssKiB(pid) });
  } finally {
    await variant.stop();
  }
}

/**
 * Closes `held` and waits until the proxy has closed its side of them too.
 *
 * @throws when it still holds them {@linkcode CLOSE_TIMEOUT_MS} after
 */
export async function closeAll(held: Deno.Conn[], { pid, files }: Baseline): Promise<void> {
  closeHeld(held);
  if (!await waitForFiles(pid, files + 10, CLOSE_TIMEOUT_MS)) {
    throw new Error(`still holds ${openFiles(pid)} files ${CLOSE_TIMEOUT_MS} ms after`);
  }
}

/**
 * Starts a fresh `proxy` in front of the echo backend, warms it up, and
 * measures its RSS around `plan.connections` quiet connections.
 */
export async function measureMemory(
  proxy: VariantName,
  context: VariantContext,
  plan: MemoryPlan,
): Promise<MemoryRow> {
  const { connections, note } = connectionsFor(proxy, plan.connections);
  // haproxy queues connections past its maxconn, systemd-socket-proxyd closes them: leave room.
  const maxConnections = Math.max(connections, WARM_UP_CONNECTIONS) + 100;
  try {
    const measured = await withFreshProxy(proxy, { ...context, maxConnections }, async (base) => {
      const held = await openHeld(base.variant.port, connections, plan.burstBytes);
      await sleep(plan.quietMs);
      const openKiB = rssKiB(base.pid);
      await closeAll(held, base);
      const closedKiB = rssKiB(base.pid);
      await sleep(plan.laterMs);
      const row: MemoryRow = {
        proxy,
        connections,
        startKiB: base.startKiB,
        openKiB,
        perConnectionKiB: (openKiB - base.startKiB) / connections,
        closedKiB,
        laterKiB: rssKiB(base.pid),
      };
      if (note !== undefined) row.note = note;
      return row;
    });
    return "skipped" in measured ? { proxy, failed: measured.skipped } : measured;
  } catch (error) {
    return { proxy, failed: (error as Error).message };
  }
}

/** A few connections opened and closed, then a pause: wakes sleepingd, execs systemd-socket-proxyd. */
export async function warmUpProxy(variant: Variant): Promise<void> {
  closeHeld(await openHeld(variant.port, WARM_UP_CONNECTIONS));
  await sleep(500);
}

/** The memory table: per proxy the RSS in MiB at each step, and KiB per connection. */
export function renderMemory(rows: MemoryRow[], laterMs: number): string {
  const mib = (kib: number) => formatNumber(kib / 1024);
  const header = [
    "proxy",
    "conns",
    "start MiB",
    "open MiB",
    "per conn",
    "closed MiB",
    `${laterMs / 1000} s later`,
  ];
  const table: string[][] = [header];
  const notes: string[] = [];
  for (const row of rows) {
    if (row.failed !== undefined) {
      notes.push(`  ${row.proxy}: ${row.failed}`);
      continue;
    }
    table.push([
      row.proxy,
      `${row.connections}`,
      mib(row.startKiB!),
      mib(row.openKiB!),
      `${formatNumber(row.perConnectionKiB!)} KiB`,
      mib(row.closedKiB!),
      mib(row.laterKiB!),
    ]);
    if (row.note !== undefined) {
      notes.push(`  ${row.proxy}: ${row.connections} connections only (${row.note})`);
    }
  }
  return [columns(table), ...notes].join("\n");
}
