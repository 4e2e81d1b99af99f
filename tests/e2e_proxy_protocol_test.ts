/**
 * The PROXY protocol header (src/net/proxy_protocol.ts) read by real servers:
 * haproxy (`accept-proxy`) and nginx (`proxy_protocol`) answer and log the
 * made-up client address the header names, for v1 and v2, over IPv4 and IPv6,
 * and as IPv4 a client a dual-stack listener saw as IPv4-mapped IPv6.
 */
import assert from "node:assert/strict";
import { proxyHeader, type ProxyProtocolVersion } from "../src/net/proxy_protocol.ts";
import { tuneConnection } from "../src/net/connect.ts";
import { freePort, readAll, refuses, text, writeAll } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { bounded, tempFiles, waitFor } from "./_helpers.ts";
import { startDaemon } from "./_daemon.ts";

/** A TCP address as Deno's `conn.remoteAddr` and `conn.localAddr` give it. */
function tcp(hostname: string, port: number): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

/** A made-up connection: the client, where sleepingd accepted it, and what a backend should see. */
interface Case {
  /** What kind of client it is, for failure messages. */
  name: string;
  /** The connection's remote address (`conn.remoteAddr`). */
  client: Deno.NetAddr;
  /** The address sleepingd accepted it on (`conn.localAddr`). */
  local: Deno.NetAddr;
  /** The client address and port as the servers answer and log them. */
  seen: string;
}

const CASES: Case[] = [
  {
    name: "IPv4",
    client: tcp("192.0.2.7", 51234),
    local: tcp("198.51.100.1", 8080),
    seen: "192.0.2.7 51234",
  },
  {
    name: "IPv6",
    client: tcp("2001:db8::7", 51234),
    local: tcp("2001:db8::1", 8080),
    seen: "2001:db8::7 51234",
  },
  {
    name: "IPv4 on a dual-stack listener",
    client: tcp("::ffff:192.0.2.7", 51234),
    local: tcp("::ffff:198.51.100.1", 8080),
    seen: "192.0.2.7 51234",
  },
];

const VERSIONS: ProxyProtocolVersion[] = ["v1", "v2"];

/** The request after the header; HTTP/1.0, so the server closes when it has answered. */
const REQUEST = new TextEncoder().encode("GET / HTTP/1.0\r\nHost: test\r\n\r\n");

/** How both servers log a request: the address from the header, its port, the request, the status. */
const logLine = (seen: string) => `${seen} "GET / HTTP/1.0" 200`;

/** A server the test started, killed at the end of its `await using` block. */
interface Server extends AsyncDisposable {
  /** The log lines of requests so far (lines naming a `GET`) in `file` in the server's folder. */
  requests(file: string): Promise<string[]>;
  /** Every `*.log` file in the server's folder, each under its name. */
  logs(): Promise<string>;
}

/**
 * Starts `program ARGS...` in the foreground, its stderr going to `stderr.log`
 * in `dir`, and waits (bounded) until it accepts connections on `port`.
 */
