/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2): written to a
 * backend before a client's bytes, it tells the backend the client's real
 * address, which it would otherwise see as sleepingd's.
 *
 * A dual-stack listener (`::`) sees an IPv4 client as IPv4-mapped IPv6
 * (`::ffff:192.0.2.7`) on both ends of the connection: the header names it as
 * the client made it, TCP over IPv4 with the plain addresses.
 *
 * @see https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
 * @module
 */

import ipaddr from "ipaddr.js";

/** Which header to write: `v1` is a text line, `v2` binary. */
export type ProxyProtocolVersion = "v1" | "v2";

/** An IP address, as ipaddr.js parses it. */
type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/** What begins every version 2 header: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** Version 2 (high nibble), command PROXY (low nibble): a client's connection, relayed. */
const V2_VERSION_COMMAND = 0x21;
/** Version 2's address family (high nibble) and transport (low nibble) byte. */
const V2_FAMILY = { TCP4: 0x11, TCP6: 0x21 } as const;
/** Bytes of the fixed part of a version 2 header: signature, version, family, length. */
const V2_FIXED_BYTES = 16;

/**
 * The PROXY protocol header for a TCP connection from `client` (the
 * connection's remote address) accepted on `local` (its local address).
 *
 * When both ends are IPv4 (IPv4-mapped IPv6 counts as IPv4), it is TCP4 with
 * the plain IPv4 addresses; otherwise TCP6, an IPv4 end mapped into IPv6 (a
 * real socket never mixes them). v1 writes IPv6 in RFC 5952's form
 * (`2001:db8::7`).
 *
 * @throws {TypeError} when an address is not TCP with an IP address and a port
 */
export function proxyHeader(
  version: ProxyProtocolVersion,
  client: Deno.NetAddr,
  local: Deno.NetAddr,
): Uint8Array {
  let source = ipOf(client, "client");
  let destination = ipOf(local, "local");
  const family = source.kind() === "ipv4" && destination.kind() === "ipv4" ? "TCP4" : "TCP6";
  if (family === "TCP6") {
    source = asIPv6(source);
    destination = asIPv6(destination);
  }
  if (version === "v1") {
    const line = `PROXY ${family} ${source} ${destination} ${client.port} ${local.port}\r\n`;
    return new TextEncoder().encode(line);
  }
  const src = source.toByteArray();
  const dst = destination.toByteArray();
  const addressBytes = src.length + dst.length + 4;
  const header = new Uint8Array(V2_FIXED_BYTES + addressBytes);
  const view = new DataView(header.buffer);
  header.set(V2_SIGNATURE);
  header[12] = V2_VERSION_COMMAND;
  header[13] = V2_FAMILY[family];
  view.setUint16(14, addressBytes);
  header.set(src, V2_FIXED_BYTES);
  header.set(dst, V2_FIXED_BYTES + src.length);
  view.setUint16(V2_FIXED_BYTES + src.length + dst.length, client.port);
  view.setUint16(V2_FIXED_BYTES + src.length + dst.length + 2, local.port);
  return header;
}

/**
 * The IP address of `addr`, an IPv4-mapped IPv6 address as IPv4.
 *
 * @throws {TypeError} naming `role` when `addr` is not TCP with an IP address and a port
 */
function ipOf(addr: Deno.NetAddr, role: string): Ip {
  const { transport, hostname, port } = addr;
  const isIp = ipaddr.IPv4.isValidFourPartDecimal(hostname) ||
    // A zone (`fe80::1%eth0`) means nothing to the backend, and v1 has no room for it.
    (ipaddr.IPv6.isValid(hostname) && !hostname.includes("%"));
  const isPort = Number.isInteger(port) && port >= 0 && port <= 65535;
  if (transport !== "tcp" || !isIp || !isPort) {
    throw new TypeError(
      `Cannot write a PROXY protocol header for the ${role} address ${JSON.stringify(addr)}: ` +
        "expected TCP with an IP address and a port",
    );
  }
  return ipaddr.process(hostname);
}

/** `ip` as IPv6: an IPv4 address mapped (`::ffff:192.0.2.7`). */
function asIPv6(ip: Ip): ipaddr.IPv6 {
  return ip.kind() === "ipv4" ? (ip as ipaddr.IPv4).toIPv4MappedAddress() : ip as ipaddr.IPv6;
}
