/**
 * `sleepingd check`: validates the configuration and lists the services it defines.
 *
 * @module
 */

import { printWarning } from "./report.ts";
import { folderWarnings } from "../config/folders.ts";
import { loadConfig } from "../config/load.ts";
import { KEYS_BY_NAME } from "../config/keys.ts";
import { readValue } from "../config/values.ts";
import type { CommandSpec, Config, ServiceConfig } from "../config/types.ts";
import { formatPortMapping, listenPorts } from "../config/ports.ts";
import { DEFAULT_PATTERN } from "../config/hostnames.ts";
import { portGroups } from "../service/name_router.ts";
import { formatTarget } from "../net/address.ts";
import { formatBytes } from "../net/budget.ts";
import type { Command } from "./options.ts";
import { ConfigError, InvalidConfigError } from "../config/config_error.ts";
import { describeHostSettings, kernelPathErrors, kernelPathWarnings } from "../kernel/checks.ts";
import { tableName } from "../kernel/rules.ts";

/** A key's default, for the keys `check` shows only when they are set otherwise. */
function defaultOf(name: string): number {
  return Number(KEYS_BY_NAME.get(name)!.default);
}

/** How much of a command `check` shows: its first line, cut to this many characters. */
const COMMAND_WIDTH = 70;

/** `sleepingd check`: reads every file, prints warnings and errors, lists the services. */
export const checkCommand: Command = {
  summary: "check the configuration and list the services",
  help: `Usage: sleepingd [-f FILE]... check

Checks the configuration files the way the daemon reads them, then lists each
active service with its port and commands, and the inactive ones.

Warnings go to stderr and do not change the exit code: an unknown key (with
the key it likely means), an IDLE_TIME that stops nothing, and a VARRUN_PATH
or STATE_PATH that this user cannot write. Errors go to stderr, each as
FILE:LINE: message, and the exit code is 1.

With FORWARD=kernel it also checks this host, at the FORWARD line: Linux,
root or CAP_NET_ADMIN, nft and conntrack (errors when missing); IPv4
forwarding and other tables' forward chains that drop (warnings). It shows
the host-wide settings the kernel path reads and never changes.

Examples:
  sleepingd check
  sleepingd -f sleepingd.conf -f local.conf check`,
  async run(options) {
    // A broken configuration throws: main prints each error with its file:line and exits 1.
    const config = await loadConfig(options.configFiles);
    for (const warning of config.warnings) printWarning(warning);
    for (const warning of folderWarnings(config.global)) printWarning(warning);
    const kernelErrors = kernelPathErrors(config);
    if (kernelErrors.length > 0) {
      throw new InvalidConfigError(kernelErrors.map((issue) => new ConfigError(issue)));
    }
    const table = tableName(config.global.varrunPath);
    for (const warning of await kernelPathWarnings(config, table)) printWarning(warning);
    console.log(describeConfig(config));
    return 0;
  },
};

/** The listing: each active service with its commands, then the inactive ones. */
function describeConfig(config: Config): string {
  const lines = config.services.length === 0
    ? ["no service is active"]
    : config.services.flatMap((service) => describeService(service, config.global));
  const { maxConnectionsTotal, maxUdpFlowsTotal, maxHeldBytesTotal } = config.global;
  const limits = describeLimits([
    [maxConnectionsTotal, "connections"],
    [maxUdpFlowsTotal, "UDP flows"],
    [
      maxHeldBytesTotal === undefined ? undefined : formatBytes(maxHeldBytesTotal),
      "held for clients",
    ],
    [config.global.maxWakesPerHourTotal, "wakes an hour"],
  ]);
  if (limits) lines.unshift(`all services: ${limits}`);
  lines.unshift(...describeDaemon(config));
  lines.push(...describeSharedPorts(config));
  lines.push(...config.inactive.map((name) => `${name} (inactive)`));
  return lines.join("\n");
}

/**
 * Where the daemon keeps its history, serves its dashboard and takes its API
 * token, when set otherwise than default.
 */
