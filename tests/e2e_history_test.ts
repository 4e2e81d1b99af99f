/**
 * The history and its HTTP API through the real daemon: a wake and an idle
 * stop recorded, read back after a restart, served as JSON and live.
 */
import assert from "node:assert/strict";
import { runCli } from "./_helpers.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { historySetup } from "./_history.ts";
import { exchange } from "./_service.ts";
import type { DaemonStatus } from "../src/control/status.ts";
import type { History } from "../src/history/timeline.ts";

/** One echo service that stops after 1 s idle. */
const setup = () => historySetup({ name: "echo", idleTime: 1, cost: "0.5 USD" });

Deno.test("a wake and an idle stop are in /api/history, and still there after a restart", async () => {
  const { dir, file, port, api, cleanup } = await setup();
  const first = await startDaemon(file);
  let second: Daemon | undefined;
  try {
    assert.equal(await exchange(port, "hello"), "hello");
    await first.waitForLine(/\[echo\] stopping -> asleep/);

    const { body: history } = await api<History>("/api/history?period=24h");
    const [echo] = history.services;
    assert.equal(echo.name, "echo");
    assert.deepEqual(echo.spans.map((span) => span.state), [
      "unknown", // before this daemon started
      "asleep",
      "starting",
      "awake",
      "stopping",
      "asleep",
    ]);
    assert.equal(echo.wakes.length, 1);
    assert.match(echo.wakes[0].cause, /^connection from 127\.0\.0\.1:\d+$/);
    assert.equal(echo.wakes[0].ok, true);
    assert.match(echo.wakes[0].target!, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(echo.stops.map((stop) => stop.reason), ["idle"]);
    assert.match(echo.stops[0].detail, /^idle for /);
    assert.deepEqual([echo.cost?.amount, echo.cost?.currency], [0.5, "USD"]);
    assert.ok(echo.asleepSeconds > 0 && echo.asleepSeconds < echo.watchedSeconds);
    // The JSON status is what `status --json` prints, `running` included.
    const { body: status } = await api<DaemonStatus>("/api/status");
    const cli = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout);
    assert.equal(cli.running, true);
    assert.deepEqual(status, cli);

    assert.equal(await first.stop(), 0);
    const log = `${dir}/state/events.jsonl`;
    const lines = (await Deno.readTextFile(log)).trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.at(-1).daemon, "stopped");
    // A line cut by a crash: the next daemon skips it and says where.
    await Deno.writeTextFile(log, '{"time":"2026-', { append: true });

    second = await startDaemon(file);
    await second.waitForLine(new RegExp(`${log}:${lines.length + 1}: skipped 1 line\\(s\\)`));
    const { body: after } = await api<History>("/api/history?period=24h");
    const states = after.services[0].spans.map((span) => span.state);
    assert.deepEqual(states.slice(0, 6), echo.spans.map((span) => span.state));
    assert.equal(states[6], "unknown", "while no daemon ran");
    assert.equal(states.at(-1), "asleep");
    assert.deepEqual(after.services[0].wakes, echo.wakes, "the wake survived the restart");
    assert.ok(after.events.some((event) => "daemon" in event && event.daemon === "stopped"));
  } finally {
    await cleanup(first, ...(second ? [second] : []));
  }
});

Deno.test("/api/live streams the status at once, then each event as it happens", async () => {
  const { file, port, http, cleanup } = await setup();
  const daemon = await startDaemon(file);
  try {
    const response = await fetch(`http://127.0.0.1:${http}/api/live`);
    assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const messages = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = "";
    const next = async (pattern: RegExp) => {
      while (!pattern.test(received)) {
        const { value, done } = await messages.read();
        if (done) throw new Error(`the stream ended before ${pattern}: ${received}`);
        received += value;
      }
    };
    await next(/^event: status\ndata: \{.*"state":"asleep".*\}\n\n/);
    assert.equal(await exchange(port, "hi"), "hi");
    await next(/event: history\ndata: \{[^\n]*"from":"asleep","to":"starting"[^\n]*\}\n\n/);
    await next(/event: status\ndata: \{[^\n]*"state":"awake"/);
    // The daemon shuts down with the stream open: it ends the stream, and exits 0.
    const stopped = daemon.stop();
    await next(/event: history\ndata: \{[^\n]*"daemon":"stopped"/);
    assert.equal((await messages.read()).done, true);
    assert.equal(await stopped, 0);
  } finally {
    await cleanup(daemon);
  }
});

Deno.test("the HTTP server refuses what it does not serve, with reasons", async () => {
  const { file, http, api, cleanup } = await setup();
  const daemon = await startDaemon(file);
  try {
    const badPeriod = await api("/api/history?period=forever");
    assert.equal(badPeriod.status, 400);
    assert.match(badPeriod.body.error, /period must be a number of hours or days.*"forever"/);
    const backwards = await api("/api/history?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z");
    assert.deepEqual([backwards.status, backwards.body.error], [400, "from must come before to"]);
    const unknown = await api("/api/history?service=nope");
    assert.deepEqual([unknown.status, unknown.body.error], [404, 'no service is named "nope"']);
    const one = await api<History>("/api/history?service=echo&from=0&to=1000");
    assert.deepEqual(one.body.services[0].spans, [
      { state: "unknown", from: "1970-01-01T00:00:00.000Z", to: "1970-01-01T00:00:01.000Z" },
    ], "nothing was known in 1970");

    const post = await fetch(`http://127.0.0.1:${http}/`, { method: "POST", body: "x" });
    assert.deepEqual([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);
    await post.body?.cancel();
    const missing = await fetch(`http://127.0.0.1:${http}/admin`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /try \/ \(the dashboard\)/);

    const page = await fetch(`http://127.0.0.1:${http}/`);
    const csp = page.headers.get("content-security-policy")!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1];
    const html = await page.text();
    assert.ok(html.includes(`<script nonce="${nonce}">`), "the page's script carries the nonce");
    assert.ok(!/(src|href)="https?:/.test(html), "the page loads nothing from elsewhere");
    assert.match(csp, /default-src 'none'/);
  } finally {
    await cleanup(daemon);
  }
});
