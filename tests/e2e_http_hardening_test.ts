/**
 * METRICS_ADDRESS attacked, against the real daemon on real sockets: floods
 * of half-sent requests and of live streams under a low `ulimit -n` (the
 * daemon and its proxied service go on), a slowloris client (cut), a page
 * that rebinds its name to 127.0.0.1 (421), token guessing (a wait, few log
 * lines), a token too short, bad percent-encoding, a large body and requests
 * from another origin.
 */
import assert from "node:assert/strict";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { bounded, runCli, runProgram, waitFor } from "./_helpers.ts";
import { historySetup } from "./_history.ts";
import { isAlive, readAll, text, writeAll } from "./_net.ts";
import { exchange } from "./_service.ts";

/**
 * Low enough that the floods below would run the daemon out of descriptors
 * without the caps; high enough that the budget's share for HTTP (an eighth
 * of what the limit leaves) holds the 32 live streams.
 */
const FD_LIMIT = 512;
/** More clients than FD_LIMIT. */
const FLOOD = 600;

/** A raw HTTP exchange: sends `request`, returns the status and the body of the answer. */
async function raw(port: number, request: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, new TextEncoder().encode(request));
    const answer = text(await bounded(readAll(conn), "an answer"));
    const end = answer.indexOf("\r\n\r\n");
    return { status: Number(answer.split(" ")[1]), body: answer.slice(end + 4) };
  } finally {
    conn.close();
  }
}

