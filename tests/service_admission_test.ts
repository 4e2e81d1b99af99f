/**
 * Who gets in and who waits how long: ALLOW/DENY, the connection limits, the
 * wake rate limits, HOLD_TIMEOUT, clients that leave while held, WAKE_ON=data.
 */
import assert from "node:assert/strict";
import { bounded, waitFor } from "./_helpers.ts";
import { readAll, text, writeAll } from "./_net.ts";
import { Admission } from "../src/service/admission.ts";
import {
  captureLog,
  command,
  exchange,
  openGate,
  serviceConfig,
  startEchoBackend,
  startHarness,
  waitForGate,
} from "./_service.ts";

/** Connects to 127.0.0.1 (or `hostname`) at `port`. */
function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

/** Whether the proxy closed `conn` without a byte (bounded). */
async function closedAtOnce(conn: Deno.Conn): Promise<boolean> {
  const data = await bounded(readAll(conn), "the refused connection to be closed");
  conn.close();
  return data.length === 0;
}

/** A START_CMD that waits at the gate, then starts the echo backend. */
function gatedStart(dir: string, port: number) {
  return { startCmd: command(`${waitForGate(dir)}\n${startEchoBackend(dir, port)}`) };
}

Deno.test("DENY refuses a client before anything else: it is closed at once, logged, counted, and wakes nothing", async () => {
  await using log = await captureLog();
  const harness = await startHarness(() => ({ deny: ["127.0.0.0/8"], allow: ["127.0.0.1"] }));
  try {
    assert.ok(await closedAtOnce(await connect(harness.port)));
    assert.equal(harness.starts(), 0);
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.totalConnections, 0);
    assert.equal(harness.metric('sleepingd_refused_total{service="echo",reason="deny"}'), 1);
    assert.ok(
      log.lines().some((line) =>
        /WARN {2}\[echo\] refused 127\.0\.0\.1:\d+: denied by DENY 127\.0\.0\.0\/8$/.test(line)
      ),
      log.lines().join("\n"),
    );
  } finally {
    await harness.close();
  }
});

