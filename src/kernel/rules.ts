/**
 * The nftables rules of the kernel path, as text for `nft -f`: the daemon's
 * own table, and each service's chains, sets and counters in it
 * (docs/ARCHITECTURE.md, "Kernel path"). Pure: nothing here runs nft.
 *
 * @module
 */

import { parseAddressRule } from "../config/address_rules.ts";
import type { Protocol } from "../config/ports.ts";

/** The family of sleepingd's table: one table serves IPv4 and IPv6. */
export const FAMILY = "inet";

/** The bits of a connection mark that name the daemon; the rest name the service. */
export const TAG_MASK = 0xffff0000;

/** One port the kernel forwards: the port clients reach, and the backend's. */
export interface ForwardedPort {
  /** Its protocol. */
  protocol: Protocol;
  /** The port sleepingd listens on. */
  listen: number;
  /** The backend's port. */
  backend: number;
}

/** Everything the rules of one service say. */
export interface ServiceRules {
  /** The service's name, for the chains' comments. */
  name: string;
  /** 1 to 0xffff: names the service's chains, sets and counters. */
  id: number;
  /** The connection mark of the service's connections: the daemon's tag, then `id`. */
  mark: number;
  /** The backend's address: an IPv4 or IPv6 address. */
  target: string;
  /** The ports forwarded, PORT first. */
  ports: ForwardedPort[];
  /** PORT when it is TCP: a backend that refuses a connection there is gone. */
  probePort?: number;
  /** LISTEN_ADDRESS: only connections to these addresses are forwarded; `::` means any. */
  listenAddresses: string[];
  /** ALLOW: the clients that may connect; empty means every client. */
  allow: string[];
  /** DENY: the clients that may not. */
  deny: string[];
  /** MAX_CONNECTIONS, when set. */
  maxConnections?: number;
  /** MAX_CONNECTIONS_PER_SOURCE, when set. */
  maxConnectionsPerSource?: number;
  /** Whether the backend sees this host's address instead of the client's. */
  masquerade: boolean;
}

/** The names of a service's counters, by what they count. */
export const COUNTERS = [
  "in", // bytes from clients to the backend (packets of the original direction, headers too)
  "out", // bytes from the backend to clients
  "tcp", // TCP connections the kernel began to forward (each one's first packet)
  "udp", // UDP flows the kernel began to forward
  "gone", // the backend answered a connection to PORT with a reset before it was set up
  "max", // TCP connections refused by MAX_CONNECTIONS
  "source", // TCP connections refused by MAX_CONNECTIONS_PER_SOURCE
  "udp_refused", // datagrams of UDP flows over either limit, dropped
] as const;

/** What one of a service's counters counts. */
export type CounterKind = typeof COUNTERS[number];

/** The name of a service's counter. */
export function counterName(kind: CounterKind, id: number): string {
  return `${kind}_${hex(id)}`;
}

/** The table of the daemon whose VARRUN_PATH is `varrunPath`: `sleepingd` for the default. */
export function tableName(varrunPath: string): string {
  const path = varrunPath.replace(/\/+$/, "");
  if (path === "/var/run/sleepingd" || path === "/run/sleepingd") return "sleepingd";
  return `sleepingd_${hex(fnv1a(path), 8)}`;
}

/** The upper 16 bits of every connection mark of the daemon owning `table`: never 0. */
export function markTag(table: string): number {
  return (fold16(fnv1a(table)) || 1) * 0x10000;
}

/**
 * A service's id, 1 to 0xffff, from its name (so that a restarted daemon
 * marks its connections as the last one did), the next free one when another
 * service of the daemon has it.
 */
export function serviceId(name: string, taken: ReadonlySet<number>): number {
  let id = fold16(fnv1a(name)) || 1;
  while (taken.has(id)) id = id === 0xffff ? 1 : id + 1;
  return id;
}

/**
 * The script that makes `table` anew, empty of services: its base chains
 * hook into NAT (prerouting for other hosts, output for this host's own
 * programs, never loopback addresses), and into filtering (forward, input,
 * output) to count and refuse, each dispatching to a service by port or by
 * connection mark.
 */
