/**
 * Events for the world outside: each service's wake, ready, wake_failed,
 * idle_stop and stop, given to its ON_EVENT_CMD and POSTed to its
 * WEBHOOK_URL, in order, with bounded tries and time, never holding up the
 * life cycle (docs/ARCHITECTURE.md, "Events").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatTarget, type Target } from "../net/address.ts";
import { targetEnv } from "../service/commands.ts";
import { describeResult, runShell } from "../process/run_shell.ts";
import type { Change } from "../service/lifecycle.ts";
import { sleep } from "../timers.ts";
import { VERSION } from "../version.ts";

/** What happened to a service. */
export type EventName = "wake" | "ready" | "wake_failed" | "idle_stop" | "stop";

/** One event, as the webhook's JSON body carries it. */
export interface ServiceEvent {
  /** What happened. */
  event: EventName;
  /** The service's name. */
  service: string;
  /** ISO time. */
  time: string;
  /** Why, in words: the wake's cause, the failure, the stop's detail. */
  reason: string;
  /** The backend's `host:port`, when known. */
  target: string | null;
  /** Seconds the wake took (`ready`, `wake_failed`) or STOP_CMD took (`stop`). */
  seconds: number | null;
  /** Why the backend stopped (`idle_stop`, `stop`): `idle`, `requested`, `shutdown`... */
  stopReason: string | null;
}

/** Tries per event and destination. */
const TRIES = 3;
/** Seconds an ON_EVENT_CMD try may take when no EXEC_CMD_TIMEOUT says otherwise. */
const COMMAND_SECONDS = 10;
/** Milliseconds a webhook try may take. */
const WEBHOOK_MS = 5_000;
/** Events that may wait per service; past it, new ones are dropped and said. */
const PENDING_LIMIT = 100;

/** The event a change of state is, if it is one; `target` is the backend's, when known. */
export function eventOf(
  service: string,
  change: Change,
  target?: Target,
): ServiceEvent | undefined {
  const name: EventName | undefined = change.to === "starting"
    ? "wake"
    : change.from === "starting" && change.to === "awake"
    ? "ready"
    : change.from === "starting"
    ? "wake_failed"
    : change.from === "awake" && change.to === "stopping" && change.stopReason === "idle"
    ? "idle_stop"
    : change.to === "asleep" && (change.from === "stopping" || change.from === "awake")
    ? "stop"
    : undefined;
  if (name === undefined) return undefined;
  return {
    event: name,
    service,
    time: new Date().toISOString(),
    reason: change.reason,
    target: target ? formatTarget(target) : null,
    seconds: name === "ready" || name === "wake_failed" || name === "stop" ? change.lasted : null,
    stopReason: name === "idle_stop" || name === "stop" ? change.stopReason ?? null : null,
  };
}

/** Sends events to each service's ON_EVENT_CMD and WEBHOOK_URL, in order per service. */
export class Notifier {
  readonly #queues = new Map<string, { tail: Promise<void>; pending: number }>();
  readonly #log = log("events");

  /**
   * Queues `event` (of the backend at `target`, when known) for the
   * destinations `config` names; returns at once.
   */
  notify(config: ServiceConfig, event: ServiceEvent, target?: Target): void {
    if (!config.onEventCmd && !config.webhookUrl) return;
    const queue = this.#queues.get(config.name) ?? { tail: Promise.resolve(), pending: 0 };
    this.#queues.set(config.name, queue);
    if (queue.pending >= PENDING_LIMIT) {
      this.#log.warn("[{service}] dropped the {event} event: {count} events wait already", {
        service: config.name,
        event: event.event,
        count: queue.pending,
      });
      return;
    }
    queue.pending++;
    queue.tail = queue.tail.then(() => this.#deliver(config, event, target)).finally(() => {
      queue.pending--;
    });
  }

  /** Waits for the events under way, up to `ms` (at shutdown: the last stops go out). */
  async settled(ms: number): Promise<void> {
    const all = Promise.all([...this.#queues.values()].map((queue) => queue.tail));
    await Promise.race([all, sleep(ms)]);
  }

  async #deliver(config: ServiceConfig, event: ServiceEvent, target: Target | undefined) {
    const sends: Promise<void>[] = [];
    if (config.onEventCmd) {
      const spec = config.onEventCmd;
      sends.push(this.#tries(config.name, event, "ON_EVENT_CMD", async () => {
        const result = await runShell(spec.text, {
          timeout: spec.timeout ?? COMMAND_SECONDS,
          env: eventEnv(config, event, target),
          user: config.user,
          passEnv: config.passEnv,
        });
        if (result.code !== 0) throw new Error(describeResult(result));
      }));
    }
    if (config.webhookUrl) {
      const url = config.webhookUrl;
      sends.push(this.#tries(config.name, event, "WEBHOOK_URL", async () => {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": `sleepingd/${VERSION}` },
          body: JSON.stringify(event),
          signal: AbortSignal.timeout(WEBHOOK_MS),
          // A redirect would send the event, and what it says, wherever the answer points.
          redirect: "manual",
        });
        await response.body?.cancel();
        if (response.status >= 300 && response.status < 400) {
          const to = response.headers.get("location") ?? "nowhere";
          throw new Error(`HTTP ${response.status} to ${to}: redirects are not followed`);
        }
        if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
      }));
    }
    await Promise.all(sends);
  }

  /** Tries `send` up to {@linkcode TRIES} times, 1 s then 2 s apart; logs the outcome. */
  async #tries(service: string, event: ServiceEvent, key: string, send: () => Promise<void>) {
    for (let attempt = 1;; attempt++) {
      try {
        await send();
        this.#log.debug("[{service}] {key} took the {event} event", {
          service,
          key,
          event: event.event,
        });
        return;
      } catch (error) {
        const reason = (error as Error).message;
        if (attempt >= TRIES) {
          this.#log.warn("[{service}] {key} failed the {event} event {tries} times: {reason}", {
            service,
            key,
            event: event.event,
            tries: TRIES,
            reason,
          });
          return;
        }
        this.#log.debug("[{service}] {key} failed the {event} event: {reason}; trying again", {
          service,
          key,
          event: event.event,
          reason,
        });
        await sleep(1000 * attempt);
      }
    }
  }
}

/** ON_EVENT_CMD's environment: the event, and the service's usual variables. */
function eventEnv(
  config: ServiceConfig,
  event: ServiceEvent,
  target: Target | undefined,
): Record<string, string> {
  const env: Record<string, string> = {
    SLEEPINGD_EVENT: event.event,
    SLEEPINGD_SERVICE: config.name,
    SLEEPINGD_PORT: String(config.port),
    SLEEPINGD_REASON: event.reason,
    SLEEPINGD_TIME: event.time,
  };
  if (target) Object.assign(env, targetEnv(target));
  if (event.seconds !== null) env.SLEEPINGD_SECONDS = String(event.seconds);
  if (event.stopReason !== null) env.SLEEPINGD_STOP_REASON = event.stopReason;
  return env;
}