Deno.test("ALLOW lets in only the clients it names; an IPv4 client on a dual-stack listener matches its IPv4 rule", async () => {
  const harness = await startHarness(() => ({ allow: ["127.0.0.1/32"] }), { listenOn: "::" });
  try {
    assert.equal(await exchange(harness.port, "from IPv4"), "from IPv4");
    assert.ok(await closedAtOnce(await connect(harness.port, "::1")), "::1 is not in ALLOW");
    assert.equal(harness.metric('sleepingd_refused_total{service="echo",reason="allow"}'), 1);
    assert.equal(harness.starts(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_CONNECTIONS refuses the client past the limit at once, while the others wait for the wake", async () => {
  const harness = await startHarness((dir, port) => ({
    ...gatedStart(dir, port),
    maxConnections: 3,
  }));
  try {
    const waiting = [1, 2, 3].map((i) => exchange(harness.port, `c${i}`));
    await waitFor("3 clients waiting", () => harness.service.stats.openConnections === 3);
    assert.ok(await closedAtOnce(await connect(harness.port)), "the fourth is refused at once");
    assert.equal(harness.service.state, "starting", "while the others still wait");
    await openGate(harness.dir);
    assert.deepEqual(await Promise.all(waiting), ["c1", "c2", "c3"]);
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_connections"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_CONNECTIONS_PER_SOURCE limits each client address on its own", async () => {
  const harness = await startHarness(
    (dir, port) => ({ ...gatedStart(dir, port), maxConnectionsPerSource: 2 }),
    { listenOn: "::" },
  );
  try {
    const waiting = [exchange(harness.port, "a"), exchange(harness.port, "b")];
    await waitFor("2 clients waiting", () => harness.service.stats.openConnections === 2);
    assert.ok(await closedAtOnce(await connect(harness.port)), "a third from 127.0.0.1");
    const other = await connect(harness.port, "::1");
    await waitFor("the ::1 client waiting", () => harness.service.stats.openConnections === 3);
    await openGate(harness.dir);
    assert.deepEqual(await Promise.all(waiting), ["a", "b"]);
    await writeAll(other, new TextEncoder().encode("from ::1"));
    await other.closeWrite();
    assert.equal(text(await readAll(other)), "from ::1");
    other.close();
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_connections_per_source"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_CONNECTIONS_PER_SOURCE counts an IPv6 client by its /64, an IPv4 one by its address", () => {
  const admission = new Admission(serviceConfig({ maxConnectionsPerSource: 1 }));
  const peer = (hostname: string): Deno.NetAddr => ({ transport: "tcp", hostname, port: 40000 });
  assert.equal(admission.admit(peer("2001:db8:1:2::7"), 0), undefined);
  assert.deepEqual(admission.admit(peer("2001:db8:1:2:ffff:1:2:3"), 1), {
    reason: "max_connections_per_source",
    message: "2001:db8:1:2::/64 holds MAX_CONNECTIONS_PER_SOURCE (1) already",
  });
  assert.equal(admission.admit(peer("2001:db8:1:3::7"), 1), undefined, "another /64");
  assert.equal(admission.admit(peer("192.0.2.1"), 2), undefined);
  assert.equal(admission.admit(peer("::ffff:192.0.2.2"), 3), undefined, "IPv4: each address");
  assert.equal(admission.admit(peer("::ffff:192.0.2.1"), 4)?.reason, "max_connections_per_source");
  admission.left(peer("2001:db8:1:2::7"));
  assert.equal(admission.admit(peer("2001:db8:1:2::8"), 3), undefined, "a slot of the /64 freed");
});

Deno.test("MAX_CONNECTIONS_TOTAL refuses past the limit of all services together", async () => {
  const harness = await startHarness((dir, port) => gatedStart(dir, port), {
    global: { maxConnectionsTotal: 2 },
  });
  try {
    const waiting = [exchange(harness.port, "a"), exchange(harness.port, "b")];
    await waitFor("2 clients waiting", () => harness.service.stats.openConnections === 2);
    assert.ok(await closedAtOnce(await connect(harness.port)));
    await openGate(harness.dir);
    assert.deepEqual(await Promise.all(waiting), ["a", "b"]);
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_connections_total"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_WAKES_PER_HOUR refuses a client that would begin one wake too many, saying when it may", async () => {
  await using log = await captureLog();
  const harness = await startHarness(() => ({ maxWakesPerHour: 1 }));
  try {
    assert.equal(await exchange(harness.port, "first"), "first");
    await harness.service.stop("requested");
    assert.equal(await exchange(harness.port, "second"), "", "refused: no second wake");
    assert.equal(harness.starts(), 1);
    assert.equal(harness.service.state, "asleep");
    assert.ok(
      log.lines().some((line) =>
        /closing connection from .*: MAX_WAKES_PER_HOUR \(1\) is reached: the next wake may begin in 60 min$/
          .test(line)
      ),
      log.lines().join("\n"),
    );
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_wakes_per_hour"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_WAKES_PER_HOUR_TOTAL counts the wakes of every service together", async () => {
  const harness = await startHarness(() => ({}), { global: { maxWakesPerHourTotal: 1 } });
  try {
    assert.equal(await exchange(harness.port, "first"), "first");
    await harness.service.stop("requested");
    assert.equal(await exchange(harness.port, "second"), "");
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_wakes_per_hour_total"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("HOLD_TIMEOUT closes a client that waited too long; the wake goes on for the next one", async () => {
  await using log = await captureLog();
  const harness = await startHarness((dir, port) => ({
    ...gatedStart(dir, port),
    holdTimeout: 0.2,
  }));
  try {
    assert.equal(await exchange(harness.port, "too early"), "");
    assert.equal(harness.service.state, "starting", "the wake goes on");
    assert.ok(
      log.lines().some((line) => / it waited HOLD_TIMEOUT \(0\.2s\) for the wake$/.test(line)),
      log.lines().join("\n"),
    );
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="hold_timeout"}'),
      1,
    );
    await openGate(harness.dir);
    await waitFor("the wake", () => harness.service.state === "awake");
    assert.equal(await exchange(harness.port, "in time"), "in time");
    assert.equal(harness.starts(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("a held client that leaves is dropped at once, not when the wake ends", async () => {
  await using log = await captureLog();
  const harness = await startHarness((dir, port) => gatedStart(dir, port));
  try {
    const client = await connect(harness.port);
    await waitFor("the client waiting", () => harness.service.stats.openConnections === 1);
    client.close();
    await waitFor("the client to be dropped", () => harness.service.stats.openConnections === 0);
    assert.equal(harness.service.state, "starting", "while the wake still waits at the gate");
    assert.ok(
      log.lines().some((line) =>
        / INFO {2}\[echo\] closing connection from .*: the client left while it waited: it closed the connection before sending anything$/
          .test(line)
      ),
      log.lines().join("\n"),
    );
    await openGate(harness.dir);
  } finally {
    await harness.close();
  }
});

Deno.test("a held client's bytes and half-close reach the backend first, intact", async () => {
  const harness = await startHarness((dir, port) => gatedStart(dir, port));
  try {
    const client = await connect(harness.port);
    const sent = new Uint8Array(200_000).map((_, i) => i % 251);
    await writeAll(client, sent);
    await client.closeWrite();
    await waitFor("the client waiting", () => harness.service.stats.openConnections === 1);
    await openGate(harness.dir);
    const echoed = await bounded(readAll(client), "the echo");
    client.close();
    assert.deepEqual(echoed, sent);
  } finally {
    await harness.close();
  }
});

Deno.test("WAKE_ON=data: connecting wakes nothing; the first byte does, and reaches the backend", async () => {
  const harness = await startHarness(() => ({ wakeOn: "data" }));
  try {
    for (let i = 0; i < 5; i++) {
      const probe = await connect(harness.port);
      probe.close();
    }
    const silent = await connect(harness.port);
    await waitFor(
      "the silent client to be admitted",
      () => harness.service.stats.totalConnections === 6,
    );
    assert.equal(harness.service.state, "asleep", "a client that sends nothing wakes nothing");
    assert.equal(harness.starts(), 0);
    await writeAll(silent, new TextEncoder().encode("hello"));
    await silent.closeWrite();
    assert.equal(text(await bounded(readAll(silent), "the echo")), "hello");
    silent.close();
    assert.equal(harness.starts(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("MAX_WAKES_PER_HOUR holds with ROUTE_PER_CONNECTION too", async () => {
  const harness = await startHarness(() => ({ maxWakesPerHour: 1, routePerConnection: true }));
  try {
    assert.equal(await exchange(harness.port, "first"), "first");
    await harness.service.stop("requested");
    assert.equal(await exchange(harness.port, "second"), "", "refused: no second wake");
    assert.equal(harness.starts(), 1);
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="max_wakes_per_hour"}'),
      1,
    );
  } finally {
    await harness.close();
  }
});

Deno.test("HOLD_TIMEOUT closes a client of ROUTE_PER_CONNECTION whose START_CMD takes too long", async () => {
  const harness = await startHarness((dir, port) => ({
    ...gatedStart(dir, port),
    routePerConnection: true,
    holdTimeout: 0.2,
  }));
  try {
    assert.equal(await exchange(harness.port, "too early"), "");
    assert.equal(
      harness.metric('sleepingd_refused_total{service="echo",reason="hold_timeout"}'),
      1,
    );
    await waitFor("the abandoned route to clean up", () => harness.service.state === "asleep");
  } finally {
    await harness.close();
  }
});
