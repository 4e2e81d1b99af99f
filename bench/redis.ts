/**
 * redis-benchmark through every variant to a `redis-server`: GET with 50
 * clients, pipelined GET with 50 clients and 16 commands in flight each, and
 * the ping-pong latency of one client.
 *
 * @module
 */

import type { Reach, Sample, Workload } from "./measure.ts";
import { findProgram, runOn } from "./processes.ts";

/** The redis-benchmark workloads of a full run, or of a `--quick` one (a quarter of the requests). */
export function redisWorkloads(quick: boolean): Workload[] {
  const scale = quick ? 4 : 1;
  const gets = 60_000 / scale;
  const pipelined = 400_000 / scale;
  const pings = 10_000 / scale;
  return [
    {
      title: `redis GET: redis-benchmark -c 50 -n ${gets} -t get (requests/s)`,
      unit: "req/s",
      client: "reaped",
      run: async (port, signal, reach) => {
        const result = await redisBenchmark(
          port,
          ["-c", "50", "-n", `${gets}`, "-t", "get"],
          signal,
          reach,
        );
        return { value: result.rps, extras: { "p50 ms": result.p50, "p99 ms": result.p99 } };
      },
    },
    {
      title: `redis pipelined GET: redis-benchmark -c 50 -P 16 -n ${pipelined} -t get (requests/s)`,
      unit: "req/s",
      client: "reaped",
      run: async (port, signal, reach) => {
        const args = ["-c", "50", "-P", "16", "-n", `${pipelined}`, "-t", "get"];
        const result = await redisBenchmark(port, args, signal, reach);
        return { value: result.rps, extras: { "p50 ms": result.p50, "p99 ms": result.p99 } };
      },
    },
    {
      title:
        `redis ping-pong latency, one client: redis-benchmark -c 1 -n ${pings} -t ping_inline ` +
        "(p50 of one round trip)",
      unit: "ms",
      lowerIsBetter: true,
      client: "reaped",
      run: async (port, signal, reach): Promise<Sample> => {
        const args = ["-c", "1", "-n", `${pings}`, "-t", "ping_inline"];
        const result = await redisBenchmark(port, args, signal, reach);
        return { value: result.p50, extras: { "p99 ms": result.p99, "rate req/s": result.rps } };
      },
    },
  ];
}

/** A short benchmark, unmeasured: wakes sleepingd and warms up its JIT. */
export async function redisWarmUp(port: number, reach?: Reach): Promise<void> {
  await redisBenchmark(
    port,
    ["-c", "50", "-n", "20000", "-t", "get,ping_inline"],
    new AbortController().signal,
    reach,
  );
}

/** What one redis-benchmark test reports. */
interface RedisResult {
  /** Requests per second. */
  rps: number;
  /** Median latency, in ms. */
  p50: number;
  /** 99th percentile latency, in ms. */
  p99: number;
}

/** Runs `redis-benchmark -h 127.0.0.1 (or reach) -p PORT ARGS --csv`; returns its last test's numbers. */
async function redisBenchmark(
  port: number,
  args: string[],
  signal: AbortSignal,
  reach?: Reach,
): Promise<RedisResult> {
  const program = findProgram("redis-benchmark")!;
  const host = reach?.host ?? "127.0.0.1";
  const ran = await runOn(
    reach?.prefix,
    program,
    ["-h", host, "-p", `${port}`, ...args, "--csv"],
    signal,
  );
  const lines = ran.stdout.trim().split("\n").map((line) => line.replaceAll('"', "").split(","));
  const header = lines[0] ?? [];
  const last = lines.at(-1) ?? [];
  const field = (name: string) => Number(last[header.indexOf(name)]);
  const result = { rps: field("rps"), p50: field("p50_latency_ms"), p99: field("p99_latency_ms") };
  if (ran.code !== 0 || lines.length < 2 || !(result.rps > 0) || /error/i.test(ran.stderr)) {
    throw new Error(
      `redis-benchmark exited with code ${ran.code}: ${(ran.stderr || ran.stdout).trim()}`,
    );
  }
  return result;
}
