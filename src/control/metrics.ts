/**
 * Prometheus metrics: a {@linkcode Recorder} that keeps counters and
 * histograms of service events, and the text exposition format
 * (`control/http.ts` serves it).
 *
 * @module
 */

import { formatPortMapping, listenPorts } from "../config/ports.ts";
import { formatTarget } from "../net/address.ts";
import { type Budget, DESCRIPTOR_KINDS, HELD_KINDS } from "../net/budget.ts";
import { forwardBuffers } from "../net/forward.ts";
import type { RefusalReason } from "../service/admission.ts";
import type { Action } from "../service/commands.ts";
import type { State } from "../service/lifecycle.ts";
import type { DropReason, Recorder, StopReason } from "../service/recorder.ts";
import type { Service } from "../service/service.ts";
import type { SharedPorts } from "../service/shared_ports.ts";

/** Histogram buckets in seconds: from a local process (0.1 s) to a cloud VM (5 min). */
const WAKE_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Histogram buckets in seconds for commands, which are often quick. */
const COMMAND_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const STATES: readonly State[] = ["asleep", "starting", "awake", "stopping"];

/** A histogram: cumulative bucket counts, sum and count. */
class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number) {
    this.sum += value;
    this.count++;
    this.buckets.forEach((bound, index) => {
      if (value <= bound) this.counts[index]++;
    });
  }
}

/** Counters and histograms of service events, rendered in Prometheus text format. */
export class Metrics implements Recorder {
  #wakeDurations = new Map<string, Histogram>();
  #commandDurations = new Map<string, Histogram>();
  #commandExits = new Map<string, number>();
  #stops = new Map<string, number>();
  #refusals = new Map<string, number>();
  #drops = new Map<string, number>();

