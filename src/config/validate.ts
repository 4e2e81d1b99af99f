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
 * One module past 300 lines on purpose: every check here reads the same merged sections
 * and adds to the same list of issues; reading single values lives in `values.ts`.
 *
 * @module
 */

import { ConfigError, InvalidConfigError } from "./config_error.ts";
import { DEFAULT_PATTERN, HostTable } from "./hostnames.ts";
import type { UserFolders } from "./folders.ts";
import { suggestKey } from "./key_hints.ts";
import { KEYS_BY_NAME } from "./keys.ts";
import { readPageFile } from "./page_file.ts";
import type { RawEntry } from "./parse.ts";
import { parsePortMapping, type Protocol } from "./ports.ts";
import { isTimeZone, parseKeepAwake } from "./schedule.ts";
import { parseTargetRule } from "./target_rules.ts";
import type {
  CommandSpec,
  Config,
  ConfigIssue,
  Location,
  ServiceConfig,
  WaitingPageConfig,
} from "./types.ts";
import { INVALID, parseHostPort, readValue, type Value, whyInvalid } from "./values.ts";

/** Addresses that take every interface, so they clash with any other address. */
const WILDCARDS = new Set(["::", "0.0.0.0", ""]);

/** One section after every file was read: the last value of each key wins. */
export interface MergedSection {
  /** The section name; "global" for the global section. */
  name: string;
  /** Where the section first appears (line 1 of the first file for the global section). */
  location: Location;
  /** The last entry of each key, by key. */
  entries: Map<string, RawEntry>;
}

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
  const logFormat = globalSettings.get("LOG_FORMAT") as string;
  if (logFormat !== "text" && logFormat !== "json") {
    issues.error(
      globalSettings.entry("LOG_FORMAT")!.location,
      "LOG_FORMAT",
      `Cannot read "LOG_FORMAT" as it must be text or json: current value is "${logFormat}"`,
    );
  }
  const metricsAddress = globalSettings.get("METRICS_ADDRESS") as string | undefined;
  if (metricsAddress !== undefined && parseHostPort(metricsAddress) === undefined) {
    issues.error(
      globalSettings.entry("METRICS_ADDRESS")!.location,
      "METRICS_ADDRESS",
      'Cannot read "METRICS_ADDRESS" as it must be HOST:PORT, e.g. 127.0.0.1:9180: ' +
        `current value is "${metricsAddress}"`,
    );
  } else if (metricsAddress !== undefined) {
    const at = globalSettings.entry("METRICS_ADDRESS")!.location;
    checkMetricsPort(built, { ...parseHostPort(metricsAddress)!, at }, issues);
  }

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
  const hostnameTimeout = globalSettings.get("HOSTNAME_TIMEOUT") as number;
  if (hostnameTimeout === 0) {
    issues.error(
      globalSettings.entry("HOSTNAME_TIMEOUT")!.location,
      "HOSTNAME_TIMEOUT",
      'Cannot use "HOSTNAME_TIMEOUT" as it must be more than 0 seconds: current value is ' +
        `"${globalSettings.entry("HOSTNAME_TIMEOUT")!.value}"`,
    );
  }
  const logMaxFilesEntry = globalSettings.entry("LOG_MAX_FILES");
  if (logMaxFilesEntry !== undefined && globalSettings.get("LOG_MAX_FILES") === 0) {
    issues.error(
      logMaxFilesEntry.location,
      "LOG_MAX_FILES",
      'Cannot use "LOG_MAX_FILES" as it must be 1 or more (the file written counts): ' +
        `current value is "${logMaxFilesEntry.value}"; to stop rotating, set LOG_MAX_SIZE=0`,
    );
  }
  const metricsHosts = names(globalSettings, "METRICS_HOSTS", HOST_NAME, "a host name", issues);

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
      logFormat: logFormat as "text" | "json",
      ...optional("logFile", globalSettings.get("LOG_FILE") as string | undefined),
      logMaxSize: globalSettings.get("LOG_MAX_SIZE") as number,
      logMaxFiles: globalSettings.get("LOG_MAX_FILES") as number,
      ...optional("apiTokenFile", globalSettings.get("API_TOKEN_FILE") as string | undefined),
      ...optional("metricsHosts", metricsHosts),
      ...optional("etcdEndpoints", endpoints),
      clusterName: globalSettings.get("CLUSTER_NAME") as string,
      ...access,
      ...optional(
        "metricsAddress",
        metricsAddress === undefined ? undefined : parseHostPort(metricsAddress),
      ),
      ...optional("maxWakesPerHourTotal", positive(globalSettings.get("MAX_WAKES_PER_HOUR_TOTAL"))),
      ...optional("maxConnectionsTotal", positive(globalSettings.get("MAX_CONNECTIONS_TOTAL"))),
      ...optional("maxUdpFlowsTotal", positive(globalSettings.get("MAX_UDP_FLOWS_TOTAL"))),
      ...optional(
        "maxHeldBytesTotal",
        globalSettings.get("MAX_HELD_BYTES_TOTAL") as number | undefined,
      ),
      hostnameTimeout,
    },
    services: built.map(({ service }) => service),
    inactive,
    warnings,
  };
}

