/**
 * iperf3 through every variant to `iperf3 -s`: TCP throughput with 1 and 4
 * streams, as `iperf3 -c 127.0.0.1 -p P -t N -P K -J` measures it. Each test
 * opens a control connection and then one per stream, all through the proxy.
 *
 * @module
 */

import type { Reach, Workload } from "./measure.ts";
import { findProgram, runOn } from "./processes.ts";

const MIB = 1024 * 1024;
/** Tries of one test: `iperf3 -s` answers "busy" while it still finishes the test before. */
const ATTEMPTS = 10;

/** The iperf3 workloads of a full run, or of a `--quick` one (shorter tests). */
export function iperf3Workloads(quick: boolean): Workload[] {
  const seconds = quick ? 1 : 2;
  return [1, 4].map((streams) => ({
    title: `iperf3: ${streams} stream${streams === 1 ? "" : "s"}, ${seconds} s ` +
      `(iperf3 -c 127.0.0.1 -p P -t ${seconds} -P ${streams} -J; received MiB/s)`,
    unit: "MiB/s",
    client: "reaped",
    run: async (port, signal, reach) => ({
      value: await iperf3(port, ["-t", `${seconds}`, "-P", `${streams}`], signal, reach),
    }),
  }));
}

/** A short test, unmeasured: wakes sleepingd and warms up its JIT. */
export async function iperf3WarmUp(port: number, reach?: Reach): Promise<void> {
  await iperf3(port, ["-n", "256M"], new AbortController().signal, reach);
}

/** One iperf3 test with `args` against 127.0.0.1:`port` (or `reach`); returns the MiB/s received. */
async function iperf3(
  port: number,
  args: string[],
  signal: AbortSignal,
  reach?: Reach,
): Promise<number> {
  const { sum_received } = await iperf3Report(port, args, signal, reach);
  return sum_received.bits_per_second / 8 / MIB;
}

/** What the receiving end of an iperf3 test counted (`end.sum_received` of its JSON report). */
export interface Received {
  /** Seconds the test lasted. */
  seconds: number;
  /** Bits per second received. */
  bits_per_second: number;
  /** Datagrams sent (UDP). */
  packets?: number;
  /** Datagrams that did not arrive (UDP). */
  lost_packets?: number;
  /** The same, in percent of those sent (UDP). */
  lost_percent?: number;
}

/**
 * One iperf3 test with `args` against 127.0.0.1:`port` (or `reach`), tried
 * again while `iperf3 -s` says it is busy; returns what the receiving end counted.
 */
export async function iperf3Report(
  port: number,
  args: string[],
  signal: AbortSignal,
  reach?: Reach,
): Promise<{ sum_received: Received }> {
  const iperf3 = findProgram("iperf3")!;
  const host = reach?.host ?? "127.0.0.1";
  /** The first try's error: the later ones may only say that the server is still busy with it. */
  let first: string | undefined;
  for (let attempt = 1;; attempt++) {
    const ran = await runOn(
      reach?.prefix,
      iperf3,
      ["-c", host, "-p", `${port}`, ...args, "-J"],
      signal,
    );
    let report;
    try {
      report = JSON.parse(ran.stdout);
    } catch {
      throw new Error(`iperf3 exited with code ${ran.code}: ${(ran.stderr || ran.stdout).trim()}`);
    }
    if (report.error === undefined) return report.end;
    first ??= report.error;
    // Busy: it shows as "busy", or as a broken pipe when it closed before the client wrote.
    if (!/busy|unable to send control message/.test(report.error) || attempt === ATTEMPTS) {
      const tries = attempt === 1 ? "" : ` (try ${attempt}; the first said: ${first})`;
      throw new Error(`iperf3: ${report.error}${tries}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
