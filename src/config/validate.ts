/**
 * Turns merged raw sections into a typed {@linkcode Config}, collecting every problem.
 *
 * Values are read according to the key table (`keys.ts`). Decisions:
 * - Every service inherits the global section's keys, except `ACTIVE` and `PORT`, which
 *   belong to each section (a global `PORT` would otherwise clash with every section's).
 * - A blank value means the key's default; for a command that is "unset". A command equal
 *   to the seed's default is unset too: `CHECK_CMD=false` means no check, `START_CMD=false`
 *   and `STOP_CMD=false` no command, `IDLE_CMD=true` no condition besides "no connection".
 *   Other values, such as `IDLE_CMD=false` (never idle), are kept as commands.
 * - A command's timeout is its own `*_TIMEOUT`, else `EXEC_CMD_TIMEOUT`; 0 means no limit.
 * - Two active services clash when they share a port and an address (or either listens on
 *   a wildcard address), unless both name their hosts (HOSTNAMES) on the same addresses:
 *   then the port is shared by name, and no name may be taken twice.
 *
 * This module is the core: it reads every entry, builds each active service (a PORT and a
 * way to wake it make one) and the global settings, and runs the checks of each feature,
 * which live in `validate/`, one module per group of keys: `listening.ts` (ports and
 * addresses), `life_cycle.ts` (commands, timeouts, idle stops), `limits.ts` (admission,
 * wakes and the budget), `schedules.ts` (KEEP_AWAKE, TIME_ZONE, DEPENDS_ON), `events.ts`,
 * `shared_ports.ts` (HOSTNAMES and the waiting page), `kernel.ts` (FORWARD=kernel),
 * `http.ts` (the dashboard's address and hosts), `cluster.ts` (etcd and several
 * instances), `files.ts` (folders and the log); `settings.ts` is what they share.
 *
 * @module
 */

import { ConfigError, InvalidConfigError } from "./config_error.ts";
import type { UserFolders } from "./folders.ts";
import { suggestKey } from "./key_hints.ts";
import { KEYS_BY_NAME } from "./keys.ts";
import type { RawEntry } from "./parse.ts";
import { parsePortMapping, type Protocol } from "./ports.ts";
import { parseKeepAwake } from "./schedule.ts";
import type { Config, ServiceConfig } from "./types.ts";
import { INVALID, readValue, type Value, whyInvalid } from "./values.ts";
import {
  checkClusterTargets,
  checkClusterTrust,
  clusterTargets,
  etcdAccess,
  etcdEndpoints,
} from "./validate/cluster.ts";
import { webhookUrl } from "./validate/events.ts";
import { checkLogMaxFiles, folder, logFormat } from "./validate/files.ts";
import { metricsAddress, metricsHosts } from "./validate/http.ts";
import { checkKernelForward } from "./validate/kernel.ts";
import { serviceLimits, totalLimits } from "./validate/limits.ts";
import {
  checkConnectTimeout,
  checkIdleStops,
  checkWakeable,
  passEnv,
} from "./validate/life_cycle.ts";
import { checkMorePorts, checkPorts } from "./validate/listening.ts";
import { checkDependencies, timeZone } from "./validate/schedules.ts";
import {
  type Built,
  Issues,
  type MergedSection,
  optional,
  positive,
  Settings,
} from "./validate/settings.ts";
import {
  checkHostnames,
  checkUdpByName,
  hostnameTimeout,
  waitingPage,
  wakeOn,
} from "./validate/shared_ports.ts";

export type { MergedSection } from "./validate/settings.ts";

/** Every file's sections merged: what {@linkcode validateConfig} checks. */
export interface MergedConfig {
  /** Files that were read, in order. */
  files: string[];
  /** The keys before the first `[section]` of every file. */
  global: MergedSection;
  /** The sections, in the order they first appear. */
  sections: MergedSection[];
}

/**
 * Checks merged sections and builds the typed configuration.
 *
 * @param merged the sections of every file, merged
 * @param readErrors lines the files could not read: when there are any, they are the
 *   errors reported, as the rest would only follow from them (a PORT on a bad line is
 *   "missing"); the files' VARRUN_PATH is still read
 * @param folders the VARRUN_PATH and STATE_PATH to use when the files leave them blank,
 *   instead of the keys' defaults (a user other than root gets folders of its own)
 * @returns the configuration, with its warnings
 * @throws {InvalidConfigError} listing every error, in file and line order,
 *   with the VARRUN_PATH the files set
 */