export function tableScript(table: string, comment: string): string {
  return `table ${FAMILY} ${table} {}
delete table ${FAMILY} ${table}
table ${FAMILY} ${table} {
  comment ${quote(comment)}
  map ports { type inet_proto . inet_service : verdict; }
  map marks { type mark : verdict; }
  set masquerade_marks { type mark; }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local meta l4proto . th dport vmap @ports
  }
  chain output_nat {
    type nat hook output priority -100; policy accept;
    ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap @ports
    ip6 daddr != ::1 fib daddr type local meta l4proto . th dport vmap @ports
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct mark @masquerade_marks masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct mark vmap @marks
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iif "lo" return
    ct mark vmap @marks
  }
  chain output {
    type filter hook output priority filter; policy accept;
    ct mark vmap @marks
  }
}
`;
}

/** The script that deletes `table` if it is there. */
export function dropTableScript(table: string): string {
  return `table ${FAMILY} ${table} {}\ndelete table ${FAMILY} ${table}\n`;
}

/**
 * The script that puts a service's rules in `table`: its counters (kept if
 * they are there, so that counts go on across changes), its sets and chains,
 * then the map entries that send its ports' new connections to it. `before`,
 * the rules in place, are taken away first in the same transaction.
 */
export function installScript(table: string, rules: ServiceRules, before?: ServiceRules): string {
  const t = `${FAMILY} ${table}`;
  const id = hex(rules.id);
  const lines: string[] = before ? [removeScript(table, before, { keepCounters: true })] : [];
  for (const kind of COUNTERS) lines.push(`add counter ${t} ${counterName(kind, rules.id)}`);
  for (const set of addressSets(rules)) {
    lines.push(`add set ${t} ${set.name} ${setBody(set)}`);
    lines.push(`add element ${t} ${set.name} { ${set.elements.join(", ")} }`);
  }
  for (const limit of limitSets(rules)) lines.push(`add set ${t} ${limit.name} ${setBody(limit)}`);
  // Flushed after they are added: the script works whatever was left in them.
  lines.push(`add chain ${t} nat_${id} { comment ${quote(`[${rules.name}] new connections`)}; }`);
  lines.push(`add chain ${t} svc_${id} { comment ${quote(`[${rules.name}] count and refuse`)}; }`);
  lines.push(`flush chain ${t} nat_${id}`, `flush chain ${t} svc_${id}`);
  for (const rule of natRules(rules)) lines.push(`add rule ${t} nat_${id} ${rule}`);
  for (const rule of serviceRules(rules)) lines.push(`add rule ${t} svc_${id} ${rule}`);
  lines.push(`add element ${t} marks { ${mark(rules.mark)} : jump svc_${id} }`);
  if (rules.masquerade) lines.push(`add element ${t} masquerade_marks { ${mark(rules.mark)} }`);
  lines.push(portsScript(table, rules, "add"));
  return lines.join("\n") + "\n";
}

/**
 * The script that stops new connections from reaching the service through
 * the kernel (they land on sleepingd's own listener again) while its
 * connections already forwarded go on being counted.
 */
export function withdrawScript(table: string, rules: ServiceRules): string {
  // Each entry (and the chain it jumps to) is added first, so that the delete never fails.
  return `add chain ${FAMILY} ${table} nat_${hex(rules.id)}\n` +
    portsScript(table, rules, "add") + portsScript(table, rules, "delete");
}

/**
 * The script that takes a service's rules out of `table`, whatever of them is
 * there; with `keepCounters`, its counters stay.
 */
