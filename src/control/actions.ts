/**
 * What the control socket and the HTTP API may ask of a service: wake it
 * (and keep it awake a while), put it to sleep, keep it awake
 * (docs/ARCHITECTURE.md, "Wake API").
 *
 * @module
 */

import { formatTarget } from "../net/address.ts";
import type { Supervisor } from "../service/supervisor.ts";

/** One action on one service. */
export type ServiceAction =
  /** Wake it, and with `seconds`, keep it awake that long from now. */
  | { action: "wake"; service: string; seconds?: number }
  /** Stop its backend now: open connections get SHUTDOWN_GRACE, or none with `force`. */
  | { action: "sleep"; service: string; force?: boolean }
  /** No idle stop for `seconds` from now (0 ends it); it wakes nothing. */
  | { action: "keep-awake"; service: string; seconds: number };

const ACTIONS = ["wake", "sleep", "keep-awake"] as const;

/**
 * Reads an action sent over the control socket or the HTTP API.
 *
 * @throws {Error} saying what is wrong with it
 */
export function parseAction(value: unknown): ServiceAction {
  const request = value as Record<string, unknown> | null;
  if (typeof request !== "object" || request === null) throw new Error("No action was sent");
  const { action, service, seconds, force } = request;
  if (!ACTIONS.includes(action as typeof ACTIONS[number])) {
    throw new Error(`Unknown action ${JSON.stringify(action)}: try ${ACTIONS.join(", ")}`);
  }
  if (typeof service !== "string" || service === "") throw new Error("No service was named");
  if (seconds !== undefined && !(typeof seconds === "number" && seconds >= 0 && seconds < 1e9)) {
    throw new Error(`"seconds" must be a number of seconds, 0 or more: ${JSON.stringify(seconds)}`);
  }
  if (force !== undefined && typeof force !== "boolean") {
    throw new Error(`"force" must be true or false: ${JSON.stringify(force)}`);
  }
  if (action === "keep-awake" && seconds === undefined) {
    throw new Error("keep-awake needs how long, in seconds");
  }
  return request as ServiceAction;
}

/**
 * Does `request` and says what was done. `by` names who asked, for the log
 * and the history (`sleepingd wake`, `the HTTP API from 192.0.2.7`).
 *
 * @throws {Error} saying why it could not: no such service, a wake that failed
 */
export async function runAction(
  supervisor: Supervisor,
  request: ServiceAction,
  by: string,
): Promise<string> {
  const service = supervisor.service(request.service);
  const name = service.config.name;
  switch (request.action) {
    case "wake": {
      const target = await service.awakeTarget(`wake asked by ${by}`);
      const kept = keepAwake(service.whyAwake, request.seconds);
      return `${name} is awake at ${formatTarget(target)}${kept}`;
    }
    case "sleep": {
      const waking = service.state === "starting";
      await supervisor.sleep(service, request.force ?? false);
      if (service.state !== "asleep") return `${name} was put to sleep; a client woke it again`;
      return `${name} is asleep${waking ? " (the wake under way was cancelled)" : ""}`;
    }
    case "keep-awake":
      return `${name} is ${service.state}${
        keepAwake(service.whyAwake, request.seconds) || ", not kept awake"
      }`;
  }
}

/** Keeps a service awake `seconds` from now (0: no more); returns how it reads. */
function keepAwake(why: { keepAwakeUntil(until: number): void }, seconds?: number): string {
  if (seconds === undefined) return "";
  const until = seconds > 0 ? Date.now() + seconds * 1000 : 0;
  why.keepAwakeUntil(until);
  return until ? `, kept awake until ${new Date(until).toISOString()}` : "";
}
