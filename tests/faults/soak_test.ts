/**
 * A soak test: thousands of clients in waves through one service whose echo
 * backend is stopped when idle and woken again many times while the load
 * runs. Each client sends a random amount (0 bytes to 4 MiB, mostly small) and
 * behaves in one of three ways: it half-closes after sending and reads the
 * echo to EOF; it interleaves writes with reads of their echo; or it gives up
 * early (closes) and only what came back counts. Every stream is compared
 * byte by byte and by SHA-256 with what was sent.
 *
 * Replay a run with `SOAK_SEED=<seed>` (printed first); `SOAK_SECONDS` sets
 * how long waves are started (32 s by default; the test ends a few seconds
 * later); `SOAK_VERBOSE=1` prints a line per wave; `SOAK_LOG=<file>` keeps
 * the service's whole log there. The summary line shows
 * without `--quiet` (which hides a test's output); a failure's message holds
 * the seed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { captureLog, type Harness, startHarness } from "../_service.ts";
import { writeAll } from "../_net.ts";
import { bounded, waitFor } from "../_helpers.ts";

/** How long waves keep being started. */
const SOAK_SECONDS = Number(Deno.env.get("SOAK_SECONDS") || 32);
/** The seed of every random choice: the waves, and each client's plan. */
const SEED = Deno.env.get("SOAK_SEED")
  ? Number(Deno.env.get("SOAK_SEED")) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
/** Whether to print a line per wave (`SOAK_VERBOSE=1`). */
const VERBOSE = Boolean(Deno.env.get("SOAK_VERBOSE"));
/** Where to keep the service's whole log (`SOAK_LOG=<file>`); nowhere by default. */
const LOG_FILE = Deno.env.get("SOAK_LOG");
/** A bound per connection, from connect to close (a bound against hangs, not a speed assertion). */
const CONNECTION_TIMEOUT_S = 20;
/** IDLE_TIME and IDLE_CHECK_INTERVAL of the service: short, so that pauses between waves stop it. */
const IDLE_TIME_S = 0.3;
const IDLE_CHECK_INTERVAL_S = 0.1;

const KiB = 1024;
const MiB = 1024 * KiB;
/** The largest stream a client sends. */
const MAX_STREAM = 4 * MiB;
/** The largest stream a client that waits for each echo sends (it takes many round trips). */
const MAX_INTERLEAVED_STREAM = 1 * MiB;

