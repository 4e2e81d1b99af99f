/**
 * Ports shared by name, end to end with the real CLI, real nginx backends and
 * curl: three apps on one port by Host (only the one asked for wakes), two
 * TLS backends on one port by SNI with self-signed certificates made by
 * `openssl req` (each client sees its backend's certificate, a large body
 * intact), unknown names refused and counted, a ClientHello split into many
 * records and TCP segments (each read by sleepingd before the next is sent),
 * and a client that sends half a head and stalls; `check`, `status` and the
 * metrics say which names went where.
 */
import assert from "node:assert/strict";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { bounded, curl, REPO, runCli, runProgram, waitFor } from "./_helpers.ts";
import { freePort, isAlive, randomBytes, readAll, sha256, writeAll } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { selfSigned } from "./_tls.ts";

const NGINX = `${REPO}examples/nginx/nginx-on-demand`;

/** One nginx backend: its folder (served root, prefix), port and the template it runs. */
interface Backend {
  name: string;
  hostnames: string;
  port: number;
  root: string;
  prefix: string;
  template?: string;
}

/** A daemon's folder with nginx backends behind one port shared by name. */
async function setup(names: [name: string, hostnames: string][], tls?: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-hosts-" });
  const port = freePort();
  const http = freePort();
  const backends: Backend[] = [];
  for (const [name, hostnames] of names) {
    const root = `${dir}/${name}/www`;
    await Deno.mkdir(root, { recursive: true });
    await Deno.writeTextFile(`${root}/index.html`, `<h1>${name}</h1>\n`);
    backends.push({ name, hostnames, port: freePort(), root, prefix: `${dir}/${name}/prefix` });
  }
  if (tls) {
    const template = await Deno.readTextFile(`${REPO}examples/nginx/nginx.conf.in`);
    for (const backend of backends) {
      const { cert, key } = await selfSigned(`${dir}/${backend.name}`, backend.hostnames);
      backend.template = `${dir}/${backend.name}/nginx.conf.in`;
      await Deno.writeTextFile(
        backend.template,
        template.replace(
          "listen 127.0.0.1:@PORT@;",
          `listen 127.0.0.1:@PORT@ ssl;\n    ssl_certificate ${cert};\n` +
            `    ssl_certificate_key ${key};`,
        ),
      );
    }
  }
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run
STATE_PATH=${dir}/state
METRICS_ADDRESS=127.0.0.1:${http}
HOSTNAME_TIMEOUT=1
` + backends.map((backend) => {
        const env = `NGINX_PORT=${backend.port} NGINX_ROOT=${backend.root} ` +
          `NGINX_PREFIX=${backend.prefix} NGINX_USER=root` +
          (backend.template ? ` NGINX_TEMPLATE=${backend.template}` : "");
        return `
[${backend.name}]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
HOSTNAMES=${backend.hostnames}
START_CMD="${env} ${NGINX} start"
STOP_CMD="${env} ${NGINX} stop"
`;
      }).join(""),
  );
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  /** Whether a backend's nginx runs. */
  const running = async (backend: Backend) => {
    const pid = Number(await Deno.readTextFile(`${backend.prefix}/nginx.pid`).catch(() => "0"));
    return pid > 0 && isAlive(pid);
  };
  const cleanup = async (daemon?: Daemon) => {
    const code = await daemon?.stop();
    for (const backend of backends) {
      const pid = Number(await Deno.readTextFile(`${backend.prefix}/nginx.pid`).catch(() => "0"));
      if (pid > 0 && isAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
    await Deno.remove(dir, { recursive: true });
    if (code !== undefined) assert.equal(code, 0);
  };
  const metrics = async () => await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  return { dir, file, port, backends, cli, running, cleanup, metrics };
}

serverTest(
  "three nginx apps on one port by Host: curl reaches each, only the one asked for wakes",
  [{ binary: "nginx", package: "nginx" }, { binary: "curl", package: "curl" }],
  async (paths) => {
    const env = await setup([
      ["one", "one.example.test"],
      ["two", "two.example.test *.two.example.test"],
      ["three", "three.example.test"],
    ]);
    const [one, two, three] = env.backends;
    let daemon: Daemon | undefined;
    try {
      const check = await env.cli("check");
      assert.equal(check.code, 0, check.stderr);
      assert.match(
        check.stdout,
        new RegExp(
          `port ${env.port} \\(127\\.0\\.0\\.1\\) shared by name \\(TLS SNI, HTTP Host\\):\\n` +
            "  one\\.example\\.test -> one\\n  two\\.example\\.test -> two\\n" +
            "  \\*\\.two\\.example\\.test -> two\\n  three\\.example\\.test -> three\\n" +
            "  other names: refused \\(421 over HTTP, closed over TLS\\)\\n" +
            "  names read within 1s, from the first 32 KiB",
        ),
      );
      daemon = await startDaemon(env.file, { env: { NGINX_BINARY: paths.nginx } });
      const at = (
        host: string,
        path = "/",
      ) => ["--resolve", `${host}:${env.port}:127.0.0.1`, `http://${host}:${env.port}${path}`];

      assert.equal(await curl("--fail", ...at("one.example.test")), "<h1>one</h1>\n");
      assert.deepEqual(await Promise.all(env.backends.map(env.running)), [true, false, false]);
      assert.equal(await curl("--fail", ...at("www.two.example.test")), "<h1>two</h1>\n");
      assert.equal(await curl("--fail", ...at("three.example.test")), "<h1>three</h1>\n");
      // Keep-alive: three requests over one connection, to the one service it was routed to.
      const format = "%{http_code} %{num_connects}\n";
      assert.equal(
        await curl(
          "--fail",
          "-w",
          format,
          "-o",
          "/dev/null",
          "-o",
          "/dev/null",
          ...at("two.example.test"),
          `http://two.example.test:${env.port}/index.html`,
        ),
        "200 1\n200 0\n",
      );

      // An unknown name: 421, counted, nothing woken.
      const unknown = await runProgram("curl", [
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        ...at("four.example.test"),
      ]);
      assert.equal(unknown.stdout, "421");

      // Half a head, then silence: closed after HOSTNAME_TIMEOUT, nothing woken.
      const staller = await Deno.connect({ hostname: "127.0.0.1", port: env.port });
      await writeAll(staller, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: thr"));
      assert.equal((await bounded(readAll(staller), "the stalling client's close")).length, 0);
      staller.close();

      const status = await env.cli("status");
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        new RegExp(
          `port 127\\.0\\.0\\.1:${env.port} by name: one\\.example\\.test -> one \\(1\\), ` +
            "two\\.example\\.test -> two \\(1\\), \\*\\.two\\.example\\.test -> two \\(1\\), " +
            "three\\.example\\.test -> three \\(1\\); unrouted: 1 unknown_name, 1 timeout",
        ),
      );
      assert.match(status.stdout, /names two\.example\.test \*\.two\.example\.test/);
      const json = JSON.parse((await env.cli("status", "--json")).stdout);
      assert.deepEqual(json.services.map((service: { hostnames: string[] }) => service.hostnames), [
        ["one.example.test"],
        ["two.example.test", "*.two.example.test"],
        ["three.example.test"],
      ]);
      const metrics = await env.metrics();
      const listen = `listen="127.0.0.1:${env.port}"`;
      assert.match(
        metrics,
        new RegExp(
          `sleepingd_routed_total\\{${listen},hostname="\\*\\.two\\.example\\.test",service="two"\\} 1`,
        ),
      );
      assert.match(
        metrics,
        new RegExp(`sleepingd_unrouted_total\\{${listen},reason="unknown_name"\\} 1`),
      );
      assert.doesNotMatch(metrics, /www\.two|four\.example/, "no label holds a name a client sent");
      assert.deepEqual(await Promise.all([one, two, three].map(env.running)), [true, true, true]);
      assert.deepEqual(daemon.lines.filter((line) => / ERROR /.test(line)), []);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon?.lines.join("\n")}`);
      throw error;
    } finally {
      await env.cleanup(daemon);
    }
  },
);

/** Curl's arguments for `https://NAME:PORT/PATH`, trusting `ca` only. */
function https(name: string, port: number, ca: string, path = "/"): string[] {
  return [
    "--cacert",
    ca,
    "--resolve",
    `${name}:${port}:127.0.0.1`,
    `https://${name}:${port}${path}`,
  ];
}

