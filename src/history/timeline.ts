/**
 * Each service's timeline over a period, made from the event log: the spans
 * it spent in each state, its wakes and stops, the share of the period it
 * slept and what that saved (docs/ARCHITECTURE.md, "History").
 *
 * @module
 */

import type { State } from "../service/lifecycle.ts";
import type { StopReason } from "../service/recorder.ts";
import { type ChangeEvent, type HistoryEvent, isChange } from "./event.ts";

/** A span of time in one state; `unknown` while no daemon watched the service. */
export interface Span {
  /** The state, or `unknown`. */
  state: State | "unknown";
  /** ISO time it began (or the period's start). */
  from: string;
  /** ISO time it ended (or the period's end, or now). */
  to: string;
}

/** A wake: what caused it, and how it ended. */
export interface Wake {
  /** ISO time it began. */
  at: string;
  /** What woke it: `connection from 192.0.2.7:51234`. */
  cause: string;
  /** Whether it ended awake; null while it is under way. */
  ok: boolean | null;
  /** Seconds it took, once it ended. */
  seconds: number | null;
  /** Why it failed, when it did. */
  error?: string;
  /** The backend's `host:port` once awake. */
  target?: string;
}

/** A stop of the backend, and why. */
export interface Stop {
  /** ISO time it began. */
  at: string;
  /** Why, as metrics count it: `idle`, `shutdown`, `gone`... */
  reason: StopReason;
  /** Why, in words: `idle for 600s`. */
  detail: string;
  /** Seconds STOP_CMD took, once it ended. */
  seconds: number | null;
}

/** What sleeping is worth: the `COST_PER_HOUR` of a service. */
export interface Cost {
  /** What an hour awake costs. */
  amount: number;
  /** Its unit as written after the amount (`USD`, `€`), or "". */
  currency: string;
}

/** One service over a period. */
export interface ServiceTimeline {
  /** The service's name. */
  name: string;
  /** Spans covering the period up to its end or now, oldest first. */
  spans: Span[];
  /** Wakes that began in the period. */
  wakes: Wake[];
  /** Stops that began in the period. */
  stops: Stop[];
  /** Seconds asleep in the period. */
  asleepSeconds: number;
  /** Seconds a daemon watched the service in the period. */
  watchedSeconds: number;
  /** `asleepSeconds / watchedSeconds`, or null before any was watched. */
  asleepShare: number | null;
  /** The service's `COST_PER_HOUR`, and what sleeping saved in the period. */
  cost: (Cost & { saved: number }) | null;
}

/** The services' timelines over `[from, to]`, as of `now`. */
export interface Period {
  /** Start, epoch milliseconds. */
  from: number;
  /** End, epoch milliseconds. */
  to: number;
  /** Now, epoch milliseconds: nothing is drawn after it. */
  now: number;
}

/** The history of a period: `/api/history` answers with it. */
export interface History {
  /** The period's start, ISO. */
  from: string;
  /** Its end, ISO. */
  to: string;
  /** When this was made, ISO. */
  now: string;
  /** Each service's timeline, in configuration order. */
  services: ServiceTimeline[];
  /** The events of the period: the services' changes and the daemon's starts and stops. */
  events: HistoryEvent[];
}

/** {@linkcode timelines} over `period`, with the events that fall in it. */
export function history(
  events: readonly HistoryEvent[],
  services: readonly { name: string; cost?: Cost }[],
  period: Period,
): History {
  const names = new Set(services.map((service) => service.name));
  const inPeriod = events.filter((event) => {
    const time = Date.parse(event.time);
    return time >= period.from && time <= period.to &&
      (!isChange(event) || names.has(event.service));
  });
  return {
    from: iso(period.from),
    to: iso(period.to),
    now: iso(period.now),
    services: timelines(events, services, period),
    events: inPeriod,
  };
}

/**
 * Each of `services`' timeline over `period`, from `events` in the order
 * they were written. A clock that stepped back is taken as standing still.
 */
