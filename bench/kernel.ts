/**
 * The kernel part: sleepingd's two paths (FORWARD=proxy, FORWARD=kernel)
 * beside haproxy and a direct connection, on three hosts in network
 * namespaces — a client, the host the proxies run on (which routes between
 * the two networks), and a backend — since the kernel path forwards no
 * loopback client. The same topology as tests/e2e_kernel_test.ts.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import type { Reach } from "./measure.ts";
import {
  type Child,
  findProgram,
  freePort,
  notInstalled,
  onCleanUp,
  start,
  throwIfInterrupted,
  waitForListener,
} from "./processes.ts";
import type { Place } from "./servers.ts";
import { haproxyConfig, startSleepingdWith, type Variant } from "./variants.ts";
import { ADDRESSES, makeTopology, type Topology } from "../tests/_netns.ts";

/** The variants of the kernel part, in the order of its tables. */
export const KERNEL_VARIANTS: readonly VariantName[] = [
  "direct",
  "sleepingd",
  "sleepingd-kernel",
  "haproxy",
];

/** How long a proxy may take to listen, and the kernel path to be in place. */
const STARTUP_TIMEOUT_MS = 30_000;

/** The three hosts, where each program runs, and conntrack on the proxies' host. */
export interface Network {
  /** The backend's place: servers listen there. */
  backend: Place;
  /** What runs a client on the client's host. */
  client: string[];
  /** What runs a proxy on the host between. */
  host: string[];
  /** Empties the host's conntrack table (the bench's own test host) between runs. */
  forgetConnections(): Promise<void>;
  /** Entries in the host's conntrack table now, and the most it may hold (nf_conntrack_max). */
  conntrack(): Promise<{ count: number; max: number }>;
}

/** Why the kernel part cannot run here, or undefined when it can. */
export function kernelPartMissing(): string | undefined {
  if (Deno.build.os !== "linux") return "the kernel part needs Linux";
  if (Deno.uid() !== 0) return "the kernel part needs root (network namespaces, nftables)";
  for (
    const [program, debianPackage] of [["ip", "iproute2"], ["nft", "nftables"], [
      "conntrack",
      "conntrack",
    ]]
  ) {
    if (findProgram(program) === undefined) return notInstalled(program, debianPackage);
  }
  return undefined;
}

/**
 * Makes the three hosts, removed when the bench ends. The client and the
 * host reuse ports in TIME-WAIT for new connections (`tcp_tw_reuse=1`) over
 * the whole port range, as a busy client or proxy is set up to: without it,
 * 50 connections at a time exhaust the ports in a second. These settings are
 * the test hosts' own; nothing of the real host changes.
 */
export async function makeNetwork(): Promise<Network> {
  const topology: Topology = await makeTopology();
  onCleanUp(async () => await topology[Symbol.asyncDispose]());
  for (const side of ["client", "host"] as const) {
    await checked(topology.run(side, "sysctl", ["-qw", "net.ipv4.tcp_tw_reuse=1"]));
    await checked(topology.run(side, "sysctl", ["-qw", "net.ipv4.ip_local_port_range=1024 65535"]));
  }
  const inHost = (program: string, args: string[]) => topology.run("host", program, args);
  return {
    // Every address of the backend: direct clients use the second one (below).
    backend: { address: "0.0.0.0", prefix: topology.prefix("backend") },
    client: topology.prefix("client"),
    host: topology.prefix("host"),
    async forgetConnections() {
      await inHost("conntrack", ["-F"]);
    },
    async conntrack() {
      const count = Number((await inHost("conntrack", ["-C"])).stdout.trim());
      const max = Number(
        (await inHost("cat", ["/proc/sys/net/netfilter/nf_conntrack_max"])).stdout.trim(),
      );
      return { count, max };
    },
  };
}

async function checked(ran: Promise<{ code: number; stderr: string }>): Promise<void> {
  const { code, stderr } = await ran;
  if (code !== 0) throw new Error(stderr.trim());
}

