/**
 * The daemon's status: a JSON-ready snapshot, and its text form.
 *
 * @module
 */

import type { InstanceInfo } from "../cluster/cluster.ts";
import { formatPortMapping, listenPorts } from "../config/ports.ts";
import { formatTarget } from "../net/address.ts";
import type { Service } from "../service/service.ts";
import type { SharedPorts } from "../service/shared_ports.ts";
import type { State } from "../service/lifecycle.ts";
import { VERSION } from "../version.ts";

/** One service as `status` shows it. */
export interface ServiceStatus {
  /** Section name. */
  name: string;
  /** Port sleepingd listens on (PORT). */
  port: number;
  /** Every port, PORT first: `2222/tcp`, `8443->443/tcp`, `27015/udp`. */
  ports: string[];
  /** Life-cycle state. */
  state: State;
  /** ISO time the state was entered. */
  stateSince: string;
  /** ISO time until which no idle stop may happen (`sleepingd keep-awake`), or null. */
  keptAwakeUntil: string | null;
  /** Why it is awake: `3 connections`, `schedule Mon-Fri 08:00-18:00 until Mon 18:00`; null asleep. */
  awakeBecause: string | null;
  /**
   * What its wake under way waits for: `waiting for 10.0.0.5:22: 20 s of
   * READY_TIMEOUT 60 s, 3 clients held`; null when no wake is under way.
   */
  wakeProgress: string | null;
  /** The backend's `host:port` while known, else null. */
  target: string | null;
  /** Connections open now (including those waiting for a wake). */
  openConnections: number;
  /** Connections accepted since the daemon started. */
  totalConnections: number;
  /** Wakes that ended awake. */
  wakes: number;
  /** Wakes that failed. */
  wakeFailures: number;
  /** Stops because the service was idle. */
  idleStops: number;
  /** UDP client flows open now. */
  openFlows: number;
  /** Datagrams from UDP clients to the backend. */
  datagramsIn: number;
  /** Datagrams from the backend to UDP clients. */
  datagramsOut: number;
  /** Datagrams waiting for a wake now. */
  queuedDatagrams: number;
  /** Bytes from clients to the backend. */
  bytesIn: number;
  /** Bytes from the backend to clients. */
  bytesOut: number;
  /** ISO time of the last connection or byte, or null before any. */
  lastActivity: string | null;
  /** FORWARD: who carries the connections while awake, `proxy` or `kernel`. */
  forward: "proxy" | "kernel";
  /** Which carries new connections now: `kernel` while the service's rules are in place. */
  path: "proxy" | "kernel";
  /** With FORWARD=kernel: how the kernel reaches the backend, or why the proxy carries them now. */
  pathNote: string | null;
  /** With FORWARD=kernel: what the kernel forwarded (bytes are of packets, headers included). */
  kernel: KernelStatus | null;
  /** The names it answers to on a port shared by name (HOSTNAMES); empty when the port is its own. */
  hostnames: string[];
  /** Whether browsers get a waiting page while it wakes (WAITING_PAGE). */
  waitingPage: boolean;
  /** Waiting pages served, and pages of a failed wake. */
  pages: { waiting: number; failed: number };
}

/** What the kernel forwarded for a service with FORWARD=kernel. */
export interface KernelStatus {
  /** TCP connections open now (set up, not closing). */
  openConnections: number;
  /** TCP connections forwarded since the daemon started. */
  totalConnections: number;
  /** UDP flows forwarded since the daemon started. */
  totalFlows: number;
  /** Bytes of the packets from clients. */
  bytesIn: number;
  /** Bytes of the packets from the backend. */
  bytesOut: number;
}

/** A port routed by name, as `status` shows it: which names went to which service. */
export interface SharedPortStatus {
  /** Its addresses and port: `[::]:80`. */
  listen: string;
  /** Whether its services share it by name (HOSTNAMES); else it is one WAITING_PAGE service's. */
  byName: boolean;
  /** Each pattern of each service, with the connections it routed. */
  routes: { hostname: string; service: string; connections: number }[];
  /** Connections closed before any service took them, by reason (`unknown_name`, `timeout`...). */
  unrouted: Record<string, number>;
  /** Connections whose first bytes are being read now. */
  reading: number;
}

