/**
 * A daemon with 1,000 services through the real CLI: every answer of the
 * control socket reaches the CLI whole, hundreds of KiB as they are (`stop`
 * answers while the daemon shuts down), and long lists are counted for people
 * and given whole in JSON.
 */
import assert from "node:assert/strict";
import { runCli, tempFiles } from "./_helpers.ts";
import { isAlive, writeAll } from "./_net.ts";
import { sendRequest } from "../src/control/protocol.ts";

/** Services in the configuration: their status is some 350 KiB of JSON. */
const SERVICES = 1000;

/**
 * `count` free ports on 127.0.0.1, below the range the kernel picks ports
 * from (for outgoing connections and port 0), so that no other process takes
 * one between this check and the daemon's listen: all held at once, then
 * released.
 */
function freePorts(count: number): number[] {
  const [ephemeral] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range")
    .trim().split(/\s+/).map(Number);
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 10_000 + Math.floor(Math.random() * (ephemeral - 10_000 - count));
    const listeners: Deno.Listener[] = [];
    try {
      for (let port = first; port < first + count; port++) {
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port }));
      }
      return listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    } finally {
      for (const listener of listeners) listener.close();
    }
  }
  throw new Error(`Found no ${count} free ports in a row below ${ephemeral}`);
}

/** `service-0001` ... */
function nameOf(index: number): string {
  return `service-${String(index + 1).padStart(4, "0")}`;
}

Deno.test("with 1,000 services, start, status, status --json, reload and stop answer in full and exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-many-" });
  const file = `${dir}/many.conf`;
  const ports = freePorts(SERVICES + 1);
  const extraPort = ports.pop()!;
  const services = ports.map((port, index) => ({ name: nameOf(index), port }));
  const sections = services.map(({ name, port }) => `[${name}]\nPORT=${port}\n`);
  const global = [
    `VARRUN_PATH=${dir}/run`,
    `STATE_PATH=${dir}/state`,
    "LISTEN_ADDRESS=127.0.0.1",
    `START_CMD="echo '127.0.0.1 9'"`,
    "",
  ].join("\n");
  await Deno.writeTextFile(file, global + sections.join(""));
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const lines = (suffix: string) =>
    services.map(({ name, port }) => `${name} (port ${port}) ${suffix}\n`).join("");
  try {
    const started = await cli("start");
    assert.equal(started.stderr, "");
    assert.equal(started.code, 0);
    assert.equal(started.stdout, lines("started"));
    const pid = Number((await Deno.readTextFile(`${dir}/run/sleepingd.pid`)).split("\n")[0]);

    const status = await cli("status");
    assert.equal(status.stderr, "");
    assert.equal(status.code, 0);
    const running = [...status.stdout.matchAll(/^(\S+) \(port (\d+)\) running$/gm)];
    assert.deepEqual(
      running.map(([, name, port]) => ({ name, port: Number(port) })),
      services,
    );

    const json = await cli("status", "--json");
    assert.equal(json.stderr, "");
    assert.equal(json.code, 0);
    assert.ok(
      json.stdout.length > 256 * 1024,
      `only ${json.stdout.length} bytes: too small a test`,
    );
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed.pid, pid);
    assert.deepEqual(
      parsed.services.map((
        { name, port, state }: { name: string; port: number; state: string },
      ) => [name, port, state]),
      services.map(({ name, port }) => [name, port, "asleep"]),
    );

    const reloaded = await cli("reload");
    assert.equal(reloaded.stderr, "");
    assert.equal(reloaded.code, 0);
    assert.equal(reloaded.stdout, `reloaded ${file} (unchanged: 1,000 services)\n`);

    await Deno.writeTextFile(file, `\n[extra]\nPORT=${extraPort}\n`, { append: true });
    const added = await cli("reload", "--json");
    assert.equal(added.stderr, "");
    assert.equal(added.code, 0);
    assert.deepEqual(JSON.parse(added.stdout), {
      files: [file],
      added: ["extra"],
      removed: [],
      changed: [],
      unchanged: services.map(({ name }) => name),
      renamed: [],
    });

    const stopped = await cli("stop");
    assert.equal(stopped.stderr, "");
    assert.equal(stopped.code, 0);
    assert.equal(stopped.stdout, lines("stopped") + `extra (port ${extraPort}) stopped\n`);
    assert.ok(!isAlive(pid), "the daemon is still running");
  } finally {
    await cli("stop");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an answer that ends before its end of line is reported as cut short, not as bad JSON", async () => {
  await using dir = await tempFiles({});
  const socket = `${dir.path}/sleepingd.sock`;
  const listener = Deno.listen({ transport: "unix", path: socket });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024)); // the request
    await writeAll(conn, new TextEncoder().encode('{"ok":true,"status":{"pid":1,'));
    conn.close();
  })();
  try {
    await assert.rejects(
      sendRequest(socket, { command: "status" }),
      /answer was cut short after 29 bytes, before its end of line/,
    );
  } finally {
    await serving;
    listener.close();
  }
});
