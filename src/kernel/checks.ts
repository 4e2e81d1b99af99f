/**
 * What `check`, the daemon's start and each reload say about the kernel
 * path: errors where it cannot work at all, warnings where the host may keep
 * it from working, each at the FORWARD line of the services concerned.
 *
 * @module
 */

import type { Config, ConfigIssue, ServiceConfig } from "../config/types.ts";
import { forwarding, missingForKernelPath, routeLocalnet } from "./host.ts";
import { type ForwardDrop, forwardDrops, listRuleset } from "./nft.ts";
import { markTag } from "./rules.ts";

/** The services that ask for the kernel path. */
export function kernelServices(config: Config): ServiceConfig[] {
  return config.services.filter((service) => service.forward === "kernel");
}

/**
 * What makes FORWARD=kernel impossible here (`missing`: this host's lack,
 * by default), as an error at each such service's FORWARD line.
 */
export function kernelPathErrors(config: Config, missing?: string[]): ConfigIssue[] {
  const services = kernelServices(config);
  if (services.length === 0) return [];
  missing ??= missingForKernelPath();
  return services.flatMap((service) =>
    missing.map((what) => ({
      location: service.forwardSource ?? service.source,
      key: "FORWARD",
      message: `Cannot use FORWARD=kernel in [${service.name}] as ${what}`,
    }))
  );
}

/**
 * What may keep the kernel path from working: IPv4 forwarding off (a backend
 * on another host stays on the proxy path), and forward chains of other
 * tables that drop (a drop in any table wins over sleepingd's rules).
 * `table` is the daemon's own table, left out of the search.
 */
export async function kernelPathWarnings(config: Config, table: string): Promise<ConfigIssue[]> {
  const services = kernelServices(config);
  if (services.length === 0 || missingForKernelPath().length > 0) return [];
  const notes: string[] = [];
  const ipv4 = forwarding(4);
  if (ipv4.on === false) {
    notes.push(
      `${ipv4.name} is 0: a backend on another host stays on the proxy path (sleepingd never ` +
        `changes it: sysctl -w ${ipv4.name}=1, and a file in /etc/sysctl.d/ to keep it)`,
    );
  }
  let drops: ForwardDrop[] = [];
  try {
    drops = forwardDrops(await listRuleset(), table, markTag(table));
  } catch {
    // nft could not list the ruleset: nothing to say about it here
  }
  notes.push(...drops.map((drop) => describeDrop(drop, table)));
  return services.flatMap((service) =>
    notes.map((message) => ({
      location: service.forwardSource ?? service.source,
      key: "FORWARD",
      message: `FORWARD=kernel in [${service.name}]: ${message}`,
    }))
  );
}

/** A forward chain that drops, what it means for the kernel path, and the rule that lets it through. */
export function describeDrop(drop: ForwardDrop, table: string): string {
  const what = [
    drop.policyDrop ? "policy drop" : undefined,
    drop.dropRules > 0 ? `${drop.dropRules} rule(s) that drop` : undefined,
  ].filter(Boolean).join(" and ");
  const tag = `0x${markTag(table).toString(16).padStart(8, "0")}`;
  return `table ${drop.table}, chain ${drop.chain} has ${what}: a drop in any table wins over ` +
    `sleepingd's accept, so it may drop the connections the kernel forwards; let them through ` +
    `first, e.g. nft insert rule ${drop.table} ${drop.chain} ct mark and 0xffff0000 == ${tag} accept`;
}

/** The host-wide settings the kernel path reads, for `check`'s listing. */
export function describeHostSettings(): string {
  const shown = [forwarding(4), forwarding(6), routeLocalnet()].map(({ name, on }) =>
    `${name}=${on === undefined ? "?" : on ? 1 : 0}`
  );
  return shown.join(", ");
}
