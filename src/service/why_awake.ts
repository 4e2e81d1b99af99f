/**
 * Why a service stays awake: the one question the idle monitor and `status`
 * ask (docs/ARCHITECTURE.md, "Why awake"). The answer holds every reason at
 * once: connections (proxied, through the kernel), UDP flows, a keep-awake, a
 * service not asleep that DEPENDS_ON this one, an open KEEP_AWAKE window, and
 * MIN_AWAKE_TIME. The idle monitor says busy for the first of them that keeps
 * an idle stop off ({@linkcode busyReason}); `status` lists them all
 * ({@linkcode WhyAwake.describe}). The windows' loop, which wakes the service
 * when one opens, lives here too: its start, and its restart at a reload.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { clockNow, sleepUntil } from "../clock.ts";
import { log } from "../log.ts";
import { sleep } from "../timers.ts";
import type { State } from "./lifecycle.ts";
import { KeepAwakeSchedule } from "./schedule.ts";
import type { ServiceStats } from "./stats.ts";

/** First pause before a schedule's failed wake is tried again; it doubles. */
const FIRST_SCHEDULE_RETRY_MS = 1_000;
/** Longest pause between a schedule's tries. */
const LAST_SCHEDULE_RETRY_MS = 5 * 60_000;

/** Every reason a service is awake now; counts of 0 and absent fields are no reason. */
export interface AwakeReasons {
  /** Clients connected through sleepingd (TCP), held ones included. */
  connections: number;
  /** FORWARD=kernel: connections the kernel forwards. */
  kernelConnections: number;
  /** UDP flows open: shown, but no reason against an idle stop (each datagram is activity). */
  flows: number;
  /**
   * What keeps it from idle stops by request or rule, the first that holds:
   * `kept awake until ...` (`sleepingd keep-awake`), `needed by app` (a
   * service not asleep that DEPENDS_ON it), `schedule Mon-Fri 08:00-18:00
   * until Mon 18:00` (an open KEEP_AWAKE window).
   */
  kept?: string;
  /** MIN_AWAKE_TIME not reached yet: the minimum (seconds), since when and until when (epoch ms). */
  minAwake?: { seconds: number; since: number; until: number };
}

/** Another service of the supervisor, as DEPENDS_ON sees it. */
export interface Peer {
  /** Its configuration (its name, its DEPENDS_ON). */
  readonly config: ServiceConfig;
  /** Its state now. */
  readonly state: State;
}

/** What the answer reads of its service, and how the windows' loop wakes it. */
export interface WhyAwakeInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** The service's counters: open connections and flows, the last activity. */
  stats: Readonly<ServiceStats>;
  /** The service's life cycle: its state, and since when. */
  life: { readonly state: State; readonly since: number };
  /** Every service of the supervisor, for DEPENDS_ON; none by default. */
  services?(): readonly Peer[];
  /** Wakes the service for a window (`cause` says which) until it is ready. */
  wake(cause: string, signal: AbortSignal): Promise<unknown>;
  /** Epoch milliseconds of the last `sleep` that cancelled a wake: a window does not retry past it. */
  wakeCancelledAt(): number;
  /** Aborted when the service closes: the windows' loop ends. */
  closing: AbortSignal;
}

/** Why one service is awake, and what keeps it so: a keep-awake, its KEEP_AWAKE windows. */
export class WhyAwake {
  readonly #inputs: WhyAwakeInputs;
  /** Epoch milliseconds until which no idle stop may happen; 0 when not kept awake. */
  #keptAwakeUntil = 0;
  /** The KEEP_AWAKE windows, when there are any. */
  #schedule?: KeepAwakeSchedule;
  /** Ends the loop that wakes the service for its windows, once started. */
  #scheduling?: AbortController;
  /** Whether schedules run (crash recovery is done): a reload that adds windows begins them. */
  #schedulesOn = false;
  readonly #log = log("service");

  /** Answers for the service `inputs` reads; its windows' loop waits for {@linkcode startSchedule}. */
  constructor(inputs: WhyAwakeInputs) {
    this.#inputs = inputs;
    this.#schedule = scheduleOf(inputs.config());
  }

  /** The question: every reason the service is awake at `now` (epoch milliseconds). */
  reasons(now: number = Date.now()): AwakeReasons {
    const { openConnections, kernelConnections, openFlows } = this.#inputs.stats;
    const reasons: AwakeReasons = {
      connections: openConnections,
      kernelConnections,
      flows: openFlows,
    };
    const kept = this.keptAwake();
    if (kept) reasons.kept = kept;
    const seconds = this.#inputs.config().minAwakeTime ?? 0;
    const since = this.#inputs.life.since;
    if (since + seconds * 1000 > now) {
      reasons.minAwake = { seconds, since, until: since + seconds * 1000 };
    }
    return reasons;
  }

  /**
   * Why the service is kept from idle stops now: `kept awake until ...`
   * (`sleepingd keep-awake`), `needed by app` (a service not asleep that
   * DEPENDS_ON it), `schedule Mon-Fri 08:00-18:00 until Mon 18:00`;
   * undefined when nothing keeps it.
   */
  keptAwake(): string | undefined {
    if (this.keptAwakeUntil) {
      return `kept awake until ${new Date(this.keptAwakeUntil).toISOString()}`;
    }
    const needers = this.neededBy();
    if (needers.length > 0) return `needed by ${needers.join(", ")}`;
    const open = this.#schedule?.openAt(clockNow());
    if (open) {
      const until = Number.isFinite(open.until)
        ? `until ${this.#schedule!.format(open.until)}`
        : "(always open)";
      return `schedule ${open.window.text} ${until}`;
    }
    return undefined;
  }

