/**
 * How a service finds a backend connection for a client: one wake shared by
 * every client (the default), or a START_CMD per connection
 * (`ROUTE_PER_CONNECTION`, the seed's pool example).
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget, type Target } from "../net/address.ts";
import { connectOnce, connectWhenReady } from "../net/connect.ts";
import { closeQuietly } from "../net/conn.ts";
import { formatPortMapping, type PortMapping } from "../config/ports.ts";
import { loggedAlready, type RunCommand } from "./commands.ts";
import type { Refusal, RefusalReason } from "./admission.ts";
import {
  type Coordinator,
  NO_CLAIM,
  type Outcome,
  type TrustTarget,
  type WakeClaim,
} from "./coordinator.ts";
import { trustPublished } from "./published_target.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { type Backend, checkBackend, wake, WakeError, type WakeRequest } from "./wake.ts";
import { type Waiting, WakeProgress } from "./wake_progress.ts";

const logger = log("service");

/** How often one client may find the backend gone and wait for a wake again before giving up. */
const MAX_WAKES_PER_CONNECTION = 3;

/** A client that cannot be given a backend connection; the message says why. */
export class NoBackendError extends Error {
  /** Set when a limit refused the client, for metrics. */
  readonly refusal?: RefusalReason;

  /** Creates the error with the reason as message. */
  constructor(message: string, options?: ErrorOptions & { refusal?: RefusalReason }) {
    super(message, options);
    this.name = "NoBackendError";
    this.refusal = options?.refusal;
  }
}

/** How a client asks for its backend connection. */
export interface OpenOptions {
  /** Aborting ends this client's wait (it left, or waited too long); the wake goes on. */
  signal?: AbortSignal;
  /**
   * Whether the client may wait for a wake; `false` returns undefined
   * instead, so that the caller can first make ready for the wait.
   * @default true
   */
  wait?: boolean;
  /** The MORE_PORTS entry the client came on; undefined for PORT. */
  port?: PortMapping;
}

/** What a router uses of its service. */
export interface RouteContext {
  /** The service's life cycle. */
  life: Lifecycle;
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** Aborted when the service closes: wakes end and waiting clients are closed. */
  signal: AbortSignal;
  /**
   * The signal a wake beginning now runs under: aborted when the service
   * closes, or when this wake is cancelled (`sleep` during a wake).
   */
  wakeSignal(): AbortSignal;
  /** Told the target as soon as a wake's CHECK_CMD or START_CMD named it (to save it). */
  onTarget(target: Target): void;
  /** Runs the service's commands. */
  run: RunCommand;
  /** After a failed wake, from `starting`: STOP_CMD if START_CMD ran, then `asleep`. */
  abandonWake(error: WakeError): Promise<void>;
  /** Why no wake may begin now (a wake rate limit), or undefined; a wake allowed is counted. */
  mayWake(): Refusal | undefined;
  /** The other sleepingd instances in front of the same backend (ALONE when there are none). */
  coordinator: Coordinator;
  /**
   * Wakes the services of DEPENDS_ON, in order, each until it is ready.
   *
   * @throws {Error} naming the one that did not wake, and why
   */
  wakeDependencies(signal: AbortSignal): Promise<void>;
  /** Who waits for the service's wake now: clients held, datagrams queued. */
  waiting(): Waiting;
}

/** Finds the backend connection for each client of one service. */
export interface Router {
  /**
   * Returns a connection to the backend for the client at `client`, waking
   * the backend first if needed; undefined when it would have to wait and
   * `wait` is false.
   *
   * @throws {NoBackendError} saying why there is none
   */
  open(client: Deno.NetAddr, options?: OpenOptions): Promise<Backend | undefined>;

  /**
   * Returns the backend's target, waking it first if needed: for a UDP
   * client's datagram, or a wake asked for. `cause` says why, e.g.
   * `datagram from 192.0.2.7:5353`; `client`, when there is one, reaches the
   * commands' environment.
   *
   * @throws {NoBackendError} saying why there is none
   */
  target(cause: string, client?: Deno.NetAddr, signal?: AbortSignal): Promise<Target>;

  /**
   * What the wake under way waits for, e.g. `waiting for 10.0.0.5:22: 20 s
   * of READY_TIMEOUT 60 s, 3 clients held`; undefined when none is.
   */
  progress(): string | undefined;
}

/** The router for a configuration. */
export function routerFor(config: ServiceConfig, context: RouteContext): Router {
  return config.routePerConnection ? new PerConnection(context) : new SharedWake(context);
}

