/**
 * The bench's own client workloads against its echo/sink backend, with their
 * sizes for a full and a `--quick` run, and the warm-up each variant gets
 * before them.
 *
 * @module
 */

import { concurrency, connectionRate, Connections, echo, oneWay } from "./client.ts";
import type { Workload } from "./measure.ts";

const MIB = 1024 * 1024;

/** The workloads of a full run, or of a `--quick` one (a quarter of the bytes and connections). */
export function workloads(quick: boolean): Workload[] {
  const oneWayMib = quick ? 128 : 512;
  const echoMib = quick ? 32 : 128;
  const connections = quick ? 250 : 1000;
  const parallel = 64;
  const eachMib = 1;
  return [
    {
      title: `(1) throughput one way: 1 connection sends ${oneWayMib} MiB, the backend discards it`,
      unit: "MiB/s",
      client: "self",
      run: withConnections(async (conns, port) => ({
        value: await oneWay(conns, port, oneWayMib * MIB),
      })),
    },
    {
      title:
        `(2) echo both ways at once: 1 connection, ${echoMib} MiB there and back (MiB/s each way)`,
      unit: "MiB/s",
      client: "self",
      run: withConnections(async (conns, port) => ({
        value: await echo(conns, port, echoMib * MIB),
      })),
    },
    {
      title:
        `(3) connection rate: ${connections} sequential connect + 16-byte request/response + close`,
      unit: "conn/s",
      client: "self",
      run: withConnections(async (conns, port) => {
        const rate = await connectionRate(conns, port, connections);
        return {
          value: rate.perSecond,
          extras: { "p50 ms": rate.medianMs, "p99 ms": rate.p99Ms },
          connections,
        };
      }),
    },
    {
      title: `(4) concurrency: ${parallel} parallel connections, each echoing ${eachMib} MiB ` +
        "(total MiB/s each way)",
      unit: "MiB/s",
      client: "self",
      run: withConnections(async (conns, port) => ({
        value: await concurrency(conns, port, parallel, eachMib * MIB),
      })),
    },
  ];
}

/** A workload's `run` from one that uses {@linkcode Connections}, all closed on abort. */
function withConnections(
  run: (conns: Connections, port: number) => ReturnType<Workload["run"]>,
): Workload["run"] {
  return (port, signal) => {
    const conns = new Connections();
    signal.addEventListener("abort", () => conns.abort());
    return run(conns, port);
  };
}

/**
 * A little of every workload, unmeasured: wakes sleepingd (its first
 * connection runs START_CMD), and lets the JIT of sleepingd and the client
 * compile their hot loops before anything is timed.
 */
export async function warmUp(port: number): Promise<void> {
  const conns = new Connections();
  await connectionRate(conns, port, 1);
  await oneWay(conns, port, 32 * MIB);
  await echo(conns, port, 16 * MIB);
  await connectionRate(conns, port, 100);
  await concurrency(conns, port, 16, 256 * 1024);
}