  /**
   * The services not asleep (waking, awake, or still stopping) that list
   * this one in DEPENDS_ON: it stops only after they have.
   */
  neededBy(): string[] {
    const name = this.#inputs.config().name;
    return (this.#inputs.services?.() ?? [])
      .filter((other) => other.config.dependsOn.includes(name) && other.state !== "asleep")
      .map((other) => other.config.name);
  }

  /**
   * Why the service is awake now, when it is, for `status`: its open
   * connections and flows, what keeps it awake, MIN_AWAKE_TIME, or how long
   * it has been idle.
   */
  describe(): string | undefined {
    if (this.#inputs.life.state !== "awake") return undefined;
    const why = this.reasons();
    const plural = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`;
    const reasons = [
      why.connections ? plural(why.connections, "connection") : undefined,
      why.kernelConnections
        ? `${plural(why.kernelConnections, "connection")} through the kernel`
        : undefined,
      why.flows ? plural(why.flows, "UDP flow") : undefined,
      why.kept,
      why.minAwake && `MIN_AWAKE_TIME until ${new Date(why.minAwake.until).toISOString()}`,
    ];
    const since = this.#inputs.life.since;
    const idleFor = (Date.now() - Math.max(this.#inputs.stats.lastActivity, since)) / 1000;
    return reasons.filter(Boolean).join(", ") || `idle for ${idleFor.toFixed(0)}s`;
  }

  /** Epoch milliseconds until which the service is kept awake; 0 when it is not. */
  get keptAwakeUntil(): number {
    return this.#keptAwakeUntil > Date.now() ? this.#keptAwakeUntil : 0;
  }

  /**
   * Keeps the service from idle stops until `until` (epoch milliseconds), or
   * ends that when `until` is 0. It wakes nothing by itself.
   */
  keepAwakeUntil(until: number): void {
    this.#keptAwakeUntil = until;
  }

  /**
   * Wakes the service at the start of each KEEP_AWAKE window (at once when
   * inside one), until the service closes or its windows change.
   */
  startSchedule(): void {
    this.#schedulesOn = true;
    this.#scheduling?.abort();
    const schedule = this.#schedule;
    if (!schedule) return;
    const loop = new AbortController();
    this.#scheduling = loop;
    const signal = AbortSignal.any([loop.signal, this.#inputs.closing]);
    this.#runSchedule(schedule, signal).catch(() => {}); // ends when aborted
  }

  /**
   * Takes a reload in: when KEEP_AWAKE or TIME_ZONE changed from `previous`,
   * the windows are made anew and, once schedules run, their loop begins again.
   */
  reconfigured(previous: ServiceConfig): void {
    const config = this.#inputs.config();
    const changed = JSON.stringify([config.keepAwake, config.timeZone]) !==
      JSON.stringify([previous.keepAwake, previous.timeZone]);
    if (!changed) return;
    this.#schedule = scheduleOf(config);
    if (this.#schedulesOn) this.startSchedule();
  }

  /**
   * Outside the windows, sleeps until the next start; inside, wakes the
   * service, then sleeps until the window's end. A wake that fails is tried
   * again inside the window, 1 s later, doubling up to 5 min; one cancelled
   * by `sleep` is not: an explicit sleep is obeyed until the next window.
   */
  async #runSchedule(schedule: KeepAwakeSchedule, signal: AbortSignal) {
    let retryMs = FIRST_SCHEDULE_RETRY_MS;
    while (true) {
      const now = clockNow();
      const open = schedule.openAt(now);
      if (!open) {
        retryMs = FIRST_SCHEDULE_RETRY_MS;
        const next = schedule.nextStart(now);
        if (!next) return;
        await sleepUntil(next.at, signal);
        continue;
      }
      const attempt = Date.now();
      try {
        await this.#inputs.wake(`schedule ${open.window.text}`, signal);
      } catch (error) {
        signal.throwIfAborted();
        const retry = this.#inputs.wakeCancelledAt() < attempt;
        this.#log.error("[{service}] cannot wake for the schedule {window}: {error}{then}", {
          service: this.#inputs.config().name,
          window: open.window.text,
          error: (error as Error).message,
          then: retry ? ` (trying again in ${retryMs / 1000}s)` : "",
        });
        if (retry) {
          await sleep(retryMs, signal);
          retryMs = Math.min(retryMs * 2, LAST_SCHEDULE_RETRY_MS);
          continue;
        }
      }
      retryMs = FIRST_SCHEDULE_RETRY_MS;
      await sleepUntil(open.until, signal);
    }
  }
}

/**
 * The first reason in `why` that keeps an idle stop off, in the idle
 * monitor's words (`2 open connections`, a keep-awake, `awake for 3.0s of
 * MIN_AWAKE_TIME 60s`); undefined when none does. UDP flows are no such
 * reason: for UDP, idle means no datagram either way.
 */
export function busyReason(why: AwakeReasons, now: number = Date.now()): string | undefined {
  const open = why.connections + why.kernelConnections;
  if (open > 0) return `${open} open connection${open === 1 ? "" : "s"}`;
  if (why.kept) return why.kept;
  if (why.minAwake) {
    const awakeFor = (now - why.minAwake.since) / 1000;
    return `awake for ${awakeFor.toFixed(1)}s of MIN_AWAKE_TIME ${why.minAwake.seconds}s`;
  }
  return undefined;
}

/** The service's KEEP_AWAKE windows, or undefined when it has none. */
function scheduleOf(config: ServiceConfig): KeepAwakeSchedule | undefined {
  return config.keepAwake.length > 0
    ? new KeepAwakeSchedule(config.keepAwake, config.timeZone)
    : undefined;
}