/**
 * Begins a wake for `reason` (`connection from 192.0.2.7:51234`) if the
 * service is asleep and the wake rate limits allow one: whoever wins
 * `asleep → starting` runs it.
 *
 * @returns whether this call began a wake
 * @throws {NoBackendError} when a wake rate limit refuses one
 */
function beginWake(context: RouteContext, reason: string): boolean {
  if (context.life.state !== "asleep") return false;
  const refusal = context.mayWake();
  if (refusal) throw new NoBackendError(refusal.message, { refusal: refusal.reason });
  return context.life.tryTransition("asleep", { to: "starting", reason });
}

/**
 * Wakes the service's DEPENDS_ON first, then the service itself.
 *
 * @throws {WakeError} saying which dependency did not wake, or why the wake failed
 */
async function wakeAfterDependencies(context: RouteContext, request: WakeRequest) {
  if (request.config.dependsOn.length > 0) {
    request.observer?.step({ step: "dependencies", since: Date.now() });
  }
  try {
    await context.wakeDependencies(request.signal);
  } catch (error) {
    throw new WakeError((error as Error).message, { cause: error });
  }
  return await wake(request);
}

/**
 * Waits until this instance may run the wake of `name` (under a claim), or
 * another one has the backend awake at a target `trust` accepts. A
 * coordinator that fails says "run"; only the end of the wake (`signal`:
 * a shutdown, `sleep`) makes this throw: that is no leave to run.
 *
 * @throws the abort reason of `signal`
 */
async function claimWake(
  coordinator: Coordinator,
  name: string,
  signal: AbortSignal,
  trust: TrustTarget,
): Promise<WakeClaim> {
  try {
    return await coordinator.claimWake(name, signal, trust);
  } catch {
    signal.throwIfAborted();
    return { run: true, claim: NO_CLAIM };
  }
}

/** The service's closing signal, joined with a client's own when it has one. */
function joinSignals(service: AbortSignal, client?: AbortSignal): AbortSignal {
  return client ? AbortSignal.any([service, client]) : service;
}

/**
 * One wake for every client: the client that wins `asleep → starting` runs
 * it, every client waits for the state to change, and while awake clients
 * connect straight to the target without running a command.
 */
class SharedWake implements Router {
  readonly #context: RouteContext;
  /** A CHECK_CMD under way to tell whether the backend is gone, shared by the clients asking. */
  #checking?: Promise<boolean | undefined>;
  /** The target last found gone, until a wake succeeds: never taken from another instance again. */
  #dead?: Target;
  /** The progress of the wake under way, if one is. */
  #progress?: WakeProgress;

  /** Creates the router for a service. */
  constructor(context: RouteContext) {
    this.#context = context;
  }

