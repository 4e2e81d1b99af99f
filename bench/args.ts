/**
 * The bench's command line: `deno task bench [--quick] [--only a,b] [--help]`.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Every variant the bench knows, in the order of its tables. */
export const VARIANT_NAMES = ["direct", "sleepingd", "socat", "haproxy"] as const;

/** One way to reach the backend: straight, or through one of the proxies. */
export type VariantName = typeof VARIANT_NAMES[number];

/** What the command line asks for. */
export interface BenchOptions {
  /** Smaller transfers and fewer connections, for a run of a few seconds per table. */
  quick: boolean;
  /** The variants to measure; `direct` is always among them, as the reference. */
  variants: VariantName[];
  /** Print the usage and do nothing else. */
  help: boolean;
}

/** The usage text of `deno task bench`. */
export const USAGE = `Usage: deno task bench [--quick] [--only VARIANT,...]

Measures sleepingd's data path against a direct connection, socat and haproxy,
all in front of the same local echo/sink backend, and prints ratios.

  --quick         smaller transfers and fewer connections (about a quarter of the time)
  --only LIST     variants to measure, comma separated, of: ${VARIANT_NAMES.join(", ")}
                  (direct is always measured: every ratio needs it)
  -h, --help      print this help`;

/**
 * Parses the bench's arguments.
 *
 * @throws {Error} on an unknown flag or variant name
 */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  let variants: VariantName[] = [...VARIANT_NAMES];
  if (values.only !== undefined) {
    const asked = values.only.split(",").map((name) => name.trim()).filter((name) => name !== "");
    const unknown = asked.filter((name) => !(VARIANT_NAMES as readonly string[]).includes(name));
    if (unknown.length > 0) {
      throw new Error(`unknown variant ${unknown.join(", ")}; known: ${VARIANT_NAMES.join(", ")}`);
    }
    variants = VARIANT_NAMES.filter((name) => name === "direct" || asked.includes(name));
  }
  return { quick: values.quick, variants, help: values.help };
}
