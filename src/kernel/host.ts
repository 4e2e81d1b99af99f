/**
 * What the kernel path needs of the host, read and never changed: Linux, the
 * right to change nftables, nft and conntrack, forwarding, routes to the
 * backend (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { findTool, type ToolName, TOOLS } from "./tool.ts";

/** CAP_NET_ADMIN's bit in /proc/self/status's CapEff. */
const CAP_NET_ADMIN = 12n;
/** RTF_GATEWAY: the route goes through a router. */
const RTF_GATEWAY = 0x0002;
/** RTF_REJECT: the route refuses (an unreachable default). */
const RTF_REJECT = 0x0200;

/** What keeps the kernel path from working on this host at all; empty when nothing does. */
export function missingForKernelPath(): string[] {
  if (Deno.build.os !== "linux") {
    return [`the kernel path needs Linux (nftables); this is ${Deno.build.os}`];
  }
  const missing: string[] = [];
  if (!hasNetAdmin()) {
    const uid = Deno.uid();
    missing.push(
      `the kernel path needs root or CAP_NET_ADMIN to change nftables; this runs as uid ${uid} ` +
        "without it",
    );
  }
  for (const tool of Object.keys(TOOLS) as ToolName[]) {
    if (findTool(tool) === undefined) {
      missing.push(`the kernel path needs ${tool} (apt-get install ${TOOLS[tool].package})`);
    }
  }
  return missing;
}

/** Whether this process may change nftables: CAP_NET_ADMIN in its effective set. */
export function hasNetAdmin(status = readText("/proc/self/status")): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status ?? "")?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

/** A host-wide setting the kernel path depends on, with its value. */
export interface HostSetting {
  /** The sysctl's name, e.g. `net.ipv4.ip_forward`. */
  name: string;
  /** Whether it is on; undefined when it cannot be read. */
  on?: boolean;
}

/** net.ipv4.ip_forward or net.ipv6.conf.all.forwarding: whether the host routes between networks. */
export function forwarding(family: 4 | 6): HostSetting {
  return family === 4
    ? sysctl("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward")
    : sysctl("net.ipv6.conf.all.forwarding", "/proc/sys/net/ipv6/conf/all/forwarding");
}

/** net.ipv4.conf.all.route_localnet: whether packets from outside may go to 127.0.0.0/8. */
export function routeLocalnet(): HostSetting {
  return sysctl("net.ipv4.conf.all.route_localnet", "/proc/sys/net/ipv4/conf/all/route_localnet");
}

function sysctl(name: string, path: string): HostSetting {
  const text = readText(path)?.trim();
  return { name, on: text === undefined ? undefined : text !== "0" };
}

/** How the kernel reaches a backend address from this host. */
export type Reach =
  /** One of this host's own addresses other than loopback: no forwarding needed. */
  | "local"
  /** 127.0.0.0/8 or ::1. */
  | "loopback"
  /** On a network of one of this host's interfaces (no router between). */
  | "attached"
  /** Through a router. */
  | "routed"
  /** No route at all. */
  | "unreachable";

/** How this host reaches `address` (an IPv4 or IPv6 address), from its interfaces and routes. */
export function reach(address: string): Reach {
  const parsed = ipaddr.process(address);
  if (parsed.range() === "loopback") return "loopback";
  const own = Deno.networkInterfaces().some((face) => {
    try {
      return ipaddr.process(face.address).toString() === parsed.toString();
    } catch {
      return false;
    }
  });
  if (own) return "local";
  const route = parsed.kind() === "ipv4"
    ? bestRoute(parseRoutes4(readText("/proc/net/route") ?? ""), parsed)
    : bestRoute(parseRoutes6(readText("/proc/net/ipv6_route") ?? ""), parsed);
  if (route === undefined) return "unreachable";
  return route.viaGateway ? "routed" : "attached";
}

/** One route of the main table. */
export interface Route {
  /** Its destination. */
  network: ipaddr.IPv4 | ipaddr.IPv6;
  /** Its prefix length. */
  bits: number;
  /** It goes through a router. */
  viaGateway: boolean;
}

/** The routes of /proc/net/route (hex, in the host's byte order: little-endian). */
export function parseRoutes4(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const [, destination, , flagsText, , , , mask] = line.trim().split(/\s+/);
    if (mask === undefined) continue;
    const flags = parseInt(flagsText, 16);
    if (flags & RTF_REJECT) continue;
    const bytes = (hex: string) => [6, 4, 2, 0].map((at) => parseInt(hex.slice(at, at + 2), 16));
    const maskBytes = bytes(mask);
    const bits = maskBytes.reduce((sum, byte) => sum + popcount(byte), 0);
    routes.push({
      network: ipaddr.fromByteArray(bytes(destination)) as ipaddr.IPv4,
      bits,
      viaGateway: (flags & RTF_GATEWAY) !== 0,
    });
  }
  return routes;
}

/** The routes of /proc/net/ipv6_route, leaving out this host's own addresses and rejects. */
export function parseRoutes6(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split("\n")) {
    const [destination, bitsText, , , , , , , flagsText, device] = line.trim().split(/\s+/);
    if (device === undefined) continue;
    const flags = parseInt(flagsText, 16);
    if (flags & RTF_REJECT || device === "lo") continue;
    const bytes = Array.from(
      { length: 16 },
      (_, at) => parseInt(destination.slice(at * 2, at * 2 + 2), 16),
    );
    routes.push({
      network: ipaddr.fromByteArray(bytes) as ipaddr.IPv6,
      bits: parseInt(bitsText, 16),
      viaGateway: (flags & RTF_GATEWAY) !== 0,
    });
  }
  return routes;
}

/** The most specific route that covers `address`. */
export function bestRoute(routes: Route[], address: ipaddr.IPv4 | ipaddr.IPv6): Route | undefined {
  return routes
    .filter((route) =>
      route.network.kind() === address.kind() &&
      (address as ipaddr.IPv4).match([route.network as ipaddr.IPv4, route.bits])
    )
    .sort((a, b) => b.bits - a.bits)[0];
}

function popcount(byte: number): number {
  let count = 0;
  for (let bits = byte; bits; bits >>= 1) count += bits & 1;
  return count;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
