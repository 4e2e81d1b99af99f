/**
 * Reading one value by its key's kind (`keys.ts`): booleans, ports, seconds,
 * commands, text, address lists, and `HOST:PORT`.
 *
 * @module
 */

import { parseAddressRule, splitRules } from "./address_rules.ts";
import { parseHostPattern } from "./hostnames.ts";
import type { KeyDefinition, KeyKind } from "./keys.ts";
import { parsePortMapping } from "./ports.ts";
import { parseKeepAwake } from "./schedule.ts";

/** Marks a value that could not be read; the error is already recorded. */
export const INVALID = Symbol("invalid");

/** A value read from the file, as its key's kind gives it. */
export type Value = boolean | number | string | string[] | undefined;

/** How to read the values of one kind. */
interface Reader {
  /** Completes "as it must be ..." in errors, for the kinds whose values can be wrong. */
  rule?: (key: KeyDefinition) => string;
  /** The value of `text`, or {@linkcode INVALID}. */
  read(text: string, key: KeyDefinition): Value | typeof INVALID;
  /** What exactly is wrong with `text`, when saying more than the whole value helps. */
  explain?(text: string): string | undefined;
}

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ["yes", true],
  ["true", true],
  ["1", true],
  ["no", false],
  ["false", false],
  ["0", false],
]);

const INTEGER = /^\d+$/;
const SECONDS = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const COST = /^(\d+(?:\.\d*)?|\.\d+)(?:\s+(\S{1,12}))?$/;
const SIZE = /^(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMG])(?:i?B)?|B)?$/i;

/** Bytes in one unit of a `size` value. */
const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** How each kind of key reads its values. */
export const READERS: Record<KeyKind, Reader> = {
  boolean: {
    rule: () => "yes, no, true, false, 1 or 0",
    read: (text) => BOOLEANS.get(text.trim().toLowerCase()) ?? INVALID,
  },
  port: {
    rule: () => "an integer from 1 to 65535",
    read(text) {
      const trimmed = text.trim();
      if (trimmed === "") return undefined;
      const port = Number(trimmed);
      return INTEGER.test(trimmed) && port >= 1 && port <= 65535 ? port : INVALID;
    },
  },
  seconds: {
    rule: () => "a number of seconds, 0 or more",
    read(text) {
      const trimmed = text.trim();
      if (trimmed === "") return undefined;
      return SECONDS.test(trimmed) ? Number(trimmed) : INVALID;
    },
  },
  command: {
    read(text, key) {
      const trimmed = text.trim();
      return trimmed === "" || trimmed === key.default ? undefined : text;
    },
  },
  text: { read: (text) => text.trim() || undefined },
  addresses: { read: (text) => text.trim().split(/\s+/) },
  count: {
    rule: () => "a whole number, 0 or more",
    read(text) {
      const trimmed = text.trim();
      if (trimmed === "") return undefined;
      return INTEGER.test(trimmed) ? Number(trimmed) : INVALID;
    },
  },
  rules: {
    rule: () => "IP addresses and CIDR blocks, e.g. 192.0.2.0/24 2001:db8::/32",
    read: (text) => badRule(text) === undefined ? splitRules(text) : INVALID,
    explain: badRule,
  },
  cost: {
    rule: () => "an amount, 0 or more, then an optional unit of up to 12 characters, e.g. 0.12 USD",
    read(text) {
      const match = COST.exec(text.trim());
      if (text.trim() === "") return undefined;
      return match ? [match[1], match[2] ?? ""] : INVALID;
    },
  },
  ports: {
    rule: () => "a list of LISTEN[:BACKEND][/tcp|/udp]",
    read(text) {
      const entries = text.trim().split(/\s+/).filter(Boolean);
      if (entries.length === 0) return undefined;
      return badPort(text) === undefined ? entries : INVALID;
    },
    explain: badPort,
  },
  schedule: {
    rule: () => "windows DAYS HH:MM-HH:MM separated by ;",
    read(text) {
      if (text.trim() === "") return undefined;
      return explainError(() => parseKeepAwake(text)) === undefined ? text.trim() : INVALID;
    },
    explain: (text) => explainError(() => parseKeepAwake(text)),
  },
  hostnames: {
    rule: () => "names separated by spaces, each a name, *.name or *",
    read(text) {
      const patterns = text.trim().split(/\s+/).filter(Boolean);
      if (patterns.length === 0) return undefined;
      return badHostname(text) === undefined ? patterns.map(parseHostPattern) : INVALID;
    },
    explain: badHostname,
  },
  size: {
    rule: () => "a size in bytes, or with K, M or G, e.g. 4M",
    read(text) {
      const match = SIZE.exec(text.trim());
      if (text.trim() === "") return undefined;
      if (!match) return INVALID;
      return Math.floor(Number(match[1]) * (SIZE_UNITS[match[2]?.toUpperCase()] ?? 1));
    },
  },
  bytes: {
    rule: () => "a size, more than 0, in bytes or with K, M or G, e.g. 64M",
    read(text, key) {
      const size = READERS.size.read(text, key);
      return size === 0 ? INVALID : size;
    },
  },
  choice: {
    rule: (key) => `one of ${key.choices!.join(", ")}`,
    read(text, key) {
      const trimmed = text.trim().toLowerCase();
      if (trimmed === "") return undefined;
      return key.choices!.includes(trimmed) ? trimmed : INVALID;
    },
  },
};

/** The message `read` throws, or undefined when it does not. */
function explainError(read: () => unknown): string | undefined {
  try {
    read();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Why the first entry of a port list that is not `LISTEN[:BACKEND][/PROTOCOL]` is not one. */
function badPort(text: string): string | undefined {
  for (const entry of text.trim().split(/\s+/).filter(Boolean)) {
    try {
      parsePortMapping(entry);
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

/** Why the first name of a HOSTNAMES list that is not a name, `*.name` or `*` is not one. */
function badHostname(text: string): string | undefined {
  for (const pattern of text.trim().split(/\s+/).filter(Boolean)) {
    try {
      parseHostPattern(pattern);
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

/** Why the first entry of a rule list that is not an address or CIDR block is not one. */
function badRule(text: string): string | undefined {
  for (const rule of splitRules(text)) {
    try {
      parseAddressRule(rule);
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

/**
 * The end of the error for a value its key cannot take: `as it must be RULE:
 * DETAIL`, where the detail names the wrong part, or else quotes the value.
 */
export function whyInvalid(key: KeyDefinition, text: string): string {
  const reader = READERS[key.kind];
  const detail = reader.explain?.(text) ?? `current value is "${text}"`;
  return `as it must be ${reader.rule!(key)}: ${detail}`;
}

/** Reads one value; a blank one means the key's default. */
export function readValue(
  key: KeyDefinition,
  text: string,
  isGlobal: boolean,
): Value | typeof INVALID {
  const fallback = (isGlobal ? key.globalDefault : undefined) ?? key.default;
  return READERS[key.kind].read(text.trim() === "" ? fallback : text, key);
}

/** Reads `HOST:PORT` (`[v6]:PORT` for IPv6); undefined when it is not one. */
export function parseHostPort(text: string): { hostname: string; port: number } | undefined {
  const match = /^(?:\[(?<v6>[0-9A-Fa-f:.]+)\]|(?<host>[^:\s]+)):(?<port>\d{1,5})$/.exec(
    text.trim(),
  );
  const port = Number(match?.groups?.port);
  if (!match || port < 1 || port > 65535) return undefined;
  return { hostname: match.groups!.v6 ?? match.groups!.host, port };
}
