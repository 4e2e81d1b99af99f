/**
 * The limits and the budget (ALLOW, DENY, MAX_CONNECTIONS,
 * MAX_CONNECTIONS_PER_SOURCE, HOLD_TIMEOUT, MAX_WAKES_PER_HOUR and the
 * global `*_TOTAL` keys): read into their settings, 0 or blank meaning no
 * limit. Their kinds are all the checking they need (docs/ARCHITECTURE.md,
 * "Admission and holding", "Budget").
 *
 * @module
 */

import type { Config, ServiceConfig } from "../types.ts";
import { optional, positive, type Settings } from "./settings.ts";

/** A service's admission and wake limits. */
export function serviceLimits(
  settings: Settings,
): Pick<
  ServiceConfig,
  | "allow"
  | "deny"
  | "maxConnections"
  | "maxConnectionsPerSource"
  | "holdTimeout"
  | "maxWakesPerHour"
> {
  return {
    allow: (settings.get("ALLOW") as string[] | undefined) ?? [],
    deny: (settings.get("DENY") as string[] | undefined) ?? [],
    ...optional("maxConnections", positive(settings.get("MAX_CONNECTIONS"))),
    ...optional("maxConnectionsPerSource", positive(settings.get("MAX_CONNECTIONS_PER_SOURCE"))),
    holdTimeout: settings.get("HOLD_TIMEOUT") as number,
    ...optional("maxWakesPerHour", positive(settings.get("MAX_WAKES_PER_HOUR"))),
  };
}

/** The limits of all services together (global): the budget's keys and the wakes. */
export function totalLimits(
  settings: Settings,
): Pick<
  Config["global"],
  "maxWakesPerHourTotal" | "maxConnectionsTotal" | "maxUdpFlowsTotal" | "maxHeldBytesTotal"
> {
  return {
    ...optional("maxWakesPerHourTotal", positive(settings.get("MAX_WAKES_PER_HOUR_TOTAL"))),
    ...optional("maxConnectionsTotal", positive(settings.get("MAX_CONNECTIONS_TOTAL"))),
    ...optional("maxUdpFlowsTotal", positive(settings.get("MAX_UDP_FLOWS_TOTAL"))),
    ...optional("maxHeldBytesTotal", settings.get("MAX_HELD_BYTES_TOTAL") as number | undefined),
  };
}
