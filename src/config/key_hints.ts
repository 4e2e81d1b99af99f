/**
 * "Did you mean" for an unknown key: the names people write for a key (from
 * other tools, or from habit) in a table, then `_COMMAND` for `_CMD`, then
 * the key a typo or two away.
 *
 * @module
 */

import { closest } from "./_closest.ts";

/** A key that a name may mean, and what that key does when there are several. */
type Meaning = string | [key: string, does: string];

/** Names that are no key, and the keys they likely mean: too far from them for {@linkcode closest}. */
const ALIASES: Record<string, readonly Meaning[]> = {
  IDLE_TIMEOUT: ["IDLE_TIME"],
  IDLE_PERIOD: ["IDLE_TIME"],
  TIMEOUT: [
    ["EXEC_CMD_TIMEOUT", "how long a command may run"],
    ["READY_TIMEOUT", "how long the backend may take to accept"],
    ["IDLE_TIME", "how long idle before STOP_CMD"],
  ],
  START_TIMEOUT: ["START_CMD_TIMEOUT"],
  STOP_TIMEOUT: ["STOP_CMD_TIMEOUT"],
  CHECK_TIMEOUT: ["CHECK_CMD_TIMEOUT"],
  READY_CMD_TIMEOUT: ["READY_TIMEOUT"],
  WAKE_TIMEOUT: ["READY_TIMEOUT"],
  STARTUP_TIMEOUT: ["READY_TIMEOUT"],
  IDLE_INTERVAL: ["IDLE_CHECK_INTERVAL"],
  CHECK_INTERVAL: ["IDLE_CHECK_INTERVAL"],
  LISTEN: ["LISTEN_ADDRESS"],
  BIND: ["LISTEN_ADDRESS"],
  BIND_ADDRESS: ["LISTEN_ADDRESS"],
  HOST: ["LISTEN_ADDRESS"],
  LISTEN_PORT: ["PORT"],
  ENABLED: ["ACTIVE"],
  ENABLE: ["ACTIVE"],
  RUN_DIR: ["VARRUN_PATH"],
  PID_FILE: ["VARRUN_PATH"],
  STATE_DIR: ["STATE_PATH"],
  WEBHOOK: ["WEBHOOK_URL"],
  METRICS: ["METRICS_ADDRESS"],
  METRICS_PORT: ["METRICS_ADDRESS"],
  MAX_CLIENTS: ["MAX_CONNECTIONS"],
};

/**
 * The end of the warning for the unknown key `name`: `did you mean
 * "START_CMD"?`, or undefined when no key is near.
 *
 * @param name the key as written, e.g. `START_COMMAND`
 * @param keys every key there is
 */
export function suggestKey(name: string, keys: Iterable<string>): string | undefined {
  const known = new Set(keys);
  const upper = name.toUpperCase();
  const meanings = (Object.hasOwn(ALIASES, upper) ? ALIASES[upper] : undefined) ??
    [upper.replaceAll("COMMAND", "CMD")].filter((key) => key !== upper && known.has(key));
  const candidates: readonly Meaning[] = meanings.length > 0
    ? meanings
    : [closest(name, known)].filter((key) => key !== undefined);
  if (candidates.length === 0) return undefined;
  const described = candidates.map((meaning) =>
    typeof meaning === "string" ? `"${meaning}"` : `"${meaning[0]}" (${meaning[1]})`
  );
  if (described.length === 1) return `did you mean ${described[0].replace(/ \(.*\)$/, "")}?`;
  return `did you mean ${described.slice(0, -1).join(", ")} or ${described.at(-1)}?`;
}
