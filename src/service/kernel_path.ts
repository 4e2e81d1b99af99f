/**
 * A service with FORWARD=kernel: while it is awake, the kernel forwards its
 * new connections (its rules in the daemon's table), and this module watches
 * them through the table's counters and conntrack — activity and open
 * connections for the idle monitor, refusals for metrics, a backend that is
 * gone — and takes the rules out whenever the service leaves `awake`
 * (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import type { Flow } from "../kernel/conntrack.ts";
import type { KernelForwarder, Reading } from "../kernel/forwarder.ts";
import type { Count } from "../kernel/nft.ts";
import { planRules } from "../kernel/plan.ts";
import type { CounterKind, ServiceRules } from "../kernel/rules.ts";
import { log } from "../log.ts";
import { formatTarget, type Target } from "../net/address.ts";
import { sleep } from "../timers.ts";
import type { Change, Lifecycle } from "./lifecycle.ts";
import type { Recorder, StopReason } from "./recorder.ts";
import type { ServiceStats } from "./stats.ts";

/** How often the kernel's open connections are read while a stop waits for them to end. */
const DRAIN_POLL_MS = 250;

/** What the kernel path shares with every service: the daemon's table and SHUTDOWN_GRACE. */
export interface KernelShared {
  /** The daemon's table. */
  forwarder: KernelForwarder;
  /** SHUTDOWN_GRACE now: how long a stop waits for the kernel's connections to end. */
  shutdownGrace(): number;
}

/** What a service's kernel path uses of the service. */
export interface KernelPathParts {
  /** The daemon's table and SHUTDOWN_GRACE. */
  shared: KernelShared;
  /** The configuration now in force. */
  config(): ServiceConfig;
  /** The service's life cycle: read, and left for `asleep` when the backend is gone. */
  life: Lifecycle;
  /** The counters the kernel's connections and bytes add to. */
  stats: ServiceStats;
  /** Where refusals and dropped datagrams are counted. */
  recorder: Recorder;
  /** Asks CHECK_CMD about the backend at `target`: true up, false down, undefined no CHECK_CMD. */
  check(target: Target): Promise<boolean | undefined>;
}

/** Which path carries a service's new connections now, as status shows it. */
export interface PathStatus {
  /** `kernel` while the service's rules send its new connections to the backend, else `proxy`. */
  path: "kernel" | "proxy";
  /** How the kernel reaches the backend, or why the service is on the proxy path. */
  note: string;
}

const ZERO: Count = { packets: 0, bytes: 0 };

/** The kernel path of one service. */
export class KernelPath {
  readonly #parts: KernelPathParts;
  readonly #log = log("kernel");
  /** Begin and end, one after the other. */
  #steps: Promise<void> = Promise.resolve();
  /** The rules in the table now. */
  #rules?: ServiceRules;
  /** Whether new connections reach the backend through the kernel now. */
  #carrying = false;
  #note = "asleep: the next connection wakes it through sleepingd";
  /** How the kernel reaches the backend, while the rules are in: the note when it forwards. */
  #howNote = "";
  /** The counters at the last reading, for what each reading adds. */
  #last?: Record<CounterKind, Count>;
  /** When bytes last moved through the kernel. */
  #movedAt = 0;
  /** What the kernel path had forwarded when it began, for the line that ends it. */
  #began?: { at: number; connections: number; bytesIn: number; bytesOut: number };
  /** When each unanswered connection was first seen, by conntrack id. */
  #unanswered = new Map<string, number>();
  /** Said once a wake: connections go unanswered and no CHECK_CMD can tell. */
  #warnedUnanswered = false;
  /** When CHECK_CMD last ran for unanswered connections, and whether it runs now. */
  #lastCheck = 0;
  #checking = false;
  /** An adopted backend waits for a client's own connection to prove it up. */
  #awaitingProof = false;

  /**
   * Creates the kernel path of a service; nothing happens until it is awake,
   * but for the table, made at once for a service on the kernel path (see
   * KernelForwarder.prepare): at start it is there already, after a reload
   * that adds the service it comes before the service's first wake.
   */
  constructor(parts: KernelPathParts) {
    this.#parts = parts;
    if (parts.config().forward === "kernel") this.#step(() => parts.shared.forwarder.prepare());
  }

