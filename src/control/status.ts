/**
 * The daemon's status: a JSON-ready snapshot, and its text form.
 *
 * @module
 */

import type { InstanceInfo } from "../cluster/cluster.ts";
import { formatPortMapping, listenPorts } from "../config/ports.ts";
import { formatTarget } from "../net/address.ts";
import type { Service } from "../service/service.ts";
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
  /** Its services, in configuration order. */
  services: ServiceStatus[];
}

/** A snapshot of one service. */
function serviceStatus(service: Service): ServiceStatus {
  const { stats, config, target } = service;
  return {
    name: config.name,
    port: config.port,
    ports: listenPorts(config).map(formatPortMapping),
    state: service.state,
    stateSince: new Date(service.stateSince).toISOString(),
    keptAwakeUntil: service.keptAwakeUntil ? new Date(service.keptAwakeUntil).toISOString() : null,
    awakeBecause: service.awakeBecause() ?? null,
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

/** A snapshot of the daemon. */
export function daemonStatus(
  services: readonly Service[],
  startedAt: Date,
  configFiles: string[],
  actions = false,
  instances?: InstanceInfo[],
): DaemonStatus {
  return {
    pid: Deno.pid,
    version: VERSION,
    startedAt: startedAt.toISOString(),
    configFiles,
    actions,
    ...(instances ? { instances } : {}),
    services: services.map(serviceStatus),
  };
}

/**
 * The seed's status lines, `NAME (port N) running`, each followed by the
 * service's state, target, connections, wakes and last activity.
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
      `state ${service.state}` + (service.awakeBecause ? ` (${service.awakeBecause})` : ""),
      service.target ? `target ${service.target}` : undefined,
      service.keptAwakeUntil && !service.awakeBecause
        ? `kept awake until ${service.keptAwakeUntil}`
        : undefined,
      service.ports.length > 1 || udp ? `ports ${service.ports.join(" ")}` : undefined,
      service.forward === "kernel"
        ? `path ${service.path}${service.pathNote ? ` (${service.pathNote})` : ""}`
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
  }).join("\n");
}

/** A duration in the past, in words: "5s ago", "3m 20s ago", "2h 5m ago". */
function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s ago`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m ago`;
}
