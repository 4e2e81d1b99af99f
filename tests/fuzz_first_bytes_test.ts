/**
 * Property-based tests of the first bytes of a port routed by name: random
 * bytes, TLS-looking and HTTP-looking garbage, valid ClientHellos with random
 * names, extensions and record sizes, and valid ones with a byte changed.
 * The reader never throws, says the same whatever the segmentation, finds
 * every valid name, and never reads past its bound; and over real sockets, a
 * port shared by name refuses malformed first bytes cleanly (an HTTP answer
 * or a close, counted), wakes nothing for them, and goes on routing.
 *
 * fast-check prints the seed and the shrunk counterexample of a failure;
 * rerun it with `fc.assert(..., { seed, path })`.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type FirstBytesOutcome,
  FirstBytesReader,
  readFirstBytes,
} from "../src/net/first_bytes.ts";
import type { Config } from "../src/config/types.ts";
import { Metrics } from "../src/control/metrics.ts";
import { Supervisor } from "../src/service/supervisor.ts";
import { bounded } from "./_helpers.ts";
import { freePort, isAlive, readAll, text, writeAll } from "./_net.ts";
import {
  command,
  globalConfig,
  serviceConfig,
  startEchoBackend,
  stopEchoBackend,
} from "./_service.ts";
import { helloMessage, inRecords } from "./_tls.ts";

const KINDS = new Set(["tls", "http", "other", "malformed", "too-long"]);

/** What the reader says of `bytes` fed in the pieces that `cuts` (ascending offsets) make. */
function readInPieces(bytes: Uint8Array, cuts: number[]): FirstBytesOutcome | undefined {
  const reader = new FirstBytesReader();
  for (const end of [...cuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length]) {
    const outcome = reader.update(bytes.subarray(0, end));
    if (outcome) return outcome;
  }
  return undefined;
}

/** Offsets to cut a buffer at: any, sorted. */
const cuts = fc.array(fc.nat({ max: 40_000 }), { maxLength: 12 }).map((list) =>
  [...new Set(list)].sort((a, b) => a - b)
);

/** A DNS name: 1 to 4 labels of letters, digits and hyphens. */
const dnsName = fc.array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/), {
  minLength: 1,
  maxLength: 4,
}).map((labels) => labels.join("."));

/** Extensions other than server_name, with their data. */
const extensions = fc.array(
  fc.tuple(fc.integer({ min: 1, max: 65_000 }), fc.uint8Array({ maxLength: 600 })),
  { maxLength: 5 },
);

/** A valid ClientHello with a name, in records of a random size. */
const validHello = fc.record({
  name: dnsName,
  before: extensions,
  after: extensions,
  recordSize: fc.integer({ min: 1, max: 16_384 }),
}).map(({ name, before, after, recordSize }) => ({
  name,
  bytes: inRecords(helloMessage({ name, before, after }), recordSize),
}));

/** Bytes that look like the start of TLS, HTTP, or nothing in particular. */
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc.uint8Array({ maxLength: 3000 }).map((rest) => Uint8Array.of(0x16, 3, 1, ...rest)),
  fc.string({ unit: fc.constantFrom(..."GET HTTP/1.1\r\n:Host aA.*[]0\t\0"), maxLength: 400 })
    .map((line) => new TextEncoder().encode(line)),
  fc.tuple(
    fc.constantFrom("GET / HTTP/1.1\r\n", "GET / HTTP/1.0\r\n"),
    fc.string({ maxLength: 300 }),
  )
    .map(([start, rest]) => new TextEncoder().encode(start + rest)),
);

