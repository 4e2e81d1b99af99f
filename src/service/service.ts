/**
 * One service: wakes its backend for the connections that need it (once for
 * all of them), hands out backend connections, and puts the backend back to
 * sleep when it has been idle long enough.
 *
 * @module
 */

import type { CommandSpec, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget, parseTarget, type Target } from "../net/address.ts";
import { connectOnce, connectWhenReady, sleep } from "../net/connect.ts";
import {
  type Action,
  type CommandContext,
  CommandError,
  requireSuccess,
  runServiceCommand,
} from "./commands.ts";
import { Lifecycle, type State } from "./lifecycle.ts";
import { NO_RECORDER, type Recorder, type StopReason } from "./recorder.ts";
import { describeResult, firstLine, type ShellResult } from "../process/run_shell.ts";

/** How often one connection may find the backend gone and wake it again before giving up. */
const MAX_WAKES_PER_CONNECTION = 3;
/**
 * Exit codes with which the shell says a command cannot run at all (126: not
 * executable, 127: not found): running it again until READY_TIMEOUT is futile.
 */
const CANNOT_RUN = [126, 127];
/** First pause between READY_CMD runs; it doubles up to one second. */
const FIRST_READY_BACKOFF_MS = 50;

/** Counters shown by `status` and exported as metrics. */
export interface ServiceStats {
  /** Wakes that ended awake. */
  wakes: number;
  /** Wakes that failed. */
  wakeFailures: number;
  /** Connections open now, including those waiting for a wake. */
  openConnections: number;
  /** Connections accepted since the daemon started. */
  totalConnections: number;
  /** Bytes forwarded from clients to the backend. */
  bytesIn: number;
  /** Bytes forwarded from the backend to clients. */
  bytesOut: number;
  /** Stops because the service was idle. */
  idleStops: number;
  /** Epoch milliseconds of the last connection or byte forwarded; 0 before any. */
  lastActivity: number;
}

/** A backend connection handed to one client, and where it goes. */
export interface BackendConnection {
  /** The open connection to the backend. */
  conn: Deno.TcpConn;
  /** The backend's address. */
  target: Target;
}

/** The outcome of one wake, shared by every connection that waited for it. */
interface WakeOutcome {
  target: Target;
  /** Gives the connection that proved readiness to its first taker, then undefined. */
  take(): Deno.TcpConn | undefined;
}

/** A wake that did not end awake; its message says why. */
export class WakeError extends Error {
  /** Creates a wake error with the reason as message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WakeError";
  }
}

/** One configured service and the life cycle of its backend. */
export class Service {
  /** Counters for status and metrics. */
  readonly stats: ServiceStats = {
    wakes: 0,
    wakeFailures: 0,
    openConnections: 0,
    totalConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
    idleStops: 0,
    lastActivity: 0,
  };
  #config: ServiceConfig;
  #recorder: Recorder;
  #lifecycle: Lifecycle;
  #target?: Target;
  #wake?: Promise<WakeOutcome>;
  #stopping?: Promise<void>;
  #idleLoop?: AbortController;
  #pendingRoutes = 0;
  #closing = new AbortController();
  #log = log("service");

