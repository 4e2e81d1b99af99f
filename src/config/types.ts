/**
 * The typed configuration that the rest of sleepingd works from.
 *
 * Files in the seed's dialect are parsed (`parse.ts`), found and merged
 * (`load.ts`) and checked (`validate.ts`) into a {@linkcode Config}.
 *
 * @module
 */

import type { PortMapping, Protocol } from "./ports.ts";
import type { KeepAwakeWindow } from "./schedule.ts";

/** A place in a configuration file: the file's path and a 1-based line. */
export interface Location {
  /** Path of the file as it was given or found. */
  file: string;
  /** 1-based line number. */
  line: number;
}

/** A shell command from the configuration, with the limit on how long it may run. */
export interface CommandSpec {
  /** The command text, passed untouched to `bash -c`. */
  text: string;
  /** Seconds the command may run before it is killed; `undefined` means no limit. */
  timeout?: number;
  /** Where the command was set. */
  source: Location;
}

/** One service: a port sleepingd listens on and the commands that drive its backend. */
export interface ServiceConfig {
  /** The section name, e.g. "Simple web server for testing purposes"; "global" for the global section. */
  name: string;
  /** Where the section starts (the `[name]` line, or line 1 for the global section). */
  source: Location;
  /** TCP port sleepingd listens on (`PORT`), 1–65535. */
  port: number;
  /** Where `PORT` is set, for errors about the port; `source` when unknown. */
  portSource?: Location;
  /** Where `MORE_PORTS` is set, when it is. */
  morePortsSource?: Location;
  /**
   * Addresses to listen on (`LISTEN_ADDRESS`, space separated).
   * @default ["::"] (every IPv6 and IPv4 address), falling back to "0.0.0.0" without IPv6
   */
  listenAddresses: string[];
  /** `CHECK_CMD`: exit 0 means the backend is already up; its stdout may name the target. */
  checkCmd?: CommandSpec;
  /** `START_CMD`: starts the backend; its first stdout line is the target `IP PORT`. */
  startCmd?: CommandSpec;
  /** `STOP_CMD`: stops the backend. */
  stopCmd?: CommandSpec;
  /** `IDLE_CMD`: exit 0 means the backend is idle. Unset means idle whenever no connection is open. */
  idleCmd?: CommandSpec;
  /** `READY_CMD`: run after START_CMD until it exits 0, before the target is connected to. */
  readyCmd?: CommandSpec;
  /**
   * `READY_TIMEOUT`: seconds from the end of START_CMD until the backend must accept.
   * @default 60
   */
  readyTimeout: number;
  /**
   * `CONNECT_TIMEOUT`: seconds one connection to the backend may take to be accepted.
   * @default 5
   */
  connectTimeout: number;
  /** `ALLOW`: client addresses and CIDR blocks that may connect; empty means every client. */
  allow: string[];
  /** `DENY`: client addresses and CIDR blocks that may not connect; it wins over `allow`. */
  deny: string[];
  /**
   * `CLUSTER_TARGETS`: the targets (addresses or CIDR blocks, with an optional
   * port) another instance may publish; `undefined` means none.
   */
  clusterTargets?: string[];
  /** `MAX_CONNECTIONS`: connections held at once, waiting ones included; `undefined` means no limit. */
  maxConnections?: number;
  /** `MAX_CONNECTIONS_PER_SOURCE`: connections one client address may hold at once. */
  maxConnectionsPerSource?: number;
  /**
   * `HOLD_TIMEOUT`: seconds a client may wait for a wake; 0 means no limit.
   * @default 300
   */
  holdTimeout: number;
  /**
   * `WAKE_ON`: what wakes the service, a connection or its first byte.
   * @default "connect"
   */
  wakeOn: "connect" | "data";
  /** `MAX_WAKES_PER_HOUR`: wakes the service may begin in any hour; `undefined` means no limit. */
  maxWakesPerHour?: number;
  /** `PROXY_PROTOCOL`: the PROXY protocol header sent to the backend; `undefined` means none. */
  proxyProtocol?: "v1" | "v2";
  /** `USER`: run the commands as this user; `undefined` means the daemon's own user. */
  user?: string;
  /** `PASS_ENV`: variables of sleepingd's environment that commands run as `user` get too. */
  passEnv?: string[];
  /** `IDLE_TIME`: seconds idle in a row before STOP_CMD runs; `undefined` or 0 means never. */
  idleTime?: number;
  /** `IDLE_CHECK_INTERVAL`: seconds between idle checks; `undefined` or 0 means no checks. */
  idleCheckInterval?: number;
  /**
   * `ROUTE_PER_CONNECTION`: run CHECK_CMD/START_CMD for every connection and use the target it
   * prints for that connection only (the seed's pool example).
   * @default false
   */
  routePerConnection: boolean;
  /**
   * `LOG_CONNECTIONS`: whether each connection's line (when it ends) is logged at info;
   * otherwise at debug.
   * @default true
   */
  logConnections: boolean;
  /**
   * `PROTOCOL`: the protocol of `port`.
   * @default "tcp"
   */
  protocol: Protocol;
  /** `MORE_PORTS`: more ports of the same backend; empty when none. */
  morePorts: PortMapping[];
  /**
   * `UDP_FLOW_TIMEOUT`: seconds a UDP client's flow lasts without a datagram either way.
   * @default 60
   */
  udpFlowTimeout: number;
  /** `ON_EVENT_CMD`: run on each event of the service; `undefined` means none. */
  onEventCmd?: CommandSpec;
  /** `WEBHOOK_URL`: where each event of the service is POSTed; `undefined` means nowhere. */
  webhookUrl?: string;
  /** `DEPENDS_ON`: the services this one needs, woken first, in order; empty when none. */
  dependsOn: string[];
  /** `KEEP_AWAKE`: windows when the service stays awake; empty when none. */
  keepAwake: KeepAwakeWindow[];
  /** `TIME_ZONE`: the zone of `keepAwake`; `undefined` means the system's. */
  timeZone?: string;
  /** `MIN_AWAKE_TIME`: seconds a woken service stays awake at least; `undefined` means none. */
  minAwakeTime?: number;
  /** `COST_PER_HOUR`: what an hour awake costs, for the dashboard; `undefined` means not shown. */
  costPerHour?: { amount: number; currency: string };
  /**
   * `FORWARD`: who carries an awake service's connections, sleepingd (`proxy`) or the
   * kernel's nftables rules (`kernel`).
   * @default "proxy"
   */
  forward: "proxy" | "kernel";
  /** Where FORWARD was set, when it was: the line `check` names for what the kernel path needs. */
  forwardSource?: Location;
  /**
   * `MASQUERADE`: with FORWARD=kernel, whether the backend sees this host's address (`yes`),
   * the client's (`no`), or `auto` (no when the backend's network is directly attached).
   * @default "auto"
   */
  masquerade: "auto" | "yes" | "no";
  /**
   * `HOSTNAMES`: the name patterns the service answers to on a port shared by
   * name (`app.example.com`, `*.example.com`, `*`); `undefined` when the port is its own.
   */
  hostnames?: string[];
  /** `WAITING_PAGE` and its settings: the page browsers get while they wait; `undefined` means off. */
  waitingPage?: WaitingPageConfig;
}

