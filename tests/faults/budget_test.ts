/**
 * The budget under attack, against the real daemon: a UDP flood from many
 * source ports under a low `ulimit -n` (TCP, the control socket and the HTTP
 * side keep working), an HTTP flood past the budget's share for HTTP (TCP
 * clients keep being served), a held client that sends one byte per packet (its
 * memory counted as kept), the held-bytes bound, and the UDP wake queue's
 * memory. Each measures what it claims: RSS from /proc, descriptors from
 * /proc/PID/fd.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { type Daemon, startDaemon } from "../_daemon.ts";
import { bounded, runCli, waitFor } from "../_helpers.ts";
import { freePort, isAlive, readAll, readExactly, text, writeAll } from "../_net.ts";
import { exchange, openGate, waitForGate } from "../_service.ts";
import { closeQuietly, echoListener, mib, ownBackend, rssBytes } from "./_faults.ts";

/** A UDP socket of the test's own on 127.0.0.1, with the datagrams it received. */
async function udpSocket(): Promise<{ socket: dgram.Socket; port: number; received: string[] }> {
  const socket = dgram.createSocket("udp4");
  const received: string[] = [];
  socket.on("message", (data: Uint8Array) => received.push(new TextDecoder().decode(data)));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { socket, port: socket.address().port, received };
}

/** A UDP echo server of the test's own: each datagram goes back to its sender. */
async function udpEcho() {
  const echo = await udpSocket();
  echo.socket.on("message", (data: Uint8Array, from: { address: string; port: number }) => {
    echo.socket.send(data, from.port, from.address);
  });
  return echo;
}

