/**
 * Faults around a wake: a thousand clients in one wake, silent clients
 * (slowloris) holding connections while it runs, and hostile bytes and
 * addresses that must never reach a command line.
 */
import assert from "node:assert/strict";
import {
  command,
  type Harness,
  openGate,
  startEchoBackend,
  startHarness,
  waitForGate,
} from "../_service.ts";
import { randomBytes, readAll, sha256, writeAll } from "../_net.ts";
import { bounded, exists, waitFor } from "../_helpers.ts";
import { closeQuietly, exchangeBytes, openFds, readEnd, softFileLimit } from "./_faults.ts";

/** A service whose START_CMD waits at the gate, then starts the echo backend. */
function gatedHarness(): Promise<Harness> {
  return startHarness((dir, port) => ({
    startCmd: command(`${waitForGate(dir)}\n${startEchoBackend(dir, port)}`),
  }));
}

Deno.test("1000 clients in one wake: all wait, one START_CMD, every one answered byte-exact", async () => {
  // Each client costs this process 3 files: its socket, the accepted one, the backend connection.
  const wanted = 1000;
  const room = Math.floor((softFileLimit() - openFds() - 256) / 3);
  const count = Math.min(wanted, room);
  if (count < wanted) {
    console.log(`open file limit ${softFileLimit()}: ${count} clients instead of ${wanted}`);
  }
  const harness = await gatedHarness();
  try {
    const requests = Array.from({ length: count }, (_, i) => {
      const head = new TextEncoder().encode(`client ${i}:`);
      const data = new Uint8Array(head.length + 1024);
      data.set(head);
      data.set(randomBytes(1024), head.length);
      return data;
    });
    const answers = Promise.all(requests.map((data) => exchangeBytes(harness.port, data)));
    await waitFor(
      `${count} clients waiting for the wake`,
      () => harness.service.stats.openConnections === count,
      60,
    );
    assert.equal(harness.service.state, "starting", "START_CMD waits at the gate");
    assert.equal(harness.starts(), 0, "START_CMD has not got past the gate");
    await openGate(harness.dir);
    const answered = await bounded(answers, `${count} answers`, 60);
    for (let i = 0; i < count; i++) {
      assert.equal(answered[i].length, requests[i].length, `client ${i}'s answer`);
      assert.equal(await sha256(answered[i]), await sha256(requests[i]), `client ${i}'s answer`);
    }
    assert.equal(harness.starts(), 1, "one START_CMD for the whole wake");
    assert.equal(harness.service.stats.wakes, 1);
    assert.equal(harness.service.stats.totalConnections, count);
    assert.equal(harness.service.state, "awake");
  } finally {
    await harness.close();
  }
});

Deno.test("500 silent clients during a wake: a real client is still served, and the shutdown does not hang", async () => {
  const harness = await gatedHarness();
  const silent: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 500; i++) {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port: harness.port }));
    }
    const message = new TextEncoder().encode("a real request");
    const real = exchangeBytes(harness.port, message);
    await waitFor("501 clients waiting", () => harness.service.stats.openConnections === 501);
    assert.equal(harness.service.state, "starting");
    await openGate(harness.dir);
    assert.deepEqual(await bounded(real, "the real client's answer"), message);
    assert.equal(harness.starts(), 1);
    // The silent ones hold their connections, to the backend now.
    await waitFor(
      "the real client to be done",
      () => harness.service.stats.openConnections === 500,
    );
    const ends = silent.map((conn) => readEnd(conn));
    await bounded(
      harness.supervisor.shutdown(),
      "the shutdown, which closes the silent clients after SHUTDOWN_GRACE",
      harness.supervisor.config.global.shutdownGrace + 20,
    );
    const seen = await bounded(Promise.all(ends), "every silent client to be closed");
    const unexpected = seen.filter((end) => end !== "eof" && end !== "reset");
    assert.deepEqual(unexpected, [], "each silent client sees EOF or a reset");
    assert.equal(harness.service.stats.openConnections, 0);
    assert.equal(harness.stops(), 1, "the shutdown ran STOP_CMD");
  } finally {
    for (const conn of silent) closeQuietly(conn);
    await harness.close();
  }
});

Deno.test("500 silent clients with WAKE_ON=data wake nothing; a real client wakes it and is served", async () => {
  const harness = await startHarness(() => ({ wakeOn: "data" }));
  const silent: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 500; i++) {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port: harness.port }));
    }
    await waitFor("500 silent clients held", () => harness.service.stats.openConnections === 500);
    assert.equal(harness.service.state, "asleep", "no byte, no wake");
    const message = new TextEncoder().encode("a real request");
    assert.deepEqual(await bounded(exchangeBytes(harness.port, message), "the answer"), message);
    assert.equal(harness.starts(), 1);
    const ends = silent.map((conn) => readEnd(conn));
    await bounded(
      harness.supervisor.shutdown(),
      "the shutdown with 500 silent clients held",
      harness.supervisor.config.global.shutdownGrace + 20,
    );
    const seen = await bounded(Promise.all(ends), "every silent client to be closed");
    assert.deepEqual(seen.filter((end) => end !== "eof" && end !== "reset"), []);
  } finally {
    for (const conn of silent) closeQuietly(conn);
    await harness.close();
  }
});

/** Bytes a client may send that would do harm if they reached a shell. */
function hostilePayloads(marker: string): Uint8Array[] {
  const encode = (text: string) => new TextEncoder().encode(text);
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  return [
    encode(`$(touch ${marker})`),
    encode(`; touch ${marker}; \`touch ${marker}\` | touch ${marker} && touch ${marker} &`),
    encode(`'"; touch ${marker}; echo "'\n$(touch ${marker})\n\\\n\${IFS}*?[]{}~!#<>\r\n`),
    new Uint8Array([0, ...encode(`$(touch ${marker})`), 0, 10, 0, ...encode("\0;id\0")]),
    all,
  ];
}