  /** Returns the spare readiness connection, or a new one, waking the backend as needed. */
  async open(client: Deno.NetAddr, options: OpenOptions = {}): Promise<Backend | undefined> {
    const { life, config } = this.#context;
    const { wait = true, port } = options;
    const signal = joinSignals(this.#context.signal, options.signal);
    const tries = { wakes: 0, lastFailure: "" };
    while (true) {
      signal.throwIfAborted();
      if (life.state === "awake") {
        const target = life.target!;
        if (port) return await this.#connectMore(target, port, signal);
        const spare = life.takeSpare();
        if (spare) return { conn: spare, target };
        try {
          const timeoutMs = config().connectTimeout * 1000;
          return { conn: await connectOnce(target, { signal, timeoutMs }), target };
        } catch (error) {
          signal.throwIfAborted();
          tries.lastFailure = await this.#goneOrThrow(target, error);
        }
      } else if (!wait) {
        return undefined;
      } else {
        const cause = `connection from ${formatAddr(client)}`;
        await this.#waitForWake(client, cause, !port, signal, tries);
      }
    }
  }

  /** What the wake under way waits for. */
  progress(): string | undefined {
    return this.#progress?.describe();
  }

  /** Returns the target once awake, waking the backend as needed. */
  async target(cause: string, client?: Deno.NetAddr, clientSignal?: AbortSignal): Promise<Target> {
    const signal = joinSignals(this.#context.signal, clientSignal);
    const tries = { wakes: 0, lastFailure: "" };
    while (true) {
      signal.throwIfAborted();
      if (this.#context.life.state === "awake") return this.#context.life.target!;
      await this.#waitForWake(client, cause, false, signal, tries);
    }
  }

  /**
   * Waits for a stop under way, or for a wake (beginning it if asleep, for
   * `cause`), counting wakes. `keepSpare`: a client of PORT asks, which may
   * take the connection that proves the backend ready.
   */
  async #waitForWake(
    client: Deno.NetAddr | undefined,
    cause: string,
    keepSpare: boolean,
    signal: AbortSignal,
    tries: { wakes: number; lastFailure: string },
  ) {
    const life = this.#context.life;
    if (life.state === "stopping") {
      await life.changed(signal);
      return;
    }
    if (++tries.wakes > MAX_WAKES_PER_CONNECTION) {
      throw new NoBackendError(
        `Gave up after ${MAX_WAKES_PER_CONNECTION} wakes in a row: ${tries.lastFailure}`,
      );
    }
    if (beginWake(this.#context, cause)) this.#wake(client, keepSpare);
    const change = await life.changed(signal);
    if (change.to !== "awake") throw new NoBackendError(change.reason);
  }

  /**
   * Connects to a MORE_PORTS port of the backend. Until READY_TIMEOUT has
   * passed since the wake, a refusal is retried (only PORT proved the backend
   * ready); after, it fails this client alone: only PORT says the backend is gone.
   */
  async #connectMore(target: Target, port: PortMapping, signal: AbortSignal): Promise<Backend> {
    const { life, config } = this.#context;
    const { connectTimeout, readyTimeout } = config();
    const mapped = { hostname: target.hostname, port: port.backend! };
    const timeoutMs = connectTimeout * 1000;
    const deadline = Math.max(Date.now() + timeoutMs, life.since + readyTimeout * 1000);
    try {
      return {
        conn: await connectWhenReady(mapped, deadline, { signal, timeoutMs }),
        target: mapped,
      };
    } catch (error) {
      signal.throwIfAborted();
      throw new NoBackendError(
        `Cannot connect to ${formatTarget(mapped)} (MORE_PORTS ${formatPortMapping(port)}): ` +
          `${(error as Error).message} (the service stays awake)`,
        { cause: error },
      );
    }
  }

  /**
   * Runs the wake this router won and moves the service on from `starting`.
   * The connection that proved PORT ready goes to the first client of PORT
   * when one began the wake (`keepSpare`); a wake begun on another port or by
   * a datagram closes it at once, lest it wait, unused, until the backend drops it.
   */
  #wake(client: Deno.NetAddr | undefined, keepSpare: boolean) {
    const { life, config, run, abandonWake, coordinator, onTarget } = this.#context;
    const signal = this.#context.wakeSignal();
    const name = config().name;
    const runWake = async () => {
      // Another instance may run this wake, or have run it: then only its target is needed.
      let answer: WakeClaim;
      try {
        answer = await claimWake(coordinator, name, signal, this.#trust);
      } catch {
        // Ended (shutdown, sleep) while another instance wakes it: nothing of this one's ran.
        const reason = signal.reason instanceof Error
          ? signal.reason.message
          : String(signal.reason);
        return abandonWake(new WakeError(reason, { cause: signal.reason }));
      }
      if ("target" in answer) {
        const reason = `${formatTarget(answer.target)} awake, woken by ${answer.by}`;
        life.transition("starting", { to: "awake", target: answer.target, reason });
        return;
      }
      let woken;
      let failure: unknown;
      const progress = new WakeProgress(config, this.#context.waiting);
      this.#progress = progress;
      const stopLogging = progress.logEvery(name);
      try {
        woken = await wakeAfterDependencies(this.#context, {
          config: config(),
          run,
          signal,
          client,
          knownTarget: life.lastTarget,
          onTarget,
          observer: progress,
        });
      } catch (error) {
        failure = error;
      } finally {
        stopLogging();
        this.#progress = undefined;
      }
      if (!woken) {
        if (!loggedAlready(failure)) {
          logger.error("[{service}] cannot wake: {reason}", {
            service: name,
            reason: (failure as Error).message,
          });
        }
        // STOP_CMD cleans up under the claim: no other instance wakes it meanwhile.
        let outcome: Outcome | undefined;
        try {
          await abandonWake(failure as WakeError);
          if ((failure as WakeError).startRan && config().stopCmd) outcome = { state: "asleep" };
        } finally {
          answer.claim.end(outcome);
        }
        return;
      }
      const { target, conn: proof } = woken;
      const conn = keepSpare ? proof : undefined;
      if (!keepSpare && proof) closeQuietly(proof);
      const seconds = ((Date.now() - life.since) / 1000).toFixed(2);
      const reason = `${formatTarget(target)} ${proof ? "accepted" : "ready"} after ${seconds}s`;
      this.#dead = undefined;
      life.transition("starting", { to: "awake", target, conn, reason });
      answer.claim.end({ state: "awake", target });
    };
    runWake().catch((error) => {
      logger.fatal("[{service}] the wake left the life cycle broken: {error}", {
        service: name,
        error,
      });
    });
  }

  /**
   * Decides what a failed connection to an awake backend means. Refused: the
   * backend is gone, the service goes back to asleep (the next try wakes it).
   * Any other error (a timeout under load, out of file descriptors) concerns
   * this client alone, unless CHECK_CMD is set and says the backend is down.
   *
   * @returns why the backend is gone
   * @throws {NoBackendError} when the backend is not known to be gone
   */
  async #goneOrThrow(target: Target, error: unknown): Promise<string> {
    const { life, config, run, signal } = this.#context;
    const address = formatTarget(target);
    const message = (error as Error).message;
    if (!(error instanceof Deno.errors.ConnectionRefused)) {
      this.#checking ??= checkBackend(config(), run, signal, target)
        .then((found) => found === undefined ? undefined : found !== null)
        .finally(() => this.#checking = undefined);
      const up = await this.#checking;
      if (up !== false) {
        throw new NoBackendError(
          `Cannot connect to ${address}: ${message} (` +
            (up ? "CHECK_CMD says it is up" : "not refused, so not known to be gone") +
            `: the service stays awake)`,
          { cause: error },
        );
      }
    }
    const gone = `${address} is gone: ${message}`;
    if (life.state === "awake" && life.target === target) {
      this.#dead = target;
      life.transition("awake", { to: "asleep", reason: gone });
      this.#context.coordinator.gone(config().name, target);
    }
    return gone;
  }

  /**
   * Whether a target another instance published may be used: never the one
   * found gone here; else as {@linkcode trustPublished} decides.
   */
  readonly #trust: TrustTarget = async (target, by) => {
    const { config, run, signal, life } = this.#context;
    const dead = this.#dead;
    if (dead && dead.hostname === target.hostname && dead.port === target.port) return undefined;
    return await trustPublished(config(), target, by, { run, signal, known: life.lastTarget });
  };
}

/**
 * A CHECK_CMD/START_CMD per connection, each connection going to the target
 * its own START_CMD printed. The service is `awake` from the first success
 * until the idle stop, whose STOP_CMD stops whatever the routes started.
 */
class PerConnection implements Router {
  readonly #context: RouteContext;
  /** Routes under way; the last one to fail while `starting` cleans up. */
  #pending = 0;
  /** The progress of each route under way, oldest first. */
  readonly #routes = new Set<WakeProgress>();

  /** Creates the router for a service. */
  constructor(context: RouteContext) {
    this.#context = context;
  }

  /** What the oldest route under way waits for. */
  progress(): string | undefined {
    return this.#routes.values().next().value?.describe();
  }

  /** Never: validation refuses PROTOCOL=udp and MORE_PORTS with ROUTE_PER_CONNECTION. */
  target(): Promise<Target> {
    return Promise.reject(new NoBackendError("ROUTE_PER_CONNECTION serves TCP on PORT only"));
  }

  /** Runs this client's own wake and returns its connection; never without waiting. */
  async open(client: Deno.NetAddr, options: OpenOptions = {}): Promise<Backend | undefined> {
    if (options.wait === false) return undefined;
    const { life, config, run, abandonWake, onTarget } = this.#context;
    const waiting = joinSignals(this.#context.signal, options.signal);
    while (life.state === "stopping") await life.changed(waiting);
    waiting.throwIfAborted();
    beginWake(this.#context, `connection from ${formatAddr(client)}`);
    const signal = joinSignals(this.#context.wakeSignal(), options.signal);
    this.#pending++;
    const progress = new WakeProgress(config, () => ({ clients: 1, datagrams: 0 }));
    this.#routes.add(progress);
    const stopLogging = progress.logEvery(config().name);
    try {
      const woken = await wakeAfterDependencies(this.#context, {
        config: config(),
        run,
        signal,
        client,
        onTarget,
        observer: progress,
      });
      if (life.state === "starting") {
        const reason = `${formatTarget(woken.target)} accepted`;
        life.transition("starting", { to: "awake", target: woken.target, reason });
      }
      return woken as Backend; // PROTOCOL=tcp: the wake ends with a connection
    } catch (error) {
      const failure = error as WakeError;
      const gaveUp = options.signal?.aborted; // the client left, or waited HOLD_TIMEOUT
      if (!gaveUp && !loggedAlready(error)) {
        logger.error("[{service}] cannot route {client}: {reason}", {
          service: config().name,
          client: formatAddr(client),
          reason: failure.message,
        });
      }
      // While other routes are under way or served, STOP_CMD waits for the idle stop:
      // run now, it would stop the backends they use.
      if (this.#pending === 1 && life.state === "starting") await abandonWake(failure);
      throw gaveUp ? options.signal!.reason : new NoBackendError(failure.message, { cause: error });
    } finally {
      this.#pending--;
      stopLogging();
      this.#routes.delete(progress);
    }
  }
}
