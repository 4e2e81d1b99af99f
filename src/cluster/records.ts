/**
 * What the instances write in etcd, and reading it back as something anyone
 * who can write etcd may have forged: each value is checked field by field,
 * and one that is not what an instance writes is skipped, with one warning
 * per key (docs/ARCHITECTURE.md, "Several instances").
 *
 * @module
 */

import { log } from "../log.ts";
import { parseTarget, type Target } from "../net/address.ts";

/** A service's state as the instances share it (`services/NAME/state`). */
export interface SharedState {
  /** `awake` (with its target) or `asleep`. */
  state: "awake" | "asleep";
  /** `IP PORT`, as START_CMD prints it, when awake. */
  target?: string;
  /** The instance that wrote it. */
  by: string;
  /** Epoch milliseconds when it was written. */
  at: number;
}

/** What an instance publishes of one service each second (`services/NAME/busy/ID`). */
export interface Busy {
  /** Its open connections and UDP flows. */
  open: number;
  /** Epoch milliseconds of its last activity. */
  lastActivity: number;
  /** Its state of the service; absent from older instances' records. */
  state?: "asleep" | "starting" | "awake" | "stopping";
}

/** An instance's record (`instances/ID`). */
export interface InstanceRecord {
  /** ISO time it joined. */
  since: string;
  /** Set once it shuts down: it no longer looks after any backend. */
  leaving?: boolean;
}

/** The most characters of a value shown in a warning. */
const SHOWN = 120;
/** The most malformed keys remembered as said: past it, they are all said again once. */
const REMEMBERED = 1_000;

const STATES = ["asleep", "starting", "awake", "stopping"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The shared state in `text`, or why it is not one. */
export function readState(text: string): SharedState | string {
  const value = parseJson(text);
  if (!isObject(value)) return "not a JSON object";
  const { state, target, by, at } = value;
  if (state !== "awake" && state !== "asleep") return "its state is neither awake nor asleep";
  if (typeof by !== "string" || by === "") return "it names no instance";
  if (typeof at !== "number" || !Number.isFinite(at)) return "it has no time";
  if (state === "awake") {
    if (typeof target !== "string") return "awake without a target";
    try {
      parseTarget(target);
    } catch (error) {
      return `its target: ${(error as Error).message}`;
    }
  }
  return { state, by, at, ...(state === "awake" ? { target: target as string } : {}) };
}

/** The busy record in `text`, or why it is not one. */
export function readBusy(text: string): Busy | string {
  const value = parseJson(text);
  if (!isObject(value)) return "not a JSON object";
  const { open, lastActivity, state } = value;
  if (!Number.isSafeInteger(open) || (open as number) < 0) return "its open count is not a count";
  if (typeof lastActivity !== "number" || !Number.isFinite(lastActivity)) {
    return "its last activity is not a time";
  }
  if (state !== undefined && !STATES.includes(state as string)) return "its state is unknown";
  return {
    open: open as number,
    lastActivity,
    ...(state === undefined ? {} : { state: state as Busy["state"] }),
  };
}

/** The instance record in `text`, or why it is not one. */
export function readInstance(text: string): InstanceRecord | string {
  const value = parseJson(text);
  if (!isObject(value) || typeof value.since !== "string") return "it has no join time";
  return { since: value.since, ...(value.leaving === true ? { leaving: true } : {}) };
}

/** The target of an awake shared state. */
export function targetOf(shared: SharedState): Target | undefined {
  return shared.target === undefined ? undefined : parseTarget(shared.target);
}

/** Skips values that are not what an instance writes, saying so once per key and value. */
export class MalformedValues {
  /** The malformed value last reported, by key. */
  readonly #reported = new Map<string, string>();
  readonly #log = log("cluster");

  /**
   * Reads `value` of `key` with `read`: the record, or undefined (skipped,
   * with a warning the first time this key holds this value).
   */
  read<T>(key: string, value: string, read: (text: string) => T | string): T | undefined {
    const record = read(value);
    if (typeof record !== "string") {
      this.#reported.delete(key);
      return record;
    }
    if (this.#reported.get(key) !== value) {
      if (this.#reported.size >= REMEMBERED) this.#reported.clear();
      this.#reported.set(key, value);
      this.#log.warn("skipping etcd key {key}: {why}: {value}", {
        key,
        why: record,
        value: value.length > SHOWN ? `${value.slice(0, SHOWN)}...` : value,
      });
    }
    return undefined;
  }
}
