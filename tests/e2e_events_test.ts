/**
 * Events through the real CLI: ON_EVENT_CMD and WEBHOOK_URL (an HTTP
 * receiver in the test) hear wake, ready, idle_stop, stop and wake_failed, in
 * order; a failed POST is tried again; a webhook that never answers holds up
 * nothing.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { waitFor } from "./_helpers.ts";
import { historySetup } from "./_history.ts";
import { freePort } from "./_net.ts";
import { exchange } from "./_service.ts";

/** An HTTP receiver: answers 500 to the first POST, 200 to the others, and keeps each body. */
function receiver() {
  const received: { status: number; body: Record<string, unknown> }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = await request.json();
      const status = received.length === 0 ? 500 : 200;
      received.push({ status, body });
      return new Response(null, { status });
    },
  );
  return { url: `http://127.0.0.1:${server.addr.port}/hook`, received, server };
}

Deno.test("ON_EVENT_CMD and WEBHOOK_URL hear each event in order; a failed POST is tried again", async () => {
  const hook = receiver();
  const broken = freePort();
  const { dir, file, port: echo, cleanup } = await historySetup({
    name: "echo",
    idleTime: 0.2,
    cost: "",
    global: (dir) =>
      `ON_EVENT_CMD='echo "$SLEEPINGD_EVENT $SLEEPINGD_SERVICE \${SLEEPINGD_STOP_REASON:--} ` +
      `\${SLEEPINGD_TARGET:--}" >> ${dir}/events'\nWEBHOOK_URL=${hook.url}`,
    more: `[broken]\nPORT=${broken}\nLISTEN_ADDRESS=127.0.0.1\n` +
      "START_CMD='echo no VM left >&2; exit 3'\n",
  });
  const daemon = await startDaemon(file);
  const lines = () => {
    try {
      return Deno.readTextFileSync(`${dir}/events`).trim().split("\n");
    } catch {
      return [];
    }
  };
  try {
    assert.equal(await exchange(echo, "hi"), "hi");
    await waitFor("echo's four events", () => lines().length === 4);
    const [wake, ready, idle, stop] = lines();
    assert.equal(wake, "wake echo - -");
    assert.match(ready, /^ready echo - 127\.0\.0\.1 \d+$/);
    assert.match(idle, /^idle_stop echo idle 127\.0\.0\.1 \d+$/);
    assert.equal(stop, "stop echo idle -");

    const client = await Deno.connect({ hostname: "127.0.0.1", port: broken });
    await client.read(new Uint8Array(1)).catch(() => null); // closed: the wake failed
    client.close();
    await waitFor("broken's two events", () => lines().length === 6);
    assert.deepEqual(lines().slice(4), ["wake broken - -", "wake_failed broken - -"]);

    // The webhook: the same six, in order per service; the first POST failed and came again.
    await waitFor("seven POSTs", () => hook.received.length === 7);
    assert.deepEqual(hook.received[0], { ...hook.received[1], status: 500 });
    const delivered = hook.received.slice(1).map(({ body }) => `${body.event} ${body.service}`);
    assert.deepEqual(delivered.filter((line) => line.endsWith(" echo")), [
      "wake echo",
      "ready echo",
      "idle_stop echo",
      "stop echo",
    ]);
    assert.deepEqual(delivered.filter((line) => line.endsWith(" broken")), [
      "wake broken",
      "wake_failed broken",
    ]);
    const failed = hook.received.find(({ body }) => body.event === "wake_failed")!.body;
    assert.match(failed.reason as string, /START_CMD exit 3.*no VM left/);
    assert.equal(typeof failed.seconds, "number");
    const ready2 = hook.received.find(({ body }) => body.event === "ready")!.body;
    assert.match(ready2.target as string, /^127\.0\.0\.1:\d+$/);
    assert.match(ready2.time as string, /^\d{4}-\d\d-\d\dT/);
  } finally {
    await cleanup(daemon);
    await hook.server.shutdown();
  }
});

Deno.test("a webhook that never answers holds up no wake", async () => {
  // Accepts connections and never answers them.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of silent) held.push(conn);
  })().catch(() => {});
  const { file, port, cleanup } = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    extra: `WEBHOOK_URL=http://127.0.0.1:${silent.addr.port}/`,
  });
  const daemon = await startDaemon(file);
  try {
    // The wake event's POST hangs; the client is answered all the same.
    assert.equal(await exchange(port, "still here"), "still here");
    await waitFor("the POST to hang", () => held.length === 1);
    assert.equal(await exchange(port, "again"), "again");
  } finally {
    assert.equal(await daemon.stop(), 0, "the shutdown does not wait long for a silent webhook");
    await cleanup(daemon);
    silent.close();
    for (const conn of held) conn.close();
  }
});

Deno.test("a webhook that answers with a redirect is not followed: the event goes nowhere else", async () => {
  const elsewhere: string[] = [];
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request): Promise<Response> => {
      const path = new URL(request.url).pathname;
      if (path === "/hook") {
        return Response.redirect(`http://127.0.0.1:${server.addr.port}/else`, 307);
      }
      elsewhere.push(await request.text());
      return new Response(null);
    },
  );
  const { file, port, cleanup } = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    extra: `WEBHOOK_URL=http://127.0.0.1:${server.addr.port}/hook`,
  });
  const daemon = await startDaemon(file);
  try {
    assert.equal(await exchange(port, "hi"), "hi");
    const failed = await daemon.waitForLine(/WEBHOOK_URL failed the wake event 3 times/);
    assert.match(
      failed,
      new RegExp(
        `HTTP 307 to http://127\\.0\\.0\\.1:${server.addr.port}/else: redirects are not followed`,
      ),
    );
    assert.deepEqual(elsewhere, [], "nothing was POSTed where the redirect pointed");
  } finally {
    await cleanup(daemon);
    await server.shutdown();
  }
});