/** A request with `Connection: close`, naming `host` (and any other headers). */
function request(method: string, path: string, host: string, headers = "", body = ""): string {
  const length = body ? `Content-Length: ${new TextEncoder().encode(body).length}\r\n` : "";
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${length}` +
    `${headers}\r\n${body}`;
}

/** Opens `count` connections that each send `data`, as fast as they are accepted. */
async function flood(port: number, count: number, data: string): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await bounded(Deno.connect({ hostname: "127.0.0.1", port }), "a connection");
    conns.push(conn);
    await writeAll(conn, new TextEncoder().encode(data)).catch(() => {});
  }
  return conns;
}

Deno.test("a flood of half-sent requests under a low ulimit -n is capped: the daemon and its service go on", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
  const daemon = await startDaemon(setup.file, { fdLimit: FD_LIMIT });
  let conns: Deno.TcpConn[] = [];
  try {
    conns = await flood(setup.http, FLOOD, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // Under this limit the budget's share for HTTP is below the server's own cap of 128.
    const line = await daemon.waitForLine(
      /refusing HTTP connections on 127\.0\.0\.1:\d+: sleepingd holds (\d+) HTTP connections already, their share of the open file limit \(512\)/,
    );
    const share = Number(/holds (\d+) HTTP/.exec(line)![1]);
    assert.ok(share > 32 && share < 128, `a share of ${share}`);
    assert.ok(isAlive(daemon.pid), "the daemon is alive");
    assert.equal(await exchange(setup.port, "still proxied"), "still proxied");
    const status = await runCli(["-f", setup.file, "status"]);
    assert.equal(status.code, 0, status.stderr);
    for (const conn of conns) conn.close();
    conns = [];
    await daemon.waitForLine(/taking HTTP connections again after refusing \d+ in/);
    const health = await raw(setup.http, request("GET", "/healthz", "127.0.0.1"));
    assert.deepEqual(health, { status: 200, body: "ok\n" });
  } finally {
    for (const conn of conns) conn.close();
    await setup.cleanup(daemon);
  }
});

Deno.test("a flood of live streams under a low ulimit -n gets 32 streams and 503s: the daemon goes on", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
  const daemon = await startDaemon(setup.file, { fdLimit: FD_LIMIT });
  const conns: Deno.TcpConn[] = [];
  try {
    const answers: string[] = [];
    for (let i = 0; i < FLOOD; i++) {
      const conn = await bounded(
        Deno.connect({ hostname: "127.0.0.1", port: setup.http }),
        "a connection",
      );
      conns.push(conn);
      await writeAll(conn, new TextEncoder().encode(request("GET", "/api/live", "127.0.0.1")))
        .catch(() => {});
      const buffer = new Uint8Array(4096);
      const n = await bounded(conn.read(buffer).catch(() => null), "the start of an answer");
      answers.push(n === null ? "closed" : text(buffer.subarray(0, n)).split("\r\n")[0]);
    }
    const streams = answers.filter((line) => line === "HTTP/1.1 200 OK").length;
    const refused = answers.filter((line) => line === "HTTP/1.1 503 Service Unavailable").length;
    assert.equal(streams, 32, "32 streams at most");
    assert.equal(streams + refused, FLOOD, answers.filter((line) => !/200|503/.test(line)).join());
    assert.ok(isAlive(daemon.pid), "the daemon is alive");
    assert.equal(await exchange(setup.port, "still proxied"), "still proxied");
    for (const conn of conns.splice(0)) conn.close();
    // A stream opened once the others left is served.
    const live = await Deno.connect({ hostname: "127.0.0.1", port: setup.http });
    conns.push(live);
    await writeAll(live, new TextEncoder().encode(request("GET", "/api/live", "127.0.0.1")));
    let got = "";
    const buffer = new Uint8Array(4096);
    await waitFor("a live stream's status event", async () => {
      const n = await live.read(buffer);
      got += n === null ? "" : text(buffer.subarray(0, n));
      return n === null || got.includes("event: status");
    });
    assert.match(got, /^HTTP\/1\.1 200 OK\r\n[^]*event: status\ndata: \{/);
  } finally {
    for (const conn of conns) conn.close();
    await setup.cleanup(daemon);
  }
});

Deno.test("a slowloris client is cut once the head of its request took 10 seconds", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
  const daemon = await startDaemon(setup.file, { args: ["-v"] });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: setup.http });
  try {
    const head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "X-a: b\r\n".repeat(1000);
    let sent = 0;
    const trickle = (async () => {
      for (const byte of new TextEncoder().encode(head)) {
        await conn.write(new Uint8Array([byte]));
        sent++;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })().catch(() => "cut");
    assert.equal(await bounded(trickle, "the server to cut the client", 60), "cut");
    assert.ok(sent < head.length, "the head was never finished");
    await daemon.waitForLine(
      /closed the HTTP connection of 127\.0\.0\.1:\d+: the head of a request/,
    );
  } finally {
    conn.close();
    await setup.cleanup(daemon);
  }
});

Deno.test("a request that names another host (DNS rebinding) is answered 421; IPs, localhost and METRICS_HOSTS are served", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    global: () => "METRICS_HOSTS=dash.example.com",
  });
  const daemon = await startDaemon(setup.file);
  const port = setup.http;
  try {
    for (const path of ["/", "/metrics", "/api/status", "/api/history", "/api/live"]) {
      const answer = await raw(port, request("GET", path, `rebind.attacker.example:${port}`));
      assert.equal(answer.status, 421, path);
      const message = path.startsWith("/api/") ? JSON.parse(answer.body).error : answer.body;
      assert.match(message, /^Host "rebind\.attacker\.example:\d+" is not a name this server/);
    }
    const json = JSON.parse((await raw(port, request("GET", "/api/status", "evil.example"))).body);
    assert.match(json.error, /add the name to METRICS_HOSTS/);
    await daemon.waitForLine(/refused a request for Host rebind\.attacker\.example:\d+ from /);
    for (
      const host of [
        `127.0.0.1:${port}`,
        `localhost:${port}`,
        "LOCALHOST",
        `[::1]:${port}`,
        "dash.example.com",
        "Dash.Example.COM.",
      ]
    ) {
      const answer = await raw(port, request("GET", "/api/status", host));
      assert.equal(answer.status, 200, host);
      assert.equal(JSON.parse(answer.body).running, true);
    }
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("token guessing: each source waits after 5 wrong tokens, refusals are logged a few times, others are served", async () => {
  const token = "a".repeat(8) + crypto.randomUUID();
  const setup = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    global: (dir) => `API_TOKEN_FILE=${dir}/token`,
  });
  await Deno.writeTextFile(`${setup.dir}/token`, token, { mode: 0o600 });
  const daemon = await startDaemon(setup.file);
  const host = `127.0.0.1:${setup.http}`;
  const post = (bearer: string) =>
    raw(
      setup.http,
      request(
        "POST",
        "/api/services/echo/keep-awake",
        host,
        `Authorization: Bearer ${bearer}\r\n`,
        '{"seconds": 0}',
      ),
    );
  try {
    for (let i = 1; i <= 5; i++) assert.equal((await post(`guess${i}`)).status, 401, `try ${i}`);
    const waiting = await post(token);
    assert.equal(waiting.status, 429, "even the right token waits");
    assert.match(
      JSON.parse(waiting.body).error,
      /Too many wrong tokens from this address: try again in \d+s/,
    );
    for (let i = 0; i < 50; i++) assert.equal((await post(`more${i}`)).status, 429);
    // Another source is not held up: curl from 127.0.0.2.
    const other = await runProgram("curl", [
      "-sS",
      "--interface",
      "127.0.0.2",
      "-H",
      `Authorization: Bearer ${token}`,
      "--data",
      '{"seconds": 0}',
      `http://${host}/api/services/echo/keep-awake`,
    ]);
    assert.equal(JSON.parse(other.stdout).ok, true, other.stdout + other.stderr);
    const refusals = daemon.lines.filter((line) => /refused keep-awake of \[echo\]/.test(line));
    assert.equal(refusals.length, 2, refusals.join("\n"));
    assert.match(refusals[0], /from 127\.0\.0\.1:\d+: no valid token$/);
    assert.match(
      refusals[1],
      /\(5 wrong in a row from 127\.0\.0\.1: its tries wait 30s\); 3 refusal\(s\) not logged$/,
    );
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("a token shorter than 16 characters stops the start, and is refused whenever it is read", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    global: (dir) => `API_TOKEN_FILE=${dir}/token`,
  });
  const tokenFile = `${setup.dir}/token`;
  await Deno.writeTextFile(tokenFile, "x\n", { mode: 0o600 });
  let daemon: Daemon | undefined;
  try {
    const run = await runCli(["-f", setup.file, "run"]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      new RegExp(
        `API_TOKEN_FILE ${tokenFile} holds a token of 1 character\\(s\\): it needs 16 at least ` +
          `\\(e\\.g\\. openssl rand -hex 32 > ${tokenFile}\\)`,
      ),
    );
    await Deno.writeTextFile(tokenFile, crypto.randomUUID(), { mode: 0o644 });
    await Deno.chmod(tokenFile, 0o644);
    daemon = await startDaemon(setup.file);
    await daemon.waitForLine(
      /WARN +API_TOKEN_FILE .* is readable by every user \(mode 644\): chmod 600 /,
    );
    await Deno.writeTextFile(tokenFile, "short");
    const host = `127.0.0.1:${setup.http}`;
    for (let i = 0; i < 5; i++) {
      const answer = await raw(
        setup.http,
        request("POST", "/api/services/echo/wake", host, "Authorization: Bearer short\r\n"),
      );
      assert.equal(answer.status, 503);
    }
    const errors = daemon.lines.filter((line) => / ERROR /.test(line));
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], /holds a token of 5 character\(s\): it needs 16 at least/);
  } finally {
    await setup.cleanup(...(daemon ? [daemon] : []));
  }
});