serverTest(
  "two TLS nginx on one port by SNI: each client gets its backend's certificate and its bytes intact",
  [
    { binary: "nginx", package: "nginx" },
    { binary: "curl", package: "curl" },
    { binary: "openssl", package: "openssl" },
  ],
  async (paths) => {
    const env = await setup([["a", "a.example.test"], ["b", "b.example.test"]], true);
    const [a, b] = env.backends;
    const large = randomBytes(8 * 1024 * 1024);
    await Deno.writeFile(`${a.root}/large.bin`, large);
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(env.file, { env: { NGINX_BINARY: paths.nginx } });
      const caA = `${env.dir}/a/a.example.test.crt`;
      const caB = `${env.dir}/b/b.example.test.crt`;
      // curl checks the certificate against the one CA it trusts: only a's backend has it.
      assert.equal(await curl("--fail", ...https("a.example.test", env.port, caA)), "<h1>a</h1>\n");
      assert.equal(await curl("--fail", ...https("b.example.test", env.port, caB)), "<h1>b</h1>\n");
      const wrong = await runProgram("curl", ["-sS", ...https("a.example.test", env.port, caB)]);
      assert.notEqual(wrong.code, 0, "a's certificate is not b's");
      await curl(
        "--fail",
        "-o",
        `${env.dir}/large.out`,
        ...https("a.example.test", env.port, caA, "/large.bin"),
      );
      assert.equal(await sha256(await Deno.readFile(`${env.dir}/large.out`)), await sha256(large));
      // The certificate seen is a's: its subject, from openssl s_client.
      const seen = await runProgram(paths.openssl, [
        "s_client",
        "-connect",
        `127.0.0.1:${env.port}`,
        "-servername",
        "b.example.test",
        "-CAfile",
        caB,
        "-verify_return_error",
      ]);
      assert.match(seen.stdout, /subject=CN ?= ?b\.example\.test/);
      assert.match(seen.stdout, /Verify return code: 0 \(ok\)/);

      // An unknown name: the handshake fails with unrecognized_name, counted.
      const unknown = await runProgram("curl", ["-sS", ...https("c.example.test", env.port, caA)]);
      assert.equal(unknown.code, 35, unknown.stderr);
      assert.match(unknown.stderr, /unrecognized name/i);
      assert.match(
        await env.metrics(),
        new RegExp(
          `sleepingd_unrouted_total\\{listen="127\\.0\\.0\\.1:${env.port}",reason="unknown_name"\\} 1`,
        ),
      );
      assert.deepEqual(await Promise.all([a, b].map(env.running)), [true, true]);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon?.lines.join("\n")}`);
      throw error;
    } finally {
      await env.cleanup(daemon);
    }
  },
);

/**
 * Takes curl's ClientHello, cuts it into TLS records of 40 bytes, and sends
 * each record in two TCP segments, each only once sleepingd has read the one
 * before without deciding (its trace line says so), until it has decided;
 * then relays both ways.
 */
function splittingRelay(target: number, daemon: Daemon) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const relayed = (async () => {
    const client = await listener.accept();
    listener.close();
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
    upstream.setNoDelay(true);
    const header = new Uint8Array(5);
    await readFull(client, header);
    const message = new Uint8Array((header[3] << 8) | header[4]);
    await readFull(client, message);
    const segments: Uint8Array[] = [];
    for (let at = 0; at < message.length; at += 40) {
      const part = message.subarray(at, Math.min(at + 40, message.length));
      const record = Uint8Array.of(0x16, 3, 1, part.length >> 8, part.length & 0xff, ...part);
      segments.push(record.subarray(0, 3), record.subarray(3));
    }
    const peer = `127.0.0.1:${upstream.localAddr.port}`;
    const reads = () =>
      daemon.lines.filter((line) => line.includes(`${peer}: `) && line.includes("no name yet"))
        .length;
    const decided = () => daemon.lines.some((line) => line.includes(`${peer} to [`));
    let waited = 0;
    for (const segment of segments) {
      await writeAll(upstream, segment);
      if (decided()) continue;
      await waitFor("sleepingd to read the segment", () => reads() > waited || decided());
      waited = reads();
    }
    const pump = async (from: Deno.Conn, to: Deno.Conn) => {
      const buffer = new Uint8Array(64 * 1024);
      try {
        for (let n; (n = await from.read(buffer)) !== null;) {
          await writeAll(to, buffer.subarray(0, n));
        }
        await to.closeWrite();
      } catch {
        // One side closed.
      }
    };
    await Promise.all([pump(client, upstream), pump(upstream, client)]);
    client.close();
    upstream.close();
    return { segments: segments.length, reads: waited };
  })();
  return { port: (listener.addr as Deno.NetAddr).port, relayed };
}

async function readFull(conn: Deno.Conn, buffer: Uint8Array) {
  for (let at = 0; at < buffer.length;) {
    const n = await conn.read(buffer.subarray(at));
    if (n === null) throw new Error("the client closed before its ClientHello ended");
    at += n;
  }
}

serverTest(
  "a ClientHello split into many records and TCP segments still reaches the right TLS backend",
  [
    { binary: "nginx", package: "nginx" },
    { binary: "curl", package: "curl" },
    { binary: "openssl", package: "openssl" },
  ],
  async (paths) => {
    const env = await setup([["a", "a.example.test"], ["b", "b.example.test"]], true);
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(env.file, {
        env: { NGINX_BINARY: paths.nginx },
        args: ["--debug"],
      });
      const relay = splittingRelay(env.port, daemon);
      const caB = `${env.dir}/b/b.example.test.crt`;
      const body = await curl(
        "--fail",
        "--cacert",
        caB,
        "--resolve",
        `b.example.test:${relay.port}:127.0.0.1`,
        `https://b.example.test:${relay.port}/`,
      );
      assert.equal(body, "<h1>b</h1>\n");
      const { segments, reads } = await bounded(relay.relayed, "the relay");
      assert.ok(segments >= 10, `the ClientHello went in ${segments} segments`);
      assert.ok(reads >= 3, `sleepingd read ${reads} parts before it had the name`);
      assert.deepEqual(await Promise.all(env.backends.map(env.running)), [false, true]);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon?.lines.join("\n")}`);
      throw error;
    } finally {
      await env.cleanup(daemon);
    }
  },
);
