/**
 * Ports shared by name in a supervisor of this process, with real echo
 * backends started by real commands: each connection goes to the service its
 * Host or SNI names (only that one wakes, and its backend gets every byte),
 * the most specific pattern wins, `*` takes the rest, unknown names get 421
 * (HTTP) or an alert (TLS), a client that stalls or leaves wakes nothing,
 * ALLOW/DENY and the limits apply after routing, connections being read
 * count in the budget, and reloads move services on and off a shared port
 * without a listener in the way.
 */
import assert from "node:assert/strict";
import type { Config, ServiceConfig } from "../src/config/types.ts";
import { Metrics } from "../src/control/metrics.ts";
import { Supervisor } from "../src/service/supervisor.ts";
import { daemonStatus, formatStatus } from "../src/control/status.ts";
import { bounded, waitFor } from "./_helpers.ts";
import { freePort, isAlive, readAll, text, writeAll } from "./_net.ts";
import {
  command,
  globalConfig,
  openGate,
  serviceConfig,
  startEchoBackend,
  stopEchoBackend,
  waitForGate,
} from "./_service.ts";
import { clientHello } from "./_tls.ts";

/** A service of the port: its name, its HOSTNAMES, and more settings. */
interface Spec {
  name: string;
  hostnames?: string[];
  extra?: Partial<ServiceConfig>;
  /** Its START_CMD waits for the test to open its gate. */
  gated?: boolean;
}

