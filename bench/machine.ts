/**
 * What the bench ran on: CPU, kernel, Deno, the proxies' versions, and the
 * loopback ceiling as iperf3 (C on both ends) measures it.
 *
 * @module
 */

import { findExecutable, output, start } from "./processes.ts";
import { formatNumber } from "./report.ts";

/** Lines describing the machine and the tools, for the top of the report. */
export async function describeMachine(): Promise<string[]> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const socat = findExecutable("socat");
  const haproxy = findExecutable("haproxy");
  const socatVersion = socat && firstMatch(await output(socat, ["-V"]), /socat version (\S+)/);
  const haproxyVersion = haproxy &&
    firstMatch(await output(haproxy, ["-v"]), /HAProxy version (\S+)/);
  return [
    `machine:  ${navigator.hardwareConcurrency} cores (nproc), ${model}, Linux ${Deno.osRelease()}`,
    `deno:     ${Deno.version.deno} (v8 ${Deno.version.v8})`,
    `socat:    ${
      socatVersion
        ? `${socatVersion} (defaults but backlog=128: 8 KiB buffer, a process per connection)`
        : "not installed"
    }`,
    `haproxy:  ${
      haproxyVersion
        ? `${haproxyVersion} (mode tcp, nbthread 1, default 16 KiB buffers, no splice)`
        : "not installed"
    }`,
  ];
}

/**
 * One TCP stream over loopback for `seconds`, measured by iperf3: its MiB/s,
 * or why there is no number.
 */
export async function loopbackCeiling(port: number, seconds: number): Promise<string> {
  const iperf3 = findExecutable("iperf3");
  if (iperf3 === undefined) return "iperf3 is not installed";
  const server = start("iperf3 server", iperf3, [
    ...["-s", "-1", "--forceflush", "-B", "127.0.0.1", "-p", `${port}`],
  ]);
  try {
    await server.waitForLine((line) => line.includes("Server listening"), 10_000);
    const report = await output(iperf3, [
      ...["-c", "127.0.0.1", "-p", `${port}`, "-t", `${seconds}`, "-l", "256K", "-J"],
    ]);
    const bitsPerSecond = JSON.parse(report).end.sum_received.bits_per_second as number;
    return `${formatNumber(bitsPerSecond / 8 / 1024 / 1024)} MiB/s`;
  } catch (error) {
    return `iperf3 failed: ${(error as Error).message}`;
  } finally {
    await server.stop();
  }
}

function firstMatch(text: string, pattern: RegExp): string {
  return text.match(pattern)?.[1] ?? "unknown version";
}