/** The daemon as `status` shows it. */
export interface DaemonStatus {
  /** The daemon's pid. */
  pid: number;
  /** sleepingd's version. */
  version: string;
  /** ISO time the daemon started. */
  startedAt: string;
  /** Configuration files it read. */
  configFiles: string[];
  /** Whether the HTTP API takes actions (wake, sleep, keep-awake): API_TOKEN_FILE is set. */
  actions: boolean;
  /** With ETCD_ENDPOINTS, the instances of the cluster, this one first. */
  instances?: InstanceInfo[];
  /** The ports routed by name (HOSTNAMES, WAITING_PAGE), when there are any. */
  sharedPorts?: SharedPortStatus[];
  /** Its services, in configuration order. */
  services: ServiceStatus[];
  /**
   * What the daemon warned of at its start, or at its last reload since, one
   * line each (`FILE:LINE: message` where there is a place). Absent until its
   * start is done: every service listens.
   */
  warnings?: string[];
}

/** A snapshot of one service. */
function serviceStatus(service: Service): ServiceStatus {
  const { stats, config, target, whyAwake } = service;
  return {
    name: config.name,
    port: config.port,
    ports: listenPorts(config).map(formatPortMapping),
    state: service.state,
    stateSince: new Date(service.stateSince).toISOString(),
    keptAwakeUntil: whyAwake.keptAwakeUntil
      ? new Date(whyAwake.keptAwakeUntil).toISOString()
      : null,
    awakeBecause: whyAwake.describe() ?? null,
    wakeProgress: service.wakeProgress() ?? null,
    target: target ? formatTarget(target) : null,
    openConnections: stats.openConnections,
    totalConnections: stats.totalConnections,
    wakes: stats.wakes,
    wakeFailures: stats.wakeFailures,
    idleStops: stats.idleStops,
    openFlows: stats.openFlows,
    datagramsIn: stats.datagramsIn,
    datagramsOut: stats.datagramsOut,
    queuedDatagrams: stats.queuedDatagrams,
    bytesIn: stats.bytesIn,
    bytesOut: stats.bytesOut,
    lastActivity: stats.lastActivity ? new Date(stats.lastActivity).toISOString() : null,
    hostnames: config.hostnames ?? [],
    waitingPage: config.waitingPage !== undefined,
    pages: { waiting: stats.waitingPages, failed: stats.errorPages },
    ...pathStatus(service),
  };
}

/** Which path carries the service, and what the kernel forwarded for it. */
function pathStatus(
  service: Service,
): Pick<ServiceStatus, "forward" | "path" | "pathNote" | "kernel"> {
  const { stats, config } = service;
  const { path, note } = service.path;
  const kernel = config.forward === "kernel" || stats.kernelConnectionsTotal > 0;
  return {
    forward: config.forward,
    path,
    pathNote: config.forward === "kernel" ? note : null,
    kernel: kernel
      ? {
        openConnections: stats.kernelConnections,
        totalConnections: stats.kernelConnectionsTotal,
        totalFlows: stats.kernelFlowsTotal,
        bytesIn: stats.kernelBytesIn,
        bytesOut: stats.kernelBytesOut,
      }
      : null,
  };
}

/** What each port routed by name routed, pattern by pattern. */
function sharedPortStatus(shared: SharedPorts): SharedPortStatus[] {
  return shared.routers.map((router) => {
    const routed = shared.counts.routed.get(router.listen);
    return {
      listen: router.listen,
      byName: router.patterns.some(({ service }) => service.config.hostnames !== undefined),
      routes: router.patterns.flatMap(({ service, patterns }) =>
        patterns.map((hostname) => ({
          hostname,
          service: service.config.name,
          connections: routed?.get(`${hostname} ${service.config.name}`) ?? 0,
        }))
      ),
      unrouted: Object.fromEntries(shared.counts.unrouted.get(router.listen) ?? []),
      reading: router.reading,
    };
  });
}