export function timelines(
  events: readonly HistoryEvent[],
  services: readonly { name: string; cost?: Cost }[],
  period: Period,
): ServiceTimeline[] {
  const builders = new Map(services.map((service) => [service.name, new Builder(period)]));
  let clock = -Infinity;
  for (const event of events) {
    clock = Math.max(clock, Date.parse(event.time));
    if (clock > period.to) break;
    if (isChange(event)) {
      builders.get(event.service)?.change(clock, event);
    } else {
      for (const [name, builder] of builders) builder.enter(clock, event.states[name] ?? "unknown");
    }
  }
  return services.map(({ name, cost }) => builders.get(name)!.finish(name, cost));
}

/** Walks one service's events, keeping what falls in the period. */
class Builder {
  #state: State | "unknown" = "unknown";
  #since = -Infinity;
  readonly #spans: Span[] = [];
  readonly #wakes: Wake[] = [];
  readonly #stops: Stop[] = [];
  #wake?: Wake;
  #stop?: Stop;
  #asleep = 0;
  #watched = 0;
  readonly #period: Period;

  constructor(period: Period) {
    this.#period = period;
  }

  /** A change of state at `time`. */
  change(time: number, event: ChangeEvent) {
    const inPeriod = time >= this.#period.from;
    if (event.to === "starting") {
      this.#wake = { at: iso(time), cause: event.reason, ok: null, seconds: null };
      if (inPeriod) this.#wakes.push(this.#wake);
    } else if (event.from === "starting" && this.#wake) {
      this.#wake.ok = event.to === "awake";
      this.#wake.seconds = event.lasted;
      if (event.to === "awake") this.#wake.target = event.target;
      else this.#wake.error = event.reason;
      this.#wake = undefined;
    }
    if (event.from === "awake") {
      this.#stop = {
        at: iso(time),
        reason: event.stop ?? "requested",
        detail: event.reason,
        seconds: event.to === "asleep" ? 0 : null,
      };
      if (inPeriod) this.#stops.push(this.#stop);
    } else if (event.from === "stopping" && this.#stop) {
      this.#stop.seconds = event.lasted;
      this.#stop = undefined;
    }
    this.enter(time, event.to);
  }

  /** The service is in `state` from `time` on. */
  enter(time: number, state: State | "unknown") {
    if (state === this.#state) return;
    this.#close(time);
    if (state !== "starting") this.#wake = undefined;
    if (state !== "stopping") this.#stop = undefined;
    this.#state = state;
    this.#since = time;
  }

  /** The timeline, its last span ending at the period's end or now. */
  finish(name: string, cost: Cost | undefined): ServiceTimeline {
    this.#close(Math.min(this.#period.to, this.#period.now));
    const hoursAsleep = this.#asleep / 3600;
    return {
      name,
      spans: this.#spans,
      wakes: this.#wakes,
      stops: this.#stops,
      asleepSeconds: round(this.#asleep),
      watchedSeconds: round(this.#watched),
      asleepShare: this.#watched > 0 ? this.#asleep / this.#watched : null,
      cost: cost ? { ...cost, saved: round(hoursAsleep * cost.amount) } : null,
    };
  }

  /**
   * Ends the current span at `time`, keeping the part inside the period; it
   * joins the last one when they meet in the same state (a daemon restarted
   * and adopted the backend it had awake).
   */
  #close(time: number) {
    const from = Math.max(this.#since, this.#period.from);
    const to = Math.min(time, this.#period.to, this.#period.now);
    if (to <= from) return;
    const seconds = (to - from) / 1000;
    if (this.#state === "asleep") this.#asleep += seconds;
    if (this.#state !== "unknown") this.#watched += seconds;
    const last = this.#spans.at(-1);
    if (last?.state === this.#state && last.to === iso(from)) last.to = iso(to);
    else this.#spans.push({ state: this.#state, from: iso(from), to: iso(to) });
  }
}

function iso(time: number): string {
  return new Date(time).toISOString();
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
