/**
 * Checks of several instances (ETCD_ENDPOINTS, CLUSTER_NAME, the etcd TLS and
 * user keys, CLUSTER_TARGETS): endpoints are http(s) URLs, the TLS and user
 * keys come whole with files that exist, targets can be read, and a service
 * has a way to trust a backend another instance woke (docs/ARCHITECTURE.md,
 * "Several instances").
 *
 * @module
 */

import { parseTargetRule } from "../target_rules.ts";
import type { Config } from "../types.ts";
import type { Built, Issues, Settings } from "./settings.ts";
import { optional } from "./settings.ts";

/** ETCD_ENDPOINTS when each is an http(s) URL; records an error naming the line when one is not. */
export function etcdEndpoints(settings: Settings, issues: Issues): string[] | undefined {
  const urls = (settings.get("ETCD_ENDPOINTS") as string[] | undefined)?.filter(Boolean);
  if (!urls || urls.length === 0) return undefined;
  const bad = urls.find((url) => !/^https?:$/.test(URL.parse(url)?.protocol ?? ""));
  if (bad === undefined) return urls;
  issues.error(
    settings.entry("ETCD_ENDPOINTS")!.location,
    "ETCD_ENDPOINTS",
    `Cannot use "ETCD_ENDPOINTS" as each must be an http:// or https:// URL: "${bad}" is not`,
  );
  return undefined;
}

/**
 * ETCD_CA_FILE, ETCD_CERT_FILE with ETCD_KEY_FILE, and ETCD_USER with
 * ETCD_PASSWORD_FILE, when each is whole and its files exist (the daemon
 * reads them at start); records an error naming the line of each that is not,
 * and a warning for each set without ETCD_ENDPOINTS.
 */
export function etcdAccess(
  settings: Settings,
  endpoints: string[] | undefined,
  issues: Issues,
): Pick<Config["global"], "etcdCaFile" | "etcdClientCert" | "etcdUser"> {
  const names = [
    "ETCD_CA_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_USER",
    "ETCD_PASSWORD_FILE",
  ];
  const set = names.filter((name) => settings.get(name) !== undefined);
  if (endpoints === undefined) {
    for (const name of set) {
      issues.warn(settings.entry(name)!, `Ignoring "${name}" as ETCD_ENDPOINTS is not set`);
    }
    return {};
  }
  let whole = true;
  const file = (name: string) => {
    const path = settings.get(name) as string | undefined;
    if (path === undefined) return undefined;
    try {
      if (Deno.statSync(path).isFile) return path;
      issues.error(
        settings.entry(name)!.location,
        name,
        `Cannot use "${name}" as ${path} is not a file`,
      );
    } catch (error) {
      issues.error(
        settings.entry(name)!.location,
        name,
        `Cannot use "${name}" as ${path} cannot be found: ${(error as Error).message}`,
      );
    }
    whole = false;
    return undefined;
  };
  const pair = (first: string, second: string) => {
    const lone = [first, second].filter((name) => set.includes(name));
    if (lone.length !== 1) return;
    const other = lone[0] === first ? second : first;
    issues.error(
      settings.entry(lone[0])!.location,
      lone[0],
      `Cannot use "${lone[0]}" without "${other}": set both, or neither`,
    );
    whole = false;
  };
  pair("ETCD_CERT_FILE", "ETCD_KEY_FILE");
  pair("ETCD_USER", "ETCD_PASSWORD_FILE");
  const caFile = file("ETCD_CA_FILE");
  const certFile = file("ETCD_CERT_FILE");
  const keyFile = file("ETCD_KEY_FILE");
  const passwordFile = file("ETCD_PASSWORD_FILE");
  const plain = endpoints.find((url) => url.startsWith("http://"));
  for (const name of ["ETCD_CA_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE"]) {
    if (plain === undefined || !set.includes(name)) continue;
    issues.error(
      settings.entry(name)!.location,
      name,
      `Cannot use "${name}" with an http:// endpoint ("${plain}"): TLS needs https:// URLs`,
    );
    whole = false;
  }
  if (plain !== undefined && set.includes("ETCD_USER")) {
    issues.warn(
      settings.entry("ETCD_USER")!,
      `ETCD_USER's password crosses the network unencrypted to "${plain}": use https://`,
    );
  }
  if (!whole) return {};
  const user = settings.get("ETCD_USER") as string | undefined;
  return {
    ...optional("etcdCaFile", caFile),
    ...optional(
      "etcdClientCert",
      certFile && keyFile ? { certFile, keyFile } : undefined,
    ),
    ...optional("etcdUser", user && passwordFile ? { name: user, passwordFile } : undefined),
  };
}

/**
 * Checks each CLUSTER_TARGETS set (in the global section or a service's),
 * recording an error naming the line of an entry that cannot be read, and a
 * warning when there is no ETCD_ENDPOINTS to use it with.
 */
export function checkClusterTargets(
  sections: Settings[],
  endpoints: string[] | undefined,
  issues: Issues,
): void {
  for (const settings of sections) {
    const entry = settings.section.entries.get("CLUSTER_TARGETS");
    const targets = clusterTargets(settings);
    if (entry === undefined || targets === undefined) continue;
    if (endpoints === undefined) {
      issues.warn(entry, 'Ignoring "CLUSTER_TARGETS" as ETCD_ENDPOINTS is not set');
      continue;
    }
    for (const target of targets) {
      try {
        parseTargetRule(target);
      } catch (error) {
        issues.error(
          entry.location,
          "CLUSTER_TARGETS",
          `Cannot use "CLUSTER_TARGETS" as ${(error as Error).message}`,
        );
      }
    }
  }
}

/**
 * Warns about a service of several instances that has no way to trust a
 * backend another instance woke (neither CHECK_CMD nor CLUSTER_TARGETS): each
 * instance then runs its START_CMD again, which must succeed on a backend that
 * is already up (docs/ARCHITECTURE.md, "Several instances").
 */
export function checkClusterTrust(built: Built[], issues: Issues): void {
  for (const { service, description, startCmdAt } of built) {
    if (startCmdAt === undefined || service.checkCmd || service.clusterTargets?.length) continue;
    issues.warn(
      startCmdAt,
      `${description} has neither CHECK_CMD nor CLUSTER_TARGETS: a backend another instance ` +
        "woke is not trusted, so this instance runs START_CMD again, which must then succeed on " +
        "a backend that is already up; set CHECK_CMD, or CLUSTER_TARGETS to the backends' addresses",
    );
  }
}

/** CLUSTER_TARGETS as written, or undefined when it is blank. */
export function clusterTargets(settings: Settings): string[] | undefined {
  const targets = (settings.get("CLUSTER_TARGETS") as string[] | undefined)?.filter(Boolean);
  return targets?.length ? targets : undefined;
}
