/**
 * The parts of the bench, each printing its tables or rows as it goes and
 * keeping its numbers in the results: the bench's own client, iperf3 (TCP
 * and UDP), redis-benchmark and wrk (tables of every variant), the kernel
 * path, memory and wake.
 *
 * @module
 */

import type { BenchOptions, PartName } from "./args.ts";
import { iperf3WarmUp, iperf3Workloads } from "./iperf3.ts";
import { startUdpVariant, UDP_VARIANTS, udpWarmUp, udpWorkloads } from "./udp.ts";
import { leakTest, renderLeak } from "./leak.ts";
import { measure, type Workload } from "./measure.ts";
import {
  measureMemory,
  MEMORY_PROXIES,
  memoryPlans,
  type MemoryRow,
  renderMemory,
  TARGET_CONNECTIONS,
} from "./memory.ts";
import { findProgram, notInstalled, throwIfInterrupted } from "./processes.ts";
import { redisWarmUp, redisWorkloads } from "./redis.ts";
import { legend, renderTable, summarize, type Table } from "./report.ts";
import type { Results } from "./results.ts";
import {
  PAGE_BYTES,
  type Server,
  type ServerStarted,
  startIperf3Server,
  startNginx,
  startRedis,
} from "./servers.ts";
import {
  type Started,
  startVariants,
  stopVariants,
  type Variant,
  type VariantContext,
} from "./variants.ts";
import type { VariantName } from "./args.ts";
import { oneWakeForAll, renderOneWake, renderWakeOverhead, wakeOverhead } from "./wake.ts";
import { startWakeDaemon } from "./wake_daemon.ts";
import { warmUp, workloads } from "./workloads.ts";
import { kernelPartMissing, makeNetwork, startKernelVariants } from "./kernel.ts";
import type { Reach } from "./measure.ts";
import { wrkWarmUp, wrkWorkloads } from "./wrk.ts";

/** Runs per variant and workload in a full run; `--quick` runs each once. */
const REPEATS = 3;
/** Clients of the crowd test. */
const CROWD = 1000;
/** Rounds of the leak test: round 10 is compared with round 2. */
const LEAK_ROUNDS = 10;
/** Rounds of the leak test in a `--quick` run: round 3 is compared with round 2. */
const LEAK_QUICK_ROUNDS = 3;
/** Connections per round of the leak test in a `--quick` run. */
const LEAK_QUICK_CONNECTIONS = 1000;

/** What every part needs: the options, the temp dir, the echo backend and the results. */
export interface PartContext {
  /** The command line's options. */
  options: BenchOptions;
  /** The bench's temp dir, removed when it ends. */
  tempDir: string;
  /** The bench's echo/sink backend. */
  echo: Server;
  /** Where the numbers go. */
  results: Results;
}

/** Runs the part `part`. */
export async function runPart(part: PartName, context: PartContext): Promise<void> {
  const quick = context.options.quick;
  switch (part) {
    case "client":
      heading("the bench's own client (Deno, one thread) -> bench/backend.ts (Deno echo/sink)");
      return await tablesPart(part, context, context.echo, { workloads: workloads(quick), warmUp });
    case "iperf3":
      heading("iperf3 -> iperf3 -s");
      return await toolPart(part, context, ["iperf3", "iperf3"], () => startIperf3Server(), {
        workloads: iperf3Workloads(quick),
        warmUp: iperf3WarmUp,
      });
    case "udp":
      heading("iperf3 -u -> iperf3 -s (UDP; its control connection over TCP, same port)");
      return await toolPart(part, context, ["iperf3", "iperf3"], () => startIperf3Server(), {
        workloads: udpWorkloads(quick),
        warmUp: udpWarmUp,
        variants: UDP_VARIANTS,
        launch: startUdpVariant,
      });
    case "redis":
      heading("redis-benchmark -> redis-server (no persistence)");
      return await toolPart(part, context, ["redis-benchmark", "redis-tools"], startRedis, {
        workloads: redisWorkloads(quick),
        warmUp: redisWarmUp,
      });
    case "wrk":
      heading(`wrk -> nginx (one process, a ${PAGE_BYTES}-byte page, access_log off)`);
      return await toolPart(part, context, ["wrk", "wrk"], startNginx, {
        workloads: await wrkWorkloads(quick, context.tempDir),
        warmUp: wrkWarmUp,
      });
    case "kernel":
      heading(
        "FORWARD=kernel: client -> host (the proxies; sleepingd on both paths) -> backend, " +
          "three hosts in network namespaces",
      );
      return await kernelPart(context);
    case "memory":
      heading("memory: proxy RSS (VmRSS of /proc/PID/status) -> bench/backend.ts");
      return await memoryPart(context);
    case "wake":
      heading("wake: sleepingd waking a service for its clients -> bench/backend.ts");
      return await wakePart(context);
  }
}

function heading(text: string): void {
  console.log(`\n== ${text} ==`);
}

/** Notes `message` as skipped: printed and in the results. */
export function skip(context: PartContext, message: string): void {
  console.log(`  skipped: ${message}`);
  context.results.skipped.push(message);
}

