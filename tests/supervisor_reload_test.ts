import assert from "node:assert/strict";
import type { Config, ServiceConfig } from "../src/config/types.ts";
import { command, exchange, startHarness } from "./_service.ts";
import { freePort, isAlive, readAll, refuses, text, writeAll } from "./_net.ts";
import { waitFor } from "./_helpers.ts";

/** The harness's configuration with `services` in place of its one service. */
function withServices(config: Config, services: ServiceConfig[]): Config {
  return { ...config, services };
}

Deno.test("Supervisor.reload() keeps an unchanged service awake with its open connection", async () => {
  const harness = await startHarness();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("before "));
    assert.equal(await conn.read(new Uint8Array(7)), 7);
    const summary = await harness.supervisor.reload(harness.supervisor.config);
    assert.deepEqual(summary, {
      added: [],
      removed: [],
      changed: [],
      unchanged: ["echo"],
      renamed: [],
    });
    await writeAll(conn, new TextEncoder().encode("after"));
    await conn.closeWrite();
    assert.equal(text(await readAll(conn)), "after");
    conn.close();
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.starts(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() gives a changed service its new settings and keeps its state", async () => {
  const harness = await startHarness();
  try {
    assert.equal(await exchange(harness.port, "x"), "x");
    const changed = { ...harness.service.config, idleTime: 0.2, idleCheckInterval: 0.1 };
    const config = withServices(harness.supervisor.config, [changed]);
    assert.deepEqual((await harness.supervisor.reload(config)).changed, ["echo"]);
    assert.equal(harness.supervisor.services[0], harness.service, "the same service object");
    await waitFor(
      "the idle stop the new settings ask for",
      () => harness.service.state === "asleep",
    );
    assert.equal(harness.stops(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() drains a removed service, then runs its STOP_CMD", async () => {
  const harness = await startHarness();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("held"));
    assert.equal(await conn.read(new Uint8Array(4)), 4);
    const summary = await harness.supervisor.reload(withServices(harness.supervisor.config, []));
    assert.deepEqual(summary.removed, ["echo"]);
    assert.deepEqual(harness.supervisor.services, []);
    assert.ok(await refuses(harness.port), "the removed service no longer listens");
    assert.equal(harness.stops(), 0, "STOP_CMD waits for the open connection");
    await writeAll(conn, new TextEncoder().encode("!"));
    await conn.closeWrite();
    assert.equal(text(await readAll(conn)), "!");
    conn.close();
    await waitFor("STOP_CMD after the drain", () => harness.service.state === "asleep");
    assert.equal(harness.stops(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() moves a port from a removed service to an added one", async () => {
  const harness = await startHarness();
  try {
    assert.equal(await exchange(harness.port, "old"), "old");
    const renamed: ServiceConfig = {
      ...harness.service.config,
      name: "renamed",
      startCmd: command(
        `echo start >> '${harness.dir}/starts'; echo "127.0.0.1 ${harness.backendPort}"`,
      ),
      stopCmd: undefined,
      readyTimeout: 0.2,
    };
    const summary = await harness.supervisor.reload(
      withServices(harness.supervisor.config, [renamed]),
    );
    assert.deepEqual(summary, {
      added: ["renamed"],
      removed: ["echo"],
      changed: [],
      unchanged: [],
      renamed: [],
    });
    await waitFor("the old service's stop", () => harness.stops() === 1);
    // The old backend is gone with the removed service; the new one starts nothing, so the
    // connection is closed, but it is the new service that takes it.
    assert.equal(await exchange(harness.port, "new"), "");
    assert.equal(harness.supervisor.services[0].stats.totalConnections, 1);
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() changes nothing when a new listener cannot be opened", async () => {
  const harness = await startHarness();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const added: ServiceConfig = {
      ...harness.service.config,
      name: "blocked",
      port: blocker.addr.port,
    };
    const config = withServices(harness.supervisor.config, [harness.service.config, added]);
    await assert.rejects(
      () => harness.supervisor.reload(config),
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${blocker.addr.port}: address already in use`),
    );
    assert.deepEqual(harness.supervisor.services.map((s) => s.config.name), ["echo"]);
    assert.equal(await exchange(harness.port, "still"), "still");
    const other = freePort();
    // Connecting wakes it: let it share echo's backend rather than start a second one.
    const fine: ServiceConfig = {
      ...added,
      name: "fine",
      port: other,
      startCmd: command(`echo "127.0.0.1 ${harness.backendPort}"`),
      stopCmd: undefined,
    };
    await harness.supervisor.reload(
      withServices(harness.supervisor.config, [harness.service.config, fine]),
    );
    assert.ok(!(await refuses(other)), "a later good reload listens");
  } finally {
    blocker.close();
    await harness.close();
  }
});

Deno.test("Supervisor.reload() renaming an awake section keeps its backend, state and connection", async () => {
  const harness = await startHarness();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("before "));
    assert.equal(await conn.read(new Uint8Array(7)), 7);
    const renamed = { ...harness.service.config, name: "echo2" };
    const summary = await harness.supervisor.reload(
      withServices(harness.supervisor.config, [renamed]),
    );
    await writeAll(conn, new TextEncoder().encode("after"));
    await conn.closeWrite();
    assert.equal(text(await readAll(conn)), "after");
    conn.close();
    assert.equal(await exchange(harness.port, "new client"), "new client");
    const [service] = harness.supervisor.services;
    assert.deepEqual([service.state, harness.starts(), harness.stops()], ["awake", 1, 0]);
    assert.equal(service, harness.service, "the same service, renamed");
    assert.equal(service.config.name, "echo2");
    const { renamed: pairs, changed, added, removed } = summary;
    assert.deepEqual([pairs, changed, added, removed], [
      [{ from: "echo", to: "echo2" }],
      [
        "echo2",
      ],
      [],
      [],
    ]);
    await harness.supervisor.shutdown();
    assert.equal(harness.stops(), 1, "one STOP_CMD, at the shutdown");
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() adding a section back while it drains wakes it only after the drain's STOP_CMD", async () => {
  const harness = await startHarness(() => ({}), { global: { shutdownGrace: 60 } });
  const config = harness.supervisor.config;
  try {
    const old = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(old, new TextEncoder().encode("old"));
    assert.equal(await old.read(new Uint8Array(3)), 3);
    const oldPid = harness.backendPid();
    await harness.supervisor.reload(withServices(config, [])); // drains: the connection is open
    const summary = await harness.supervisor.reload(config);
    assert.deepEqual(summary.added, ["echo"]);
    const added = harness.supervisor.services[0];
    assert.notEqual(added, harness.service, "a new service: the old one still drains");
    const served = exchange(harness.port, "new");
    await waitFor("the new client to come", () => added.stats.totalConnections === 1);
    old.close(); // the drain ends: the old service's STOP_CMD stops the backend, then the wake
    assert.equal(await served, "new");
    await waitFor("the drain's STOP_CMD", () => harness.stops() === 1);
    const pid = harness.backendPid();
    assert.ok(pid !== undefined && pid !== oldPid && isAlive(pid), "a backend of its own runs");
    assert.deepEqual([added.state, harness.starts()], ["awake", 2]);
    assert.equal(await exchange(harness.port, "again"), "again");
  } finally {
    await harness.close();
  }
});

Deno.test("Supervisor.reload() during the shutdown is refused: nothing is added that nobody stops", async () => {
  const harness = await startHarness();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("held"));
    assert.equal(await conn.read(new Uint8Array(4)), 4);
    const shutdown = harness.supervisor.shutdown(); // waits SHUTDOWN_GRACE for the connection
    const port = freePort();
    const added: ServiceConfig = { ...harness.service.config, name: "late", port };
    await assert.rejects(
      () => harness.supervisor.reload(withServices(harness.supervisor.config, [added])),
      /sleepingd is shutting down: no reload now/,
    );
    assert.ok(await refuses(port), "the service a reload would add does not listen");
    conn.close();
    await shutdown;
    assert.deepEqual(harness.supervisor.services.map((one) => one.config.name), ["echo"]);
  } finally {
    await harness.close();
  }
});