/** A snapshot of the daemon. */
export function daemonStatus(
  services: readonly Service[],
  startedAt: Date,
  configFiles: string[],
  actions = false,
  instances?: InstanceInfo[],
  warnings?: string[],
  shared?: SharedPorts,
): DaemonStatus {
  const sharedPorts = shared ? sharedPortStatus(shared) : [];
  return {
    pid: Deno.pid,
    version: VERSION,
    startedAt: startedAt.toISOString(),
    configFiles,
    actions,
    ...(instances ? { instances } : {}),
    ...(sharedPorts.length > 0 ? { sharedPorts } : {}),
    services: services.map(serviceStatus),
    ...(warnings ? { warnings } : {}),
  };
}

/**
 * The seed's status lines, `NAME (port N) running`, each followed by the
 * service's state, target, connections, wakes and last activity; then the
 * ports routed by name, a line each; then what the daemon warned of at its
 * start or last reload, a `warning: ` line each.
 */
export function formatStatus(status: DaemonStatus, now = Date.now()): string {
  if (status.services.length === 0) return "no service is active";
  const instances = status.instances
    ? `instances: ${
      status.instances.map((one, index) => index === 0 ? `${one.id} (this one)` : one.id).join(", ")
    }\n`
    : "";
  return instances + status.services.map((service) => {
    const udp = service.ports.some((port) => port.endsWith("/udp"));
    const details = [
      `state ${service.state}` +
      (service.awakeBecause
        ? ` (${service.awakeBecause})`
        : service.wakeProgress
        ? ` (${service.wakeProgress})`
        : ""),
      service.target ? `target ${service.target}` : undefined,
      service.keptAwakeUntil && !service.awakeBecause
        ? `kept awake until ${service.keptAwakeUntil}`
        : undefined,
      service.ports.length > 1 || udp ? `ports ${service.ports.join(" ")}` : undefined,
      service.forward === "kernel"
        ? `path ${service.path}${service.pathNote ? ` (${service.pathNote})` : ""}`
        : undefined,
      service.hostnames?.length ? `names ${service.hostnames.join(" ")}` : undefined,
      service.waitingPage
        ? `waiting page (${service.pages.waiting} served, ${service.pages.failed} of a failed wake)`
        : undefined,
      `${service.openConnections} open / ${service.totalConnections} total connections`,
      service.kernel
        ? `through the kernel ${service.kernel.openConnections} open / ` +
          `${service.kernel.totalConnections} total connections, ${service.kernel.bytesIn} bytes in, ` +
          `${service.kernel.bytesOut} out`
        : undefined,
      udp
        ? `${service.openFlows} UDP flow${service.openFlows === 1 ? "" : "s"}, ` +
          `${service.datagramsIn} datagrams in, ${service.datagramsOut} out`
        : undefined,
      `${service.wakes} wake${service.wakes === 1 ? "" : "s"}` +
      (service.wakeFailures ? ` (${service.wakeFailures} failed)` : ""),
      service.lastActivity
        ? `last activity ${ago(now - Date.parse(service.lastActivity))}`
        : "no activity yet",
    ].filter(Boolean).join(", ");
    return `${service.name} (port ${service.port}) running\n  ${details}`;
  }).join("\n") + (status.sharedPorts ?? []).map(formatSharedPort).join("") +
    (status.warnings ?? []).map((warning) => `\nwarning: ${warning}`).join("");
}

/**
 * A port routed by name: `port [::]:80 by name: app.example.com -> web (12),
 * * -> docs (1); unrouted: 3 unknown_name, 1 timeout`, on a line of its own;
 * or a WAITING_PAGE service's own: `port [::]:8080 reads request heads: * -> web (5)`.
 */
function formatSharedPort(port: SharedPortStatus): string {
  const routes = port.routes
    .map((route) => `${route.hostname} -> ${route.service} (${route.connections})`)
    .join(", ");
  const unrouted = Object.entries(port.unrouted).map(([reason, count]) => `${count} ${reason}`);
  return `\nport ${port.listen} ${port.byName ? "by name" : "reads request heads"}: ${routes}` +
    (unrouted.length > 0 ? `; unrouted: ${unrouted.join(", ")}` : "");
}

/** A duration in the past, in words: "5s ago", "3m 20s ago", "2h 5m ago". */
function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s ago`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m ago`;
}