export function validateConfig(
  merged: MergedConfig,
  readErrors: ConfigError[] = [],
  folders: Partial<UserFolders> = {},
): Config {
  const issues = new Issues(merged.files);
  const values = new Map<RawEntry, Value | typeof INVALID>();
  readEntries(merged.global, true, values, issues);
  for (const section of merged.sections) readEntries(section, false, values, issues);

  const built: Built[] = [];
  const inactive: string[] = [];
  const globalSettings = new Settings(merged.global, undefined, values);
  if (globalSettings.get("ACTIVE") === true) {
    if (globalSettings.entry("PORT") === undefined) {
      issues.warn(
        globalSettings.entry("ACTIVE")!,
        "Ignoring ACTIVE=yes in the global section as it has no PORT: set PORT there to " +
          "make it a service",
      );
    } else {
      built.push(...buildService(globalSettings, true, issues));
    }
  }
  for (const section of merged.sections) {
    const settings = new Settings(section, merged.global, values);
    const active = settings.get("ACTIVE");
    if (active === true) built.push(...buildService(settings, false, issues));
    if (active === false) inactive.push(section.name);
  }
  checkPorts(built, issues);
  checkHostnames(built, issues);
  checkDependencies(built, issues);
  checkIdleStops(built, issues);
  const format = logFormat(globalSettings, issues);
  const metrics = metricsAddress(globalSettings, built, issues);
  const endpoints = etcdEndpoints(globalSettings, issues);
  const access = etcdAccess(globalSettings, endpoints, issues);
  checkClusterTargets(
    [
      globalSettings,
      ...merged.sections.map((section) => new Settings(section, undefined, values)),
    ],
    endpoints,
    issues,
  );
  if (endpoints !== undefined) checkClusterTrust(built, issues);
  const timeout = hostnameTimeout(globalSettings, issues);
  checkLogMaxFiles(globalSettings, issues);
  const hosts = metricsHosts(globalSettings, issues);

  const { warnings, errors } = issues.sorted();
  const reported = readErrors.length > 0
    ? readErrors
    : errors.map((issue) => new ConfigError(issue));
  const varrunPath = folder(globalSettings, "VARRUN_PATH", folders.varrunPath);
  const statePath = folder(globalSettings, "STATE_PATH", folders.statePath);
  if (reported.length > 0) {
    const error = new InvalidConfigError(reported, warnings);
    error.varrunPath = varrunPath.path;
    throw error;
  }
  return {
    files: merged.files,
    global: {
      varrunPath: varrunPath.path,
      statePath: statePath.path,
      ...optional("varrunPathSource", varrunPath.source),
      ...optional("statePathSource", statePath.source),
      shutdownGrace: globalSettings.get("SHUTDOWN_GRACE") as number,
      logFormat: format,
      ...optional("logFile", globalSettings.get("LOG_FILE") as string | undefined),
      logMaxSize: globalSettings.get("LOG_MAX_SIZE") as number,
      logMaxFiles: globalSettings.get("LOG_MAX_FILES") as number,
      ...optional("apiTokenFile", globalSettings.get("API_TOKEN_FILE") as string | undefined),
      ...optional("metricsHosts", hosts),
      ...optional("etcdEndpoints", endpoints),
      clusterName: globalSettings.get("CLUSTER_NAME") as string,
      ...access,
      ...optional("metricsAddress", metrics),
      ...totalLimits(globalSettings),
      hostnameTimeout: timeout,
    },
    services: built.map(({ service }) => service),
    inactive,
    warnings,
  };
}

/** Reads every known key of a section into `values`, warning about keys that do not belong. */
function readEntries(
  section: MergedSection,
  isGlobal: boolean,
  values: Map<RawEntry, Value | typeof INVALID>,
  issues: Issues,
): void {
  for (const entry of section.entries.values()) {
    const key = KEYS_BY_NAME.get(entry.key);
    if (key === undefined) {
      const suggestion = suggestKey(entry.key, KEYS_BY_NAME.keys());
      issues.warn(
        entry,
        `Ignoring unknown key "${entry.key}"` + (suggestion === undefined ? "" : `: ${suggestion}`),
      );
    } else if (key.globalOnly && !isGlobal) {
      issues.warn(
        entry,
        `Ignoring "${entry.key}" in [${section.name}] as it can only be set in the global section`,
      );
    } else {
      const value = readValue(key, entry.value, isGlobal);
      if (value === INVALID) {
        issues.error(
          entry.location,
          entry.key,
          `Cannot use "${entry.key}" ${whyInvalid(key, entry.value)}`,
        );
      }
      values.set(entry, value);
    }
  }
}

