/**
 * The names a service answers to on a port shared by name (`HOSTNAMES`):
 * reading the patterns, and finding which one a client's name matches
 * (docs/ARCHITECTURE.md, "Ports shared by name").
 *
 * A pattern is a name (`app.example.com`), a wildcard (`*.example.com`:
 * any name that ends in `.example.com`, at any depth, but not
 * `example.com` itself), or `*` alone: the default, for every name no other
 * pattern takes and for clients that send no name. The most specific pattern
 * wins: a name over any wildcard, a longer wildcard over a shorter one.
 *
 * @module
 */

/** The pattern that takes every name no other takes, and clients without a name. */
export const DEFAULT_PATTERN = "*";

/** A DNS label as sleepingd takes it: letters, digits, `-` and `_`, 1 to 63 of them. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** The longest name DNS allows, in characters without the trailing dot. */
const MAX_NAME_LENGTH = 253;

/**
 * Reads one pattern of `HOSTNAMES`, lowercased and without a trailing dot.
 *
 * @throws {Error} saying what is wrong with it
 */
export function parseHostPattern(text: string): string {
  const pattern = text.toLowerCase().replace(/\.$/, "");
  if (pattern === DEFAULT_PATTERN) return pattern;
  const name = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  if (name.includes("*")) {
    throw new Error(
      `"${text}" is not a name: a * stands alone or as the whole first label (*.example.com)`,
    );
  }
  if (/[^\x21-\x7e]/.test(name)) {
    throw new Error(`"${text}" is not a name: write international names in punycode (xn--...)`);
  }
  if (normalizeHostname(name) === undefined) {
    throw new Error(
      `"${text}" is not a name: labels of letters, digits, - and _, separated by dots`,
    );
  }
  return pattern;
}

/**
 * A name a client sent (TLS SNI, HTTP Host without its port), lowercased and
 * without a trailing dot; undefined when it is not a DNS name (an IPv6
 * literal, a stray character), which no pattern matches.
 */
export function normalizeHostname(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, "");
  if (lower.length === 0 || lower.length > MAX_NAME_LENGTH) return undefined;
  return lower.split(".").every((label) => LABEL.test(label)) ? lower : undefined;
}

/** What a name matched: the pattern, as configured, and what it leads to. */
export interface HostMatch<T> {
  /** The pattern that matched, e.g. `*.preview.example.com` or `*`. */
  pattern: string;
  /** What the pattern leads to (a service). */
  value: T;
}

/** Patterns and what each leads to, looked up by the most specific match. */
export class HostTable<T> {
  readonly #exact = new Map<string, T>();
  /** Wildcards by the suffix after `*.`. */
  readonly #wildcards = new Map<string, T>();
  #default?: T;

  /**
   * Adds a pattern (as {@linkcode parseHostPattern} reads it).
   *
   * @returns false when the pattern is taken already (and leaves it as it was)
   */
  add(pattern: string, value: T): boolean {
    if (pattern === DEFAULT_PATTERN) {
      if (this.#default !== undefined) return false;
      this.#default = value;
      return true;
    }
    const [map, key] = pattern.startsWith("*.")
      ? [this.#wildcards, pattern.slice(2)]
      : [this.#exact, pattern];
    if (map.has(key)) return false;
    map.set(key, value);
    return true;
  }

  /** What `pattern` itself leads to, if it was added. */
  get(pattern: string): T | undefined {
    if (pattern === DEFAULT_PATTERN) return this.#default;
    return pattern.startsWith("*.")
      ? this.#wildcards.get(pattern.slice(2))
      : this.#exact.get(pattern);
  }

  /** What `*` leads to, if any pattern is `*`. */
  get default(): T | undefined {
    return this.#default;
  }

  /**
   * The most specific pattern `name` matches (a name {@linkcode normalizeHostname}
   * made), not counting `*`: a name over any wildcard, a longer wildcard over a
   * shorter one.
   */
  match(name: string): HostMatch<T> | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined) return { pattern: name, value: exact };
    for (let dot = name.indexOf("."); dot >= 0; dot = name.indexOf(".", dot + 1)) {
      const suffix = name.slice(dot + 1);
      const value = this.#wildcards.get(suffix);
      if (value !== undefined) return { pattern: `*.${suffix}`, value };
    }
    return undefined;
  }
}
