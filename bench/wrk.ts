/**
 * wrk through every variant to nginx serving a small page: new connections
 * per second (`Connection: close`, one request per connection) with the
 * proxy's CPU time per connection, and requests per second on kept-alive
 * connections.
 *
 * @module
 */

import type { Reach, Sample, Workload } from "./measure.ts";
import { findProgram, runOn } from "./processes.ts";

/** Connections wrk keeps open (or reopens) at once. */
const CONNECTIONS = 50;

/**
 * A wrk script whose `done` prints the summary as one JSON line after
 * `WRK_JSON`, since wrk's own text output rounds its numbers.
 */
const SUMMARY_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/** The wrk workloads of a full run, or of a `--quick` one (shorter runs); the script goes in `dir`. */
export async function wrkWorkloads(quick: boolean, dir: string): Promise<Workload[]> {
  const seconds = quick ? 1 : 2;
  const script = `${dir}/summary.lua`;
  await Deno.writeTextFile(script, SUMMARY_SCRIPT);
  const common = ["-t", "1", "-c", `${CONNECTIONS}`, "-d", `${seconds}s`, "-s", script];
  return [
    {
      title: `wrk new connections: wrk -t 1 -c ${CONNECTIONS} -d ${seconds}s ` +
        "-H 'Connection: close' (one request per connection, connections/s)",
      unit: "conn/s",
      client: "reaped",
      run: async (port, signal, reach) => {
        const { sample, requests } = await wrk(
          port,
          [...common, "-H", "Connection: close"],
          signal,
          reach,
        );
        return { ...sample, connections: requests };
      },
    },
    {
      title: `wrk keep-alive: wrk -t 1 -c ${CONNECTIONS} -d ${seconds}s (requests/s)`,
      unit: "req/s",
      client: "reaped",
      run: async (port, signal, reach) => (await wrk(port, common, signal, reach)).sample,
    },
  ];
}

/** wrk's shortest run on kept-alive connections, unmeasured: wakes sleepingd and warms up its JIT. */
export async function wrkWarmUp(port: number, reach?: Reach): Promise<void> {
  const ran = await runOn(reach?.prefix, findProgram("wrk")!, [
    ...[
      "-t",
      "1",
      "-c",
      `${CONNECTIONS}`,
      "-d",
      "1s",
      `http://${reach?.host ?? "127.0.0.1"}:${port}/`,
    ],
  ]);
  if (ran.code !== 0) throw new Error(`wrk exited with code ${ran.code}: ${ran.stderr.trim()}`);
}

/**
 * Runs wrk with `args` against `http://127.0.0.1:PORT/` (or `reach`'s host);
 * returns its requests per second with its latency and its errors when there
 * are any, and how many requests were answered.
 */
async function wrk(
  port: number,
  args: string[],
  signal: AbortSignal,
  reach?: Reach,
): Promise<{ sample: Sample; requests: number }> {
  const url = `http://${reach?.host ?? "127.0.0.1"}:${port}/`;
  const ran = await runOn(reach?.prefix, findProgram("wrk")!, [...args, url], signal);
  const line = ran.stdout.split("\n").find((text) => text.startsWith("WRK_JSON "));
  if (ran.code !== 0 || line === undefined) {
    throw new Error(`wrk exited with code ${ran.code}: ${(ran.stderr || ran.stdout).trim()}`);
  }
  const summary = JSON.parse(line.slice("WRK_JSON ".length));
  if (summary.requests === 0) throw new Error(`no request answered: ${ran.stdout.trim()}`);
  const errors = summary.connect + summary.read + summary.write + summary.status + summary.timeout;
  const extras: Record<string, number> = {
    "p50 ms": summary.p50_us / 1000,
    "p99 ms": summary.p99_us / 1000,
  };
  if (errors > 0) extras.errors = errors;
  const value = summary.requests / (summary.duration_us / 1e6);
  return { sample: { value, extras }, requests: summary.requests };
}