/** Builds an active service (none when its port is missing or bad), recording what is wrong. */
function buildService(settings: Settings, isGlobal: boolean, issues: Issues): Built[] {
  const { section } = settings;
  const portEntry = settings.entry("PORT");
  const port = settings.get("PORT") as number | undefined;
  const checkCmd = settings.command("CHECK_CMD", "CHECK_CMD_TIMEOUT");
  const startCmd = settings.command("START_CMD", "START_CMD_TIMEOUT");
  if (portEntry === undefined) {
    issues.error(
      section.location,
      "PORT",
      `Cannot listen for ${settings.describe()} as it has no PORT: ` +
        `set PORT in ${settings.describe()}`,
    );
  }
  checkWakeable(settings, issues);
  if (portEntry !== undefined && portEntry.value.trim() === "") {
    issues.error(
      portEntry.location,
      "PORT",
      `Cannot listen for ${settings.describe()} as its PORT is blank: ` +
        `set PORT in ${settings.describe()} to the port sleepingd listens on`,
    );
  }
  checkConnectTimeout(settings, issues);
  if (port === undefined) return [];
  const service: ServiceConfig = {
    name: isGlobal ? "global" : section.name,
    source: section.location,
    port,
    portSource: portEntry!.location,
    ...optional("morePortsSource", settings.entry("MORE_PORTS")?.location),
    listenAddresses: settings.get("LISTEN_ADDRESS") as string[],
    checkCmd,
    startCmd,
    stopCmd: settings.command("STOP_CMD", "STOP_CMD_TIMEOUT"),
    idleCmd: settings.command("IDLE_CMD", "IDLE_CMD_TIMEOUT"),
    readyCmd: settings.command("READY_CMD"),
    readyTimeout: settings.get("READY_TIMEOUT") as number,
    connectTimeout: settings.get("CONNECT_TIMEOUT") as number,
    ...serviceLimits(settings),
    ...optional("clusterTargets", clusterTargets(settings)),
    wakeOn: wakeOn(settings, issues),
    ...optional("proxyProtocol", settings.get("PROXY_PROTOCOL") as "v1" | "v2" | undefined),
    user: settings.get("USER") as string | undefined,
    ...optional("passEnv", passEnv(settings, issues)),
    idleTime: settings.get("IDLE_TIME") as number | undefined,
    idleCheckInterval: settings.get("IDLE_CHECK_INTERVAL") as number | undefined,
    routePerConnection: settings.get("ROUTE_PER_CONNECTION") as boolean,
    logConnections: settings.get("LOG_CONNECTIONS") as boolean,
    protocol: settings.get("PROTOCOL") as Protocol,
    morePorts: ((settings.get("MORE_PORTS") as string[] | undefined) ?? []).map(parsePortMapping),
    udpFlowTimeout: settings.get("UDP_FLOW_TIMEOUT") as number,
    ...optional("onEventCmd", settings.command("ON_EVENT_CMD")),
    ...optional("webhookUrl", webhookUrl(settings, issues)),
    dependsOn: ((settings.get("DEPENDS_ON") as string | undefined) ?? "").split(",")
      .map((name) => name.trim()).filter(Boolean),
    keepAwake: parseKeepAwake((settings.get("KEEP_AWAKE") as string | undefined) ?? ""),
    ...optional("timeZone", timeZone(settings, issues)),
    ...optional("minAwakeTime", positive(settings.get("MIN_AWAKE_TIME"))),
    ...optional("costPerHour", cost(settings.get("COST_PER_HOUR"))),
    forward: settings.get("FORWARD") as "proxy" | "kernel",
    ...optional("forwardSource", settings.entry("FORWARD")?.location),
    masquerade: settings.get("MASQUERADE") as "auto" | "yes" | "no",
    ...optional("hostnames", settings.get("HOSTNAMES") as string[] | undefined),
    ...optional("waitingPage", waitingPage(settings, issues)),
  };
  checkMorePorts(service, settings, issues);
  checkUdpByName(service, settings, issues);
  checkKernelForward(service, settings, issues);
  return [{
    service,
    portAt: portEntry!.location,
    description: settings.describe(),
    dependsOnAt: settings.entry("DEPENDS_ON")?.location,
    hostnamesAt: settings.entry("HOSTNAMES")?.location,
    idleTimeAt: settings.entry("IDLE_TIME"),
    startCmdAt: settings.entry("START_CMD"),
  }];
}

/** A `cost` key's amount and unit, or undefined when it is not set. */
function cost(value: Value): { amount: number; currency: string } | undefined {
  if (!Array.isArray(value)) return undefined;
  const [amount, currency] = value;
  return { amount: Number(amount), currency };
}