Deno.test("bad percent-encoding is a 400, a large body a 413, another origin a 403, and API errors are JSON", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    global: (dir) => `API_TOKEN_FILE=${dir}/token`,
  });
  await Deno.writeTextFile(`${setup.dir}/token`, crypto.randomUUID(), { mode: 0o600 });
  const daemon = await startDaemon(setup.file);
  const host = `127.0.0.1:${setup.http}`;
  try {
    const bad = await raw(setup.http, request("POST", "/api/services/%E0%A4%A/wake", host));
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /not valid percent-encoding/);

    // 50 MB announced: refused before it is read.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: setup.http });
    await writeAll(
      conn,
      new TextEncoder().encode(
        `POST /api/services/echo/wake HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 50000000\r\n\r\n`,
      ),
    );
    const large = text(await bounded(readAll(conn), "the 413"));
    conn.close();
    assert.match(large, /^HTTP\/1\.1 413 Content Too Large\r\n[^]*may hold 8192 bytes/);

    const foreign = await raw(
      setup.http,
      request("POST", "/api/services/echo/wake", host, "Origin: http://evil.example\r\n"),
    );
    assert.equal(foreign.status, 403);
    assert.match(JSON.parse(foreign.body).error, /another origin: http:\/\/evil\.example/);
    const same = await raw(
      setup.http,
      request("POST", "/api/services/echo/wake", host, `Origin: http://${host}\r\n`),
    );
    assert.equal(same.status, 401, "the page's own origin goes on to the token check");

    const get = await raw(setup.http, request("GET", "/api/services/echo/wake", host));
    assert.deepEqual([get.status, JSON.parse(get.body)], [405, { error: "Only POST here" }]);
    const missing = await raw(setup.http, request("GET", "/api/nope", host));
    assert.equal(missing.status, 404);
    assert.match(JSON.parse(missing.body).error, /^Not found: try \//);
    assert.deepEqual(daemon.lines.filter((line) => / ERROR /.test(line)), []);
  } finally {
    await setup.cleanup(daemon);
  }
});