export function removeScript(
  table: string,
  rules: ServiceRules,
  options: { keepCounters?: boolean } = {},
): string {
  const t = `${FAMILY} ${table}`;
  const id = hex(rules.id);
  // Each object is added before it is deleted, so that the script works whatever is left.
  const lines = [`add chain ${t} svc_${id}`, withdrawScript(table, rules).trimEnd()];
  lines.push(`add element ${t} marks { ${mark(rules.mark)} : jump svc_${id} }`);
  lines.push(`delete element ${t} marks { ${mark(rules.mark)} }`);
  lines.push(`add element ${t} masquerade_marks { ${mark(rules.mark)} }`);
  lines.push(`delete element ${t} masquerade_marks { ${mark(rules.mark)} }`);
  for (const chain of [`nat_${id}`, `svc_${id}`]) {
    lines.push(
      `add chain ${t} ${chain}`,
      `flush chain ${t} ${chain}`,
      `delete chain ${t} ${chain}`,
    );
  }
  for (const set of [...addressSets(rules), ...limitSets(rules)]) {
    lines.push(`add set ${t} ${set.name} ${setBody(set)}`, `delete set ${t} ${set.name}`);
  }
  if (!options.keepCounters) {
    for (const kind of COUNTERS) {
      const name = counterName(kind, rules.id);
      lines.push(`add counter ${t} ${name}`, `delete counter ${t} ${name}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Adds or deletes the `ports` map entries that send the service's ports to its NAT chain. */
function portsScript(table: string, rules: ServiceRules, verb: "add" | "delete"): string {
  const elements = rules.ports.map(({ protocol, listen }) =>
    verb === "add"
      ? `${protocol} . ${listen} : jump nat_${hex(rules.id)}`
      : `${protocol} . ${listen}`
  );
  return `${verb} element ${FAMILY} ${table} ports { ${elements.join(", ")} }\n`;
}

/** The NAT chain: who is not forwarded (left to sleepingd), then the DNAT of each port. */
function natRules(rules: ServiceRules): string[] {
  const v4 = !rules.target.includes(":");
  const out: string[] = [];
  // Clients of the other family stay on sleepingd's listener: the kernel cannot translate them.
  out.push(`meta nfproto ${v4 ? "ipv6" : "ipv4"} return`);
  const ip = v4 ? "ip" : "ip6";
  const listen = listenFilter(rules.listenAddresses, v4);
  if (listen) out.push(listen);
  // ALLOW and DENY: a client they refuse reaches sleepingd, which refuses it, says why and counts it.
  if (rules.deny.some((text) => familyOf(text) === (v4 ? 4 : 6))) {
    out.push(`${ip} saddr @deny${v4 ? 4 : 6}_${hex(rules.id)} return`);
  }
  if (rules.allow.length > 0) {
    out.push(
      rules.allow.some((text) => familyOf(text) === (v4 ? 4 : 6))
        ? `${ip} saddr != @allow${v4 ? 4 : 6}_${hex(rules.id)} return`
        : "return",
    );
  }
  // Only a SYN opens a TCP connection the kernel forwards. Any other packet that is "new" to
  // conntrack belongs to a connection already open, which sleepingd holds: one whose entry
  // conntrack forgot (`conntrack -F`, an expired entry), or one accepted before conntrack tracked
  // this host (the table, made at start, turns it on). Translated, that packet would reach the
  // backend mid-stream and the backend's reset would end the client's connection; left alone, the
  // connection stays with sleepingd.
  if (rules.ports.some((port) => port.protocol === "tcp")) {
    out.push("tcp flags & (fin | syn | rst | ack) != syn return");
  }
  const target = v4 ? rules.target : `[${rules.target}]`;
  for (const { protocol, listen, backend } of rules.ports) {
    out.push(
      `meta l4proto ${protocol} th dport ${listen} counter name ${
        counterName(protocol === "tcp" ? "tcp" : "udp", rules.id)
      } ct mark set ${mark(rules.mark)} dnat ${ip} to ${target}:${backend}`,
    );
  }
  return out;
}

/**
 * `ip daddr != { ... } return` for LISTEN_ADDRESS, or undefined when every
 * address of the family is listened on (`::`, or `0.0.0.0` for IPv4).
 */
function listenFilter(addresses: string[], v4: boolean): string | undefined {
  if (addresses.some((address) => address === "::" || address === "")) return undefined;
  if (v4 && addresses.includes("0.0.0.0")) return undefined;
  const own = addresses.filter((address) => address.includes(":") !== v4 && address !== "0.0.0.0");
  if (own.length === 0) return "return";
  return `${v4 ? "ip" : "ip6"} daddr != { ${own.join(", ")} } return`;
}

/**
 * The filter chain: a reset from the backend to a connection to PORT not yet
 * set up says it is gone; the limits refuse new connections (`ct count`:
 * connections the kernel forwards now, closed ones not counted); counters of
 * bytes each way.
 */
function serviceRules(rules: ServiceRules): string[] {
  const out: string[] = [];
  const count = (kind: CounterKind) => `counter name ${counterName(kind, rules.id)}`;
  if (rules.probePort !== undefined) {
    // The reset first: most packets stop there. Established: the backend's own reset; our own
    // rejects are "related" and are not counted.
    out.push(
      `tcp flags rst ct direction reply ct state established ct status ! assured ` +
        `ct original proto-dst ${rules.probePort} ${count("gone")}`,
    );
  }
  for (const limit of limitSets(rules)) {
    // An IPv6 client counts by its /64, as on the proxy path (one host may use any address of it).
    const key = limit.type === "mark"
      ? "ct mark"
      : limit.type === "ipv4_addr"
      ? "ip saddr"
      : "ip6 saddr and ffff:ffff:ffff:ffff::";
    const family = limit.type === "mark"
      ? ""
      : `meta nfproto ${limit.type === "ipv4_addr" ? "ipv4" : "ipv6"} `;
    const over = `add @${limit.name} { ${key} ct count over ${limit.limit} }`;
    out.push(
      `ct state new ${family}meta l4proto tcp ${over} ${count(limit.kind)} reject with tcp reset`,
    );
    out.push(`ct state new ${family}meta l4proto udp ${over} ${count("udp_refused")} drop`);
  }
  // One rule for both directions: every packet of every connection passes here.
  const inName = counterName("in", rules.id);
  const outName = counterName("out", rules.id);
  out.push(`counter name ct direction map { original : "${inName}", reply : "${outName}" }`);
  return out;
}

/** A set of ALLOW or DENY addresses. */
interface AddressSet {
  name: string;
  type: "ipv4_addr" | "ipv6_addr";
  elements: string[];
}

/** The ALLOW and DENY sets of the target's family. */
function addressSets(rules: ServiceRules): AddressSet[] {
  const family = rules.target.includes(":") ? 6 : 4;
  const sets: AddressSet[] = [];
  for (const [list, texts] of [["allow", rules.allow], ["deny", rules.deny]] as const) {
    const elements = texts.filter((text) => familyOf(text) === family).map(cidr);
    if (elements.length === 0) continue;
    sets.push({
      name: `${list}${family}_${hex(rules.id)}`,
      type: family === 4 ? "ipv4_addr" : "ipv6_addr",
      elements,
    });
  }
  return sets;
}

/** How a set is declared: the same words whenever it is added, or nft refuses the second. */
function setBody(set: AddressSet | LimitSet): string {
  return "elements" in set
    ? `{ type ${set.type}; flags interval; auto-merge; }`
    : `{ type ${set.type}; size 65535; flags dynamic; }`;
}

/** A dynamic set whose elements count connections (`ct count`). */
interface LimitSet {
  name: string;
  type: "mark" | "ipv4_addr" | "ipv6_addr";
  kind: "max" | "source";
  limit: number;
}

/**
 * The sets that count connections for the limits: one for the service (keyed
 * by its mark), one per client address. Their names carry the limit, so that
 * a changed limit makes a new set while an unchanged one keeps its counts.
 */
function limitSets(rules: ServiceRules): LimitSet[] {
  const id = hex(rules.id);
  const sets: LimitSet[] = [];
  const max = rules.maxConnections;
  if (max !== undefined) {
    sets.push({ name: `max_${id}_${max}`, type: "mark", kind: "max", limit: max });
  }
  const each = rules.maxConnectionsPerSource;
  if (each !== undefined) {
    const family = rules.target.includes(":") ? 6 : 4;
    sets.push({
      name: `source${family}_${id}_${each}`,
      type: family === 4 ? "ipv4_addr" : "ipv6_addr",
      kind: "source",
      limit: each,
    });
  }
  return sets;
}

/** 4 or 6: the family of an ALLOW or DENY rule (IPv4-mapped rules are IPv4). */
function familyOf(text: string): 4 | 6 {
  return parseAddressRule(text).range[0].kind() === "ipv4" ? 4 : 6;
}

/** A rule as nftables writes a prefix: `10.0.0.0/8`, `2001:db8::/32`. */
function cidr(text: string): string {
  const [address, bits] = parseAddressRule(text).range;
  const full = address.kind() === "ipv4" ? 32 : 128;
  return bits === full ? address.toString() : `${address.toString()}/${bits}`;
}

/** `0x5d3a0001`. */
function mark(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** `00a1`: an id as nftables names carry it. */
function hex(value: number, digits = 4): string {
  return value.toString(16).padStart(digits, "0");
}

/** A comment for nft: quoted, without what would end or break it. */
function quote(text: string): string {
  return `"${text.replace(/["\\\n\r]/g, " ").slice(0, 120)}"`;
}

/** FNV-1a, 32 bits: a stable hash of a name. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** 32 bits folded into 16. */
function fold16(value: number): number {
  return ((value >>> 16) ^ (value & 0xffff)) & 0xffff;
}
