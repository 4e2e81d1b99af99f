import assert from "node:assert/strict";
import { connectOnce, connectWhenReady } from "../src/net/connect.ts";
import { listenLocal } from "./_net.ts";

/**
 * A listener whose queue is full: it accepts one connection into its queue
 * and never more, so a new attempt hangs until its timeout (the kernel drops
 * it), which is not a refusal.
 */
async function fullListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const queued = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  return {
    target: { hostname: "127.0.0.1", port: listener.addr.port },
    close() {
      queued.close();
      listener.close();
    },
  };
}

Deno.test("connectWhenReady() cuts its last attempt at the deadline instead of the attempt timeout", async () => {
  const full = await fullListener();
  try {
    const attempts: string[] = [];
    await assert.rejects(
      connectWhenReady(full.target, Date.now() + 300, {
        timeoutMs: 60_000,
        onAttempt: (attempt, failure) => attempts.push(`${attempt} ${failure?.retryInMs}`),
      }),
      (error: Error) => {
        assert.ok(error instanceof Deno.errors.TimedOut, `got ${error}`);
        assert.match(
          error.message,
          /^Connection to 127\.0\.0\.1:\d+ timed out after 0\.[0-3]\d*s$/,
        );
        return true;
      },
    );
    assert.deepEqual(attempts, ["1 undefined"], "one attempt, ended by the deadline");
  } finally {
    full.close();
  }
});

Deno.test("connectWhenReady() retries a refused target and reports each attempt", async () => {
  const listener = listenLocal();
  const port = listener.addr.port;
  listener.close();
  const attempts: number[] = [];
  await assert.rejects(
    connectWhenReady({ hostname: "127.0.0.1", port }, Date.now() + 200, {
      onAttempt: (attempt) => attempts.push(attempt),
    }),
    Deno.errors.ConnectionRefused,
  );
  assert.ok(attempts.length > 1, `expected retries, got ${attempts.length} attempt(s)`);
  assert.deepEqual(attempts, attempts.map((_, index) => index + 1));
});

Deno.test("connectOnce() says how long it waited when the backend does not answer", async () => {
  const full = await fullListener();
  try {
    await assert.rejects(
      connectOnce(full.target, { timeoutMs: 100 }),
      /^TimedOut: Connection to 127\.0\.0\.1:\d+ timed out after 0\.1s$/,
    );
  } finally {
    full.close();
  }
});

Deno.test("connectOnce() with a timeout past 2^31 ms keeps waiting instead of timing out at once", async () => {
  const full = await fullListener();
  try {
    await assert.rejects(
      connectOnce(full.target, {
        timeoutMs: 2 ** 31 + 1000,
        signal: AbortSignal.timeout(100),
      }),
      (error: Error) => {
        assert.equal(error.name, "TimeoutError", `the caller's own abort, not ${error}`);
        return true;
      },
    );
  } finally {
    full.close();
  }
});