/** A small seeded generator (splitmix32): the same seed gives the same choices. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed | 0;
  }

  /** A 32-bit unsigned integer. */
  u32(): number {
    this.#state = (this.#state + 0x9e3779b9) | 0;
    let t = this.#state ^ (this.#state >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    t ^= t >>> 15;
    return t >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** An integer in [min, max], log-uniform: as many below 10×min as from 10×min to 100×min. */
  logInt(min: number, max: number): number {
    const value = Math.floor(Math.exp(Math.log(min) + this.next() * Math.log((max + 1) / min)));
    return Math.min(max, Math.max(min, value));
  }

  /** One of `choices`, by weight. */
  pick<T>(choices: [weight: number, value: T][]): T {
    let left = this.next() * choices.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, value] of choices) {
      left -= weight;
      if (left < 0) return value;
    }
    return choices[choices.length - 1][1];
  }

  /** An independent generator for the `index`th thing this one seeds. */
  fork(index: number): Random {
    const mixer = new Random((this.#state ^ Math.imul(index + 1, 0x85ebca6b)) | 0);
    return new Random(mixer.u32());
  }
}

/**
 * What every client sends: stream i is `POOL[offset .. offset + size)`, so
 * what comes back is checked against the pool without keeping what was sent.
 */
const POOL_BYTES = 16 * MiB;
const POOL = (() => {
  const pool = new Uint8Array(POOL_BYTES + MAX_STREAM);
  const words = new Uint32Array(pool.buffer);
  const random = new Random(SEED ^ 0x5eed);
  for (let i = 0; i < words.length; i++) words[i] = random.u32();
  return pool;
})();

/** How a client behaves. */
type Behaviour = "half-close" | "interleave" | "give-up";

/** One client's plan, all drawn from its own seeded generator. */
interface Plan {
  /** Its number in the run. */
  id: number;
  behaviour: Behaviour;
  /** Bytes it means to send. */
  size: number;
  /** Where its bytes start in the pool. */
  offset: number;
  /** The largest single write (or, interleaving, the largest step). */
  maxWrite: number;
  /** Its read buffer. */
  readBuffer: number;
  /** Whether it reads slowly (short pauses between reads): the proxy must hold back. */
  slow: boolean;
  /** For `give-up`: after how many bytes sent or received, or milliseconds, it closes. */
  giveUp?: { after: "sent" | "received" | "ms"; at: number };
  /** Seeds of the writer's and the reader's own generators (they run concurrently). */
  writerSeed: number;
  readerSeed: number;
}

/** A stream size: a tenth empty, then mostly small, a few up to 4 MiB. */
function drawSize(random: Random): number {
  const range = random.pick<[number, number]>([
    [10, [0, 0]],
    [35, [1, KiB]],
    [30, [KiB, 64 * KiB]],
    [17, [64 * KiB, 512 * KiB]],
    [8, [512 * KiB, MAX_STREAM]],
  ]);
  return range[1] === 0 ? 0 : random.logInt(range[0], range[1]);
}

function drawPlan(id: number, random: Random): Plan {
  const behaviour = random.pick<Behaviour>([
    [45, "half-close"],
    [30, "interleave"],
    [25, "give-up"],
  ]);
  let size = drawSize(random);
  if (behaviour === "interleave") size = Math.min(size, MAX_INTERLEAVED_STREAM);
  const plan: Plan = {
    id,
    behaviour,
    size,
    offset: random.int(0, POOL_BYTES - 1),
    maxWrite: random.logInt(KiB, behaviour === "interleave" ? 64 * KiB : 256 * KiB),
    readBuffer: random.pick([[1, 4 * KiB], [2, 16 * KiB], [2, 64 * KiB]]),
    slow: size <= 512 * KiB && random.next() < 0.1,
    writerSeed: random.u32(),
    readerSeed: random.u32(),
  };
  if (behaviour === "give-up") {
    const after = random.pick<"sent" | "received" | "ms">([
      [2, "sent"],
      [2, "received"],
      [1, "ms"],
    ]);
    plan.giveUp = { after, at: after === "ms" ? random.int(0, 300) : random.int(0, size) };
  }
  return plan;
}

function describePlan(plan: Plan): string {
  const giveUp = plan.giveUp ? ` giving up after ${plan.giveUp.at} ${plan.giveUp.after}` : "";
  return `#${plan.id} ${plan.behaviour} of ${plan.size} bytes${giveUp}` +
    `${plan.slow ? ", reading slowly" : ""}`;
}

/** What happened to one client. */
interface Outcome {
  plan: Plan;
  /** The client's port, to find its lines in the log. */
  localPort?: number;
  /** Bytes written to the proxy. */
  sent: number;
  /** Bytes that came back. */
  received: number;
  /** Whether it gave up (closed early): then only what came back counts. */
  gaveUp: boolean;
  /** The first byte that came back wrong, by its offset in the stream. */
  corruptAt?: number;
  /** Whether the SHA-256 of what came back matches that of what was sent. */
  hashMatches: boolean;
  /** What went wrong, if anything: an error, a hang. */
  failure?: string;
  /** Whether it hung past its bound. */
  hung: boolean;
}

/** Whether the SHA-256 of what came back is that of the first `received` bytes sent. */
function checkHash(outcome: Outcome, receivedHash: ReturnType<typeof createHash>): boolean {
  const { offset } = outcome.plan;
  const expected = createHash("sha256")
    .update(POOL.subarray(offset, offset + outcome.received))
    .digest("hex");
  return receivedHash.digest("hex") === expected;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one client to its end (or its bound) and says what happened. */
async function runClient(port: number, plan: Plan): Promise<Outcome> {
  const outcome: Outcome = {
    plan,
    sent: 0,
    received: 0,
    gaveUp: false,
    hashMatches: false,
    hung: false,
  };
  const hash = createHash("sha256");
  let conn: Deno.TcpConn | undefined;
  let giveUpTimer: ReturnType<typeof setTimeout> | undefined;
  const giveUp = () => {
    if (outcome.gaveUp) return;
    outcome.gaveUp = true;
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  };
  const expect = (condition: boolean, what: string) => {
    if (!condition) throw new Error(what);
  };

  /** Bytes sent, and those of a write under way: an echo may come back before its write returns. */
  let writing = 0;
  const write = async (bytes: number) => {
    const start = plan.offset + outcome.sent;
    writing = outcome.sent + bytes;
    await writeAll(conn!, POOL.subarray(start, start + bytes));
    outcome.sent += bytes;
  };
  /** Takes in bytes that came back: checks each against the pool, and hashes it. */
  const take = (chunk: Uint8Array) => {
    if (outcome.corruptAt === undefined) {
      const base = plan.offset + outcome.received;
      const beyond = outcome.received + chunk.length > writing;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== POOL[base + i]) {
          outcome.corruptAt = outcome.received + i;
          break;
        }
      }
      if (outcome.corruptAt === undefined && beyond) outcome.corruptAt = writing;
    }
    hash.update(chunk);
    outcome.received += chunk.length;
  };

  /** Writes the rest of the stream in random pieces; half-closes at the end unless it gave up. */
  const writer = async (random: Random) => {
    while (outcome.sent < plan.size && !outcome.gaveUp) {
      if (plan.giveUp?.after === "sent" && outcome.sent >= plan.giveUp.at) return giveUp();
      let bytes = Math.min(random.logInt(1, plan.maxWrite), plan.size - outcome.sent);
      if (plan.giveUp?.after === "sent") bytes = Math.min(bytes, plan.giveUp.at - outcome.sent);
      await write(bytes);
    }
    if (plan.giveUp?.after === "sent" && outcome.sent >= plan.giveUp.at) return giveUp();
    if (!outcome.gaveUp) await conn!.closeWrite();
  };
  /** Reads until EOF, or until `until` bytes came back (then returns false at EOF first). */
  const reader = async (random: Random, until = Infinity): Promise<boolean> => {
    const buffer = new Uint8Array(plan.readBuffer);
    while (outcome.received < until && !outcome.gaveUp) {
      if (plan.giveUp?.after === "received" && outcome.received >= plan.giveUp.at) {
        giveUp();
        return true;
      }
      const n = await conn!.read(buffer);
      if (n === null) return false;
      take(buffer.subarray(0, n));
      if (plan.slow && random.next() < 0.2) await sleep(random.int(1, 5));
    }
    return true;
  };

  const work = (async () => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    outcome.localPort = conn.localAddr.port;
    const writerRandom = new Random(plan.writerSeed);
    const readerRandom = new Random(plan.readerSeed);
    try {
      if (plan.giveUp?.after === "ms") giveUpTimer = setTimeout(giveUp, plan.giveUp.at);
      if (plan.behaviour === "interleave") {
        while (outcome.sent < plan.size) {
          await write(Math.min(writerRandom.logInt(1, plan.maxWrite), plan.size - outcome.sent));
          const echoed = await reader(readerRandom, outcome.sent);
          expect(
            echoed,
            `EOF after ${outcome.received} of ${outcome.sent} bytes sent so far (of ${plan.size})`,
          );
        }
        await conn.closeWrite();
        await reader(readerRandom);
      } else {
        await Promise.all([writer(writerRandom), reader(readerRandom)]);
      }
    } catch (error) {
      // Once the client gave up, its own close breaks what was under way: that is no failure.
      if (!outcome.gaveUp) throw error;
    } finally {
      clearTimeout(giveUpTimer);
      try {
        conn.close();
      } catch {
        // Closed already (it gave up).
      }
    }
    if (!outcome.gaveUp) {
      expect(
        outcome.sent === plan.size,
        `sent ${outcome.sent} of ${plan.size} bytes`,
      );
      expect(
        outcome.received === outcome.sent,
        `${outcome.received} of ${outcome.sent} bytes came back`,
      );
    }
  })();
  try {
    await bounded(work, describePlan(plan), CONNECTION_TIMEOUT_S);
  } catch (error) {
    outcome.failure = (error as Error).message;
    outcome.hung = outcome.failure.startsWith("Timed out");
    if (outcome.hung) {
      // Ends what hangs, so that the test can report and clean up.
      clearTimeout(giveUpTimer);
      try {
        conn?.close();
      } catch {
        // Closed already.
      }
      await bounded(work.catch(() => {}), `the end of ${describePlan(plan)}`, 5).catch(() => {});
    }
  }
  outcome.hashMatches = checkHash(outcome, hash);
  return outcome;
}

