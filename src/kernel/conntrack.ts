/**
 * The kernel's connection tracking, through `conntrack`: the connections the
 * kernel path forwards, found by their mark (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import type { Protocol } from "../config/ports.ts";
import { runTool } from "./tool.ts";
import { TAG_MASK } from "./rules.ts";

/** One tracked connection or UDP flow, as `conntrack -L -o id` prints it. */
export interface Flow {
  /** Its protocol. */
  protocol: Protocol;
  /** TCP's state as conntrack tracks it (`ESTABLISHED`, `SYN_SENT`, `TIME_WAIT`...); "" for UDP. */
  state: string;
  /** The connection mark. */
  mark: number;
  /** conntrack's id of the entry: the same entry keeps it while it lives. */
  id: string;
  /** The client's address, as it sent its first packet. */
  client: string;
  /** The port the client connected to. */
  port: number;
  /** No packet came back yet. */
  unreplied: boolean;
}

/**
 * Reads `conntrack -L -o id` output: one entry a line, its original
 * direction's `src=` and `dport=` first; lines that are not entries (the
 * summary) are skipped.
 */
export function parseFlows(text: string): Flow[] {
  const flows: Flow[] = [];
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    const protocol = words[0];
    if (protocol !== "tcp" && protocol !== "udp") continue;
    const field = (name: string) =>
      words.find((word) => word.startsWith(`${name}=`))?.slice(name.length + 1);
    const state = protocol === "tcp" && /^[A-Z_0-9]+$/.test(words[3] ?? "") ? words[3] : "";
    const mark = Number(field("mark") ?? 0);
    flows.push({
      protocol,
      state,
      mark,
      id: field("id") ?? "",
      client: field("src") ?? "",
      port: Number(field("dport") ?? 0),
      unreplied: words.includes("[UNREPLIED]"),
    });
  }
  return flows;
}

/**
 * The TCP connections in `state` whose mark carries the daemon's `tag` (the
 * kernel filters by mark, so the other connections of the host cost nothing).
 */
export async function listConnections(tag: number, state: string): Promise<Flow[]> {
  const { stdout } = await runTool("conntrack", [
    ...["-L", "-p", "tcp", "--mark", `${hex(tag)}/${hex(TAG_MASK)}`, "--state", state],
    ...["-o", "id"],
  ]);
  return parseFlows(stdout);
}

/**
 * Forgets the service's UDP flows, so that the next datagram of each lands on
 * sleepingd's socket (NAT is decided at a flow's first datagram only).
 */
export async function forgetUdpFlows(mark: number): Promise<void> {
  // 1: there was none to delete.
  await runTool("conntrack", ["-D", "-p", "udp", "--mark", hex(mark)], { okCodes: [0, 1] });
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}