function describeDaemon(config: Config): string[] {
  const {
    varrunPath,
    statePath,
    metricsAddress,
    metricsHosts,
    apiTokenFile,
    etcdEndpoints,
    clusterName,
  } = config.global;
  const lines: string[] = [];
  if (etcdEndpoints) {
    lines.push(`cluster: ${clusterName}, through etcd at ${etcdEndpoints.join(" ")}`);
    const { etcdCaFile, etcdClientCert, etcdUser } = config.global;
    if (etcdCaFile) lines.push(`  etcd's certificate: signed by an authority of ${etcdCaFile}`);
    if (etcdClientCert) {
      lines.push(
        `  client certificate: ${etcdClientCert.certFile} (key ${etcdClientCert.keyFile})`,
      );
    }
    if (etcdUser) {
      lines.push(`  etcd user: ${etcdUser.name} (password in ${etcdUser.passwordFile})`);
    }
  }
  if (metricsAddress) {
    const url = `http://${formatTarget(metricsAddress)}`;
    lines.push(`dashboard: ${url}/ (metrics at ${url}/metrics)`);
  }
  if (metricsHosts) {
    lines.push(`dashboard names: ${metricsHosts.join(" ")} (and IP addresses, localhost)`);
  }
  if (apiTokenFile) {
    const where = metricsAddress ? "" : " (but METRICS_ADDRESS is off)";
    lines.push(`wake API: POST /api/services/NAME/... with the token in ${apiTokenFile}${where}`);
  }
  if (varrunPath !== KEYS_BY_NAME.get("VARRUN_PATH")!.default) {
    const log = config.global.logFile ? "" : ", the log of sleepingd start";
    lines.push(`run folder: ${varrunPath} (pidfile, control socket${log})`);
  }
  if (statePath !== KEYS_BY_NAME.get("STATE_PATH")!.default) {
    lines.push(`history: ${statePath}/events.jsonl`);
  }
  const log = describeLog(config);
  if (log) lines.push(log);
  return lines;
}

/**
 * Where the log goes and how it is rotated, when LOG_FILE, LOG_MAX_SIZE or
 * LOG_MAX_FILES is set otherwise than default; "" when none is.
 */
function describeLog(config: Config): string {
  const { logFile, logMaxSize, logMaxFiles, varrunPath } = config.global;
  const defaults = ["LOG_MAX_SIZE", "LOG_MAX_FILES"]
    .map((name) => readValue(KEYS_BY_NAME.get(name)!, "", true));
  const rotated = logMaxSize !== defaults[0] || logMaxFiles !== defaults[1];
  if (logFile === undefined && !rotated) return "";
  const where = logFile ??
    `stderr for run, ${varrunPath.replace(/\/+$/, "")}/sleepingd.log for start`;
  if (logMaxSize === 0) return `log: ${where}; never rotated by sleepingd (LOG_MAX_SIZE=0)`;
  const kept = logMaxFiles === 1 ? "no older file kept" : `${logMaxFiles} files kept`;
  return `log: ${where}; rotated past ${formatSize(logMaxSize)}, ${kept}`;
}

