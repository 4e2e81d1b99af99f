/**
 * What the bench ran on: CPU, memory, kernel, open file limit, Deno, and the
 * versions of the proxies, servers and clients.
 *
 * @module
 */

import { hardFileLimit } from "./proc.ts";
import { findProgram, output } from "./processes.ts";
import { formatNumber } from "./report.ts";

/** The machine and the tools, as the JSON results hold them. */
export interface Machine {
  /** Logical cores (nproc). */
  cores: number;
  /** The CPU's model name. */
  cpu: string;
  /** Linux's release. */
  kernel: string;
  /** Total memory, in MiB. */
  memoryMiB: number;
  /** The open file limit the bench and its children may raise themselves to. */
  openFileLimit: number;
  /** Deno's version. */
  deno: string;
  /** V8's version. */
  v8: string;
  /** Each tool's version, or null when it is not installed. */
  tools: Record<string, string | null>;
}

/** Each tool: how to ask its version and where to find it in the answer. */
const TOOLS: [name: string, args: string[], version: RegExp][] = [
  ["socat", ["-V"], /socat version (\S+)/],
  ["haproxy", ["-v"], /HAProxy version (\S+)/],
  ["systemd-socket-activate", ["--version"], /systemd (\d+ \S+)/],
  ["bash", ["--version"], /version (\S+)/],
  ["iperf3", ["--version"], /iperf (\S+)/],
  ["redis-server", ["--version"], /v=(\S+)/],
  ["redis-benchmark", ["--version"], /redis-benchmark (\S+)/],
  ["nginx", ["-v"], /nginx\/(\S+)/],
  ["wrk", ["-v"], /wrk (\S+)/],
];

/** Reads the machine's description and every tool's version. */
export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const tools: Record<string, string | null> = {};
  for (const [name, args, version] of TOOLS) {
    const path = findProgram(name);
    tools[name] = path === undefined
      ? null
      : (await output(path, args)).match(version)?.[1] ?? "unknown version";
  }
  return {
    cores: navigator.hardwareConcurrency,
    cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU",
    kernel: Deno.osRelease(),
    memoryMiB: Math.round(Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0) / 1024),
    openFileLimit: hardFileLimit(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tools,
  };
}

/** The lines describing the machine, for the top of the report. */
export function machineLines(machine: Machine): string[] {
  const version = (name: string, how = "") => {
    const found = machine.tools[name];
    return found === null ? "not installed" : `${found}${how === "" ? "" : ` (${how})`}`;
  };
  return [
    `machine:  ${machine.cores} cores (nproc), ${machine.cpu}, ` +
    `${formatNumber(machine.memoryMiB / 1024)} GiB, Linux ${machine.kernel}, ` +
    `open file limit ${machine.openFileLimit}`,
    `deno:     ${machine.deno} (v8 ${machine.v8})`,
    `socat:    ${
      version("socat", "defaults but backlog=128: 8 KiB buffer, a process per connection")
    }`,
    `haproxy:  ${version("haproxy", "mode tcp, nbthread 1, default 16 KiB buffers, no splice")}`,
    `systemd:  ${
      version(
        "systemd-socket-activate",
        "systemd-socket-proxyd under systemd-socket-activate: splice, one thread",
      )
    }`,
    `seed:     socat and bash ${
      version("bash")
    } (per connection: a socat fork, bash, a second socat)`,
    `clients:  iperf3 ${version("iperf3")}, redis-benchmark ${version("redis-benchmark")}, ` +
    `wrk ${version("wrk")}`,
    `servers:  redis-server ${version("redis-server")}, nginx ${version("nginx")}`,
  ];
}