/** How the service was found when a wave began. */
type Start = "asleep" | "stopping" | "awake" | "starting";

/** Counts and problems of the whole run. */
interface Tally {
  connections: number;
  bytesSent: number;
  bytesReceived: number;
  /** Bytes of clients that gave up, sent but never echoed. */
  unacknowledged: number;
  /** Bytes that should have come back and did not. */
  lost: number;
  /** Streams where something came back wrong. */
  corrupted: number;
  hung: number;
  gaveUp: number;
  byBehaviour: Record<Behaviour, number>;
  problems: Outcome[];
  starts: Record<Start, number>;
}

function record(tally: Tally, outcome: Outcome) {
  tally.connections++;
  tally.byBehaviour[outcome.plan.behaviour]++;
  tally.bytesSent += outcome.sent;
  tally.bytesReceived += outcome.received;
  const corrupted = outcome.corruptAt !== undefined || !outcome.hashMatches;
  if (corrupted) tally.corrupted++;
  if (outcome.hung) tally.hung++;
  if (outcome.gaveUp) {
    tally.gaveUp++;
    tally.unacknowledged += Math.max(0, outcome.sent - outcome.received);
  } else {
    tally.lost += Math.max(0, outcome.plan.size - outcome.received);
  }
  if (corrupted || outcome.failure) tally.problems.push(outcome);
}