/** The value of the Prometheus sample that starts with `prefix`, or 0 when there is none. */
async function metric(http: number, prefix: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  const line = text.split("\n").find((one) => one.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** How many files the process `pid` holds open. */
function fdsOf(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** The daemon's peak RSS while `during` runs, sampled every 20 ms. */
async function peakRss(pid: number, during: Promise<unknown>): Promise<number> {
  let peak = rssBytes(pid);
  let done = false;
  during.finally(() => done = true).catch(() => {});
  while (!done) {
    peak = Math.max(peak, rssBytes(pid));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Math.max(peak, rssBytes(pid));
}

/** A quiet moment, so that the RSS measured before a test is the daemon's settled one. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 500));
}

/** Low enough that 400 source ports would take every descriptor, high enough to start. */
const FD_LIMIT = 128;
/** Source ports of the flood, all from 127.0.0.1. */
const FLOOD = 400;

Deno.test("a UDP flood from 400 source ports under ulimit -n 128: flows stop at their cap, TCP, control and HTTP keep working", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-flood-" });
  using tcpBackend = echoListener();
  const udpBackend = await udpEcho();
  const [udpPort, tcpPort, http] = [freePort(), freePort(), freePort()];
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run
METRICS_ADDRESS=127.0.0.1:${http}
SHUTDOWN_GRACE=1
[game]
PORT=${udpPort}
PROTOCOL=udp
LISTEN_ADDRESS=127.0.0.1
UDP_FLOW_TIMEOUT=600
START_CMD='echo "127.0.0.1 ${udpBackend.port}"'
[shell]
PORT=${tcpPort}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo "127.0.0.1 ${tcpBackend.port}"'
`,
  );
  let daemon: Daemon | undefined;
  const flood: dgram.Socket[] = [];
  const player = await udpSocket();
  try {
    daemon = await startDaemon(file, { fdLimit: FD_LIMIT });
    const pid = daemon.pid;
    player.socket.send("hello", udpPort, "127.0.0.1");
    await waitFor("the player's echo", () => player.received.includes("hello"));
    assert.equal(await exchange(tcpPort, "before"), "before");
    const [fdsBefore, rssBefore] = [fdsOf(pid), rssBytes(pid)];

    // Forwarded or dropped, for whatever reason: every datagram the daemon has taken.
    const taken = async () =>
      await metric(http, `sleepingd_udp_datagrams_total{service="game",direction="in"}`) +
      await metric(http, `sleepingd_udp_dropped_total{service="game",reason="refused"}`) +
      await metric(http, `sleepingd_udp_dropped_total{service="game",reason="no_backend"}`);
    for (let n = 0; n < FLOOD; n++) {
      const { socket } = await udpSocket();
      flood.push(socket);
      socket.send(`flood ${n}`, udpPort, "127.0.0.1");
      // In steps the socket's buffer holds, so that the kernel drops none of them.
      if (n % 32 === 31 || n === FLOOD - 1) {
        await waitFor(
          `the daemon to take ${n + 1} datagrams of the flood`,
          async () => await taken() >= n + 2,
        );
      }
    }
    // What was there keeps working, and so does what comes next on TCP, control and HTTP.
    assert.ok(isAlive(pid));
    player.socket.send("still there", udpPort, "127.0.0.1");
    await waitFor("the player's next echo", () => player.received.includes("still there"));
    assert.equal(await bounded(exchange(tcpPort, "after"), "a TCP exchange"), "after");
    const status = await runCli(["-f", file, "status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).services.length, 2);
    const health = await fetch(`http://127.0.0.1:${http}/healthz`);
    assert.equal(await health.text(), "ok\n");
    const flows = await metric(http, `sleepingd_udp_flows_open{service="game"}`);
    const cap = await metric(http, `sleepingd_budget_limit{kind="udp_flow"}`);
    const refused = await metric(http, `sleepingd_budget_refused_total{kind="udp_flow"}`);
    const [fdsFlooded, rssFlooded] = [fdsOf(pid), rssBytes(pid)];
    console.log(
      `flood of ${FLOOD} source ports under ulimit -n ${FD_LIMIT}: ${flows} flows open ` +
        `(cap ${cap}), ${refused} refused; the daemon's descriptors ${fdsBefore} -> ${fdsFlooded}, ` +
        `RSS ${mib(rssBefore)} -> ${mib(rssFlooded)}`,
    );
    assert.ok(cap > 0 && flows <= cap, `${flows} flows open, past the cap ${cap}`);
    assert.equal(
      refused,
      FLOOD + 1 - flows,
      "every source port past the cap is refused and counted",
    );
    assert.ok(fdsFlooded < FD_LIMIT - 16, `the daemon holds ${fdsFlooded} descriptors`);

    await daemon.waitForLine(/\[game\] refused datagrams from 127\.0\.0\.1:\d+: .*UDP flows/);
  } finally {
    for (const socket of flood) closeQuietly(socket);
    closeQuietly(player.socket);
    closeQuietly(udpBackend.socket);
    if (daemon) assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The value of the Prometheus sample that starts with `prefix`, read on an
 * HTTP connection of its own that is closed once answered (a pooled one
 * would stay open, and count).
 */
async function sample(http: number, prefix: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: http });
  try {
    const request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    await writeAll(conn, new TextEncoder().encode(request));
    const answer = text(await bounded(readAll(conn), "the metrics"));
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const line = answer.split("\n").find((one) => one.startsWith(prefix));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  } finally {
    conn.close();
  }
}

/** Low enough that the budget's share for HTTP is below the server's own caps. */
const HTTP_FD_LIMIT = 256;
/** Live streams the flood asks for, one after the other. */
const HTTP_FLOOD = 100;

Deno.test("an HTTP flood under ulimit -n 256: past the budget's share for HTTP, connections are closed at once and counted, while TCP clients are all served", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-http-flood-" });
  using backend = echoListener();
  const [tcpPort, http] = [freePort(), freePort()];
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run
METRICS_ADDRESS=127.0.0.1:${http}
SHUTDOWN_GRACE=1
[shell]
PORT=${tcpPort}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo "127.0.0.1 ${backend.port}"'
`,
  );
  let daemon: Daemon | undefined;
  const streams: Deno.TcpConn[] = [];
  const clients: Deno.TcpConn[] = [];
  try {
    daemon = await startDaemon(file, { fdLimit: HTTP_FD_LIMIT });
    const share = await sample(http, `sleepingd_budget_limit{kind="http"}`);
    const tcpShare = await sample(http, `sleepingd_budget_limit{kind="tcp"}`);
    // Below the HTTP server's own caps (128 connections, 32 of them streams): the budget refuses.
    assert.ok(share > 0 && share < 32, `a share of ${share} HTTP connections`);

    // Live streams stay open: one after the other, each is answered, or closed at once unanswered.
    let closed = 0;
    for (let n = 0; n < HTTP_FLOOD; n++) {
      const conn = await bounded(
        Deno.connect({ hostname: "127.0.0.1", port: http }),
        "an HTTP connection",
      );
      const request = "GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      await writeAll(conn, new TextEncoder().encode(request)).catch(() => {});
      const buffer = new Uint8Array(4096);
      const got = await bounded(conn.read(buffer).catch(() => null), "an answer or the close");
      if (got === null) {
        closed++;
        conn.close();
      } else {
        assert.match(text(buffer.subarray(0, got)), /^HTTP\/1\.1 200 OK\r\n/);
        streams.push(conn);
      }
    }
    assert.equal(streams.length, share, "as many streams as the budget's share");
    assert.equal(closed, HTTP_FLOOD - share);
    await daemon.waitForLine(
      /refusing HTTP connections on 127\.0\.0\.1:\d+: sleepingd holds \d+ HTTP connections already, their share of the open file limit \(256\)/,
    );

    // Meanwhile the service takes more clients at once than HTTP's whole share, each served.
    const count = Math.min(tcpShare, share + 20);
    for (let n = 0; n < count; n++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port: tcpPort }));
    }
    const echoes = await bounded(
      Promise.all(clients.map(async (client, n) => {
        await writeAll(client, new TextEncoder().encode(`client ${n}`));
        await client.closeWrite();
        return text(await readAll(client));
      })),
      "every TCP client's echo",
    );
    assert.deepEqual(echoes, clients.map((_, n) => `client ${n}`));
    const status = await runCli(["-f", file, "status"]);
    assert.equal(status.code, 0, status.stderr);

    // The streams gone, HTTP is served again; every refusal was counted.
    for (const conn of streams.splice(0)) conn.close();
    await daemon.waitForLine(/taking HTTP connections again after refusing \d+ in/);
    assert.equal(
      await sample(http, `sleepingd_budget_refused_total{kind="http"}`),
      HTTP_FLOOD - share,
    );
    assert.ok(isAlive(daemon.pid));
  } finally {
    for (const conn of [...streams, ...clients]) closeQuietly(conn);
    if (daemon) assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A daemon whose service `[held]` holds its clients at the gate until the
 * test opens it, its backend the test's own; `global` adds keys to the
 * global section.
 */
async function gatedDaemon(global = "") {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-held-" });
  const backend = ownBackend();
  const [port, http] = [freePort(), freePort()];
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `METRICS_ADDRESS=127.0.0.1:${http}
${global}SHUTDOWN_GRACE=1
[held]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${waitForGate(dir)}
echo "127.0.0.1 ${backend.port}"'
`,
  );
  const daemon = await startDaemon(file);
  return {
    dir,
    backend,
    port,
    http,
    daemon,
    async close(clients: Deno.Conn[]) {
      for (const client of clients) closeQuietly(client);
      backend.close();
      assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Held clients of the one-byte test, and the bytes each sends one packet at a time. */
const DRIPPERS = 16;
const DRIP_BYTES = 4096;
/** The daemon may grow by this much while the drippers are held. */
const MAX_HELD_GROWTH = 24 * 1024 * 1024;

/** Sends `count` bytes one write (one packet: no Nagle) at a time, yielding between writes. */
async function drip(conn: Deno.TcpConn, count: number, seed: number): Promise<Uint8Array> {
  conn.setNoDelay(true);
  const sent = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    sent[i] = (seed + i) % 251;
    await conn.write(sent.subarray(i, i + 1));
    if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return sent;
}

Deno.test("held clients that send one byte per packet cost what they sent, not a buffer per packet", async () => {
  const { dir, backend, port, http, daemon, close } = await gatedDaemon();
  const clients: Deno.TcpConn[] = [];
  try {
    await settle();
    const before = rssBytes(daemon.pid);
    for (let n = 0; n < DRIPPERS; n++) {
      clients.push(await Deno.connect({ port, hostname: "127.0.0.1" }));
    }
    const sending = Promise.all(clients.map((client, n) => drip(client, DRIP_BYTES, n)));
    const peak = await peakRss(daemon.pid, sending);
    const sent = await sending;
    const growth = peak - before;
    console.log(
      `${DRIPPERS} held clients, ${DRIP_BYTES} bytes each one per packet: daemon RSS ` +
        `${mib(before)} before, ${mib(peak)} at most (growth ${mib(growth)})`,
    );
    assert.ok(growth < MAX_HELD_GROWTH, `the daemon grew by ${mib(growth)}`);
    // Kept: what was sent, in 1 KiB blocks, with at most one block more for each client's next read.
    await waitFor("every byte held", async () => {
      const held = await metric(http, `sleepingd_held_bytes{what="tcp_held"}`);
      return held >= DRIPPERS * DRIP_BYTES && held <= DRIPPERS * (DRIP_BYTES + 1024);
    });
    await openGate(dir);
    for (let n = 0; n < DRIPPERS; n++) {
      const server = await backend.accept();
      const got = await bounded(readExactly(server, DRIP_BYTES), "a held client's bytes");
      const index = sent.findIndex((bytes) => bytes[0] === got[0] && bytes[1] === got[1]);
      assert.deepEqual(got, sent[index], "the held bytes arrive whole, in order");
      server.close();
    }
    // Each client's read under way keeps its block until the client is done.
    for (const client of clients) client.close();
    await waitFor(
      "every block given back",
      async () => await metric(http, `sleepingd_held_bytes{what="tcp_held"}`) === 0,
    );
  } finally {
    await close(clients);
  }
});

Deno.test("MAX_HELD_BYTES_TOTAL: a client past it is refused, a held client at it is no longer read, nothing is lost", async () => {
  const { dir, backend, port, http, daemon, close } = await gatedDaemon(
    "MAX_HELD_BYTES_TOTAL=8K\n",
  );
  const clients: Deno.TcpConn[] = [];
  try {
    const held = () => metric(http, `sleepingd_held_bytes{what="tcp_held"}`);
    // Eight clients fit, with a first block of 1 KiB each; the ninth is refused at once.
    for (let n = 1; n <= 8; n++) {
      clients.push(await Deno.connect({ port, hostname: "127.0.0.1" }));
      await waitFor(`client ${n} held`, async () => await held() === n * 1024);
    }
    const refused = await Deno.connect({ port, hostname: "127.0.0.1" });
    assert.equal((await bounded(readAll(refused), "the refused client's close")).length, 0);
    refused.close();
    await daemon.waitForLine(
      /\[held\] closing connection from 127\.0\.0\.1:\d+: MAX_HELD_BYTES_TOTAL \(8 KiB\) is held/,
    );
    assert.equal(
      await metric(http, `sleepingd_refused_total{service="held",reason="held_bytes"}`),
      1,
    );
    assert.equal(await metric(http, `sleepingd_connections_open{service="held"}`), 8);
    // One of them sends 6 KiB: its first block takes 1 KiB, the bound leaves no room for
    // another, so the kernel keeps the rest.
    const big = new Uint8Array(6 * 1024).map((_, i) => i % 256);
    await clients[0].write(big);
    await waitFor(
      "the bound counted as reached",
      async () => await metric(http, "sleepingd_held_bytes_refused_total") > 0,
    );
    assert.equal(await held(), 8 * 1024);
    // The seven without bytes leave; the first is served whole once the backend is up.
    for (const client of clients.splice(1)) client.close();
    await waitFor("the seven to be dropped", async () => await held() === 1024);
    await openGate(dir);
    const server = await backend.accept();
    assert.deepEqual(await bounded(readExactly(server, big.length), "the 6 KiB"), big);
    server.close();
    clients[0].close();
    await waitFor("the held bytes given back", async () => await held() === 0);
  } finally {
    await close(clients);
  }
});

/** Datagrams that wait for the wake: the queue's bound. */
const QUEUED = 1024;
/** The daemon may grow by this much while they wait. */
const MAX_QUEUE_GROWTH = 16 * 1024 * 1024;

Deno.test("1024 datagrams waiting for a wake cost their size, not a 64 KiB buffer each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-queue-" });
  const backend = await udpSocket();
  const [port, http] = [freePort(), freePort()];
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `METRICS_ADDRESS=127.0.0.1:${http}
SHUTDOWN_GRACE=1
[game]
PORT=${port}
PROTOCOL=udp
LISTEN_ADDRESS=127.0.0.1
START_CMD='${waitForGate(dir)}
echo "127.0.0.1 ${backend.port}"'
`,
  );
  const daemon = await startDaemon(file);
  const sender = await udpSocket();
  try {
    await settle();
    const before = rssBytes(daemon.pid);
    const queued = () => metric(http, `sleepingd_udp_queued_datagrams{service="game"}`);
    // In steps the socket's buffer holds, so that the kernel drops none of them.
    for (let n = 0; n < QUEUED; n++) {
      sender.socket.send(String(n), port, "127.0.0.1");
      if (n % 64 === 63) {
        await waitFor(`${n + 1} datagrams queued`, async () => await queued() === n + 1);
      }
    }
    const after = rssBytes(daemon.pid);
    const held = await metric(http, `sleepingd_held_bytes{what="udp_queued"}`);
    console.log(
      `${QUEUED} datagrams of 1-4 bytes waiting: daemon RSS ${mib(before)} -> ${mib(after)} ` +
        `(growth ${mib(after - before)}); counted ${held} bytes`,
    );
    assert.ok(after - before < MAX_QUEUE_GROWTH, `the daemon grew by ${mib(after - before)}`);
    assert.ok(held >= QUEUED, "each queued datagram counts at least its size");

    await openGate(dir);
    // All sent on, in order. Sent at once, some may overflow the test's own socket: what
    // arrives is in order, and the daemon's counters say that it dropped none.
    await waitFor(
      "every queued datagram sent on",
      async () =>
        await metric(http, `sleepingd_udp_datagrams_total{service="game",direction="in"}`) ===
          QUEUED,
    );
    assert.equal(await metric(http, `sleepingd_udp_dropped_total{service="game"`), 0);
    await waitFor("datagrams at the backend", () => backend.received.length > 0);
    const order = backend.received.map(Number);
    assert.deepEqual(order, order.toSorted((a, b) => a - b), "in the order they came");
    assert.equal(await metric(http, `sleepingd_held_bytes{what="udp_queued"}`), 0);
  } finally {
    closeQuietly(sender.socket);
    closeQuietly(backend.socket);
    assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});
