/**
 * The budget's bounds for a configuration, within the open file limit after
 * the files the daemon holds now, said at debug level, with a warning when
 * the limit leaves little room or the keys ask for more than it does
 * (docs/ARCHITECTURE.md, "Budget").
 *
 * @module
 */

import { listenPorts } from "../config/ports.ts";
import type { Config } from "../config/types.ts";
import { log } from "../log.ts";
import { type Budget, formatBytes, planBudget } from "../net/budget.ts";
import { openFiles } from "../process/file_limit.ts";

/** Under this many clients' worth of descriptors (TCP, two each), the budget is said to be small. */
const CLIENTS_AT_LEAST = 16;

/** Where the budget is planned, and whether to say so. */
export interface PlanOptions {
  /** The open file limit in force; undefined when unknown (only the keys bound then). */
  fileLimit?: number;
  /** The HTTP server's cap on its connections, when it runs (METRICS_ADDRESS). */
  http?: number;
  /** Log the plan (debug) and what is wrong with it (warn). */
  say: boolean;
}

/**
 * Gives `budget` the bounds of `config` within the open file limit: what
 * it leaves after the files the daemon holds now (those the budget counts
 * aside) and the reserve. What the budget holds stays held.
 */
export function planBudgetFor(config: Config, budget: Budget, options: PlanOptions): void {
  const { global } = config;
  const ownFiles = options.fileLimit === undefined ? 0 : openFiles() - budget.usage().descriptors;
  const limits = planBudget({
    fileLimit: options.fileLimit,
    ownFiles,
    connections: global.maxConnectionsTotal,
    udpFlows: global.maxUdpFlowsTotal,
    heldBytes: global.maxHeldBytesTotal,
    udp: config.services.some((service) =>
      listenPorts(service).some((port) => port.protocol === "udp")
    ),
    http: options.http,
  });
  budget.reconfigure(limits);
  if (options.fileLimit === undefined || !options.say) return;
  const logger = log("supervisor");
  const { tcp, udp_flow, http, control } = limits.caps;
  logger.debug(
    "open file limit {limit}: {descriptors} descriptors for clients: {tcp} connections, " +
      "{flows} UDP flows, {http} HTTP connections, {control} control clients; {held} held " +
      "for clients",
    {
      limit: limits.fileLimit,
      descriptors: limits.descriptors,
      tcp: tcp.count,
      flows: udp_flow.count,
      http: http.count,
      control: control.count,
      held: formatBytes(limits.heldBytes),
    },
  );
  const asked = 2 * tcp.count + udp_flow.count + http.count + control.count;
  if (limits.descriptors < 2 * CLIENTS_AT_LEAST) {
    logger.warn(
      "the open file limit ({limit}) leaves {descriptors} descriptors for clients after " +
        "sleepingd's own {own}: raise it (LimitNOFILE= in the unit, ulimit -n)",
      { limit: limits.fileLimit, descriptors: limits.descriptors, own: ownFiles },
    );
  } else if (asked > limits.descriptors) {
    logger.warn(
      "MAX_CONNECTIONS_TOTAL and MAX_UDP_FLOWS_TOTAL ask for {asked} descriptors, and the " +
        "open file limit ({limit}) leaves {descriptors} for clients: past them, clients of " +
        "every kind are refused",
      { asked, limit: limits.fileLimit, descriptors: limits.descriptors },
    );
  }
}
