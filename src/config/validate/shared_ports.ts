/**
 * Checks of ports shared by name and the waiting page (HOSTNAMES,
 * WAITING_PAGE, WAITING_PAGE_AFTER, WAITING_PAGE_FILE, WAKE_ON,
 * HOSTNAME_TIMEOUT): every service of a shared port names its hosts, on the
 * same addresses, and no name twice; both read a TCP client's first bytes,
 * which also wake the service.
 *
 * @module
 */

import { DEFAULT_PATTERN, HostTable } from "../hostnames.ts";
import { readPageFile } from "../page_file.ts";
import type { ServiceConfig, WaitingPageConfig } from "../types.ts";
import type { Built, Issues, Settings } from "./settings.ts";

/**
 * Records an error when two services on one PORT cannot share it by name: one
 * lacks HOSTNAMES (reported once per service, at its PORT), or they listen on
 * different addresses.
 */
export function checkSharedPort(
  earlier: Built,
  later: Built,
  lacking: Set<Built>,
  issues: Issues,
): void {
  const port = later.service.port;
  for (const [one, other] of [[earlier, later], [later, earlier]]) {
    if (one.service.hostnames || lacking.has(one)) continue;
    lacking.add(one);
    issues.error(
      one.portAt,
      "PORT",
      `Cannot share port ${port} between ${one.description} and ${other.description} ` +
        `(${other.portAt.file}:${other.portAt.line}) as ${one.description} has no HOSTNAMES: ` +
        "every service of a port shared by name names its hosts (HOSTNAMES=app.example.com, " +
        "or * for the names no other service takes)",
    );
  }
  if (!earlier.service.hostnames || !later.service.hostnames) return;
  const [a, b] = [earlier, later].map(({ service }) => service.listenAddresses.join(" "));
  if (a === b) return;
  issues.error(
    later.portAt,
    "LISTEN_ADDRESS",
    `Cannot share port ${port} between ${earlier.description} (LISTEN_ADDRESS ${a}) and ` +
      `${later.description} (LISTEN_ADDRESS ${b}): services sharing a port by name listen on ` +
      "the same addresses; give them the same LISTEN_ADDRESS",
  );
}

/**
 * Records an error for every name pattern taken twice on one port shared by
 * name (or twice by one service): which service would get it is not said.
 */
export function checkHostnames(built: Built[], issues: Issues): void {
  const tables = new Map<string, HostTable<Built>>();
  for (const one of built) {
    const { service, hostnamesAt, description } = one;
    if (!service.hostnames) continue;
    const key = `${service.listenAddresses.join(" ")} ${service.port}`;
    const table = tables.get(key) ?? new HostTable<Built>();
    tables.set(key, table);
    const seen = new Set<string>();
    for (const pattern of service.hostnames) {
      if (seen.has(pattern)) {
        issues.error(
          hostnamesAt!,
          "HOSTNAMES",
          `Cannot take "${pattern}" twice for ${description}: HOSTNAMES repeats it`,
        );
        continue;
      }
      seen.add(pattern);
      if (table.add(pattern, one)) continue;
      const owner = table.get(pattern)!;
      const what = pattern === DEFAULT_PATTERN
        ? "the names no other service takes (*)"
        : `"${pattern}"`;
      issues.error(
        hostnamesAt!,
        "HOSTNAMES",
        `Cannot route ${what} on port ${service.port} to ${description} as ` +
          `${owner.description} takes it already at ${owner.hostnamesAt!.file}:` +
          `${owner.hostnamesAt!.line}: each name goes to one service`,
      );
    }
  }
}

/**
 * Records an error for HOSTNAMES or WAITING_PAGE with PROTOCOL=udp: both read
 * what a TCP client sends first.
 */
export function checkUdpByName(service: ServiceConfig, settings: Settings, issues: Issues): void {
  if (service.protocol !== "udp") return;
  for (const key of ["HOSTNAMES", "WAITING_PAGE"]) {
    const set = key === "HOSTNAMES" ? service.hostnames : service.waitingPage;
    if (!set) continue;
    issues.error(
      settings.entry(key)!.location,
      key,
      `Cannot use ${key} with PROTOCOL=udp in ${settings.describe()}: it reads the TLS ` +
        "ClientHello or HTTP request a TCP client sends first",
    );
  }
}

/**
 * WAKE_ON, which is `data` on a port routed by name (HOSTNAMES, WAITING_PAGE):
 * nothing is routed before a client's first bytes. An explicit `connect` there
 * is ignored with a warning.
 */
export function wakeOn(settings: Settings, issues: Issues): "connect" | "data" {
  const configured = settings.get("WAKE_ON") as "connect" | "data";
  const byName = settings.get("HOSTNAMES") !== undefined || settings.get("WAITING_PAGE") === true;
  if (!byName) return configured;
  const entry = settings.entry("WAKE_ON");
  if (entry !== undefined && configured === "connect") {
    issues.warn(
      entry,
      `Ignoring WAKE_ON=connect for ${settings.describe()}: with HOSTNAMES or WAITING_PAGE a ` +
        "client's first bytes choose the service, so they wake it (WAKE_ON=data)",
    );
  }
  return "data";
}

/**
 * The waiting page's settings when WAITING_PAGE=yes, with WAITING_PAGE_FILE's
 * text read; records an error naming the key's line when that file cannot be
 * used.
 */
export function waitingPage(settings: Settings, issues: Issues): WaitingPageConfig | undefined {
  if (settings.get("WAITING_PAGE") !== true) return undefined;
  const after = settings.get("WAITING_PAGE_AFTER") as number;
  const path = settings.get("WAITING_PAGE_FILE") as string | undefined;
  if (path === undefined) return { after };
  const read = readPageFile(path);
  if ("text" in read) return { after, file: { path, text: read.text } };
  issues.error(
    settings.entry("WAITING_PAGE_FILE")!.location,
    "WAITING_PAGE_FILE",
    `Cannot use "WAITING_PAGE_FILE" for ${settings.describe()}: ${read.error}`,
  );
  return { after };
}

/** HOSTNAME_TIMEOUT (global); records an error naming its line when it is 0. */
export function hostnameTimeout(settings: Settings, issues: Issues): number {
  const timeout = settings.get("HOSTNAME_TIMEOUT") as number;
  if (timeout === 0) {
    issues.error(
      settings.entry("HOSTNAME_TIMEOUT")!.location,
      "HOSTNAME_TIMEOUT",
      'Cannot use "HOSTNAME_TIMEOUT" as it must be more than 0 seconds: current value is ' +
        `"${settings.entry("HOSTNAME_TIMEOUT")!.value}"`,
    );
  }
  return timeout;
}