/** Errors and warnings, kept apart until they are sorted by place. */
class Issues {
  readonly #files: string[];
  readonly #errors: ConfigIssue[] = [];
  readonly #warnings: ConfigIssue[] = [];

  constructor(files: string[]) {
    this.#files = files;
  }

  error(location: Location, key: string, message: string): void {
    this.#errors.push({ location, key, message });
  }

  warn(entry: RawEntry, message: string): void {
    this.#warnings.push({ location: entry.location, key: entry.key, message });
  }

  /** Both lists in file order, then line order. */
  sorted(): { errors: ConfigIssue[]; warnings: ConfigIssue[] } {
    const rank = (issue: ConfigIssue) => this.#files.indexOf(issue.location.file);
    const byPlace = (a: ConfigIssue, b: ConfigIssue) =>
      rank(a) - rank(b) || a.location.line - b.location.line;
    return {
      errors: this.#errors.toSorted(byPlace),
      warnings: this.#warnings.toSorted(byPlace),
    };
  }
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

/** The settings of one service: its own entries, then the global ones it inherits. */
class Settings {
  readonly section: MergedSection;
  readonly #inherited?: MergedSection;
  readonly #values: Map<RawEntry, Value | typeof INVALID>;

  constructor(
    section: MergedSection,
    inherited: MergedSection | undefined,
    values: Map<RawEntry, Value | typeof INVALID>,
  ) {
    this.section = section;
    this.#inherited = inherited;
    this.#values = values;
  }

  /** The entry that sets `name` for this service, if any. */
  entry(name: string): RawEntry | undefined {
    const own = this.section.entries.get(name);
    if (own !== undefined || KEYS_BY_NAME.get(name)!.perSection) return own;
    return this.#inherited?.entries.get(name);
  }

