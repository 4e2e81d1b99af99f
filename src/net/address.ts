/**
 * Backend targets (`IP PORT` as START_CMD prints it) and peer addresses for logs.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** Where a backend listens. */
export interface Target {
  /** IPv4 or IPv6 address, or a host name. */
  hostname: string;
  /** TCP port, 1–65535. */
  port: number;
}

const HOST = /^(?:\[(?<bracketed>[0-9A-Fa-f:.]+)\]|(?<plain>[A-Za-z0-9_.:-]+))$/;

/**
 * Parses a target line as commands print it: `IP PORT`, where IP is an IPv4
 * or IPv6 address (optionally in brackets) or a host name. `HOST:PORT` is
 * accepted too for IPv4 and host names.
 *
 * @throws {SyntaxError} naming the line when it is not a target
 */
export function parseTarget(line: string): Target {
  const text = line.trim();
  const parts = text.split(/\s+/);
  let host: string | undefined;
  let portText: string | undefined;
  if (parts.length === 2) {
    [host, portText] = parts;
  } else if (parts.length === 1 && /^[^:]+:\d+$/.test(text)) {
    [host, portText] = text.split(":");
  }
  const match = host === undefined ? null : HOST.exec(host);
  const port = Number(portText);
  if (!match || !/^\d+$/.test(portText ?? "") || port < 1 || port > 65535) {
    throw new SyntaxError(
      `Cannot read target from "${truncate(text, 120)}": expected "IP PORT", e.g. "127.0.0.1 8080"`,
    );
  }
  return { hostname: match.groups!.bracketed ?? match.groups!.plain, port };
}

/** Formats a target as `host:port`, with brackets around IPv6 addresses. */
export function formatTarget(target: Target): string {
  const host = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  return `${host}:${target.port}`;
}

/** An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, as a dual-stack listener sees IPv4 clients) as IPv4. */
export function unmapped(hostname: string): string {
  return hostname.replace(/^::ffff:(?=\d+\.)/, "");
}

/**
 * The source a client counts as for per-source limits: its IPv4 address, or
 * the /64 block of its IPv6 address (`2001:db8:1:2::/64`), as one host or
 * site is handed a whole /64 and may use any address in it.
 */
export function sourceOf(hostname: string): string {
  const address = unmapped(hostname);
  if (!ipaddr.IPv6.isValid(address) || ipaddr.IPv4.isValid(address)) return address;
  const parts = ipaddr.IPv6.parse(address).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}

/** Formats a socket address for logs, showing IPv4-mapped IPv6 addresses as IPv4. */
export function formatAddr(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return formatTarget({
    hostname: unmapped(addr.hostname),
    port: addr.port,
  });
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length)}…`;
}
