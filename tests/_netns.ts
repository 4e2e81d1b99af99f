/**
 * Three test hosts in network namespaces, linked by veth pairs: a client, the
 * host sleepingd runs on (it routes between the two networks), and a backend.
 * Names are unique per run; the addresses are private and exist only inside
 * the namespaces; everything is removed at the end of the `await using` block.
 *
 * ```
 *  client 10.201.1.2 (+ .3) ── 10.201.1.1  host  10.201.2.1 ── 10.201.2.2 backend
 *  client fd00:201:1::2     ── fd00:201:1::1    fd00:201:2::1 ── fd00:201:2::2
 * ```
 *
 * @module
 */

import { runProgram } from "./_helpers.ts";
import { IN_CI, type Requirement, resolveRequirements } from "./_servers.ts";

/** The addresses of the three hosts. */
export const ADDRESSES = {
  /** The client's address. */
  client: "10.201.1.2",
  /** The client's second address, for tests about sources. */
  client2: "10.201.1.3",
  /** The host's address on the client's network: where clients connect. */
  host: "10.201.1.1",
  /** The host's address on the backend's network. */
  hostBackend: "10.201.2.1",
  /** The backend's address. */
  backend: "10.201.2.2",
  /** The backend's second address, for clients that must not share the first one's connections. */
  backend2: "10.201.2.3",
  /** The client's IPv6 address. */
  client6: "fd00:201:1::2",
  /** Another IPv6 address of the client, in the same /64. */
  client6b: "fd00:201:1::3",
  /** The host's IPv6 address on the client's network. */
  host6: "fd00:201:1::1",
  /** The host's IPv6 address on the backend's network. */
  hostBackend6: "fd00:201:2::1",
  /** The backend's IPv6 address. */
  backend6: "fd00:201:2::2",
} as const;

/** Which host a program runs on. */
export type Side = "client" | "host" | "backend";

/** The three namespaces, and ways to run programs in them. */
export interface Topology extends AsyncDisposable {
  /** The namespace of each host. */
  ns: Record<Side, string>;
  /** `ip netns exec NS PROGRAM ARGS...` to its end (bounded by runProgram's 60 s). */
  run(
    side: Side,
    program: string,
    args: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** `[ip, netns, exec, NS]`: the prefix that runs a command on a host. */
  prefix(side: Side): string[];
  /** Starts `PROGRAM ARGS...` on a host with its stdin a pipe the test holds; killed at the end. */
  spawn(side: Side, program: string, args: string[]): Deno.ChildProcess;
}

/**
 * Makes the three hosts. IPv4 forwarding is turned on in the host's own
 * namespace (the test's machine, not the real one): sleepingd only reads it.
 */
export async function makeTopology(): Promise<Topology> {
  const id = `sd${
    crypto.getRandomValues(new Uint8Array(3)).reduce((s, b) =>
      s + b.toString(16).padStart(2, "0"), "")
  }`;
  const ns: Record<Side, string> = { client: `${id}-c`, host: `${id}-h`, backend: `${id}-b` };
  const children: Deno.ChildProcess[] = [];
  const ip = async (...args: string[]) => {
    const { code, stderr } = await runProgram("ip", args);
    if (code !== 0) throw new Error(`ip ${args.join(" ")}: ${stderr.trim()}`);
  };
  const prefix = (side: Side) => ["ip", "netns", "exec", ns[side]];
  const dispose = async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
    }
    for (const name of Object.values(ns)) {
      // Whatever still runs in a namespace (servers the daemon's commands left) is ended by pid.
      const { stdout } = await runProgram("ip", ["netns", "pids", name]);
      for (const pid of stdout.split("\n").map(Number).filter((pid) => pid > 0)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      await runProgram("ip", ["netns", "del", name]);
    }
  };
  try {
    for (const name of Object.values(ns)) {
      await ip("netns", "add", name);
      await ip("-n", name, "link", "set", "lo", "up");
    }
    await ip("link", "add", `${id}ch`, "type", "veth", "peer", "name", `${id}hc`);
    await ip("link", "set", `${id}ch`, "netns", ns.client);
    await ip("link", "set", `${id}hc`, "netns", ns.host);
    await ip("link", "add", `${id}hb`, "type", "veth", "peer", "name", `${id}bh`);
    await ip("link", "set", `${id}hb`, "netns", ns.host);
    await ip("link", "set", `${id}bh`, "netns", ns.backend);
    const up = async (side: Side, device: string, addresses: string[], via: string[] = []) => {
      let v6 = 0;
      for (const address of addresses) {
        // nodad: an IPv6 address is usable at once, without duplicate address detection; one
        // after the first is deprecated (preferred_lft 0), so that only a client that binds it uses it.
        const later = address.includes(":") && v6++ > 0 ? ["preferred_lft", "0"] : [];
        const [prefix, flags] = address.includes(":") ? [64, ["nodad", ...later]] : [24, []];
        await ip("-n", ns[side], "addr", "add", `${address}/${prefix}`, "dev", device, ...flags);
      }
      await ip("-n", ns[side], "link", "set", device, "up");
      for (const gateway of via) {
        await ip("-n", ns[side], "route", "add", "default", "via", gateway);
      }
    };
    const { client, client2, client6, client6b, host, host6, hostBackend, hostBackend6 } =
      ADDRESSES;
    await up("client", `${id}ch`, [client, client2, client6, client6b], [host, host6]);
    await up("host", `${id}hc`, [host, host6]);
    await up("host", `${id}hb`, [hostBackend, hostBackend6]);
    const backends = [ADDRESSES.backend, ADDRESSES.backend2, ADDRESSES.backend6];
    await up("backend", `${id}bh`, backends, [hostBackend, hostBackend6]);
    await ip("netns", "exec", ns.host, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    await ip("netns", "exec", ns.host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    ns,
    prefix,
    run: (side, program, args) => runProgram("ip", ["netns", "exec", ns[side], program, ...args]),
    spawn(side, program, args) {
      const child = new Deno.Command("ip", {
        args: ["netns", "exec", ns[side], program, ...args],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      children.push(child);
      return child;
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/** What network namespace tests need besides their servers: root, iproute2, nftables, conntrack. */
export const NETNS_REQUIREMENTS: Requirement[] = [
  { binary: "ip", package: "iproute2" },
  { binary: "nft", package: "nftables" },
  { binary: "conntrack", package: "conntrack" },
];

/**
 * Declares a test on the three hosts: skipped without root or without one of
 * `requirements` (with what to install), except under `CI=true`, where it
 * fails with that message.
 */
export function netnsTest(
  name: string,
  requirements: Requirement[],
  fn: (topology: Topology, paths: Record<string, string>) => Promise<void>,
) {
  const { paths, missing: needs } = resolveRequirements([...NETNS_REQUIREMENTS, ...requirements]);
  const missing = needs ?? (Deno.uid() === 0 ? undefined : "needs root for network namespaces");
  if (missing && !IN_CI) console.warn(`skipping "${name}": ${missing}`);
  Deno.test({
    name,
    ignore: missing !== undefined && !IN_CI,
    async fn() {
      if (missing) throw new Error(`Cannot run "${name}": ${missing}`);
      await using topology = await makeTopology();
      await fn(topology, paths);
    },
  });
}