  /** The value of `name`, typed by its kind; `undefined` also when it could not be read. */
  get(name: string): Value {
    const entry = this.entry(name);
    const value = entry === undefined
      ? readValue(KEYS_BY_NAME.get(name)!, "", this.#inherited === undefined)
      : this.#values.get(entry);
    return value === INVALID ? undefined : value;
  }

  /** The command set by `name`, with its own timeout key or else `EXEC_CMD_TIMEOUT`. */
  command(name: string, timeoutName?: string): CommandSpec | undefined {
    const text = this.get(name) as string | undefined;
    if (text === undefined) return undefined;
    const own = timeoutName === undefined ? undefined : this.get(timeoutName) as number | undefined;
    const timeout = own ?? this.get("EXEC_CMD_TIMEOUT") as number | undefined;
    const source = this.entry(name)!.location;
    return timeout === undefined || timeout === 0 ? { text, source } : { text, timeout, source };
  }

  /** How messages name the section: `[name]`, or "the global section". */
  describe(): string {
    return this.#inherited === undefined ? "the global section" : `[${this.section.name}]`;
  }
}

/** An active service, where its port was set and how messages name it. */
interface Built {
  service: ServiceConfig;
  portAt: Location;
  description: string;
  /** Where DEPENDS_ON was set, when it was. */
  dependsOnAt?: Location;
  /** Where HOSTNAMES was set, when it was. */
  hostnamesAt?: Location;
  /** The entry that sets IDLE_TIME for it (its own or the global one), when one does. */
  idleTimeAt?: RawEntry;
  /** The entry that sets START_CMD for it, when one does. */
  startCmdAt?: RawEntry;
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
  if (checkCmd === undefined && startCmd === undefined) {
    issues.error(
      section.location,
      "START_CMD",
      `Cannot wake ${settings.describe()} as it has neither START_CMD nor CHECK_CMD: ` +
        `set START_CMD in ${settings.describe()}`,
    );
  }
  if (portEntry !== undefined && portEntry.value.trim() === "") {
    issues.error(
      portEntry.location,
      "PORT",
      `Cannot listen for ${settings.describe()} as its PORT is blank: ` +
        `set PORT in ${settings.describe()} to the port sleepingd listens on`,
    );
  }
  const connectTimeoutEntry = settings.entry("CONNECT_TIMEOUT");
  if (connectTimeoutEntry !== undefined && settings.get("CONNECT_TIMEOUT") === 0) {
    issues.error(
      connectTimeoutEntry.location,
      "CONNECT_TIMEOUT",
      'Cannot use "CONNECT_TIMEOUT" as it must be more than 0 seconds: current value is ' +
        `"${connectTimeoutEntry.value}"`,
    );
  }
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
    allow: (settings.get("ALLOW") as string[] | undefined) ?? [],
    deny: (settings.get("DENY") as string[] | undefined) ?? [],
    ...optional("clusterTargets", clusterTargets(settings)),
    ...optional("maxConnections", positive(settings.get("MAX_CONNECTIONS"))),
    ...optional("maxConnectionsPerSource", positive(settings.get("MAX_CONNECTIONS_PER_SOURCE"))),
    holdTimeout: settings.get("HOLD_TIMEOUT") as number,
    wakeOn: wakeOn(settings, issues),
    ...optional("maxWakesPerHour", positive(settings.get("MAX_WAKES_PER_HOUR"))),
    ...optional("proxyProtocol", settings.get("PROXY_PROTOCOL") as "v1" | "v2" | undefined),
    user: settings.get("USER") as string | undefined,
    ...optional("passEnv", names(settings, "PASS_ENV", VARIABLE_NAME, "a variable name", issues)),
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

/**
 * Warns about a service whose IDLE_TIME cannot do what it says: without
 * IDLE_CHECK_INTERVAL no idle check runs; without STOP_CMD nothing stops the
 * backend, when idle or when sleepingd stops.
 */
function checkIdleStops(built: Built[], issues: Issues): void {
  for (const { service, description, idleTimeAt } of built) {
    if (!service.idleTime || idleTimeAt === undefined) continue;
    if (!service.idleCheckInterval) {
      issues.warn(
        idleTimeAt,
        `No idle check runs for ${description}: IDLE_TIME is set but IDLE_CHECK_INTERVAL is ` +
          "not, so it is never stopped for being idle; set IDLE_CHECK_INTERVAL, e.g. to 10",
      );
    }
    if (!service.stopCmd) {
      issues.warn(
        idleTimeAt,
        `Nothing stops the backend of ${description}: IDLE_TIME is set but STOP_CMD is not, ` +
          'so an idle stop and "sleepingd stop" leave it running (and the next wake runs ' +
          "START_CMD again); set STOP_CMD",
      );
    }
  }
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

/**
 * Records an error for a MORE_PORTS entry that repeats a port of its service,
 * and for MORE_PORTS or PROTOCOL=udp with ROUTE_PER_CONNECTION.
 */
function checkMorePorts(service: ServiceConfig, settings: Settings, issues: Issues): void {
  const entry = settings.entry("MORE_PORTS");
  const seen = new Set([`${service.port}/${service.protocol}`]);
  for (const mapping of service.morePorts) {
    const key = `${mapping.listen}/${mapping.protocol}`;
    if (seen.has(key)) {
      issues.error(
        entry!.location,
        "MORE_PORTS",
        `Cannot listen on ${key} twice for ${settings.describe()}: MORE_PORTS repeats it`,
      );
    }
    seen.add(key);
  }
  if (!service.routePerConnection) return;
  const other = service.morePorts.length > 0 ? entry : settings.entry("PROTOCOL");
  if (service.morePorts.length > 0 || service.protocol === "udp") {
    issues.error(
      other!.location,
      other!.key,
      `Cannot use ${other!.key} with ROUTE_PER_CONNECTION in ${settings.describe()}: a ` +
        "connection's own START_CMD serves one TCP port; set ROUTE_PER_CONNECTION=no",
    );
  }
}

/**
 * Records an error for each key FORWARD=kernel cannot honour, at that key's
 * line, and warns about a MASQUERADE of the section's own that FORWARD=proxy ignores.
 */
function checkKernelForward(service: ServiceConfig, settings: Settings, issues: Issues): void {
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

/** Records an error for a DEPENDS_ON that names no active service, and for each cycle. */
function checkDependencies(built: Built[], issues: Issues): void {
  const byName = new Map(built.map((one) => [one.service.name, one]));
  const names = built.map((one) => one.service.name).join(", ");
  for (const { service, dependsOnAt, description } of built) {
    for (const name of service.dependsOn) {
      const needed = byName.get(name);
      if (needed?.service.routePerConnection) {
        issues.error(
          dependsOnAt!,
          "DEPENDS_ON",
          `Cannot wake ${description} after ${needed.description} as it has ` +
            "ROUTE_PER_CONNECTION=yes: each of its connections gets a backend of its own, " +
            "so there is none to wake first",
        );
      }
      if (needed) continue;
      issues.error(
        dependsOnAt!,
        "DEPENDS_ON",
        `Cannot wake ${description} after "${name}" as no active service is named so ` +
          `(the active services: ${names})`,
      );
    }
  }
  // A depth-first walk; a service met again on the path closes a cycle, reported once.
  const done = new Set<string>();
  const reported = new Set<string>();
  const walk = (name: string, path: string[]) => {
    const at = path.indexOf(name);
    if (at >= 0) {
      const cycle = [...path.slice(at), name];
      const key = [...cycle.slice(0, -1)].sort().join("\n");
      if (!reported.has(key)) {
        reported.add(key);
        const first = byName.get(cycle[0])!;
        issues.error(
          first.dependsOnAt!,
          "DEPENDS_ON",
          `Cannot wake ${first.description} as DEPENDS_ON makes a cycle: ${cycle.join(" -> ")}`,
        );
      }
      return;
    }
    if (done.has(name) || !byName.has(name)) return;
    for (const next of byName.get(name)!.service.dependsOn) walk(next, [...path, name]);
    done.add(name);
  };
  for (const { service } of built) walk(service.name, []);
}

/** Records an error for every service that listens on a port and protocol an earlier one uses. */
function checkPorts(built: Built[], issues: Issues): void {
  const ports = (service: ServiceConfig) =>
    [{ listen: service.port, protocol: service.protocol }, ...service.morePorts]
      .map(({ listen, protocol }) => `${listen}/${protocol}`);
  const lacking = new Set<Built>();
  built.forEach((one, index) => {
    const { service, portAt, description } = one;
    for (const port of ports(service)) {
      const earlier = built.slice(0, index).find(({ service: other }) =>
        ports(other).includes(port) && overlap(other.listenAddresses, service.listenAddresses)
      );
      if (earlier === undefined) continue;
      const bothPort = port === `${service.port}/tcp` && port === `${earlier.service.port}/tcp`;
      if (bothPort && (service.hostnames || earlier.service.hostnames)) {
        checkSharedPort(earlier, one, lacking, issues);
        continue;
      }
      const shown = port === `${service.port}/tcp` ? String(service.port) : port;
      issues.error(
        portAt,
        "PORT",
        `Cannot listen on port ${shown} for ${description} as ${earlier.description} ` +
          `already does at ${earlier.portAt.file}:${earlier.portAt.line}`,
      );
    }
  });
}

/**
 * Records an error when two services on one PORT cannot share it by name: one
 * lacks HOSTNAMES (reported once per service, at its PORT), or they listen on
 * different addresses.
 */
function checkSharedPort(earlier: Built, later: Built, lacking: Set<Built>, issues: Issues) {
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
function checkHostnames(built: Built[], issues: Issues): void {
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
function checkUdpByName(service: ServiceConfig, settings: Settings, issues: Issues): void {
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
function wakeOn(settings: Settings, issues: Issues): "connect" | "data" {
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
function waitingPage(settings: Settings, issues: Issues): WaitingPageConfig | undefined {
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

/** Whether two address lists share an address, counting wildcards as every address. */
function overlap(a: string[], b: string[]): boolean {
  if ([...a, ...b].some((address) => WILDCARDS.has(address))) return true;
  return a.some((address) => b.includes(address));
}

/**
 * A folder key's value and the line that sets it; when the files leave it
 * blank, `instead` (a folder of the user's own) or else the key's default.
 */
function folder(
  settings: Settings,
  key: "VARRUN_PATH" | "STATE_PATH",
  instead: string | undefined,
): { path: string; source?: Location } {
  const entry = settings.entry(key);
  if (entry === undefined || entry.value.trim() === "") {
    return { path: instead ?? settings.get(key) as string };
  }
  return { path: settings.get(key) as string, source: entry.location };
}

/** A limit as configured: a number above 0, or undefined for blank and 0 (no limit). */
function positive(value: Value): number | undefined {
  return typeof value === "number" && value > 0 ? value : undefined;
}

/** ETCD_ENDPOINTS when each is an http(s) URL; records an error naming the line when one is not. */
function etcdEndpoints(settings: Settings, issues: Issues): string[] | undefined {
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
function etcdAccess(
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
function checkClusterTargets(
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
function checkClusterTrust(built: Built[], issues: Issues): void {
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
function clusterTargets(settings: Settings): string[] | undefined {
  const targets = (settings.get("CLUSTER_TARGETS") as string[] | undefined)?.filter(Boolean);
  return targets?.length ? targets : undefined;
}

/** A host name as METRICS_HOSTS lists it: letters, digits, hyphens, dots. */
const HOST_NAME =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/** An environment variable's name as PASS_ENV lists it. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The space-separated names of `key`, undefined when blank; records an error
 * naming the line for the first one that does not match `form` (`what` says
 * what it must be).
 */
function names(
  settings: Settings,
  key: string,
  form: RegExp,
  what: string,
  issues: Issues,
): string[] | undefined {
  const list = ((settings.get(key) as string[] | undefined) ?? []).filter(Boolean);
  if (list.length === 0) return undefined;
  const bad = list.find((name) => !form.test(name));
  if (bad === undefined) return list;
  issues.error(
    settings.entry(key)!.location,
    key,
    `Cannot use "${key}" as each entry must be ${what}: "${bad}" is not`,
  );
  return undefined;
}

/** WEBHOOK_URL when it is an http(s) URL; records an error naming the line when it is not. */
function webhookUrl(settings: Settings, issues: Issues): string | undefined {
  const url = settings.get("WEBHOOK_URL") as string | undefined;
  if (url === undefined) return undefined;
  if (/^https?:$/.test(URL.parse(url)?.protocol ?? "")) return url;
  issues.error(
    settings.entry("WEBHOOK_URL")!.location,
    "WEBHOOK_URL",
    `Cannot use "WEBHOOK_URL" as it must be an http:// or https:// URL: current value is "${url}"`,
  );
  return undefined;
}

/** TIME_ZONE when it names a zone; records an error naming the line when it does not. */
function timeZone(settings: Settings, issues: Issues): string | undefined {
  const zone = settings.get("TIME_ZONE") as string | undefined;
  if (zone === undefined || isTimeZone(zone)) return zone;
  issues.error(
    settings.entry("TIME_ZONE")!.location,
    "TIME_ZONE",
    `Cannot use "TIME_ZONE" as it must be a time zone, e.g. Europe/Paris or UTC: current value ` +
      `is "${zone}"`,
  );
  return undefined;
}

/** A `cost` key's amount and unit, or undefined when it is not set. */
function cost(value: Value): { amount: number; currency: string } | undefined {
  if (!Array.isArray(value)) return undefined;
  const [amount, currency] = value;
  return { amount: Number(amount), currency };
}

/** `{ [key]: value }`, or `{}` when the value is undefined: unset keys stay absent. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : { [key]: value } as { [P in K]?: V };
}
