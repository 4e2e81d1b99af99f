/**
 * The bench's command line:
 * `deno task bench [--quick] [--only a,b] [--skip part,...] [--json FILE] [--help]`.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Every variant the bench knows, in the order of its tables. */
export const VARIANT_NAMES = [
  "direct",
  "sleepingd",
  "sleepingd-kernel",
  "socat",
  "haproxy",
  "systemd-socket-proxyd",
  "seed",
] as const;

/** One way to reach the backend: straight, or through one of the proxies. */
export type VariantName = typeof VARIANT_NAMES[number];

/** The parts of the bench, in the order they run; `--skip` leaves some out. */
export const PART_NAMES = [
  "client",
  "iperf3",
  "udp",
  "redis",
  "wrk",
  "kernel",
  "memory",
  "wake",
] as const;

/** One part of the bench: a group of tables or rows. */
export type PartName = typeof PART_NAMES[number];

/** Where the results go unless `--json` says otherwise: next to the bench, gitignored. */
export const DEFAULT_JSON = new URL("./results.json", import.meta.url).pathname;

/** What the command line asks for. */
export interface BenchOptions {
  /** Smaller transfers, fewer connections, shorter and fewer runs. */
  quick: boolean;
  /** The variants to measure; `direct` is always among them, as the reference. */
  variants: VariantName[];
  /** The parts to run, in order. */
  parts: PartName[];
  /** The file the results are written to as JSON. */
  json: string;
  /** `KEY=VALUE` lines added to the global section of every sleepingd the bench runs. */
  sleepingdSettings: string[];
  /** Print the usage and do nothing else. */
  help: boolean;
}

/** The usage text of `deno task bench`. */
export const USAGE =
  `Usage: deno task bench [--quick] [--only VARIANT,...] [--skip PART,...] [--json FILE]
                       [--sleepingd KEY=VALUE]...

Measures sleepingd against a direct connection and other TCP proxies, with the
bench's own client and with real clients and servers, and prints ratios.

  --quick         smaller and fewer runs: under 2 minutes (the full run: under 10)
  --only LIST     variants to measure, comma separated, of:
                    ${VARIANT_NAMES.join(", ")}
                  (direct is always measured: every ratio needs it)
  --skip LIST     parts to leave out, comma separated, of:
                    client   the bench's own client: throughput, echo, connection rate, concurrency
                    iperf3   iperf3 throughput, 1 and 4 streams
                    udp      iperf3 -u loss at 100, 200, 500 Mbit/s; 64-byte packets/s
                    redis    redis-benchmark GET, pipelined GET, ping-pong latency
                    wrk      wrk against nginx: new connections/s, keep-alive requests/s
                    kernel   FORWARD=kernel: iperf3 (TCP, UDP), redis-benchmark and wrk on
                             three hosts in network namespaces (root, nftables, conntrack),
                             both paths
                    memory   idle memory per connection, memory after a burst, leak test
                    wake     wake overhead, 1000 clients in one wake
  --json FILE     where to write every number as JSON (default: bench/results.json)
  --sleepingd KEY=VALUE
                  a setting for the global section of every sleepingd the bench
                  runs (repeatable), e.g. --sleepingd LOG_CONNECTIONS=no
  -h, --help      print this help`;

/**
 * Parses the bench's arguments.
 *
 * @throws {Error} on an unknown flag, variant or part name
 */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      skip: { type: "string" },
      json: { type: "string", default: DEFAULT_JSON },
      sleepingd: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const asked = values.only === undefined
    ? [...VARIANT_NAMES]
    : list(values.only, VARIANT_NAMES, "variant");
  const skipped = values.skip === undefined ? [] : list(values.skip, PART_NAMES, "part");
  return {
    quick: values.quick,
    variants: VARIANT_NAMES.filter((name) => name === "direct" || asked.includes(name)),
    parts: PART_NAMES.filter((name) => !skipped.includes(name)),
    json: values.json,
    sleepingdSettings: values.sleepingd.map(setting),
    help: values.help,
  };
}

/** A `--sleepingd` value, checked to be `KEY=VALUE`. */
function setting(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) {
    throw new Error(`--sleepingd ${text}: expected KEY=VALUE, e.g. LOG_CONNECTIONS=no`);
  }
  return text;
}

/** The names of a comma-separated list, each one of `known`, which are `what`s. */
function list<T extends string>(text: string, known: readonly T[], what: string): T[] {
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  const unknown = names.filter((name) => !(known as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown ${what} ${unknown.join(", ")}; known: ${known.join(", ")}`);
  }
  return names as T[];
}