/** What a table part measures: its workloads, the warm-up, and which variants, started how. */
interface TablePlan {
  workloads: Workload[];
  warmUp: (port: number) => Promise<void>;
  /** The variants it can measure, of those asked for; all by default. */
  variants?: readonly VariantName[];
  /** How each is started; the TCP proxies by default. */
  launch?: (name: VariantName, context: VariantContext) => Promise<Started>;
}

/**
 * A table part with a real client and server: skipped with the package to
 * install when the client is missing; else starts the server in a folder of
 * its own, measures, and stops it.
 */
async function toolPart(
  part: PartName,
  context: PartContext,
  [client, debianPackage]: [string, string],
  startServer: (dir: string) => Promise<ServerStarted>,
  plan: TablePlan,
): Promise<void> {
  if (findProgram(client) === undefined) return skip(context, notInstalled(client, debianPackage));
  const dir = await Deno.makeTempDir({ dir: context.tempDir, prefix: part });
  let started: ServerStarted;
  try {
    started = await startServer(dir);
  } catch (error) {
    throwIfInterrupted();
    return skip(context, `${part}: the server fails to start: ${(error as Error).message}`);
  }
  if ("missing" in started) return skip(context, started.missing);
  const { server } = started;
  try {
    await tablesPart(part, context, server, plan);
  } finally {
    await server.stop();
  }
}

/** Starts every variant in front of `server`, measures every workload, stops the variants. */
async function tablesPart(
  part: PartName,
  context: PartContext,
  server: Server,
  { workloads, warmUp, variants: able, launch }: TablePlan,
): Promise<void> {
  const repeats = context.options.quick ? 1 : REPEATS;
  const { variants, skipped } = await startVariants(
    // The kernel path forwards no loopback client: it has its own part.
    context.options.variants.filter((name) =>
      name !== "sleepingd-kernel" && (able?.includes(name) ?? true)
    ),
    { backendPort: server.port, tempDir: context.tempDir },
    warmUp,
    launch,
  );
  try {
    skipped.forEach((message) => skip(context, `${message} (${part})`));
    if (!variants.some((variant) => variant.name === "direct")) {
      return skip(context, `${part}: the direct connection fails; nothing to compare with`);
    }
    const tables: Table[] = context.results.tables[part] = [];
    await measureTables(workloads, variants, server, repeats, tables);
  } finally {
    await stopVariants(variants);
  }
}

/** Measures each workload against every variant, printing each table and keeping it in `tables`. */
async function measureTables(
  workloads: Workload[],
  variants: Variant[],
  server: Server,
  repeats: number,
  tables: Table[],
): Promise<void> {
  for (const workload of workloads) {
    const outcomes = await measure(workload, variants, server, repeats);
    throwIfInterrupted();
    const table = summarize(workload, outcomes, repeats);
    tables.push(table);
    console.log(`\n${table.title}\n${legend(table)}\n${renderTable(table)}`);
  }
}

/**
 * The kernel part: iperf3 (TCP and UDP), redis-benchmark and wrk from a
 * client host to a backend host, directly (routed by the host between) and
 * through haproxy (TCP only) and sleepingd's two paths on that host. Its conntrack table (the bench's
 * own test host) is emptied before each run, so that no run inherits the
 * last one's TIME-WAIT entries; the most entries a run left is printed
 * beside nf_conntrack_max.
 */
async function kernelPart(context: PartContext): Promise<void> {
  const missing = kernelPartMissing();
  if (missing) return skip(context, `kernel: ${missing}`);
  if (!context.options.variants.includes("sleepingd-kernel")) {
    return skip(context, "kernel: it measures sleepingd-kernel, which --only leaves out");
  }
  const quick = context.options.quick;
  const repeats = quick ? 1 : REPEATS;
  const network = await makeNetwork();
  const tools = [
    {
      tool: "iperf3",
      debianPackage: "iperf3",
      client: "iperf3",
      start: (_: string) => startIperf3Server(network.backend),
      workloads: iperf3Workloads(quick),
      warmUp: iperf3WarmUp,
    },
    {
      tool: "udp",
      debianPackage: "iperf3",
      client: "iperf3",
      start: (_: string) => startIperf3Server(network.backend),
      workloads: udpWorkloads(quick),
      warmUp: udpWarmUp,
      udp: true,
    },
    {
      tool: "redis",
      debianPackage: "redis-tools",
      client: "redis-benchmark",
      start: (dir: string) => startRedis(dir, network.backend),
      workloads: redisWorkloads(quick),
      warmUp: redisWarmUp,
    },
    {
      tool: "wrk",
      debianPackage: "wrk",
      client: "wrk",
      start: (dir: string) => startNginx(dir, network.backend),
      workloads: await wrkWorkloads(quick, context.tempDir),
      warmUp: wrkWarmUp,
    },
  ];
  const tables: Table[] = context.results.tables.kernel = [];
  let mostEntries = 0;
  for (const { tool, debianPackage, client, start, workloads, warmUp, udp = false } of tools) {
    if (findProgram(client) === undefined) {
      skip(context, `kernel: ${notInstalled(client, debianPackage)}`);
      continue;
    }
    const dir = await Deno.makeTempDir({ dir: context.tempDir, prefix: `kernel-${tool}` });
    const started = await start(dir);
    if ("missing" in started) {
      skip(context, `kernel: ${started.missing}`);
      continue;
    }
    const { server } = started;
    const { variants, skipped } = await startKernelVariants(
      context.options.variants,
      network,
      { port: server.port, udp },
      context.tempDir,
      warmUp,
    );
    try {
      skipped.forEach((message) => skip(context, `${message} (kernel, ${tool})`));
      const measured = workloads.map((workload): Workload => ({
        ...workload,
        run: async (port: number, signal: AbortSignal, reach?: Reach) => {
          await network.forgetConnections();
          const sample = await workload.run(port, signal, reach);
          mostEntries = Math.max(mostEntries, (await network.conntrack()).count);
          return sample;
        },
      }));
      await measureTables(measured, variants, server, repeats, tables);
    } finally {
      await stopVariants(variants);
      await server.stop();
    }
  }
  const { max } = await network.conntrack();
  console.log(
    `\n  conntrack on the host: at most ${mostEntries} entries after a run, of nf_conntrack_max ${max}`,
  );
}

