/**
 * The Host a request names, checked against DNS rebinding: a page on any
 * domain whose name its owner points at 127.0.0.1 would otherwise read the
 * dashboard and the API from a victim's browser. Rebinding needs a name, so
 * an IP address is always fine; `localhost`, the host of METRICS_ADDRESS and
 * the names of METRICS_HOSTS are the other names allowed (docs/ARCHITECTURE.md,
 * "History and dashboard").
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** `name`, `name:port`, `[v6]` or `[v6]:port`. */
const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*))(?::\d*)?$/;

/**
 * Why a request for `host` (its Host header) is refused, or undefined when it
 * is allowed: an IP address, `localhost`, `ownHost` (METRICS_ADDRESS's host)
 * or one of `allowed` (METRICS_HOSTS). Names compare without case and without
 * a trailing dot. A request without Host (HTTP/1.0) names no host to rebind.
 */
export function hostRefusal(
  host: string | null,
  ownHost: string,
  allowed: readonly string[],
): string | undefined {
  if (host === null) return undefined;
  const match = HOST.exec(host.trim());
  if (match?.[1] !== undefined && ipaddr.IPv6.isValid(match[1])) return undefined;
  const name = normalHost(match?.[2] ?? "");
  if (name !== "" && ipaddr.IPv4.isValidFourPartDecimal(name)) return undefined;
  if (name !== "" && [ownHost, "localhost", ...allowed].some((one) => normalHost(one) === name)) {
    return undefined;
  }
  return `Host "${host}" is not a name this server answers to: use its IP address, or add the ` +
    "name to METRICS_HOSTS";
}

/** A host name as compared: lowercase, without the trailing dot of a fully qualified name. */
function normalHost(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}
