/**
 * UDP through every variant that forwards it (direct, socat, sleepingd) to
 * `iperf3 -s`: the datagrams lost and the throughput at 100, 200 and 500
 * Mbit/s of 1400-byte datagrams, and the packets per second of 64-byte
 * datagrams sent as fast as iperf3 can. Each test's control connection is
 * TCP on the same port, through the same proxy.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import { childPids } from "./cpu.ts";
import { iperf3Report } from "./iperf3.ts";
import type { Reach, Workload } from "./measure.ts";
import { findProgram, freePort, notInstalled, start, waitForListener } from "./processes.ts";
import { type Started, startSleepingdWith, type VariantContext } from "./variants.ts";

/** The variants that forward UDP; the others are TCP proxies. */
export const UDP_VARIANTS: readonly VariantName[] = ["direct", "socat", "sleepingd"];
/** Offered rates of the loss tables, in Mbit/s. */
const RATES = [100, 200, 500];
/** The datagrams of the loss tables: one flow of 1400-byte datagrams, as a tunnel sends. */
const DATAGRAM_BYTES = 1400;
/** The datagrams of the packet rate table: game-server traffic. */
const SMALL_BYTES = 64;
/** Seconds a socat UDP child lives without a datagram: longer than a test, shorter than a part. */
const SOCAT_IDLE_SECONDS = 10;
/** How long a proxy may take to listen before the bench gives up on it. */
const STARTUP_TIMEOUT_MS = 30_000;

/** The UDP workloads of a full run, or of a `--quick` one (shorter tests). */
export function udpWorkloads(quick: boolean): Workload[] {
  const seconds = quick ? 1 : 3;
  const loss = RATES.map((rate): Workload => ({
    title: `iperf3 -u: one flow of ${DATAGRAM_BYTES}-byte datagrams at ${rate} Mbit/s, ` +
      `${seconds} s (iperf3 -c 127.0.0.1 -p P -u -b ${rate}M -l ${DATAGRAM_BYTES} ` +
      `-t ${seconds} -J; % lost)`,
    unit: "% lost",
    lowerIsBetter: true,
    compare: "difference",
    client: "reaped",
    run: async (port, signal, reach) => {
      const args = ["-u", "-b", `${rate}M`, "-l", `${DATAGRAM_BYTES}`, "-t", `${seconds}`];
      const { sum_received } = await iperf3Report(port, args, signal, reach);
      return {
        value: sum_received.lost_percent!,
        extras: { "received Mbit/s": sum_received.bits_per_second / 1e6 },
      };
    },
  }));
  const packets: Workload = {
    title: `iperf3 -u: ${SMALL_BYTES}-byte datagrams as fast as iperf3 sends them, ${seconds} s ` +
      `(iperf3 -c 127.0.0.1 -p P -u -b 0 -l ${SMALL_BYTES} -t ${seconds} -J; packets/s received)`,
    unit: "packets/s",
    client: "reaped",
    run: async (port, signal, reach) => {
      const args = ["-u", "-b", "0", "-l", `${SMALL_BYTES}`, "-t", `${seconds}`];
      const { sum_received } = await iperf3Report(port, args, signal, reach);
      const sent = sum_received.packets!;
      return {
        value: (sent - sum_received.lost_packets!) / sum_received.seconds,
        extras: {
          "sent packets/s": sent / sum_received.seconds,
          "lost %": sum_received.lost_percent!,
        },
      };
    },
  };
  return [...loss, packets];
}

/** A short test, unmeasured: wakes sleepingd and warms up its JIT. */
export async function udpWarmUp(port: number, reach?: Reach): Promise<void> {
  const args = ["-u", "-b", "50M", "-l", `${DATAGRAM_BYTES}`, "-t", "1"];
  await iperf3Report(port, args, new AbortController().signal, reach);
}

/** Starts the UDP variant `name` in front of iperf3 on `context.backendPort`, TCP and UDP. */
export async function startUdpVariant(
  name: VariantName,
  context: VariantContext,
): Promise<Started> {
  switch (name) {
    case "direct":
      return { variant: { name, port: context.backendPort, stop: () => Promise.resolve() } };
    case "socat":
      return await startSocatUdp(context);
    case "sleepingd":
      return { variant: await startSleepingdUdp(context) };
    default:
      return { skipped: "it forwards TCP only" };
  }
}

/**
 * sleepingd with one service on port P, TCP for iperf3's control connection
 * and UDP (`MORE_PORTS=P:B/udp`) for its datagrams.
 */
async function startSleepingdUdp({ backendPort, tempDir }: VariantContext) {
  const port = freePort();
  const dir = await Deno.makeTempDir({ dir: tempDir, prefix: "sleepingd-udp-" });
  const child = await startSleepingdWith([
    "[bench]",
    `PORT=${port}`,
    `MORE_PORTS=${port}:${backendPort}/udp`,
    "LISTEN_ADDRESS=127.0.0.1",
    `START_CMD="echo '127.0.0.1 ${backendPort}'"`,
  ], dir);
  return { name: "sleepingd" as const, port, pid: child.pid, stop: () => child.stop() };
}

/**
 * Two socats on port P: `UDP4-LISTEN:P,fork` (a child per client flow, gone
 * after 10 s without a datagram) to `UDP4:127.0.0.1:B`, and the TCP one of the
 * other tables for iperf3's control connection. The UDP one's CPU (its
 * children's included) is the proxy's.
 */
async function startSocatUdp({ backendPort }: VariantContext): Promise<Started> {
  const socat = findProgram("socat");
  if (socat === undefined) return { skipped: notInstalled("socat", "socat") };
  const port = freePort();
  const udp = start("socat udp", socat, [
    "-T",
    `${SOCAT_IDLE_SECONDS}`,
    `UDP4-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
    `UDP4:127.0.0.1:${backendPort}`,
  ]);
  const tcp = start("socat", socat, [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128`,
    `TCP:127.0.0.1:${backendPort}`,
  ]);
  try {
    await waitForListener(tcp, port, STARTUP_TIMEOUT_MS);
  } catch (error) {
    await Promise.all([udp.stop(), tcp.stop()]);
    throw error;
  }
  const stop = async () => {
    // The UDP children outlive their parent until their timeout: they go with it.
    const children = childPids(udp.pid);
    await Promise.all([udp.stop(), tcp.stop()]);
    for (const pid of children) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // Gone already.
      }
    }
  };
  return { variant: { name: "socat", port, pid: udp.pid, stop } };
}