/** The waiting page of a service (`WAITING_PAGE=yes`). */
export interface WaitingPageConfig {
  /** `WAITING_PAGE_AFTER`: seconds a browser waits before it gets the page. */
  after: number;
  /** `WAITING_PAGE_FILE`: the page of one's own, read with the configuration; `undefined`: sleepingd's. */
  file?: { path: string; text: string };
}

/** Settings that belong to the daemon as a whole, read from the global section. */
export interface GlobalConfig {
  /**
   * `VARRUN_PATH`: folder for the pidfile, state and control socket.
   * @default "/var/run/sleepingd" (for a user other than root who cannot write it,
   * `$XDG_RUNTIME_DIR/sleepingd`: see `folders.ts`)
   */
  varrunPath: string;
  /**
   * `SHUTDOWN_GRACE`: seconds open connections may go on after a stop was asked for.
   * @default 10
   */
  shutdownGrace: number;
  /**
   * `LOG_FORMAT`: `text` for people, `json` for log collectors.
   * @default "text"
   */
  logFormat: "text" | "json";
  /** `LOG_FILE`: file the daemon appends its log to; `undefined` means stderr. */
  logFile?: string;
  /**
   * `LOG_MAX_SIZE`: bytes past which the log file is rotated; 0 means never.
   * @default 4 MiB
   */
  logMaxSize: number;
  /**
   * `LOG_MAX_FILES`: log files kept when it rotates, the one written included, 1 or more.
   * @default 2
   */
  logMaxFiles: number;
  /**
   * `STATE_PATH`: folder for the event log, which outlives a restart.
   * @default "/var/lib/sleepingd"
   */
  statePath: string;
  /** Where `VARRUN_PATH` is set; undefined when it is left to the default. */
  varrunPathSource?: Location;
  /** Where `STATE_PATH` is set; undefined when it is left to the default. */
  statePathSource?: Location;
  /** `ETCD_ENDPOINTS`: etcd's URLs, when instances coordinate; `undefined` means alone. */
  etcdEndpoints?: string[];
  /**
   * `CLUSTER_NAME`: the name instances coordinate under.
   * @default "sleepingd"
   */
  clusterName: string;
  /** `ETCD_CA_FILE`: PEM file of the authorities that sign etcd's certificate. */
  etcdCaFile?: string;
  /** `ETCD_CERT_FILE` and `ETCD_KEY_FILE`: the client certificate shown to etcd, and its key. */
  etcdClientCert?: { certFile: string; keyFile: string };
  /** `ETCD_USER` and `ETCD_PASSWORD_FILE`: the etcd user, and the file of its password. */
  etcdUser?: { name: string; passwordFile: string };
  /** `API_TOKEN_FILE`: the file with the HTTP API's token; `undefined` means the API is off. */
  apiTokenFile?: string;
  /** `METRICS_HOSTS`: host names requests to METRICS_ADDRESS may name; `undefined` when none. */
  metricsHosts?: string[];
  /** `METRICS_ADDRESS`: where the dashboard, `/metrics`, `/healthz` and `/api/` are served; `undefined` means off. */
  metricsAddress?: { hostname: string; port: number };
  /** `MAX_WAKES_PER_HOUR_TOTAL`: wakes of all services in any hour; `undefined` means no limit. */
  maxWakesPerHourTotal?: number;
  /** `MAX_CONNECTIONS_TOTAL`: connections of all services at once; `undefined`: the fd limit's. */
  maxConnectionsTotal?: number;
  /** `MAX_UDP_FLOWS_TOTAL`: UDP flows of all services at once; `undefined`: the fd limit's share. */
  maxUdpFlowsTotal?: number;
  /** `MAX_HELD_BYTES_TOTAL`: bytes kept for clients; `undefined` means the default, 64 MiB. */
  maxHeldBytesTotal?: number;
  /**
   * `HOSTNAME_TIMEOUT`: seconds a client of a port routed by name has to send its first bytes.
   * @default 10
   */
  hostnameTimeout: number;
}

/** A problem found in the configuration. */
export interface ConfigIssue {
  /** Where it was found. */
  location: Location;
  /** The key concerned, when there is one. */
  key?: string;
  /** Sentence-case text without `file:line`, e.g. `Cannot read "PORT": ...`. */
  message: string;
}

/** The whole validated configuration. */
export interface Config {
  /** Files that were read, in the order they were read. */
  files: string[];
  /** Daemon-wide settings. */
  global: GlobalConfig;
  /** Active services, in the order their sections appeared. */
  services: ServiceConfig[];
  /** Names of the sections with `ACTIVE=no`. */
  inactive: string[];
  /** Warnings that do not stop the configuration from being used (e.g. an unknown key). */
  warnings: ConfigIssue[];
}