/** A supervisor of this process serving `specs` on one port, each with its echo backend. */
async function sharedPort(specs: Spec[], global: Partial<Config["global"]> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-shared-" });
  const port = freePort();
  const configFor = (spec: Spec): ServiceConfig => {
    const home = `${dir}/${spec.name}`;
    Deno.mkdirSync(home, { recursive: true });
    return serviceConfig({
      name: spec.name,
      port,
      wakeOn: "data",
      ...(spec.hostnames ? { hostnames: spec.hostnames } : {}),
      startCmd: command(
        `${spec.gated ? `${waitForGate(home)}\n` : ""}${startEchoBackend(home, freePort())}`,
      ),
      stopCmd: command(stopEchoBackend(home)),
      ...spec.extra,
    });
  };
  const configOf = (all: Spec[]): Config => ({
    files: ["test.conf"],
    global: globalConfig(dir, { shutdownGrace: 1, ...global }),
    services: all.map(configFor),
    inactive: [],
    warnings: [],
  });
  const metrics = new Metrics();
  const supervisor = new Supervisor(configOf(specs), metrics);
  await supervisor.listen();
  const count = (name: string, what: string) => {
    try {
      return Deno.readTextFileSync(`${dir}/${name}/${what}`).split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return {
    port,
    supervisor,
    /** How many times each service's START_CMD ran, by name. */
    starts: (name: string) => count(name, "starts"),
    /** Lets the gated START_CMD of `name` go on. */
    openGate: (name: string) => openGate(`${dir}/${name}`),
    /** A metric's sample, 0 when absent. */
    metric(sample: string) {
      const shared = supervisor.sharedPorts;
      const line = metrics.render(supervisor.services, { shared, budget: supervisor.budget })
        .split("\n").find((line) => line.startsWith(`${sample} `));
      return line === undefined ? 0 : Number(line.slice(sample.length + 1));
    },
    reload: (all: Spec[]) => supervisor.reload(configOf(all)),
    async close() {
      await supervisor.shutdown();
      for (const entry of Deno.readDirSync(dir)) {
        try {
          const pid = Number(Deno.readTextFileSync(`${dir}/${entry.name}/backend.pid`));
          if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
        } catch {
          // No backend left.
        }
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sends `bytes`, half-closes, and returns all that came back. */
async function sendBytes(port: number, bytes: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, bytes);
    await conn.closeWrite();
    return await bounded(readAll(conn), "the answer");
  } finally {
    conn.close();
  }
}

/** Sends `message`, half-closes, and returns all that came back, as text. */
async function send(port: number, message: string): Promise<string> {
  return text(await sendBytes(port, new TextEncoder().encode(message)));
}

/** An HTTP/1.1 request head for `host`. */
const get = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

Deno.test("a shared port sends each Host to its service, which alone wakes and gets every byte", async () => {
  const port = await sharedPort([
    { name: "app", hostnames: ["app.example.test"] },
    { name: "previews", hostnames: ["*.preview.example.test"] },
    { name: "pr7", hostnames: ["pr-7.preview.example.test", "*.pr-7.preview.example.test"] },
    { name: "docs", hostnames: ["docs.example.test", "*"] },
  ]);
  try {
    // The echo backend sends the request back: it got every byte, the head first.
    const body = get("APP.example.test.") + "x".repeat(100_000);
    assert.equal(await send(port.port, body), body);
    assert.deepEqual(["app", "previews", "pr7", "docs"].map(port.starts), [1, 0, 0, 0]);

    // The most specific pattern wins: a name over a wildcard, a longer wildcard over a shorter.
    const routes: [string, string, string][] = [
      ["pr-3.preview.example.test", "previews", "*.preview.example.test"],
      ["a.b.preview.example.test", "previews", "*.preview.example.test"],
      ["pr-7.preview.example.test", "pr7", "pr-7.preview.example.test"],
      ["x.pr-7.preview.example.test", "pr7", "*.pr-7.preview.example.test"],
      ["preview.example.test", "docs", "*"], // a wildcard does not take its own suffix
      ["unknown.test", "docs", "*"],
      ["[::1]", "docs", "*"],
    ];
    for (const [host, service, pattern] of routes) {
      assert.equal(await send(port.port, get(host)), get(host));
      const sample =
        `sleepingd_routed_total{listen="127.0.0.1:${port.port}",hostname="${pattern}",` +
        `service="${service}"}`;
      assert.ok(port.metric(sample) >= 1, `${host} went to ${service} by ${pattern}`);
    }
    // HTTP/1.0 without Host, and a TLS ClientHello without SNI: no name, so the default.
    assert.equal(await send(port.port, "GET / HTTP/1.0\r\n\r\n"), "GET / HTTP/1.0\r\n\r\n");
    const hello = clientHello();
    assert.deepEqual(await sendBytes(port.port, hello), hello);
    // A ClientHello with SNI, its bytes untouched (the echo gives them back as they were).
    const named = clientHello({ name: "pr-7.preview.example.test" });
    assert.deepEqual(await sendBytes(port.port, named), named);
    assert.deepEqual(["app", "previews", "pr7", "docs"].map(port.starts), [1, 1, 1, 1]);
  } finally {
    await port.close();
  }
});

Deno.test("without * an unknown name gets 421 (HTTP) or an unrecognized_name alert (TLS), counted", async () => {
  const port = await sharedPort([
    { name: "a", hostnames: ["a.test"] },
    { name: "b", hostnames: ["b.test"] },
  ]);
  try {
    const answer = await send(port.port, get("c.test"));
    assert.match(answer, /^HTTP\/1\.1 421 Misdirected Request\r\n/);
    assert.match(answer, /\r\nconnection: close\r\n/);
    const alert = await sendBytes(port.port, clientHello({ name: "c.test" }));
    assert.deepEqual([...alert], [0x15, 3, 1, 0, 2, 2, 0x70]);
    assert.match(
      await send(port.port, "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"),
      /^HTTP\/1\.1 400 /,
    );
    assert.equal(await send(port.port, "SSH-2.0-OpenSSH_9.2\r\n"), "");
    const listen = `listen="127.0.0.1:${port.port}"`;
    assert.equal(port.metric(`sleepingd_unrouted_total{${listen},reason="unknown_name"}`), 2);
    assert.equal(port.metric(`sleepingd_unrouted_total{${listen},reason="malformed"}`), 1);
    assert.equal(port.metric(`sleepingd_unrouted_total{${listen},reason="not_tls_or_http"}`), 1);
    assert.deepEqual([port.starts("a"), port.starts("b")], [0, 0]);
  } finally {
    await port.close();
  }
});

Deno.test("a client that sends half a head and stalls is closed after HOSTNAME_TIMEOUT, waking nothing", async () => {
  const port = await sharedPort([{ name: "a", hostnames: ["a.test", "*"] }], {
    hostnameTimeout: 0.3,
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
    await writeAll(conn, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a.te"));
    // The read ends when sleepingd closes: no answer, even with * (nothing was asked yet).
    assert.equal((await bounded(readAll(conn), "the close")).length, 0);
    conn.close();
    const listen = `listen="127.0.0.1:${port.port}"`;
    assert.equal(port.metric(`sleepingd_unrouted_total{${listen},reason="timeout"}`), 1);
    assert.equal(port.starts("a"), 0);
    // One that leaves before its name is counted too, and wakes nothing either.
    const leaving = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
    await writeAll(leaving, new TextEncoder().encode("GET"));
    leaving.close();
    await waitFor(
      "the client that left, counted",
      () => port.metric(`sleepingd_unrouted_total{${listen},reason="client_left"}`) === 1,
    );
    assert.equal(port.starts("a"), 0);
  } finally {
    await port.close();
  }
});

Deno.test("ALLOW, DENY and the limits of a service apply after routing, to its own clients", async () => {
  const port = await sharedPort([
    { name: "closed", hostnames: ["closed.test"], extra: { deny: ["127.0.0.0/8"] } },
    { name: "open", hostnames: ["open.test"] },
  ]);
  try {
    assert.equal(await send(port.port, get("closed.test")), "");
    assert.equal(port.metric('sleepingd_refused_total{service="closed",reason="deny"}'), 1);
    assert.equal(await send(port.port, get("open.test")), get("open.test"));
    assert.deepEqual([port.starts("closed"), port.starts("open")], [0, 1]);
  } finally {
    await port.close();
  }
});

Deno.test("reloads add a service to a shared port, take one off it onto a port of its own, and back", async () => {
  const port = await sharedPort([{ name: "a", hostnames: ["a.test"] }]);
  try {
    assert.equal(await send(port.port, get("a.test")), get("a.test"));
    assert.match(await send(port.port, get("b.test")), /^HTTP\/1\.1 421 /);

    // b joins the port: the listener stays, and b.test reaches b.
    let summary = await port.reload([
      { name: "a", hostnames: ["a.test"] },
      { name: "b", hostnames: ["b.test"] },
    ]);
    assert.deepEqual(summary.added, ["b"]);
    assert.equal(await send(port.port, get("b.test")), get("b.test"));

    // b leaves and a takes the port alone, without HOSTNAMES: every client goes to a.
    summary = await port.reload([{ name: "a" }]);
    assert.deepEqual([summary.removed, summary.changed], [["b"], ["a"]]);
    assert.equal(await send(port.port, "anything\n"), "anything\n");

    // And back to a shared port.
    await port.reload([{ name: "a", hostnames: ["a.test"] }, { name: "c", hostnames: ["*"] }]);
    assert.equal(await send(port.port, get("z.test")), get("z.test"));
    assert.equal(port.starts("c"), 1);
  } finally {
    await port.close();
  }
});

Deno.test("connections being read count against MAX_CONNECTIONS_TOTAL", async () => {
  const port = await sharedPort([{ name: "a", hostnames: ["*"] }], { maxConnectionsTotal: 1 });
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
    await writeAll(first, new TextEncoder().encode("GET / HT"));
    await waitFor("the first being read", () => port.supervisor.sharedPorts.reading === 1);
    assert.equal(await send(port.port, get("a.test")), "");
    const listen = `listen="127.0.0.1:${port.port}"`;
    assert.equal(
      port.metric(`sleepingd_unrouted_total{${listen},reason="max_connections_total"}`),
      1,
    );
    first.close();
  } finally {
    await port.close();
  }
});

Deno.test("connections being read count in the budget: a connection each, and the buffer reading them in MAX_HELD_BYTES_TOTAL", async () => {
  const port = await sharedPort([{ name: "a", hostnames: ["a.test"], gated: true }], {
    maxConnectionsTotal: 3,
    maxHeldBytesTotal: 16 * 1024,
  });
  const listen = `listen="127.0.0.1:${port.port}"`;
  const unrouted = (reason: string) =>
    port.metric(`sleepingd_unrouted_total{${listen},reason="${reason}"}`);
  const held = (what: string) => port.metric(`sleepingd_held_bytes{what="${what}"}`);
  const open = () => port.metric(`sleepingd_budget_open{kind="tcp"}`);
  const encode = (text: string) => new TextEncoder().encode(text);
  const conns: Deno.TcpConn[] = [];
  try {
    // Three connections send a request line and no name yet: each holds a connection and the
    // 4 KiB its first bytes are read into.
    for (let n = 0; n < 3; n++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
      conns.push(conn);
      await writeAll(conn, encode("GET / HTTP/1.1\r\n"));
    }
    await waitFor("three being read", () => port.supervisor.sharedPorts.reading === 3);
    assert.deepEqual([open(), held("tcp_first_bytes")], [3, 3 * 4096]);
    // A fourth finds no connection left in the budget: closed at once, unread.
    assert.equal(await send(port.port, get("a.test")), "");
    assert.equal(unrouted("max_connections_total"), 1);
    assert.equal(port.metric(`sleepingd_budget_refused_total{kind="tcp"}`), 1);

    // The first sends a long header: its buffer grows to 8 KiB, which fits (16 KiB in all)...
    const pad = `X-Pad: ${"x".repeat(5000)}\r\n`;
    await writeAll(conns[0], encode(pad));
    await waitFor("its buffer grown", () => held("tcp_first_bytes") === 4 * 4096);
    // ...and then to 16 KiB, which does not: it is closed, counted, and gives everything back.
    await writeAll(conns[0], encode(pad)).catch(() => {});
    assert.equal((await bounded(readAll(conns[0]), "its close")).length, 0);
    assert.equal(unrouted("held_bytes"), 1);
    await waitFor("its connection and buffer given back", () => open() === 2);
    assert.equal(held("tcp_first_bytes"), 2 * 4096);

    // The other two name their service: their connections pass to it, and what was read of
    // them becomes the first block of their hold, counted at its size, plus the 1 KiB block
    // each next read goes into.
    const rest = "Host: a.test\r\n\r\n";
    const head = `GET / HTTP/1.1\r\n${rest}`;
    for (const conn of conns.slice(1)) await writeAll(conn, encode(rest));
    await waitFor("both held while a wakes", () => held("tcp_first_bytes") === 0);
    await waitFor("both holds counted", () => held("tcp_held") === 2 * (head.length + 1024));
    assert.equal(open(), 2);
    await port.openGate("a");
    for (const conn of conns.slice(1)) {
      await conn.closeWrite();
      assert.equal(text(await bounded(readAll(conn), "the echo")), head);
    }
    for (const conn of conns.splice(0)) conn.close();
    await waitFor("everything given back", () => open() === 0 && held("tcp_held") === 0);
    assert.equal(port.starts("a"), 1);
  } finally {
    for (const conn of conns) conn.close();
    await port.close();
  }
});

Deno.test("a connection still being read when its port goes (a reload, the shutdown) is closed, and wakes nothing", async () => {
  // HOSTNAME_TIMEOUT longer than the test's bounds: only the port's going closes them.
  const port = await sharedPort([{ name: "a", hostnames: ["a.test"] }], { hostnameTimeout: 600 });
  try {
    const reading = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
    await writeAll(reading, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a.te"));
    await waitFor("it to be read", () => port.supervisor.sharedPorts.reading === 1);
    // a leaves the shared port for a port of its own elsewhere: the port routed by name goes.
    const moved = freePort();
    await port.supervisor.reload({
      ...port.supervisor.config,
      services: [{ ...port.supervisor.config.services[0], port: moved, hostnames: undefined }],
    });
    assert.equal((await bounded(readAll(reading), "the close")).length, 0);
    reading.close();
    assert.equal(port.supervisor.sharedPorts.reading, 0);
    assert.equal(port.starts("a"), 0);

    // Back on a shared port; the shutdown closes one being read without waiting for it.
    await port.reload([{ name: "a", hostnames: ["a.test"] }]);
    const again = await Deno.connect({ hostname: "127.0.0.1", port: port.port });
    await writeAll(again, new TextEncoder().encode("GET"));
    await waitFor("it to be read", () => port.supervisor.sharedPorts.reading === 1);
    await bounded(port.supervisor.shutdown(), "the shutdown");
    assert.equal((await bounded(readAll(again), "the close")).length, 0);
    again.close();
    assert.equal(port.starts("a"), 0);
  } finally {
    await port.close();
  }
});

Deno.test("a WAITING_PAGE service alone on its port: heads are read while it sleeps, nothing once awake", async () => {
  const port = await sharedPort([{ name: "web", extra: { waitingPage: { after: 5 } } }]);
  try {
    // Not even HTTP: it goes to the one service all the same.
    assert.equal(await send(port.port, "hello\n"), "hello\n");
    assert.equal(port.supervisor.services[0].state, "awake");
    assert.equal(await send(port.port, "again\n"), "again\n");
    const status = daemonStatus(
      port.supervisor.services,
      new Date(),
      [],
      false,
      undefined,
      undefined,
      port.supervisor.sharedPorts,
    );
    assert.match(
      formatStatus(status),
      new RegExp(`\\nport 127\\.0\\.0\\.1:${port.port} reads request heads: \\* -> web \\(1\\)$`),
    );
    assert.equal(port.starts("web"), 1);
  } finally {
    await port.close();
  }
});
