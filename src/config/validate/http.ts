/**
 * Checks of the dashboard and HTTP side (METRICS_ADDRESS, METRICS_HOSTS,
 * API_TOKEN_FILE): the address is HOST:PORT and no service listens there,
 * and the hosts are host names (docs/ARCHITECTURE.md, "History and
 * dashboard").
 *
 * @module
 */

import type { Location } from "../types.ts";
import { parseHostPort } from "../values.ts";
import { overlap } from "./listening.ts";
import type { Built, Issues, Settings } from "./settings.ts";
import { names } from "./settings.ts";

/** A host name as METRICS_HOSTS lists it: letters, digits, hyphens, dots. */
const HOST_NAME =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/**
 * METRICS_ADDRESS (global) as a host and port, undefined when blank or
 * unreadable; records an error naming its line when it is no HOST:PORT, and
 * one for every TCP port of a service that listens there too.
 */
export function metricsAddress(
  settings: Settings,
  built: Built[],
  issues: Issues,
): { hostname: string; port: number } | undefined {
  const address = settings.get("METRICS_ADDRESS") as string | undefined;
  if (address === undefined) return undefined;
  const at = settings.entry("METRICS_ADDRESS")!.location;
  const parsed = parseHostPort(address);
  if (parsed === undefined) {
    issues.error(
      at,
      "METRICS_ADDRESS",
      'Cannot read "METRICS_ADDRESS" as it must be HOST:PORT, e.g. 127.0.0.1:9180: ' +
        `current value is "${address}"`,
    );
  } else {
    checkMetricsPort(built, { ...parsed, at }, issues);
  }
  return parsed;
}

/** METRICS_HOSTS (global), undefined when blank; records an error for one that is no host name. */
export function metricsHosts(settings: Settings, issues: Issues): string[] | undefined {
  return names(settings, "METRICS_HOSTS", HOST_NAME, "a host name", issues);
}

/** Records an error for every TCP port of a service that METRICS_ADDRESS listens on too. */
function checkMetricsPort(
  built: Built[],
  metrics: { hostname: string; port: number; at: Location },
  issues: Issues,
): void {
  for (const { service, portAt, description } of built) {
    const tcpPorts = [
      ...(service.protocol === "tcp" ? [{ listen: service.port, at: portAt, key: "PORT" }] : []),
      ...service.morePorts.filter((mapping) => mapping.protocol === "tcp")
        .map(({ listen }) => ({ listen, at: service.morePortsSource!, key: "MORE_PORTS" })),
    ];
    for (const { listen, at, key } of tcpPorts) {
      if (listen !== metrics.port) continue;
      const hosts = metrics.hostname === "localhost" ? ["127.0.0.1", "::1"] : [metrics.hostname];
      if (!overlap(service.listenAddresses, hosts)) continue;
      issues.error(
        at,
        key,
        `Cannot listen on port ${listen} for ${description} as METRICS_ADDRESS ` +
          `(${metrics.at.file}:${metrics.at.line}) serves the dashboard on it: choose another ` +
          `${key} or METRICS_ADDRESS`,
      );
    }
  }
}