Deno.test("fuzz: the reader never throws and says the same whatever the segmentation", () => {
  fc.assert(
    fc.property(garbage, cuts, cuts, (bytes, some, others) => {
      const a = readInPieces(bytes, some);
      const b = readInPieces(bytes, others);
      assert.deepEqual(a, b);
      if (a) assert.ok(KINDS.has(a.kind), a.kind);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("fuzz: every valid ClientHello gives its name, in any records and segments", () => {
  fc.assert(
    fc.property(validHello, cuts, ({ name, bytes }, pieces) => {
      assert.deepEqual(readInPieces(bytes, pieces), { kind: "tls", name });
    }),
    { numRuns: 500 },
  );
});

Deno.test("fuzz: a valid ClientHello with a byte changed never throws", () => {
  fc.assert(
    fc.property(
      validHello,
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      cuts,
      (hello, at, value, pieces) => {
        const bytes = hello.bytes.slice();
        bytes[at % bytes.length] = value;
        const outcome = readInPieces(bytes, pieces);
        assert.deepEqual(outcome, readInPieces(bytes, []));
        if (outcome) assert.ok(KINDS.has(outcome.kind), outcome.kind);
      },
    ),
    { numRuns: 1500 },
  );
});

/**
 * A connection made of `bytes`, delivered in `chunks` sizes, then endless
 * (a stalling client) or closed. Each read must fit the bound: the room it
 * offers is checked against what is left of it.
 */
function source(bytes: Uint8Array, chunks: number[], max: number, endless: boolean) {
  let at = 0;
  let turn = 0;
  const state = { consumed: 0, overreach: 0 };
  return {
    state,
    read(buffer: Uint8Array): Promise<number | null> {
      if (buffer.length > max - state.consumed) state.overreach++;
      if (at >= bytes.length) {
        return endless ? Promise.resolve(fill(buffer)) : Promise.resolve(null);
      }
      const size = Math.max(1, chunks[turn++ % chunks.length] ?? 1);
      const n = Math.min(size, buffer.length, bytes.length - at);
      buffer.set(bytes.subarray(at, at + n));
      at += n;
      state.consumed += n;
      return Promise.resolve(n);
    },
  };
  function fill(buffer: Uint8Array): number {
    const n = Math.min(buffer.length, 512);
    buffer.fill(0x61, 0, n); // "a": a header line that never ends
    state.consumed += n;
    return n;
  }
}

Deno.test("fuzz: readFirstBytes() never throws and never reads past its bound", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(garbage, validHello.map((hello) => hello.bytes)),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 64, max: 40_000 }),
      fc.boolean(),
      async (bytes, chunks, max, endless) => {
        const conn = source(bytes, chunks, max, endless);
        const first = await readFirstBytes(conn, { timeoutMs: 10_000, maxBytes: max });
        assert.equal(conn.state.overreach, 0, "a read offered room past the bound");
        assert.ok(first.bytes.length <= max);
        assert.equal(first.bytes.length, conn.state.consumed);
        // What was read is what was sent, in order: the bytes, then the endless "a"s.
        const sent = new Uint8Array(Math.max(bytes.length, first.bytes.length)).fill(0x61);
        sent.set(bytes);
        assert.deepEqual(first.bytes, sent.subarray(0, first.bytes.length));
        assert.ok(KINDS.has(first.outcome.kind) || first.outcome.kind === "closed");
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("fuzz: a shared port refuses malformed first bytes cleanly, wakes nothing, and goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fuzz-" });
  const port = freePort();
  const config: Config = {
    files: ["fuzz.conf"],
    global: globalConfig(dir, { shutdownGrace: 1, hostnameTimeout: 2 }),
    services: [serviceConfig({
      name: "known",
      port,
      wakeOn: "data",
      hostnames: ["known.test"],
      startCmd: command(startEchoBackend(dir, freePort())),
      stopCmd: command(stopEchoBackend(dir)),
    })],
    inactive: [],
    warnings: [],
  };
  const metrics = new Metrics();
  const supervisor = new Supervisor(config, metrics);
  await supervisor.listen();
  const unrouted = () =>
    [...supervisor.sharedPorts.counts.unrouted.values()].flatMap((counts) => [...counts.values()])
      .reduce((sum, count) => sum + count, 0);
  try {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(garbage.filter((bytes) => bytes.length > 0), async (bytes) => {
        cases++;
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await writeAll(conn, bytes).catch(() => {});
          await conn.closeWrite().catch(() => {});
          const answer = await bounded(readAll(conn), "sleepingd to close", 10);
          // An answer is an HTTP one (no name known, malformed, too long) or a TLS alert.
          if (answer.length > 0 && answer[0] === 0x15) {
            assert.deepEqual([...answer], [0x15, 3, 1, 0, 2, 2, 0x70]);
          } else if (answer.length > 0) {
            assert.match(text(answer), /^HTTP\/1\.1 4(00|21|31) /);
          }
        } finally {
          conn.close();
        }
      }),
      { numRuns: 60 },
    );
    assert.equal(unrouted(), cases, "every connection counted, none routed");
    assert.equal(supervisor.services[0].stats.totalConnections, 0, "nothing woke");
    // And the port still routes.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const request = "GET / HTTP/1.1\r\nHost: known.test\r\n\r\n";
    await writeAll(conn, new TextEncoder().encode(request));
    await conn.closeWrite();
    assert.equal(text(await bounded(readAll(conn), "the echo")), request);
    conn.close();
  } finally {
    await supervisor.shutdown();
    try {
      const pid = Number(Deno.readTextFileSync(`${dir}/backend.pid`));
      if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    } catch {
      // No backend.
    }
    await Deno.remove(dir, { recursive: true });
  }
});