/** Bytes in the largest unit that counts them whole: `4 MiB`, `1536 KiB`, `1000 bytes`. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

function describeService(service: ServiceConfig, global: Config["global"]): string[] {
  const table = tableName(global.varrunPath);
  const lines = [`${service.name} (port ${service.port})`];
  const detail = (label: string, text: string) => lines.push(`  ${label}: ${text}`);
  if (service.listenAddresses.join(" ") !== "::") {
    detail("listen", service.listenAddresses.join(" "));
  }
  if (service.morePorts.length > 0 || service.protocol === "udp") {
    detail("ports", listenPorts(service).map(formatPortMapping).join(" "));
  }
  if ([service.protocol, ...service.morePorts.map((port) => port.protocol)].includes("udp")) {
    detail("udp flows", `end after ${service.udpFlowTimeout}s without a datagram`);
  }
  if (service.checkCmd) detail("check", describeCommand(service.checkCmd));
  if (service.startCmd) detail("start", describeCommand(service.startCmd));
  if (service.readyCmd) {
    detail(
      "ready",
      `${describeCommand(service.readyCmd)}, retried for up to ${service.readyTimeout}s`,
    );
  }
  if (service.connectTimeout !== defaultOf("CONNECT_TIMEOUT")) {
    detail("connect", `within ${service.connectTimeout}s`);
  }
  if (service.routePerConnection) detail("route", "per connection");
  if (!service.logConnections) detail("log", "each connection at the debug level only");
  if (service.proxyProtocol) detail("proxy protocol", service.proxyProtocol);
  if (service.forward === "kernel") {
    detail(
      "forward",
      `by the kernel while awake (MASQUERADE=${service.masquerade}; loopback clients through ` +
        `sleepingd), nftables table inet ${table}; ${describeHostSettings()}`,
    );
  }
  if (service.allow.length > 0) detail("allow", service.allow.join(" "));
  if (service.deny.length > 0) detail("deny", service.deny.join(" "));
  const limits = describeLimits([
    [service.maxConnections, "connections"],
    [service.maxConnectionsPerSource, "per client address"],
    [service.maxWakesPerHour, "wakes an hour"],
  ]);
  if (limits) detail("limits", limits);
  if (service.wakeOn === "data") detail("wake on", "a connection's first byte");
  if (service.holdTimeout !== defaultOf("HOLD_TIMEOUT")) {
    detail(
      "hold",
      service.holdTimeout === 0
        ? "clients wait as long as a wake takes"
        : `up to ${service.holdTimeout}s`,
    );
  }
  if (service.hostnames) detail("names", service.hostnames.join(" "));
  if (service.waitingPage) {
    const { after, file } = service.waitingPage;
    detail(
      "waiting page",
      `after ${after}s, for browsers over HTTP (${file ? file.path : "sleepingd's own page"})`,
    );
  }
  if (service.stopCmd) detail("stop", describeCommand(service.stopCmd));
  detail("idle", describeIdle(service));
  if (service.idleCmd) detail("idle if", describeCommand(service.idleCmd));
  if (service.onEventCmd) detail("on event", describeCommand(service.onEventCmd));
  if (service.webhookUrl) detail("webhook", service.webhookUrl);
  if (service.dependsOn.length > 0) {
    detail("depends on", `${service.dependsOn.join(", ")} (woken first, stopped after)`);
  }
  if (service.minAwakeTime) detail("awake at least", `${service.minAwakeTime}s once woken`);
  if (service.keepAwake.length > 0) {
    const zone = service.timeZone ?? "the system's time zone";
    detail("keep awake", `${service.keepAwake.map((window) => window.text).join("; ")} (${zone})`);
  }
  if (service.user) {
    const passed = service.passEnv ? `, with ${service.passEnv.join(" ")} passed on` : "";
    detail("user", `${service.user} (a clean environment${passed})`);
  }
  if (global.etcdEndpoints) detail("published targets", describeTrust(service));
  if (service.costPerHour) {
    const { amount, currency } = service.costPerHour;
    detail("cost", `${amount}${currency ? ` ${currency}` : ""} an hour awake`);
  }
  return lines;
}

/** Which target another instance publishes this one may use. */
function describeTrust(service: ServiceConfig): string {
  if (service.checkCmd) return "used when CHECK_CMD confirms them";
  if (service.clusterTargets) return `used when in ${service.clusterTargets.join(" ")}`;
  return "not used (no CHECK_CMD nor CLUSTER_TARGETS): each instance runs START_CMD";
}

/**
 * Each port shared by name: which names go to which service, what becomes
 * of the others, and the time a client has to send its name.
 */
function describeSharedPorts(config: Config): string[] {
  const byName = new Map(config.services.map((service) => [service.name, service]));
  return portGroups(config.services).flatMap((group) => {
    const services = group.services.map((name) => byName.get(name)!);
    if (!services.some((service) => service.hostnames)) return [];
    const routes = services.flatMap((service) =>
      (service.hostnames ?? []).filter((pattern) => pattern !== DEFAULT_PATTERN)
        .map((pattern) => `${pattern} -> ${service.name}`)
    );
    const fallback = services.find((service) => service.hostnames?.includes(DEFAULT_PATTERN));
    return [
      `port ${group.port} (${group.addresses.join(" ")}) shared by name (TLS SNI, HTTP Host):`,
      ...routes.map((route) => `  ${route}`),
      `  other names: ${
        fallback ? `-> ${fallback.name}` : "refused (421 over HTTP, closed over TLS)"
      }`,
      `  names read within ${config.global.hostnameTimeout}s, from the first 32 KiB`,
    ];
  });
}

/** Limits that are set, as `100 connections, 6 wakes an hour`; "" when none is. */
function describeLimits(limits: [number | string | undefined, string][]): string {
  return limits.filter(([value]) => value !== undefined).map(([value, what]) => `${value} ${what}`)
    .join(", ");
}

/** The command's first line, cut to {@linkcode COMMAND_WIDTH}, and its timeout if any. */
function describeCommand(command: CommandSpec): string {
  const [first, ...more] = command.text.trim().split("\n");
  const cut = first.length > COMMAND_WIDTH || more.length > 0;
  const text = cut ? `${first.slice(0, COMMAND_WIDTH - 3).trimEnd()}...` : first;
  return command.timeout === undefined ? text : `${text} (timeout ${command.timeout}s)`;
}

function describeIdle(service: ServiceConfig): string {
  const { idleTime, idleCheckInterval } = service;
  if (!idleTime || !idleCheckInterval) {
    return "never stopped (set IDLE_TIME and IDLE_CHECK_INTERVAL to stop it when idle)";
  }
  return `every ${idleCheckInterval}s, stop after ${idleTime}s idle`;
}