/**
 * Starts every variant of `names` on the host, in front of the server at
 * `backend.port` on the backend (TCP, and UDP on the same port when
 * `backend.udp`: haproxy then sits out), and warms each up with `warmUp`; the
 * kernel path is measured once its rules are in (its warm-up woke it).
 */
export async function startKernelVariants(
  names: readonly VariantName[],
  network: Network,
  backend: { port: number; udp: boolean },
  tempDir: string,
  warmUp: (port: number, reach: Reach) => Promise<void>,
): Promise<{ variants: Variant[]; skipped: string[] }> {
  const variants: Variant[] = [];
  const skipped: string[] = [];
  for (const name of KERNEL_VARIANTS.filter((variant) => names.includes(variant))) {
    throwIfInterrupted();
    if (backend.udp && name === "haproxy") continue; // it forwards TCP only
    let started: { variant: Variant; child?: Child } | undefined;
    try {
      started = await startOne(name, network, backend, tempDir);
      await warmUp(started.variant.port, started.variant.reach!);
      if (name === "sleepingd-kernel") {
        await started.child!.waitForLine(
          (line) => line.includes("the kernel forwards new connections"),
          STARTUP_TIMEOUT_MS,
        );
      }
      variants.push(started.variant);
    } catch (error) {
      throwIfInterrupted();
      if (started) await started.variant.stop();
      skipped.push(`${name}: it fails to start or to warm up: ${(error as Error).message}`);
    }
  }
  return { variants, skipped };
}

/** One variant on the host, its clients on the client's host. */
async function startOne(
  name: VariantName,
  network: Network,
  { port: backendPort, udp }: { port: number; udp: boolean },
  tempDir: string,
): Promise<{ variant: Variant; child?: Child }> {
  const reach = (host: string): Reach => ({ host, prefix: network.client });
  if (name === "direct") {
    // Its own address of the backend: the kernel path keeps the client's address and port, so
    // direct connections to the same address would meet the kernel path's in the backend's
    // TIME-WAIT, with other TCP timestamps (their offset is per address pair), and be held up.
    // Not for UDP: iperf3 -s answers a datagram from the backend's first address, which a
    // client that sent to the second drops.
    const variant = {
      name,
      port: backendPort,
      reach: reach(udp ? ADDRESSES.backend : ADDRESSES.backend2),
      stop: () => Promise.resolve(),
    };
    return { variant };
  }
  const dir = await Deno.makeTempDir({ dir: tempDir, prefix: `${name}-` });
  const port = freePort();
  let child: Child;
  if (name === "haproxy") {
    const haproxy = findProgram("haproxy");
    if (haproxy === undefined) throw new Error(notInstalled("haproxy", "haproxy"));
    const configFile = `${dir}/haproxy.cfg`;
    const addresses = { listen: ADDRESSES.host, backend: ADDRESSES.backend };
    await Deno.writeTextFile(configFile, haproxyConfig(port, backendPort, undefined, addresses));
    const [command, ...args] = [...network.host, haproxy, "-f", configFile, "-db"];
    child = start("haproxy", command, args);
    await waitForListener(child, port, STARTUP_TIMEOUT_MS, ADDRESSES.host);
  } else {
    child = await startSleepingdWith(
      [
        "[bench]",
        `PORT=${port}`,
        // iperf3 -u: its control connection on TCP, its datagrams on UDP, on the same port.
        ...(udp ? [`MORE_PORTS=${port}:${backendPort}/udp`] : []),
        `LISTEN_ADDRESS=${ADDRESSES.host}`,
        `START_CMD="echo '${ADDRESSES.backend} ${backendPort}'"`,
        `FORWARD=${name === "sleepingd-kernel" ? "kernel" : "proxy"}`,
      ],
      dir,
      network.host,
    );
  }
  const variant: Variant = {
    name,
    port,
    pid: child.pid,
    reach: reach(ADDRESSES.host),
    stop: () => child.stop(),
  };
  return { variant, child };
}