  /** Creates a service in `asleep`; `recorder` receives the events metrics count. */
  constructor(config: ServiceConfig, recorder: Recorder = NO_RECORDER) {
    this.#config = config;
    this.#recorder = recorder;
    this.#lifecycle = new Lifecycle((from, to, reason) => {
      this.#log.info("[{service}] {from} -> {to}: {reason}", {
        service: config.name,
        from,
        to,
        reason,
      });
    });
  }

  /** The service's configuration. */
  get config(): ServiceConfig {
    return this.#config;
  }

  /**
   * Takes a new configuration for the same service (a reload), keeping the
   * state, the backend and the open connections. Idle checks restart with
   * the new settings.
   */
  reconfigure(config: ServiceConfig) {
    this.#config = config;
    if (this.#lifecycle.state === "awake") this.#startIdleLoop();
  }

  /** The current state. */
  get state(): State {
    return this.#lifecycle.state;
  }

  /** The backend's target while it is known (awake, or stopping). */
  get target(): Target | undefined {
    return this.#target;
  }

  /** Records a connection that was accepted; pair with {@linkcode connectionClosed}. */
  connectionOpened() {
    this.stats.openConnections++;
    this.stats.totalConnections++;
    this.stats.lastActivity = Date.now();
  }

  /** Records that an accepted connection is closed. */
  connectionClosed() {
    this.stats.openConnections--;
    this.stats.lastActivity = Date.now();
  }

  /** Records bytes forwarded in either direction. */
  bytesForwarded(direction: "clientToBackend" | "backendToClient", bytes: number) {
    if (direction === "clientToBackend") this.stats.bytesIn += bytes;
    else this.stats.bytesOut += bytes;
    this.stats.lastActivity = Date.now();
  }

  /**
   * Returns a connection to the backend for the client at `client`, waking the
   * backend first if needed. Concurrent callers share one wake.
   *
   * @throws {WakeError} when the backend cannot be woken or reached
   */
  async openBackend(client: Deno.NetAddr): Promise<BackendConnection> {
    if (this.config.routePerConnection) return await this.#route(client);
    let wakes = 0;
    while (true) {
      this.#closing.signal.throwIfAborted();
      const state = this.#lifecycle.state;
      if (state === "stopping") {
        await this.#stopping;
      } else if (state === "awake" && this.#target) {
        const target = this.#target;
        try {
          return { conn: await connectOnce(target, this.#closing.signal), target };
        } catch (error) {
          this.#closing.signal.throwIfAborted();
          this.#backendGone(target, error);
        }
      } else {
        if (++wakes > MAX_WAKES_PER_CONNECTION) {
          throw new WakeError(`Gave up after ${MAX_WAKES_PER_CONNECTION} wakes in a row`);
        }
        // Join the wake under way; a failed one may linger while it cleans up: never join that.
        const current = state === "starting" ? this.#wake : undefined;
        const outcome = await (current ?? this.#beginWake(client));
        const conn = outcome.take();
        if (conn) return { conn, target: outcome.target };
      }
    }
  }

  /**
   * Stops the backend with STOP_CMD if the service is awake, and waits until
   * it is asleep. Calls while a stop is under way wait for that one.
   *
   * @param reason why, for metrics
   * @param detail why, for the log
   */
  async stop(reason: StopReason, detail: string = reason): Promise<void> {
    if (this.#lifecycle.state === "awake") {
      this.#stopping = this.#runStop(reason, detail);
    }
    await this.#stopping;
  }

  /**
   * Ends the service (for a shutdown, or because a reload removed it): aborts a
   * wake under way (its clients are closed), ends the idle checks, then stops
   * the backend if it is awake.
   */
  async close(reason: "shutdown" | "removed"): Promise<void> {
    const detail = closeDetail(reason);
    this.cancelWakes(reason);
    await this.#wake?.catch(() => {});
    await this.stop(reason, detail);
    this.#idleLoop?.abort();
  }

  /**
   * Ends any wake under way and refuses new ones: its commands are killed,
   * its clients closed, and STOP_CMD cleans up after a START_CMD that ran.
   */
  cancelWakes(reason: "shutdown" | "removed") {
    if (!this.#closing.signal.aborted) this.#closing.abort(new WakeError(closeDetail(reason)));
  }

  #beginWake(client: Deno.NetAddr): Promise<WakeOutcome> {
    const wake = this.#runWake(client);
    this.#wake = wake;
    const clear = () => {
      if (this.#wake === wake) this.#wake = undefined;
    };
    wake.then(clear, clear);
    return wake;
  }

  async #runWake(client: Deno.NetAddr): Promise<WakeOutcome> {
    const began = Date.now();
    this.#lifecycle.transition("asleep", "starting", `connection from ${formatAddr(client)}`);
    const progress = { started: false };
    try {
      const target = await this.#bringUp(client, progress);
      const conn = await this.#waitReady(target);
      this.#target = target;
      this.#wakeEnded(true, began);
      const seconds = ((Date.now() - began) / 1000).toFixed(2);
      this.#lifecycle.transition(
        "starting",
        "awake",
        `${formatTarget(target)} accepted after ${seconds}s`,
      );
      this.#startIdleLoop();
      let taken: Deno.TcpConn | undefined = conn;
      return { target, take: () => [taken, taken = undefined][0] };
    } catch (error) {
      this.#wakeEnded(false, began);
      const reason = error instanceof Error ? error.message : String(error);
      this.#log.error("[{service}] cannot wake: {reason}", { service: this.config.name, reason });
      await this.#undoFailedStart(progress.started);
      throw new WakeError(reason, { cause: error });
    }
  }

  /**
   * After a failed wake: STOP_CMD if START_CMD ran, even if it failed or timed out (nothing is
   * left half-started: a VM or container may be on its way up), then asleep.
   */
  async #undoFailedStart(started: boolean) {
    const stopCmd = this.config.stopCmd;
    if (started && stopCmd && this.#lifecycle.transition("starting", "stopping", "wake failed")) {
      // Connections arriving meanwhile wait for this stop, as for any other.
      this.#stopping = (async () => {
        await this.#runStopCmd();
        this.#recorder.stopped(this.config.name, "failed_wake");
        this.#lifecycle.transition("stopping", "asleep", "STOP_CMD ran after the failed wake");
      })();
      await this.#stopping;
    } else {
      this.#lifecycle.transition("starting", "asleep", "wake failed");
    }
  }

  /**
   * Runs CHECK_CMD, then START_CMD unless the check said the backend is up and
   * named (or we know) its target. Sets `progress.started` as START_CMD begins.
   *
   * @returns the target
   */
  async #bringUp(
    client: Deno.NetAddr,
    progress = { started: false },
  ): Promise<Target> {
    const { checkCmd, startCmd } = this.config;
    const signal = this.#closing.signal;
    if (checkCmd) {
      const check = await this.#command("check", checkCmd, { client, signal });
      signal.throwIfAborted();
      const target = check.code === 0 ? this.#targetFrom("check", check.stdout) : undefined;
      if (target) return target;
      if (!startCmd) {
        requireSuccess("check", check);
        throw new CommandError("CHECK_CMD exited with 0 but printed no target (IP PORT)");
      }
    }
    progress.started = true;
    const start = requireSuccess(
      "start",
      await this.#command("start", startCmd!, { client, signal }),
    );
    const target = this.#targetFrom("start", start.stdout);
    if (!target) throw new CommandError("START_CMD exited with 0 but printed no target (IP PORT)");
    return target;
  }

  /** Reads the target from a command's first output line; falls back to the known target. */
  #targetFrom(action: Action, stdout: string): Target | undefined {
    const line = firstLine(stdout);
    if (line === "") return this.#target;
    try {
      return parseTarget(line);
    } catch (error) {
      const key = action === "check" ? "CHECK_CMD" : "START_CMD";
      throw new CommandError(`${key} printed no target: ${(error as Error).message}`);
    }
  }

  /**
   * Waits until the backend is ready: READY_CMD exits 0 (when set), then the
   * target accepts a connection. Both share the READY_TIMEOUT deadline.
   *
   * @returns the connection that proved readiness: it goes to a waiting client
   */
  async #waitReady(target: Target): Promise<Deno.TcpConn> {
    const { readyCmd, readyTimeout } = this.config;
    const deadline = Date.now() + readyTimeout * 1000;
    const signal = this.#closing.signal;
    if (readyCmd) {
      let backoff = FIRST_READY_BACKOFF_MS;
      while (true) {
        const left = (deadline - Date.now()) / 1000;
        const ready = await this.#command("ready", readyCmd, {
          target,
          signal,
          maxSeconds: Math.max(left, 0.001),
        });
        signal.throwIfAborted();
        if (ready.code === 0) break;
        if (CANNOT_RUN.includes(ready.code)) {
          throw new CommandError(`READY_CMD cannot run: ${describeResult(ready)}`, ready);
        }
        if (Date.now() + backoff >= deadline) {
          throw new CommandError(
            `READY_CMD did not exit 0 within READY_TIMEOUT (${readyTimeout}s): last run ${
              describeResult(ready)
            }`,
            ready,
          );
        }
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 1000);
      }
    }
    try {
      return await connectWhenReady(target, deadline, signal);
    } catch (error) {
      signal.throwIfAborted();
      throw new WakeError(
        `${
          formatTarget(target)
        } did not accept a connection within READY_TIMEOUT (${readyTimeout}s): ${
          (error as Error).message
        }`,
      );
    }
  }

  /** The awake fast path found the backend gone: back to asleep, so the next try wakes it. */
  #backendGone(target: Target, error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    if (
      this.#target === target &&
      this.#lifecycle.transition("awake", "asleep", `${formatTarget(target)} is gone: ${reason}`)
    ) {
      this.#target = undefined;
      this.#idleLoop?.abort();
    }
  }

  /** Per-connection routing: every connection runs CHECK_CMD/START_CMD for its own target. */
  async #route(client: Deno.NetAddr): Promise<BackendConnection> {
    while (this.#lifecycle.state === "stopping") await this.#stopping;
    const began = Date.now();
    this.#pendingRoutes++;
    this.#lifecycle.transition("asleep", "starting", `connection from ${formatAddr(client)}`);
    try {
      const target = await this.#bringUp(client);
      const conn = await this.#waitReady(target);
      this.#target = target;
      if (this.#lifecycle.transition("starting", "awake", `${formatTarget(target)} accepted`)) {
        this.#wakeEnded(true, began);
        this.#startIdleLoop();
      }
      return { conn, target };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#log.error("[{service}] cannot route {client}: {reason}", {
        service: this.config.name,
        client: formatAddr(client),
        reason,
      });
      if (this.#pendingRoutes === 1 && this.#lifecycle.state === "starting") {
        this.#wakeEnded(false, began);
        this.#lifecycle.transition("starting", "asleep", "wake failed");
      }
      throw new WakeError(reason, { cause: error });
    } finally {
      this.#pendingRoutes--;
    }
  }

  async #runStop(reason: StopReason, detail: string) {
    this.#idleLoop?.abort();
    if (!this.#lifecycle.transition("awake", "stopping", detail)) return;
    const ok = await this.#runStopCmd();
    this.#target = undefined;
    this.#recorder.stopped(this.config.name, reason);
    this.#lifecycle.transition(
      "stopping",
      "asleep",
      this.config.stopCmd ? (ok ? "STOP_CMD done" : "STOP_CMD failed") : "no STOP_CMD",
    );
  }

  /** Runs STOP_CMD (when set), logging a failure rather than throwing. @returns whether it exited 0 */
  async #runStopCmd(): Promise<boolean> {
    const spec = this.config.stopCmd;
    if (!spec) return true;
    try {
      requireSuccess("stop", await this.#command("stop", spec, { target: this.#target }));
      return true;
    } catch (error) {
      this.#log.error("[{service}] {reason}", {
        service: this.config.name,
        reason: (error as Error).message,
      });
      return false;
    }
  }

  /** Counts a wake that began at `began` (epoch ms) and ended awake (`ok`) or failed. */
  #wakeEnded(ok: boolean, began: number) {
    if (ok) this.stats.wakes++;
    else this.stats.wakeFailures++;
    this.#recorder.wakeEnded(this.config.name, ok, (Date.now() - began) / 1000);
  }

  /** Runs one of the service's commands and records how it ended. */
  async #command(
    action: Action,
    spec: CommandSpec,
    context: CommandContext,
  ): Promise<ShellResult> {
    const result = await runServiceCommand(this.config, action, spec, context);
    this.#recorder.commandEnded(this.config.name, action, result.code, result.durationMs / 1000);
    return result;
  }

  /** While awake, checks idleness every IDLE_CHECK_INTERVAL and stops after IDLE_TIME idle. */
  #startIdleLoop() {
    const { idleTime, idleCheckInterval } = this.config;
    if (!idleTime || !idleCheckInterval) return;
    this.#idleLoop?.abort();
    const loop = new AbortController();
    this.#idleLoop = loop;
    this.#watchIdle(idleTime * 1000, idleCheckInterval * 1000, loop.signal).catch(() => {});
  }

  async #watchIdle(idleMs: number, intervalMs: number, signal: AbortSignal) {
    let idleSince: number | undefined;
    while (true) {
      await sleep(intervalMs, signal);
      if (this.#lifecycle.state !== "awake") return;
      const busy = await this.#busyReason(signal);
      if (busy) {
        idleSince = undefined;
        this.#log.debug("[{service}] not idle: {busy}", { service: this.config.name, busy });
        continue;
      }
      idleSince ??= Date.now();
      const idleFor = Date.now() - Math.max(idleSince, this.stats.lastActivity);
      if (idleFor >= idleMs) {
        this.stats.idleStops++;
        await this.stop("idle", `idle for ${(idleFor / 1000).toFixed(1)}s`);
        return;
      }
    }
  }

  /** Why the service is not idle now, or undefined when it is. */
  async #busyReason(signal: AbortSignal): Promise<string | undefined> {
    const open = this.stats.openConnections;
    if (open > 0) return `${open} open connection${open === 1 ? "" : "s"}`;
    const idleCmd = this.config.idleCmd;
    if (!idleCmd) return undefined;
    const result = await this.#command("idle", idleCmd, {
      target: this.#target,
      signal,
    });
    return result.code === 0 ? undefined : `IDLE_CMD ${describeResult(result)}`;
  }
}

function closeDetail(reason: "shutdown" | "removed"): string {
  return reason === "shutdown"
    ? "sleepingd is shutting down"
    : "the service was removed from the configuration";
}