/** The memory rows of sleepingd, haproxy and systemd-socket-proxyd, and the leak test. */
async function memoryPart(context: PartContext): Promise<void> {
  const quick = context.options.quick;
  // --quick leaves out systemd-socket-proxyd: its 12 s of waits would take the run past 2 minutes.
  const proxies = MEMORY_PROXIES.filter((name) =>
    context.options.variants.includes(name) && !(quick && name === "systemd-socket-proxyd")
  );
  if (proxies.length === 0) {
    return skip(
      context,
      `memory: it measures ${MEMORY_PROXIES.join(", ")}, which --only leaves out`,
    );
  }
  const variantContext = { backendPort: context.echo.port, tempDir: context.tempDir };
  console.log(
    "  per conn: (open - start) / connections; socat and seed are left out " +
      "(a process, or three, per connection)",
  );
  const memory: NonNullable<Results["memory"]> = context.results.memory = { tables: [] };
  for (const plan of memoryPlans(quick)) {
    const rows: MemoryRow[] = [];
    memory.tables.push({ plan, rows });
    for (const proxy of proxies) {
      throwIfInterrupted();
      rows.push(await measureMemory(proxy, variantContext, plan));
    }
    console.log(`\n${plan.title}\n${renderMemory(rows, plan.laterMs)}`);
  }
  if (!context.options.variants.includes("sleepingd")) return;
  const connections = quick ? LEAK_QUICK_CONNECTIONS : TARGET_CONNECTIONS;
  const rounds = quick ? LEAK_QUICK_ROUNDS : LEAK_ROUNDS;
  console.log(
    `\nleak test: ${rounds} rounds of opening and closing ${connections} connections ` +
      "through one sleepingd, RSS once it has closed them",
  );
  try {
    const leak = await leakTest(variantContext, connections, rounds);
    memory.leak = leak;
    if (leak.note !== undefined) {
      console.log(`  ${leak.connections} connections only (${leak.note})`);
    }
    console.log(renderLeak(leak));
  } catch (error) {
    throwIfInterrupted();
    memory.leak = { failed: (error as Error).message };
    console.log(`  failed: ${(error as Error).message}`);
  }
}

/** The wake overhead and the crowd test, against one sleepingd. */
async function wakePart(context: PartContext): Promise<void> {
  if (!context.options.variants.includes("sleepingd")) {
    return skip(context, "wake: it measures sleepingd, which --only leaves out");
  }
  const dir = await Deno.makeTempDir({ dir: context.tempDir, prefix: "wake-" });
  const daemon = await startWakeDaemon(dir, context.echo.port);
  const wake: NonNullable<Results["wake"]> = context.results.wake = {};
  try {
    const wakes = context.options.quick ? 5 : 10;
    console.log("\nwake overhead: first byte of a cold connection minus START_CMD's own run time");
    try {
      wake.overhead = await wakeOverhead(daemon, wakes);
      console.log(renderWakeOverhead(wake.overhead));
    } catch (error) {
      throwIfInterrupted();
      wake.overhead = { failed: (error as Error).message };
      console.log(`  failed: ${(error as Error).message}`);
    }
    console.log(
      `\none wake for ${CROWD} clients: START_CMD waits for a gate until sleepingd ` +
        `holds all ${CROWD}`,
    );
    try {
      wake.oneWake = await oneWakeForAll(daemon, CROWD);
      console.log(renderOneWake(wake.oneWake));
    } catch (error) {
      throwIfInterrupted();
      wake.oneWake = { failed: (error as Error).message };
      console.log(`  failed: ${(error as Error).message}`);
    }
  } finally {
    await daemon.stop();
  }
}
