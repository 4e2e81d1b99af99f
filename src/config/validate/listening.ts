/**
 * Checks of ports and listening (PORT, PROTOCOL, MORE_PORTS, LISTEN_ADDRESS):
 * two services on one port and address clash, unless both name their hosts
 * on it (a port shared by name); a service does not list a port twice;
 * ROUTE_PER_CONNECTION serves one TCP port.
 *
 * @module
 */

import type { ServiceConfig } from "../types.ts";
import type { Built, Issues, Settings } from "./settings.ts";
import { checkSharedPort } from "./shared_ports.ts";

/** Addresses that take every interface, so they clash with any other address. */
const WILDCARDS = new Set(["::", "0.0.0.0", ""]);

/** Whether two address lists share an address, counting wildcards as every address. */
export function overlap(a: string[], b: string[]): boolean {
  if ([...a, ...b].some((address) => WILDCARDS.has(address))) return true;
  return a.some((address) => b.includes(address));
}

/** Records an error for every service that listens on a port and protocol an earlier one uses. */
export function checkPorts(built: Built[], issues: Issues): void {
  const ports = (service: ServiceConfig) =>
    [{ listen: service.port, protocol: service.protocol }, ...service.morePorts]
      .map(({ listen, protocol }) => `${listen}/${protocol}`);
  const lacking = new Set<Built>();
  built.forEach((one, index) => {
    const { service, portAt, description } = one;
    for (const port of ports(service)) {
      const earlier = built.slice(0, index).find(({ service: other }) =>
        ports(other).includes(port) && overlap(other.listenAddresses, service.listenAddresses)
      );
      if (earlier === undefined) continue;
      const bothPort = port === `${service.port}/tcp` && port === `${earlier.service.port}/tcp`;
      if (bothPort && (service.hostnames || earlier.service.hostnames)) {
        checkSharedPort(earlier, one, lacking, issues);
        continue;
      }
      const shown = port === `${service.port}/tcp` ? String(service.port) : port;
      issues.error(
        portAt,
        "PORT",
        `Cannot listen on port ${shown} for ${description} as ${earlier.description} ` +
          `already does at ${earlier.portAt.file}:${earlier.portAt.line}`,
      );
    }
  });
}

/**
 * Records an error for a MORE_PORTS entry that repeats a port of its service,
 * and for MORE_PORTS or PROTOCOL=udp with ROUTE_PER_CONNECTION.
 */
export function checkMorePorts(service: ServiceConfig, settings: Settings, issues: Issues): void {
  const entry = settings.entry("MORE_PORTS");
  const seen = new Set([`${service.port}/${service.protocol}`]);
  for (const mapping of service.morePorts) {
    const key = `${mapping.listen}/${mapping.protocol}`;
    if (seen.has(key)) {
      issues.error(
        entry!.location,
        "MORE_PORTS",
        `Cannot listen on ${key} twice for ${settings.describe()}: MORE_PORTS repeats it`,
      );
    }
    seen.add(key);
  }
  if (!service.routePerConnection) return;
  const other = service.morePorts.length > 0 ? entry : settings.entry("PROTOCOL");
  if (service.morePorts.length > 0 || service.protocol === "udp") {
    issues.error(
      other!.location,
      other!.key,
      `Cannot use ${other!.key} with ROUTE_PER_CONNECTION in ${settings.describe()}: a ` +
        "connection's own START_CMD serves one TCP port; set ROUTE_PER_CONNECTION=no",
    );
  }
}