  /** Records a wake's outcome and duration. */
  wakeEnded(service: string, ok: boolean, seconds: number) {
    const key = labels({ service, outcome: ok ? "awake" : "failed" });
    getOrCreate(this.#wakeDurations, key, () => new Histogram(WAKE_BUCKETS)).observe(seconds);
  }

  /** Records a command's exit code and duration. */
  commandEnded(service: string, action: Action, code: number, seconds: number) {
    const command = action.toUpperCase() + "_CMD";
    const key = labels({ service, command });
    getOrCreate(this.#commandDurations, key, () => new Histogram(COMMAND_BUCKETS))
      .observe(seconds);
    const exitKey = labels({ service, command, code: String(code) });
    this.#commandExits.set(exitKey, (this.#commandExits.get(exitKey) ?? 0) + 1);
  }

  /** Records a stop and its reason. */
  stopped(service: string, reason: StopReason) {
    const key = labels({ service, reason });
    this.#stops.set(key, (this.#stops.get(key) ?? 0) + 1);
  }

  /** Records a client refused by a limit. */
  refused(service: string, reason: RefusalReason) {
    const key = labels({ service, reason });
    this.#refusals.set(key, (this.#refusals.get(key) ?? 0) + 1);
  }

  /** Records UDP datagrams dropped. */
  dropped(service: string, reason: DropReason, count: number) {
    const key = labels({ service, reason });
    this.#drops.set(key, (this.#drops.get(key) ?? 0) + count);
  }

  /**
   * The whole exposition: service gauges and counters read now, plus recorded
   * events, what the ports routed by name (`shared`) routed, and what
   * `budget` holds, when there are.
   */
  render(
    services: readonly Service[],
    { shared, budget }: { shared?: SharedPorts; budget?: Budget } = {},
  ): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const perService = (name: string, type: string, help: string, read: (s: Service) => number) => {
      family(name, type, help);
      for (const service of services) {
        out.push(`${name}${labels({ service: service.config.name })} ${read(service)}`);
      }
    };
    const byDirection = (
      name: string,
      type: string,
      help: string,
      read: (s: Service) => Record<"in" | "out", number>,
    ) => {
      family(name, type, help);
      for (const service of services) {
        for (const [direction, value] of Object.entries(read(service))) {
          out.push(`${name}${labels({ service: service.config.name, direction })} ${value}`);
        }
      }
    };

    family("sleepingd_service_state", "gauge", "1 for the state each service is in, else 0.");
    for (const service of services) {
      for (const state of STATES) {
        const value = service.state === state ? 1 : 0;
        out.push(
          `sleepingd_service_state${labels({ service: service.config.name, state })} ${value}`,
        );
      }
    }
    family(
      "sleepingd_service_info",
      "gauge",
      "The port each service listens on (PORT, and all its ports), its target and the names " +
        "it answers to on a port shared by name (HOSTNAMES).",
    );
    for (const service of services) {
      const target = service.target ? formatTarget(service.target) : "";
      const info = {
        service: service.config.name,
        port: String(service.config.port),
        ports: listenPorts(service.config).map(formatPortMapping).join(" "),
        target,
        hostnames: (service.config.hostnames ?? []).join(" "),
      };
      out.push(`sleepingd_service_info${labels(info)} 1`);
    }
    perService("sleepingd_wakes_total", "counter", "Wakes that ended awake.", (s) => s.stats.wakes);
    perService(
      "sleepingd_wake_failures_total",
      "counter",
      "Wakes that failed.",
      (s) => s.stats.wakeFailures,
    );
    perService(
      "sleepingd_connections_open",
      "gauge",
      "Connections open now, including those waiting for a wake.",
      (s) => s.stats.openConnections,
    );
    perService(
      "sleepingd_connections_total",
      "counter",
      "Connections accepted.",
      (s) => s.stats.totalConnections,
    );
    byDirection("sleepingd_bytes_total", "counter", "Bytes forwarded, by direction.", (s) => ({
      in: s.stats.bytesIn,
      out: s.stats.bytesOut,
    }));
    perService(
      "sleepingd_idle_stops_total",
      "counter",
      "Stops because the service was idle for IDLE_TIME.",
      (s) => s.stats.idleStops,
    );
    perService(
      "sleepingd_last_activity_seconds",
      "gauge",
      "Unix time of the last connection or byte forwarded (0 before any).",
      (s) => s.stats.lastActivity / 1000,
    );

    family(
      "sleepingd_forward_path",
      "gauge",
      "1 for the path that carries each service's new connections now (proxy, or kernel while " +
        "FORWARD=kernel rules are in place), else 0.",
    );
    for (const service of services) {
      for (const path of ["proxy", "kernel"]) {
        const value = service.path.path === path ? 1 : 0;
        out.push(
          `sleepingd_forward_path${labels({ service: service.config.name, path })} ${value}`,
        );
      }
    }
    perService(
      "sleepingd_kernel_connections_open",
      "gauge",
      "FORWARD=kernel: TCP connections the kernel forwards now (conntrack: established).",
      (s) => s.stats.kernelConnections,
    );
    perService(
      "sleepingd_kernel_connections_total",
      "counter",
      "FORWARD=kernel: TCP connections the kernel forwarded.",
      (s) => s.stats.kernelConnectionsTotal,
    );
    perService(
      "sleepingd_kernel_udp_flows_total",
      "counter",
      "FORWARD=kernel: UDP flows the kernel forwarded.",
      (s) => s.stats.kernelFlowsTotal,
    );
    byDirection(
      "sleepingd_kernel_bytes_total",
      "counter",
      "FORWARD=kernel: bytes of the packets the kernel forwarded (headers included), by direction.",
      (s) => ({ in: s.stats.kernelBytesIn, out: s.stats.kernelBytesOut }),
    );
    perService(
      "sleepingd_udp_flows_open",
      "gauge",
      "UDP client flows open now.",
      (s) => s.stats.openFlows,
    );
    byDirection(
      "sleepingd_udp_datagrams_total",
      "counter",
      "UDP datagrams forwarded, by direction.",
      (s) => ({ in: s.stats.datagramsIn, out: s.stats.datagramsOut }),
    );
    perService(
      "sleepingd_udp_queued_datagrams",
      "gauge",
      "UDP datagrams waiting for a wake now.",
      (s) => s.stats.queuedDatagrams,
    );
    family(
      "sleepingd_udp_dropped_total",
      "counter",
      "UDP datagrams dropped, by reason (queue_full, held_bytes, refused, no_backend, " +
        "send_queue_full, send_failed, foreign).",
    );
    for (const [key, value] of this.#drops) out.push(`sleepingd_udp_dropped_total${key} ${value}`);
    family(
      "sleepingd_forward_buffer_bytes",
      "gauge",
      "Bytes of forwarding buffers (small: each direction waits in one; medium, large: " +
        "while data flows), held by connections or pooled for reuse.",
    );
    for (const [size, usage] of Object.entries(forwardBuffers())) {
      for (const state of ["borrowed", "pooled"] as const) {
        const bytes = usage[state] * usage.bytesEach;
        out.push(`sleepingd_forward_buffer_bytes${labels({ size, state })} ${bytes}`);
      }
    }
    family(
      "sleepingd_waiting_pages_total",
      "counter",
      "Pages served to browsers while the service woke (WAITING_PAGE): waiting, or failed.",
    );
    for (const service of services) {
      const { waitingPages, errorPages } = service.stats;
      for (const [page, value] of [["waiting", waitingPages], ["failed", errorPages]] as const) {
        out.push(
          `sleepingd_waiting_pages_total${labels({ service: service.config.name, page })} ${value}`,
        );
      }
    }
    if (shared) renderRoutes(out, family, shared);
    if (budget) renderBudget(out, budget);
    family("sleepingd_stops_total", "counter", "Backend stops, by reason.");
    for (const [key, value] of this.#stops) out.push(`sleepingd_stops_total${key} ${value}`);
    family(
      "sleepingd_refused_total",
      "counter",
      "Clients closed without a backend because of ALLOW/DENY or a limit, by reason.",
    );
    for (const [key, value] of this.#refusals) out.push(`sleepingd_refused_total${key} ${value}`);
    family("sleepingd_wake_duration_seconds", "histogram", "Time from a connection to awake.");
    renderHistograms(out, "sleepingd_wake_duration_seconds", this.#wakeDurations);
    family("sleepingd_command_duration_seconds", "histogram", "Run time of each command.");
    renderHistograms(out, "sleepingd_command_duration_seconds", this.#commandDurations);
    family(
      "sleepingd_command_exits_total",
      "counter",
      "Command runs, by exit code (124 = timeout).",
    );
    for (const [key, value] of this.#commandExits) {
      out.push(`sleepingd_command_exits_total${key} ${value}`);
    }
    return out.join("\n") + "\n";
  }
}

/** The budget's gauges and counters (docs/ARCHITECTURE.md, "Budget"). */
function renderBudget(out: string[], budget: Budget) {
  const usage = budget.usage();
  const { limits } = usage;
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const byKind = (name: string, type: string, help: string, read: (kind: string) => number) => {
    family(name, type, help);
    for (const kind of DESCRIPTOR_KINDS) out.push(`${name}${labels({ kind })} ${read(kind)}`);
  };
  family(
    "sleepingd_budget_descriptors",
    "gauge",
    "File descriptors held for clients now, over every kind.",
  );
  out.push(`sleepingd_budget_descriptors ${usage.descriptors}`);
  family(
    "sleepingd_budget_descriptors_limit",
    "gauge",
    "File descriptors that may be held for clients: what the open file limit leaves after " +
      "the daemon's own and its reserve.",
  );
  out.push(`sleepingd_budget_descriptors_limit ${limits.descriptors}`);
  byKind(
    "sleepingd_budget_open",
    "gauge",
    "Open now, by kind: tcp (connections), udp_flow, http (connections), control (clients).",
    (kind) => usage.open[kind as keyof typeof usage.open],
  );
  byKind(
    "sleepingd_budget_limit",
    "gauge",
    "How many of each kind may be open at once.",
    (kind) => limits.caps[kind as keyof typeof limits.caps].count,
  );
  byKind(
    "sleepingd_budget_refused_total",
    "counter",
    "Refused at once because their kind's cap or the descriptor bound was reached, by kind.",
    (kind) => usage.refused[kind as keyof typeof usage.refused],
  );
  family(
    "sleepingd_held_bytes",
    "gauge",
    "Memory kept for clients now, by what: tcp_held (bytes of clients held while a backend " +
      "wakes), tcp_first_bytes (the buffers reading the first bytes of connections to ports " +
      "shared by name), udp_queued (datagrams waiting for a wake), udp_sending (datagrams " +
      "waiting for their socket).",
  );
  for (const what of HELD_KINDS) {
    out.push(`sleepingd_held_bytes${labels({ what })} ${usage.held[what]}`);
  }
  family("sleepingd_held_bytes_limit", "gauge", "MAX_HELD_BYTES_TOTAL, in bytes.");
  out.push(`sleepingd_held_bytes_limit ${limits.heldBytes}`);
  family(
    "sleepingd_held_bytes_refused_total",
    "counter",
    "Bytes not kept because MAX_HELD_BYTES_TOTAL was reached (a client refused, a datagram " +
      "dropped, a held client read no further).",
  );
  out.push(`sleepingd_held_bytes_refused_total ${usage.heldRefused}`);
}

/**
 * What the ports routed by name did: connections routed, by the pattern that
 * matched (never the name a client sent, which would make a series per
 * name), those closed before any service took them, and those being read.
 */
function renderRoutes(
  out: string[],
  family: (name: string, type: string, help: string) => void,
  shared: SharedPorts,
) {
  family(
    "sleepingd_routed_total",
    "counter",
    "Connections of a port shared by name sent to a service, by the HOSTNAMES pattern matched.",
  );
  for (const [listen, counts] of shared.counts.routed) {
    for (const [key, value] of counts) {
      const space = key.indexOf(" ");
      const hostname = key.slice(0, space);
      const service = key.slice(space + 1);
      out.push(`sleepingd_routed_total${labels({ listen, hostname, service })} ${value}`);
    }
  }
  family(
    "sleepingd_unrouted_total",
    "counter",
    "Connections of a port shared by name closed before any service took them, by reason " +
      "(unknown_name, no_name, not_tls_or_http, malformed, too_long, timeout, client_left, " +
      "max_connections_total, held_bytes).",
  );
  for (const [listen, counts] of shared.counts.unrouted) {
    for (const [reason, value] of counts) {
      out.push(`sleepingd_unrouted_total${labels({ listen, reason })} ${value}`);
    }
  }
  family(
    "sleepingd_first_bytes_reading",
    "gauge",
    "Connections of ports routed by name whose first bytes are being read now.",
  );
  for (const router of shared.routers) {
    out.push(`sleepingd_first_bytes_reading${labels({ listen: router.listen })} ${router.reading}`);
  }
}

function renderHistograms(out: string[], name: string, histograms: Map<string, Histogram>) {
  for (const [key, histogram] of histograms) {
    const inner = key.slice(1, -1);
    histogram.buckets.forEach((bound, index) => {
      out.push(`${name}_bucket{${inner},le="${bound}"} ${histogram.counts[index]}`);
    });
    out.push(`${name}_bucket{${inner},le="+Inf"} ${histogram.count}`);
    out.push(`${name}_sum${key} ${histogram.sum}`);
    out.push(`${name}_count${key} ${histogram.count}`);
  }
}

/** `{a="1",b="2"}` with values escaped as the text format requires. */
function labels(values: Record<string, string>): string {
  const escape = (value: string) =>
    value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
  return `{${Object.entries(values).map(([key, value]) => `${key}="${escape(value)}"`).join(",")}}`;
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, value = create());
  return value;
}
