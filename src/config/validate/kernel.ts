/**
 * Checks of the kernel path (FORWARD, MASQUERADE): each key FORWARD=kernel
 * cannot honour is an error at its own line, and a MASQUERADE that
 * FORWARD=proxy ignores is a warning (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import type { ServiceConfig } from "../types.ts";
import type { Issues, Settings } from "./settings.ts";

/**
 * Records an error for each key FORWARD=kernel cannot honour, at that key's
 * line, and warns about a MASQUERADE of the section's own that FORWARD=proxy ignores.
 */
export function checkKernelForward(
  service: ServiceConfig,
  settings: Settings,
  issues: Issues,
): void {
  if (service.forward !== "kernel") {
    const own = settings.section.entries.get("MASQUERADE");
    if (own !== undefined && service.masquerade !== "auto") {
      issues.warn(
        own,
        `Ignoring MASQUERADE in ${settings.describe()} as FORWARD is proxy: sleepingd's own ` +
          "connections reach the backend; set FORWARD=kernel for the kernel to forward",
      );
    }
    return;
  }
  const refuse = (key: string, why: string) => {
    const entry = settings.entry(key)!;
    issues.error(
      entry.location,
      key,
      `Cannot use ${key} with FORWARD=kernel in ${settings.describe()}: ${why}; ` +
        `set FORWARD=proxy or remove ${key}`,
    );
  };
  if (service.proxyProtocol) {
    refuse(
      "PROXY_PROTOCOL",
      "the kernel forwards the client's packets as they are, with no header to add (with " +
        "MASQUERADE=no the backend sees the client's own address)",
    );
  }
  if (service.routePerConnection) {
    refuse(
      "ROUTE_PER_CONNECTION",
      "the kernel sends every connection of the service to one backend, while a connection's " +
        "own START_CMD would pick its own",
    );
  }
  for (
    const [key, set] of [["HOSTNAMES", service.hostnames], ["WAITING_PAGE", service.waitingPage]]
  ) {
    if (set === undefined) continue;
    refuse(
      key as string,
      "sleepingd reads each connection's first bytes on a port it routes by name or with a " +
        "waiting page, and the kernel path would take that port's connections from it",
    );
  }
  if (service.listenAddresses.every(isLoopback)) {
    refuse(
      "LISTEN_ADDRESS",
      "only loopback clients can reach a loopback address, and they stay on the proxy path",
    );
  }
}

/** Whether `address` is a loopback address (127.0.0.0/8, ::1, or `localhost`). */
function isLoopback(address: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === "::1" || address === "localhost";
}