async function startServer(
  program: string,
  args: string[],
  dir: string,
  port: number,
): Promise<Server> {
  const child = new Deno.Command(program, {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Chunk by chunk: pipeTo() to a file's writable held the lines back until the end.
  const logging = (async () => {
    using file = await Deno.open(`${dir}/stderr.log`, { write: true, createNew: true });
    for await (const chunk of child.stderr) await writeAll(file, chunk);
  })();
  let exited = false;
  const status = child.status.finally(() => {
    exited = true;
  });
  const server: Server = {
    async requests(file) {
      const log = await Deno.readTextFile(`${dir}/${file}`).catch(() => "");
      return log.split("\n").filter((line) => line.includes('"GET '));
    },
    async logs() {
      const files = [...Deno.readDirSync(dir)].filter((entry) => entry.name.endsWith(".log"));
      const texts = files.map(async ({ name }) =>
        `${name}:\n${await Deno.readTextFile(`${dir}/${name}`)}`
      );
      return (await Promise.all(texts)).join("\n");
    },
    async [Symbol.asyncDispose]() {
      if (!exited) child.kill("SIGKILL");
      await status;
      await logging;
    },
  };
  try {
    await waitFor(`${program} to listen on 127.0.0.1:${port}`, async () => {
      if (exited) {
        const { code } = await status;
        await logging;
        throw new Error(`${program} exited (${code}):\n${await server.logs()}`);
      }
      return !(await refuses(port));
    });
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
  return server;
}

/**
 * Connects to 127.0.0.1:`port`, writes `header` then an HTTP/1.0 request, and
 * returns the body of the answer, which must be a 200.
 */
async function ask(port: number, header: Uint8Array, what: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // As sleepingd's backend connections: with Nagle, the request would wait behind the header
  // for haproxy's delayed ACK (about 40 ms each).
  tuneConnection(conn);
  try {
    await writeAll(conn, header);
    await writeAll(conn, REQUEST);
    const answer = text(await bounded(readAll(conn), `the answer to ${what}`));
    assert.match(answer, /^HTTP\/1\.[01] 200 /, `${what}: ${answer}`);
    return answer.slice(answer.indexOf("\r\n\r\n") + 4);
  } finally {
    conn.close();
  }
}

/**
 * Sends every case with every version to the server on `port` and checks its
 * answers, then that `server` logged each request with the client's address
 * in `logFile`.
 */
async function checkEveryCase(name: string, port: number, server: Server, logFile: string) {
  const logged: string[] = [];
  try {
    for (const version of VERSIONS) {
      for (const { name: source, client, local, seen } of CASES) {
        const what = `${name}, ${version}, ${source} client`;
        assert.equal(await ask(port, proxyHeader(version, client, local), what), `${seen}\n`, what);
        logged.push(logLine(seen));
      }
    }
    await waitFor(
      `${name} to log ${logged.length} requests`,
      async () => (await server.requests(logFile)).length >= logged.length,
    );
    assert.deepEqual(await server.requests(logFile), logged);
  } catch (error) {
    console.error(`${name}'s logs:\n${await server.logs()}`);
    throw error;
  }
}

serverTest(
  "haproxy with accept-proxy answers and logs the client address of v1 and v2 headers",
  [{ binary: "haproxy", package: "haproxy" }],
  async (paths) => {
    const port = freePort();
    // The address and port from the header are haproxy's %ci and %cp.
    await using dir = await tempFiles({
      "haproxy.cfg": `global
  log stderr format raw local0 info

defaults
  mode http
  log global
  option dontlognull
  timeout client 10s

frontend proxied
  bind 127.0.0.1:${port} accept-proxy
  log-format "%ci %cp %{+Q}r %ST"
  http-request return status 200 content-type text/plain lf-string "%ci %cp\\n"
`,
    });
    // -db: in the foreground, one process, which the test kills.
    await using haproxy = await startServer(
      paths.haproxy,
      ["-db", "-f", `${dir.path}/haproxy.cfg`],
      dir.path,
      port,
    );
    await checkEveryCase("haproxy", port, haproxy, "stderr.log");
  },
);

/**
 * Starts nginx in the foreground on 127.0.0.1:`port` with `listen ... proxy_protocol`,
 * answering and logging (in `access.log`) the client address and port the header names.
 */
async function startNginx(nginx: string, dir: string, port: number): Promise<Server> {
  // Relative paths are in the prefix (-p), the test's folder: nothing needs root.
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `# In the foreground, one process, which the test kills.
daemon off;
master_process off;
pid nginx.pid;
error_log error.log notice;

events {
  worker_connections 64;
}

http {
  log_format proxied '$proxy_protocol_addr $proxy_protocol_port "$request" $status';
  access_log access.log proxied;
  client_body_temp_path body;
  proxy_temp_path proxy;
  fastcgi_temp_path fastcgi;
  uwsgi_temp_path uwsgi;
  scgi_temp_path scgi;
  default_type text/plain;

  server {
    listen 127.0.0.1:${port} proxy_protocol;
    return 200 "$proxy_protocol_addr $proxy_protocol_port\\n";
  }
}
`,
  );
  // -e: the error log nginx opens before it reads its configuration, in the folder too.
  return await startServer(
    nginx,
    ["-p", `${dir}/`, "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`],
    dir,
    port,
  );
}

serverTest(
  "nginx with proxy_protocol answers and logs the client address of v1 and v2 headers",
  [{ binary: "nginx", package: "nginx" }],
  async (paths) => {
    const port = freePort();
    await using dir = await tempFiles({});
    await using nginx = await startNginx(paths.nginx, dir.path, port);
    await checkEveryCase("nginx", port, nginx, "access.log");
  },
);

serverTest(
  "sleepingd with PROXY_PROTOCOL=v1 and v2 shows nginx the real client, IPv4 and IPv6",
  [{ binary: "nginx", package: "nginx" }],
  async (paths) => {
    const nginxPort = freePort();
    await using dir = await tempFiles({});
    await using nginx = await startNginx(paths.nginx, dir.path, nginxPort);
    const ports = { v1: freePort(), v2: freePort() };
    await Deno.writeTextFile(
      `${dir.path}/sleepingd.conf`,
      VERSIONS.map((version) =>
        `[${version}]\nPORT=${ports[version]}\nLISTEN_ADDRESS=::\nPROXY_PROTOCOL=${version}\n` +
        `START_CMD=echo 127.0.0.1 ${nginxPort}\n`
      ).join(""),
    );
    const daemon = await startDaemon(`${dir.path}/sleepingd.conf`);
    try {
      for (const version of VERSIONS) {
        for (const hostname of ["127.0.0.1", "::1"]) {
          const conn = await Deno.connect({ hostname, port: ports[version] });
          const seen = `${hostname} ${conn.localAddr.port}`;
          await writeAll(conn, REQUEST);
          const answer = text(await bounded(readAll(conn), `the answer over ${version}`));
          conn.close();
          assert.equal(answer.slice(answer.indexOf("\r\n\r\n") + 4), `${seen}\n`, answer);
          await waitFor(
            `nginx to log ${seen}`,
            async () => (await nginx.requests("access.log")).includes(logLine(seen)),
          );
        }
      }
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  },
);
