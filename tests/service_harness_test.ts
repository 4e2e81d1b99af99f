/**
 * The service harness's STOP_CMD (tests/_service.ts) ends the echo backend
 * for good before it returns, as a real STOP_CMD must: a wake right after it
 * would otherwise connect to the backend on its way out, whose listening
 * socket takes the clients' connections and then resets them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { waitFor } from "./_helpers.ts";
import { RUNS_STILL, stopEchoBackend } from "./_service.ts";

/**
 * A backend whose first thread has ended while its other threads run on, as
 * every threaded process is for a moment while it exits: it listens, and
 * its first thread ends (pthread_exit), which makes /proc/PID/status say
 * zombie for good.
 */
const HALF_EXITED = `
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(listener.addr.port);
const libc = Deno.dlopen("libc.so.6", { pthread_exit: { parameters: ["pointer"], result: "void" } });
libc.symbols.pthread_exit(null);
`;

/** Whether something listens on 127.0.0.1:`port`, as /proc/net/tcp says (no connection made). */
function listening(port: number): boolean {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A `;
  return Deno.readTextFileSync("/proc/net/tcp").includes(local);
}

/** Runs shell `text` with `$pid` set; returns its exit code. */
async function shell(text: string, pid: number): Promise<number> {
  const { code } = await new Deno.Command("bash", {
    args: ["-c", `pid=${pid}; ${text}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return code;
}

Deno.test("the echo backend's STOP_CMD waits for every thread: a zombie first thread with a socket still open is not gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-harness-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", HALF_EXITED],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = Number((await reader.read()).value?.trim());
    reader.releaseLock();
    const status = () => Deno.readTextFileSync(`/proc/${child.pid}/status`);
    await waitFor("its first thread to end", () => /^State:\s+Z/m.test(status()));
    assert.ok(listening(port), "it still listens");
    assert.equal(await shell(RUNS_STILL, child.pid), 0, "it runs still");

    await Deno.writeTextFile(`${dir}/backend.pid`, `${child.pid}\n`);
    assert.equal(await shell(stopEchoBackend(dir), child.pid), 0);
    assert.ok(!listening(port), "nothing of it listens once STOP_CMD returns");
    assert.notEqual(await shell(RUNS_STILL, child.pid), 0, "it has ended");
  } finally {
    try {
      child.kill("SIGKILL"); // a zombie first thread is not alive, its other threads may be
    } catch {
      // Ended already.
    }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