  /** Which path carries new connections now, and why. */
  get status(): PathStatus {
    return { path: this.#carrying ? "kernel" : "proxy", note: this.#note };
  }

  /** Takes in a change of state: awake puts the rules in, leaving awake takes them out. */
  changed(change: Change): void {
    if (change.to === "awake") {
      if (this.#parts.config().forward !== "kernel") return;
      // Adopted (after a crash, or from another instance): no proof yet that it runs. Rules
      // to a dead backend would refuse clients; a client's own connection proves it first.
      if (change.from === "asleep" && this.#parts.config().protocol === "tcp") {
        this.#awaitingProof = true;
        this.#note = "adopted: the first client's connection through sleepingd proves it up";
        return;
      }
      const target = change.target!;
      this.#step(() => this.#begin(target));
    } else if (change.from === "awake") {
      this.#awaitingProof = false;
      this.#step(() => this.#end(change.stopReason ?? "gone"));
    } else if (change.to === "asleep") {
      this.#note = "asleep: the next connection wakes it through sleepingd";
    }
  }

  /** Whether an adopted backend waits for a client's connection before the kernel forwards. */
  get waitsForProof(): boolean {
    return this.#awaitingProof;
  }

  /** A client's connection through sleepingd reached the adopted backend: the kernel may forward. */
  proven(): void {
    const { life } = this.#parts;
    if (!this.#awaitingProof || life.state !== "awake") return;
    this.#awaitingProof = false;
    const target = life.target!;
    this.#step(() => this.#begin(target));
  }

  /** Resolves once every begin and end asked for is done: before STOP_CMD, no rule is left. */
  settled(): Promise<void> {
    return this.#steps;
  }

  /**
   * Takes a reload's settings: an awake service's rules are made anew, or
   * taken out; a service that a reload puts on the kernel path gets the table
   * made at once (see KernelForwarder.prepare), before its next wake.
   */
  reconfigure(): void {
    this.#step(async () => {
      const { life } = this.#parts;
      if (this.#parts.config().forward === "kernel") await this.#parts.shared.forwarder.prepare();
      if (life.state !== "awake" || this.#awaitingProof) return;
      if (this.#parts.config().forward !== "kernel") {
        if (this.#rules) await this.#end("requested", "FORWARD is proxy now");
        this.#note = "FORWARD=proxy";
        return;
      }
      await this.#begin(life.target!);
    });
  }

  /** Stops new connections from going through the kernel; those it forwards go on. */
  stopForwarding(): void {
    this.#step(async () => {
      if (!this.#rules || !this.#carrying) return;
      await this.#parts.shared.forwarder.withdraw(this.#rules.id);
      this.#carrying = false;
      this.#note = "closing: new connections are not forwarded";
    });
  }

  /** Lets the kernel forward new connections again after an idle stop that did not happen. */
  resume(): void {
    this.#step(async () => {
      const { life, shared } = this.#parts;
      if (!this.#rules || this.#carrying || life.state !== "awake") return;
      await shared.forwarder.restore(this.#rules.id);
      this.#carrying = true;
      this.#note = this.#howNote;
    });
  }

  /**
   * The last word before an idle stop: new connections stop going through
   * the kernel, and the kernel's connections are counted again; when some
   * opened meanwhile, or bytes moved, they come back and this says why the
   * service stays awake.
   */
  beforeIdleStop(): Promise<string | undefined> {
    let busy: string | undefined;
    return this.#step(async () => {
      if (!this.#rules || !this.#carrying) return;
      const { forwarder } = this.#parts.shared;
      const startedAt = Date.now();
      await forwarder.withdraw(this.#rules.id);
      this.#carrying = false;
      this.#note = "stopping: new connections reach sleepingd";
      const reading = await forwarder.readNow(this.#rules.id);
      const open = reading?.established?.length ?? 0;
      if (open === 0 && this.#movedAt < startedAt) return;
      busy = open > 0
        ? `${open} connection${open === 1 ? "" : "s"} through the kernel`
        : "traffic through the kernel";
      await forwarder.restore(this.#rules.id);
      this.#carrying = true;
      this.#note = this.#howNote;
    }).then(() => busy);
  }

  #step(step: () => Promise<void>): Promise<void> {
    const name = this.#parts.config().name;
    this.#steps = this.#steps.then(step).catch((error) => {
      this.#log.error("[{service}] the kernel path: {error}", {
        service: name,
        error: (error as Error).message,
      });
    });
    return this.#steps;
  }

  /** Puts the service's rules in for the backend at `target`, or says why it stays on the proxy. */
  async #begin(target: Target) {
    const { shared, life, config, stats } = this.#parts;
    const service = config();
    if (service.forward !== "kernel" || life.state !== "awake" || life.target !== target) return;
    const id = shared.forwarder.idOf(service.name);
    const plan = planRules(service, target, { id, mark: shared.forwarder.markOf(id) });
    if ("why" in plan) {
      if (this.#rules) await this.#end("requested", plan.why);
      this.#note = `on the proxy path for this wake: ${plan.why}`;
      this.#log.warn("[{service}] stays on the proxy path for this wake: {why}", {
        service: service.name,
        why: plan.why,
      });
      return;
    }
    try {
      await shared.forwarder.install(plan.rules, (reading) => this.#observe(reading));
    } catch (error) {
      this.#note = `on the proxy path: the rules could not be put in: ${(error as Error).message}`;
      this.#log.error("[{service}] the kernel cannot forward (sleepingd does): {error}", {
        service: service.name,
        error: (error as Error).message,
      });
      return;
    }
    const fresh = this.#rules === undefined;
    this.#rules = plan.rules;
    this.#carrying = true;
    this.#note = this.#howNote = `to ${formatTarget(target)}, ${plan.how}`;
    if (!fresh) return;
    this.#last = undefined;
    this.#unanswered.clear();
    this.#warnedUnanswered = false;
    this.#began = {
      at: Date.now(),
      connections: stats.kernelConnectionsTotal,
      bytesIn: stats.kernelBytesIn,
      bytesOut: stats.kernelBytesOut,
    };
    const ports = plan.rules.ports.map((port) =>
      `${port.listen}${port.backend === port.listen ? "" : `->${port.backend}`}/${port.protocol}`
    ).join(" ");
    this.#log.info("[{service}] the kernel forwards new connections ({ports}) to {target}: {how}", {
      service: service.name,
      ports,
      target: formatTarget(target),
      how: plan.how,
    });
  }

  /**
   * Takes the rules out. For a stop asked for (shutdown, removal, sleep),
   * new connections stop first and those the kernel forwards get up to
   * SHUTDOWN_GRACE to end; an idle stop has withdrawn them already, and a
   * backend that is gone has nothing to wait for.
   */
  async #end(reason: StopReason, why: string = reason) {
    const rules = this.#rules;
    if (!rules) return;
    const { shared, config, stats } = this.#parts;
    const name = config().name;
    this.#carrying = false;
    try {
      if (reason !== "idle" && reason !== "gone") {
        await shared.forwarder.withdraw(rules.id);
        await this.#drain(rules.id, name);
      }
      await shared.forwarder.readNow(rules.id);
    } finally {
      // Whatever failed before, the rules go.
      this.#rules = undefined;
      await shared.forwarder.remove(rules.id);
    }
    stats.kernelConnections = 0;
    this.#note = `on the proxy path since ${why}`;
    const began = this.#began ?? { at: Date.now(), connections: 0, bytesIn: 0, bytesOut: 0 };
    this.#log.info(
      "[{service}] the kernel stopped forwarding ({why}): {connections} connections, " +
        "{bytesIn} bytes in, {bytesOut} bytes out in {seconds}s",
      {
        service: name,
        why,
        connections: stats.kernelConnectionsTotal - began.connections,
        bytesIn: stats.kernelBytesIn - began.bytesIn,
        bytesOut: stats.kernelBytesOut - began.bytesOut,
        seconds: ((Date.now() - began.at) / 1000).toFixed(0),
      },
    );
  }

  /** Waits up to SHUTDOWN_GRACE for the kernel's connections of the service to end. */
  async #drain(id: number, name: string) {
    const graceMs = this.#parts.shared.shutdownGrace() * 1000;
    const deadline = Date.now() + graceMs;
    let said = false;
    while (true) {
      const reading = await this.#parts.shared.forwarder.readNow(id);
      const open = reading?.established?.length ?? 0;
      if (open === 0) return;
      if (Date.now() >= deadline) {
        this.#log.warn(
          "[{service}] {count} connection(s) through the kernel still open after {grace}s",
          {
            service: name,
            count: open,
            grace: graceMs / 1000,
          },
        );
        return;
      }
      if (!said) {
        this.#log.info(
          "[{service}] waiting up to {grace}s for {count} connection(s) through the kernel",
          {
            service: name,
            grace: graceMs / 1000,
            count: open,
          },
        );
        said = true;
      }
      await sleep(DRAIN_POLL_MS);
    }
  }

  /** One reading of the service's counters and connections. */
  #observe(reading: Reading) {
    const { stats, config } = this.#parts;
    const name = config().name;
    const last = this.#last;
    this.#last = reading.counters;
    const added = (kind: CounterKind, what: keyof Count) =>
      Math.max(0, reading.counters[kind][what] - (last?.[kind] ?? ZERO)[what]);
    const now = Date.now();
    const bytesIn = added("in", "bytes");
    const bytesOut = added("out", "bytes");
    const refusedMax = added("max", "packets");
    const refusedSource = added("source", "packets");
    const newConnections = added("tcp", "packets");
    stats.kernelBytesIn += bytesIn;
    stats.kernelBytesOut += bytesOut;
    stats.kernelConnectionsTotal += Math.max(0, newConnections - refusedMax - refusedSource);
    stats.kernelFlowsTotal += added("udp", "packets");
    const open = reading.established?.length ?? stats.kernelConnections;
    if (bytesIn + bytesOut > 0 || newConnections > 0 || open !== stats.kernelConnections) {
      stats.lastActivity = now;
      if (bytesIn + bytesOut > 0) this.#movedAt = now;
    }
    stats.kernelConnections = open;
    this.#refused(name, refusedMax, refusedSource, added("udp_refused", "packets"));
    if (added("gone", "packets") > 0) {
      this.#gone(`it refused a connection the kernel forwarded to ${this.#targetText()}`);
      return;
    }
    if (reading.unanswered) this.#watchUnanswered(reading.unanswered, now);
  }

  /** Counts the kernel's refusals as sleepingd counts its own, with one line for them. */
  #refused(name: string, max: number, source: number, datagrams: number) {
    const { recorder, config } = this.#parts;
    for (let i = 0; i < max; i++) recorder.refused(name, "max_connections");
    for (let i = 0; i < source; i++) recorder.refused(name, "max_connections_per_source");
    if (datagrams > 0) recorder.dropped(name, "refused", datagrams);
    if (max + source === 0) return;
    const { maxConnections, maxConnectionsPerSource } = config();
    const reasons = [
      max ? `${max} at MAX_CONNECTIONS (${maxConnections})` : undefined,
      source ? `${source} at MAX_CONNECTIONS_PER_SOURCE (${maxConnectionsPerSource})` : undefined,
    ].filter(Boolean).join(", ");
    this.#log.warn("[{service}] the kernel refused {count} connection(s): {reasons}", {
      service: name,
      count: max + source,
      reasons,
    });
  }

  /**
   * Connections whose first packet got no answer for CONNECT_TIMEOUT: with
   * CHECK_CMD, it says whether the backend is gone; without, the service
   * stays awake (as on the proxy path, only a refusal says gone), said once a wake.
   */
  #watchUnanswered(unanswered: Flow[], now: number) {
    const seen = new Map<string, number>();
    for (const flow of unanswered) seen.set(flow.id, this.#unanswered.get(flow.id) ?? now);
    this.#unanswered = seen;
    const timeoutMs = this.#parts.config().connectTimeout * 1000;
    const stale = [...seen.values()].some((first) => now - first >= timeoutMs);
    if (!stale) return;
    const { config, check, life } = this.#parts;
    const name = config().name;
    const why = `connections the kernel forwarded to ${this.#targetText()} got no answer for ` +
      `CONNECT_TIMEOUT (${config().connectTimeout}s)`;
    if (!config().checkCmd) {
      if (this.#warnedUnanswered) return;
      this.#warnedUnanswered = true;
      this.#log.warn(
        "[{service}] {why}: the service stays awake (only a refused connection or CHECK_CMD " +
          "says the backend is gone; another table's forward chain may drop them: see check)",
        { service: name, why },
      );
      return;
    }
    if (this.#checking || now - this.#lastCheck < timeoutMs) return;
    this.#checking = true;
    this.#lastCheck = now;
    const target = life.target;
    if (!target) return;
    check(target).then((up) => {
      if (up === false) this.#gone(`CHECK_CMD says it is down (${why})`);
    }).catch(() => {}).finally(() => this.#checking = false);
  }

  /** The backend is gone: the service goes back to sleep, and its rules go at once. */
  #gone(why: string) {
    const { life } = this.#parts;
    const target = life.target;
    if (life.state !== "awake" || !target || this.#rules?.target === undefined) return;
    life.tryTransition("awake", {
      to: "asleep",
      reason: `${formatTarget(target)} is gone: ${why}`,
    });
  }

  #targetText(): string {
    const target = this.#parts.life.target;
    return target ? formatTarget(target) : "the backend";
  }
}
