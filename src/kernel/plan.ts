/**
 * Deciding, when a service wakes, whether the kernel can forward to its
 * backend and with which rules: an IP address it can reach, forwarding on
 * when the backend is elsewhere, and whether to masquerade
 * (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { listenPorts } from "../config/ports.ts";
import type { ServiceConfig } from "../config/types.ts";
import { formatTarget, type Target } from "../net/address.ts";
import { forwarding, type HostSetting, type Reach, reach, routeLocalnet } from "./host.ts";
import type { ServiceRules } from "./rules.ts";

/** What the host looks like to the plan: the real one, unless a test says otherwise. */
export interface HostView {
  /** How this host reaches an address. */
  reach(address: string): Reach;
  /** Forwarding of a family. */
  forwarding(family: 4 | 6): HostSetting;
  /** route_localnet. */
  routeLocalnet(): HostSetting;
}

/** The host as it is. */
export const THIS_HOST: HostView = { reach, forwarding, routeLocalnet };

/** The rules to put in, and how the kernel reaches the backend in words; or why it cannot. */
export type Plan = { rules: ServiceRules; how: string } | { why: string };

/**
 * The kernel path's rules for `config` with its backend at `target`, or why
 * the service stays on the proxy path for this wake.
 */
export function planRules(
  config: ServiceConfig,
  target: Target,
  ids: { id: number; mark: number },
  host: HostView = THIS_HOST,
): Plan {
  const address = target.hostname;
  if (!ipaddr.isValid(address)) {
    return {
      why: `the target ${
        formatTarget(target)
      } is a host name: the kernel forwards to addresses only`,
    };
  }
  const parsed = ipaddr.process(address);
  const family = parsed.kind() === "ipv4" ? 4 : 6;
  const where = host.reach(parsed.toString());
  let masquerade = false;
  let how: string;
  switch (where) {
    case "loopback": {
      if (family === 6) {
        return {
          why: `the target ${formatTarget(target)} is ::1, which no packet from outside may reach`,
        };
      }
      const localnet = host.routeLocalnet();
      if (!localnet.on) {
        return {
          why: `the target ${formatTarget(target)} is a loopback address and ${localnet.name} is ` +
            `${localnet.on === false ? "0" : "unreadable"} (sleepingd never changes it)`,
        };
      }
      how = "on this host's loopback";
      break;
    }
    case "local":
      how = "on this host";
      break;
    case "unreachable":
      return { why: `this host has no route to ${parsed.toString()}` };
    case "attached":
    case "routed": {
      const setting = host.forwarding(family);
      if (!setting.on) {
        return {
          why: `the backend ${parsed.toString()} is on another host and ${setting.name} is ` +
            `${setting.on === false ? "0" : "unreadable"} (sleepingd never changes it)`,
        };
      }
      const attached = where === "attached";
      masquerade = config.masquerade === "yes" || (config.masquerade === "auto" && !attached);
      how = `${attached ? "on a network this host is attached to" : "through a router"}, ` +
        (masquerade
          ? `masqueraded (MASQUERADE=${config.masquerade}): it sees this host's address`
          : `not masqueraded (MASQUERADE=${config.masquerade}): it sees the client's address`);
    }
  }
  const ports = listenPorts(config).map((port, index) => ({
    protocol: port.protocol,
    listen: port.listen,
    backend: index === 0 ? target.port : port.backend!,
  }));
  return {
    how,
    rules: {
      name: config.name,
      id: ids.id,
      mark: ids.mark,
      target: parsed.toString(),
      ports,
      ...(config.protocol === "tcp" ? { probePort: config.port } : {}),
      listenAddresses: config.listenAddresses,
      allow: config.allow,
      deny: config.deny,
      ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
      ...(config.maxConnectionsPerSource !== undefined
        ? { maxConnectionsPerSource: config.maxConnectionsPerSource }
        : {}),
      masquerade,
    },
  };
}