/** Runs `count` clients, `concurrency` at a time. */
async function runWave(
  harness: Harness,
  plans: Plan[],
  concurrency: number,
  tally: Tally,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    // After a problem the wave ends early: a proxy that hangs every client would otherwise
    // keep the test going for a bound per client.
    while (next < plans.length && tally.problems.length === 0) {
      record(tally, await runClient(harness.port, plans[next++]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, worker));
}

/**
 * Waits between waves, by the wave generator's choice: until the service
 * stopped for idleness (the next wave wakes it); until a stop is under way
 * (the next wave arrives while STOP_CMD runs); about IDLE_TIME (the next wave
 * arrives around the idle check that stops it); or a moment shorter than
 * IDLE_TIME (the next wave finds it awake).
 *
 * @returns which pause it was
 */
async function pause(harness: Harness, random: Random): Promise<string> {
  const service = harness.service;
  const kind = random.pick([[45, "asleep"], [15, "stopping"], [15, "edge"], [25, "awake"]]);
  const what = () =>
    `the idle stop (state ${service.state}, ${service.stats.openConnections} open connections)`;
  const idleMs = IDLE_TIME_S * 1000;
  if (kind === "asleep") {
    await waitFor(what(), () => service.state === "asleep", 15);
    await sleep(random.int(0, 200));
  } else if (kind === "stopping") {
    const deadline = Date.now() + 15_000;
    while (service.state === "awake" || service.state === "starting") {
      if (Date.now() > deadline) throw new Error(`Timed out after 15s waiting for ${what()}`);
      await sleep(1);
    }
  } else if (kind === "edge") {
    await sleep(random.int(idleMs - 50, idleMs + IDLE_CHECK_INTERVAL_S * 1000 + 100));
  } else {
    await sleep(random.int(0, idleMs / 2));
  }
  return kind;
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The problems, each with its client's log lines, for the failure message. */
function report(tally: Tally, lines: string[]): string {
  const shown = tally.problems.slice(0, 8).map((outcome) => {
    const { plan } = outcome;
    const own = outcome.localPort === undefined
      ? []
      : lines.filter((line) => line.includes(`127.0.0.1:${outcome.localPort} `));
    return [
      `${describePlan(plan)} (pool offset ${plan.offset}, client port ${outcome.localPort}):` +
      ` sent ${outcome.sent}, received ${outcome.received}` +
      (outcome.gaveUp ? ", gave up" : "") +
      (outcome.corruptAt === undefined ? "" : `, first wrong byte at ${outcome.corruptAt}`) +
      (outcome.hashMatches ? "" : ", SHA-256 differs") +
      (outcome.failure ? `: ${outcome.failure}` : ""),
      ...own.map((line) => `    ${line}`),
    ].join("\n");
  });
  return shown.join("\n") +
    (tally.problems.length > 8 ? `\n... and ${tally.problems.length - 8} more` : "") +
    serviceLines(tally, lines);
}

/** How long before and after the first problem's log line the service's own lines are shown. */
const AROUND_MS = 2_000;

/**
 * The service's own lines (its wakes, stops and commands, not its clients')
 * from a little before to a little after the first problem's line: what
 * happened to the backend meanwhile.
 */
function serviceLines(tally: Tally, lines: string[]): string {
  const port = tally.problems.find((outcome) => outcome.localPort !== undefined)?.localPort;
  const first = lines.find((line) => line.includes(`127.0.0.1:${port} `));
  if (first === undefined) return "";
  const at = Date.parse(first.slice(0, 24));
  const near = lines.filter((line) => {
    const client = /\[echo\] (127\.0\.0\.1:\d+ connection|closing connection)/.test(line);
    return !client && Math.abs(Date.parse(line.slice(0, 24)) - at) <= AROUND_MS;
  });
  return `\nthe service around ${first.slice(0, 24)}:\n${
    near.map((line) => `    ${line}`).join("\n")
  }`;
}

/** With `SOAK_VERBOSE`: how often each kind of log line came, addresses and numbers left out. */
function printLogKinds(lines: string[], tally: Tally) {
  const clients = Object.entries(tally.byBehaviour).map(([behaviour, n]) => `${n} ${behaviour}`);
  console.log(`soak: clients: ${clients.join(", ")}`);
  const kinds = new Map<string, number>();
  for (const line of lines) {
    const kind = line.slice(25).replace(/127\.0\.0\.1:\d+/g, "ADDR").replace(/\d+(\.\d+)?/g, "N");
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1])) {
    console.log(`soak: log ${n}x ${kind}`);
  }
}

