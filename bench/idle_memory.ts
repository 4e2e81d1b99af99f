/**
 * `deno run -A bench/idle_memory.ts [CONNECTIONS] [BURST_MIB]`: what a proxy
 * holds for connections that carried a burst and then went quiet, like SSH or
 * database sessions after a large result. For sleepingd and haproxy in front
 * of the bench's echo backend, prints the proxy's RSS at start, with the
 * connections open after their burst, and once they are closed.
 *
 * @module
 */

import { ECHO, writeAll } from "./protocol.ts";
import { cleanUp, cleanUpOnSignals, onCleanUp, start } from "./processes.ts";
import { startVariant } from "./variants.ts";

const connections = Number(Deno.args[0] ?? 300);
const burstBytes = Math.round(Number(Deno.args[1] ?? 1) * 1024 * 1024);
/** How long the connections stay quiet before the proxy's memory is read. */
const QUIET_MS = 3_000;

/** The resident memory of process `pid`, in MiB. */
function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
}

/** Sends `burstBytes` on an echo connection and reads them back; leaves it open. */
async function burst(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const data = new Uint8Array(burstBytes);
  const buffer = new Uint8Array(256 * 1024);
  let received = 0;
  await Promise.all([
    writeAll(conn, new Uint8Array([ECHO])).then(() => writeAll(conn, data)),
    (async () => {
      while (received < burstBytes) {
        const n = await conn.read(buffer);
        if (n === null) throw new Error("The proxy closed the connection during the burst");
        received += n;
      }
    })(),
  ]);
  return conn;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

cleanUpOnSignals();
try {
  const tempDir = await Deno.makeTempDir({ prefix: "sleepingd-memory-" });
  onCleanUp(() => Deno.remove(tempDir, { recursive: true }));
  const backend = start("backend", Deno.execPath(), [
    "run",
    "--allow-net",
    new URL("./backend.ts", import.meta.url).pathname,
  ]);
  const backendPort = Number(await backend.waitForLine((line) => /^\d+$/.test(line), 30_000));
  console.log(
    `${connections} connections, each echoing ${burstBytes / 1024 / 1024} MiB then quiet ` +
      `for ${QUIET_MS / 1000}s; proxy RSS in MiB`,
  );
  console.log("proxy      start   open+quiet   per connection   closed");
  for (const name of ["sleepingd", "haproxy"] as const) {
    const started = await startVariant(name, { backendPort, tempDir });
    if ("skipped" in started) {
      console.log(`${name.padEnd(9)}  skipped: ${started.skipped}`);
      continue;
    }
    const { variant } = started;
    (await burst(variant.port)).close(); // warm up (sleepingd wakes its service)
    await sleep(500);
    const before = rssMiB(variant.pid!);
    const open: Deno.Conn[] = [];
    for (let i = 0; i < connections; i += 50) {
      const batch = Math.min(50, connections - i);
      open.push(...await Promise.all(Array.from({ length: batch }, () => burst(variant.port))));
    }
    await sleep(QUIET_MS);
    const quiet = rssMiB(variant.pid!);
    for (const conn of open) conn.close();
    await sleep(QUIET_MS);
    const closed = rssMiB(variant.pid!);
    const perConnection = ((quiet - before) * 1024 / connections).toFixed(1);
    console.log(
      `${name.padEnd(9)}  ${before.toFixed(0).padStart(5)}   ${quiet.toFixed(0).padStart(10)}   ` +
        `${perConnection.padStart(10)} KiB   ${closed.toFixed(0).padStart(6)}`,
    );
    await variant.stop();
  }
} finally {
  await cleanUp();
}