/** The SLEEPINGD_* variables of an `env -0` dump. */
function sleepingdEnv(dump: string): Record<string, string> {
  return Object.fromEntries(
    dump.split("\0").filter((entry) => entry.startsWith("SLEEPINGD_"))
      .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
}

/**
 * A START_CMD that records, for each run, its own command line (the shell's
 * argv from /proc, and bash's $BASH_EXECUTION_STRING), its argument count and
 * its whole environment, then starts the echo backend.
 */
function recordingStart(dir: string, port: number): string {
  return `n=$(( $(cat '${dir}/runs' 2>/dev/null || echo 0) + 1 )); echo "$n" > '${dir}/runs'
cat "/proc/$$/cmdline" > '${dir}/cmdline.'"$n"
printf '%s' "$BASH_EXECUTION_STRING" > '${dir}/text.'"$n"
echo "$#" > '${dir}/argc.'"$n"
env -0 > '${dir}/env.'"$n"
${startEchoBackend(dir, port)}`;
}

/** Checks run `n` of {@linkcode recordingStart}: the text as configured, the client only in its environment. */
function checkRun(harness: Harness, n: number, client: Deno.NetAddr) {
  const text = recordingStart(harness.dir, harness.backendPort);
  assert.equal(harness.service.config.startCmd!.text, text);
  const read = (name: string) => Deno.readTextFileSync(`${harness.dir}/${name}.${n}`);
  const argv = read("cmdline").split("\0");
  assert.equal(argv.at(-1), "", "cmdline ends with a NUL");
  assert.deepEqual(argv.slice(1, -1), ["-c", text], "the shell ran the configured text untouched");
  assert.match(argv[0], /(^|\/)(ba)?sh$/);
  assert.equal(read("text"), text, "$BASH_EXECUTION_STRING is the configured text");
  assert.equal(read("argc").trim(), "0", "no positional arguments");
  const { SLEEPINGD_RUN_ID: runId, ...env } = sleepingdEnv(read("env"));
  assert.deepEqual(env, {
    SLEEPINGD_ACTION: "start",
    SLEEPINGD_CLIENT_ADDRESS: client.hostname,
    SLEEPINGD_CLIENT_PORT: String(client.port),
    SLEEPINGD_PORT: String(harness.port),
    SLEEPINGD_SERVICE: "echo",
  });
  assert.match(runId, /^[0-9a-f-]{36}$/, "START_CMD's random run id");
  assert.ok(!read("env").includes("touch"), "no client byte in the environment");
}

Deno.test("hostile client bytes never reach START_CMD's command line, its arguments or its environment", async () => {
  const marker = `/tmp/sleepingd-fault-${crypto.randomUUID()}`;
  // WAKE_ON=data: the hostile bytes are held in sleepingd while START_CMD runs.
  const harness = await startHarness((dir, port) => ({
    wakeOn: "data",
    startCmd: command(recordingStart(dir, port)),
  }));
  try {
    const payloads = hostilePayloads(marker);
    for (const [i, payload] of payloads.entries()) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
      const client = conn.localAddr as Deno.NetAddr;
      const echoed = await bounded(
        (async () => {
          await writeAll(conn, payload);
          await conn.closeWrite();
          const end = await readAll(conn);
          conn.close();
          return end;
        })(),
        `the echo of payload ${i}`,
      );
      assert.deepEqual(echoed, payload, `payload ${i} came back byte-exact`);
      checkRun(harness, i + 1, client);
      await bounded(harness.service.stop("requested"), `the stop after payload ${i}`);
    }
    assert.equal(harness.starts(), payloads.length, "one wake per payload");
    assert.ok(!exists(marker), `${marker} was created: client bytes reached a shell`);
  } finally {
    await Deno.remove(marker).catch(() => {});
    await harness.close();
  }
});

Deno.test("an IPv6 client on ::1 wakes the service and reaches START_CMD only as SLEEPINGD_CLIENT_ADDRESS", async () => {
  const harness = await startHarness(
    (dir, port) => ({ listenAddresses: ["::1"], startCmd: command(recordingStart(dir, port)) }),
    { listenOn: "::1" },
  );
  try {
    const conn = await Deno.connect({ hostname: "::1", port: harness.port });
    const client = conn.localAddr as Deno.NetAddr;
    assert.equal(client.hostname, "::1");
    const marker = `/tmp/sleepingd-fault-${crypto.randomUUID()}`;
    const message = new TextEncoder().encode(`$(touch ${marker}) from ${client.hostname}`);
    await writeAll(conn, message);
    await conn.closeWrite();
    assert.deepEqual(await bounded(readAll(conn), "the echo over IPv6"), message);
    conn.close();
    checkRun(harness, 1, client);
    assert.ok(!exists(marker), `${marker} was created: client bytes reached a shell`);
  } finally {
    await harness.close();
  }
});

Deno.test("an IPv4 client of a dual-stack listener reaches START_CMD as 127.0.0.1, not as a mapped address", async () => {
  const harness = await startHarness(
    (dir, port) => ({ listenAddresses: ["::"], startCmd: command(recordingStart(dir, port)) }),
    { listenOn: "::" },
  );
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    const client = conn.localAddr as Deno.NetAddr;
    const message = new TextEncoder().encode("from 127.0.0.1 to ::");
    await writeAll(conn, message);
    await conn.closeWrite();
    assert.deepEqual(
      await bounded(readAll(conn), "the echo through the dual-stack listener"),
      message,
    );
    conn.close();
    checkRun(harness, 1, client);
  } finally {
    await harness.close();
  }
});