Deno.test("soak: thousands of clients in waves, with idle stops and wakes under the load, lose no byte", async () => {
  console.log(`soak: seed ${SEED} (replay with SOAK_SEED=${SEED}), waves for ${SOAK_SECONDS}s`);
  await using log = await captureLog("info");
  const harness = await startHarness(() => ({
    idleTime: IDLE_TIME_S,
    idleCheckInterval: IDLE_CHECK_INTERVAL_S,
  }));
  const began = Date.now();
  const tally: Tally = {
    connections: 0,
    bytesSent: 0,
    bytesReceived: 0,
    unacknowledged: 0,
    lost: 0,
    corrupted: 0,
    hung: 0,
    gaveUp: 0,
    byBehaviour: { "half-close": 0, interleave: 0, "give-up": 0 },
    problems: [],
    starts: { asleep: 0, stopping: 0, awake: 0, starting: 0 },
  };
  const service = harness.service;
  try {
    const waves = new Random(SEED);
    let id = 0;
    let wave = 0;
    let stalled: string | undefined;
    while (Date.now() - began < SOAK_SECONDS * 1000 && tally.problems.length === 0) {
      let paused = "none";
      if (wave > 0) {
        try {
          paused = await pause(harness, waves);
        } catch (error) {
          stalled = (error as Error).message;
          break;
        }
      }
      const count = waves.int(20, 200);
      const concurrency = waves.int(16, 64);
      const plans = Array.from({ length: count }, () => drawPlan(id, waves.fork(id++)));
      const state = service.state;
      tally.starts[state]++;
      const waveBegan = Date.now();
      await runWave(harness, plans, concurrency, tally);
      if (VERBOSE) {
        console.log(
          `soak: wave ${wave} after a pause for ${paused}: found it ${state}, ` +
            `${count} clients ${concurrency} at a time, ${Date.now() - waveBegan} ms`,
        );
      }
      wave++;
    }
    const drained = await waitFor(
      "every connection's end",
      () => service.stats.openConnections === 0,
      10,
    ).then(() => true, () => false);
    const lines = log.lines();
    if (LOG_FILE) await Deno.writeTextFile(LOG_FILE, lines.map((line) => `${line}\n`).join(""));
    if (VERBOSE) printLogKinds(lines, tally);

    const seconds = ((Date.now() - began) / 1000).toFixed(1);
    const { wakes, idleStops, wakeFailures, totalConnections, openConnections } = service.stats;
    const summary = `soak: ${tally.connections} connections in ${wave} waves, ` +
      `${mib(tally.bytesSent)} sent, ${mib(tally.bytesReceived)} received ` +
      `(${mib(tally.unacknowledged)} unacknowledged by ${tally.gaveUp} clients that gave up), ` +
      `${tally.lost} bytes lost, ${tally.corrupted} streams corrupted, ${tally.hung} hung, ` +
      `${wakes} wakes, ${wakeFailures} failed wakes, ${idleStops} idle stops, waves found it ` +
      `${tally.starts.asleep} asleep/${tally.starts.starting} starting/` +
      `${tally.starts.stopping} stopping/${tally.starts.awake} awake, ${seconds} s, seed ${SEED}`;
    console.log(summary);

    const backendErrors = harness.backendErrors();
    const replay = `${summary}\nreplay with SOAK_SEED=${SEED}` +
      (backendErrors ? `\nthe echo backends said:\n${backendErrors}` : "");
    const tail = lines.slice(-30).join("\n");
    assert.equal(tally.problems.length, 0, `${replay}\n${report(tally, lines)}`);
    assert.equal(tally.lost, 0, replay);
    assert.equal(tally.corrupted, 0, replay);
    assert.equal(stalled, undefined, `${replay}\n${stalled}; the log ends:\n${tail}`);
    assert.ok(
      drained,
      `${replay}\n${openConnections} connections still open; the log ends:\n${tail}`,
    );
    const errors = lines.filter((line) => / (ERROR|FATAL) /.test(line));
    assert.equal(wakeFailures, 0, `${replay}\na wake failed:\n${errors.join("\n")}`);
    assert.deepEqual(errors, [], replay);
    assert.equal(totalConnections, tally.connections, `${replay}\nevery client was counted`);
    assert.equal(
      harness.starts(),
      wakes,
      `${replay}\none START_CMD per wake, each of them woke it`,
    );
    assert.equal(harness.stops(), idleStops, `${replay}\nevery STOP_CMD was an idle stop`);
    assert.ok(
      wakes - idleStops === 0 || wakes - idleStops === 1,
      `${replay}\neach wake but the last stopped`,
    );
    // Each wave that found the service asleep woke it, and each of them but the first came
    // after an idle stop.
    assert.ok(
      wakes >= tally.starts.asleep,
      `${replay}\nfewer wakes than waves that found it asleep`,
    );
    assert.ok(idleStops >= tally.starts.asleep - 1, `${replay}\ntoo few idle stops`);
    if (SOAK_SECONDS >= 10) {
      // The run did what it is for: it stopped and woke the backend under load many times.
      assert.ok(wakes >= 4 && idleStops >= 3, `${replay}\ntoo few wakes and stops to be a soak`);
    }
  } finally {
    await harness.close();
  }
});
