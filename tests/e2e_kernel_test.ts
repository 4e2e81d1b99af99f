/**
 * FORWARD=kernel on three test hosts in network namespaces (tests/_netns.ts):
 * a client, the host sleepingd runs on, and a backend whose real servers
 * (nginx, redis, iperf3, dnsmasq) START_CMD starts there. The real CLI, real
 * clients (curl, socat, redis-cli, iperf3, dig), the real kernel's nftables
 * and conntrack.
 */
import assert from "node:assert/strict";
import type { DaemonStatus, ServiceStatus } from "../src/control/status.ts";
import { tableName } from "../src/kernel/rules.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { quoted, runCli, tempFiles, waitFor } from "./_helpers.ts";
import { freePort } from "./_net.ts";
import { ADDRESSES, netnsTest, type Topology } from "./_netns.ts";
import { IN_CI } from "./_servers.ts";
import { openGate, waitForGate } from "./_service.ts";

const NGINX = [{ binary: "nginx", package: "nginx" }, { binary: "curl", package: "curl" }];
const SOCAT = { binary: "socat", package: "socat" };
const URL = `http://${ADDRESSES.host}:8080/`;

/** A daemon on the host, its configuration in a folder of its own. */
interface Setup extends AsyncDisposable {
  dir: string;
  file: string;
  table: string;
  daemon: Daemon;
  /** The service's status, through the control socket. */
  status(): Promise<ServiceStatus>;
  /** The ports the service's rules forward now: `tcp . 8080`; none without the table. */
  forwarded(): Promise<string[]>;
  /** Runs `sleepingd -f FILE ARGS...` on the host. */
  cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts the daemon again (after it was killed), with the same files. */
  restart(): Promise<Daemon>;
  /** Lines of a file in the folder; none when it does not exist. */
  lines(name: string): string[];
}

/** nginx on the backend (at `address`), logging each client's address to DIR/access.log. */
function nginxCommands(
  dir: string,
  topology: Topology,
  address: string = ADDRESSES.backend,
): { start: string; stop: string } {
  const listen = address.includes(":") ? `[${address}]` : address;
  Deno.writeTextFileSync(
    `${dir}/nginx.conf`,
    `pid ${dir}/nginx.pid;
error_log ${dir}/nginx.err;
events { worker_connections 256; }
http {
  log_format peer '$remote_addr';
  access_log ${dir}/access.log peer;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server { listen ${listen}:80; location / { return 200 "hello\\n"; } }
}
`,
  );
  const inBackend = topology.prefix("backend").join(" ");
  return {
    start:
      `echo start >> '${dir}/starts'; ${inBackend} nginx -c '${dir}/nginx.conf' -e '${dir}/nginx.err' ` +
      `&& echo ${address} 80`,
    stop: stopPidfile(dir, "nginx.pid"),
  };
}

/** Shell text that ends the server of `pidfile` and waits until it is gone, counting the stop. */
function stopPidfile(dir: string, pidfile: string): string {
  // A zombie left to a PID 1 that does not reap counts as gone.
  return `echo stop >> '${dir}/stops'; pid="$(cat '${dir}/${pidfile}' 2>/dev/null)"; ` +
    `[ -n "$pid" ] && kill "$pid" && for _ in $(seq 500); do ` +
    `{ [ -e "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; } || break; ` +
    `sleep 0.02; done; rm -f '${dir}/${pidfile}'`;
}

/** Writes the configuration `service(dir)` (after VARRUN_PATH and STATE_PATH) and starts the daemon on the host. */
async function setUp(
  topology: Topology,
  service: (dir: string) => string,
  args: string[] = [],
): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-kernel-" });
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\nSHUTDOWN_GRACE=2\n${service(dir)}`,
  );
  const table = tableName(`${dir}/run`);
  const start = () => startDaemon(file, { netns: topology.ns.host, args });
  const setup: Setup = {
    dir,
    file,
    table,
    daemon: await start(),
    async status() {
      const { code, stdout, stderr } = await runCli(["-f", file, "status", "--json"]);
      assert.equal(code, 0, stderr);
      return (JSON.parse(stdout) as DaemonStatus).services[0];
    },
    async forwarded() {
      const { code, stdout } = await topology.run("host", "nft", [
        "list",
        "map",
        "inet",
        table,
        "ports",
      ]);
      if (code !== 0) return [];
      return [...stdout.matchAll(/(tcp|udp) \. (\d+)/g)].map((match) =>
        `${match[1]} . ${match[2]}`
      );
    },
    cli: (...args) =>
      topology.run("host", Deno.execPath(), [
        "run",
        "-A",
        `${Deno.cwd()}/src/main.ts`,
        "-f",
        file,
        ...args,
      ]),
    async restart() {
      setup.daemon = await start();
      return setup.daemon;
    },
    lines(name) {
      try {
        return Deno.readTextFileSync(`${dir}/${name}`).split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
    async [Symbol.asyncDispose]() {
      await setup.daemon.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
  return setup;
}

/** curl from the client (or another host) to `url`; its exit code and output. */
function curlFrom(topology: Topology, side: "client" | "host", url: string, ...args: string[]) {
  return topology.run(side, "curl", ["-sS", "--max-time", "10", ...args, url]);
}

async function okCurl(topology: Topology, side: "client" | "host", url: string, ...args: string[]) {
  const { code, stdout, stderr } = await curlFrom(topology, side, url, ...args);
  assert.equal(code, 0, `curl ${url} failed: ${stderr}`);
  assert.equal(stdout, "hello\n");
}

/** A TCP connection from the client held open (socat waiting on its stdin) until `close()`. */
async function holdConnection(
  topology: Topology,
  url: string,
  from: string = ADDRESSES.client,
  side: "client" | "host" = "client",
) {
  const { hostname, port } = new globalThis.URL(url);
  const bind = from.includes(":") ? `[${from}]` : from;
  const child = topology.spawn(side, "socat", ["-", `TCP:${hostname}:${port},bind=${bind}`]);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
  return {
    child,
    async close() {
      await writer.close().catch(() => {});
      await child.status;
    },
  };
}

const WEB = (dir: string, topology: Topology, extra = "", backend: string = ADDRESSES.backend) => {
  const nginx = nginxCommands(dir, topology, backend);
  return `[web]
PORT=8080
FORWARD=kernel
START_CMD="${nginx.start.replaceAll('"', '\\"')}"
STOP_CMD="${nginx.stop.replaceAll('"', '\\"')}"
${extra}`;
};

netnsTest(
  "FORWARD=kernel: the first connection wakes through sleepingd, later ones go through the kernel, and nginx sees the client's own address",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections \(8080->80\/tcp\)/);
    const before = await setup.status();
    assert.equal(before.path, "kernel");
    assert.equal(before.totalConnections, 1);
    assert.deepEqual(await setup.forwarded(), ["tcp . 8080"]);
    for (let i = 0; i < 5; i++) await okCurl(topology, "client", URL);
    let after = before;
    await waitFor("the rule's counters to count 5 connections", async () => {
      after = await setup.status();
      return after.kernel!.totalConnections === 5;
    });
    // sleepingd's own counters do not move: the kernel carried these.
    assert.equal(after.totalConnections, 1);
    assert.equal(after.bytesIn, before.bytesIn);
    assert.ok(
      after.kernel!.bytesIn > 5 * 70 && after.kernel!.bytesOut > 5 * 100,
      JSON.stringify(after.kernel),
    );
    assert.deepEqual(setup.lines("access.log"), [
      ADDRESSES.hostBackend, // the wake's connection came from sleepingd
      ...Array(5).fill(ADDRESSES.client), // the kernel's keep the client's own address
    ]);
    assert.match(
      setup.daemon.lines.find((line) => line.includes("connection to 10.201.2.2:80 closed"))!,
      /\(proxied: the kernel path was not in place\)$/,
    );
  },
);

netnsTest(
  "FORWARD=kernel: a client on the host itself goes through the kernel to the host's own address; loopback through sleepingd",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    await okCurl(topology, "host", URL);
    await okCurl(topology, "host", `http://${ADDRESSES.hostBackend}:8080/`);
    await okCurl(topology, "host", "http://127.0.0.1:8080/");
    await waitFor(
      "the rule's counters to count the host's 2 connections",
      async () => (await setup.status()).kernel!.totalConnections === 2,
    );
    assert.equal((await setup.status()).totalConnections, 2, "the wake's and the loopback one");
    assert.deepEqual(setup.lines("access.log"), [
      ADDRESSES.hostBackend,
      ADDRESSES.host, // the host's own address, not masqueraded
      ADDRESSES.hostBackend,
      ADDRESSES.hostBackend, // loopback: proxied by sleepingd
    ]);
    assert.ok(setup.daemon.lines.some((line) => line.endsWith("(proxied: a loopback client)")));
  },
);

netnsTest(
  "FORWARD=kernel: a connection held open through the kernel keeps the service awake past IDLE_TIME; once it closes, the rules go, then STOP_CMD",
  [...NGINX, SOCAT],
  async (topology) => {
    await using setup = await setUp(
      topology,
      (dir) => WEB(dir, topology, "IDLE_TIME=1\nIDLE_CHECK_INTERVAL=0.3\n"),
      ["-v"],
    );
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    const held = await holdConnection(topology, URL);
    const from = setup.daemon.lines.length;
    // Busy several checks in a row: IDLE_TIME (1 s) passes while it is open, and it is the
    // kernel's connection that keeps it busy (sleepingd holds none).
    const busy = /\[web\] not idle: 1 open connection$/;
    await waitFor(
      "5 idle checks that found the connection",
      () => setup.daemon.lines.slice(from).filter((line) => busy.test(line)).length >= 5,
      30,
    );
    const status = await setup.status();
    assert.equal(status.state, "awake");
    assert.equal(status.awakeBecause, "1 connection through the kernel");
    assert.equal(status.openConnections, 0);
    assert.equal(status.kernel!.openConnections, 1);
    await held.close();
    await setup.daemon.waitForLine(/\[web\] stopping -> asleep: STOP_CMD done/);
    const at = (pattern: RegExp) => setup.daemon.lines.findIndex((line) => pattern.test(line));
    const ended = at(/\[web\] the kernel stopped forwarding \(idle\)/);
    const stopRan = at(/\[web\] STOP_CMD exit 0/);
    assert.ok(ended > 0 && ended < stopRan, "the rules go before STOP_CMD runs");
    assert.deepEqual(await setup.forwarded(), []);
    const { stdout } = await topology.run("host", "nft", ["list", "table", "inet", setup.table]);
    assert.doesNotMatch(stdout, /chain (nat|svc)_/, "none of the service's chains is left");
  },
);

netnsTest(
  "FORWARD=kernel: kill -9 leaves the rules, a restart removes them before it listens and forwards nothing to a backend that died meanwhile; sleepingd cleanup removes the table",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    const refused = await setup.cli("cleanup");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /a daemon runs in .* \(pid \d+\): its table is its own/);
    assert.deepEqual(await setup.forwarded(), ["tcp . 8080"]);
    Deno.kill(setup.daemon.pid, "SIGKILL");
    await setup.daemon.stop();
    assert.deepEqual(await setup.forwarded(), ["tcp . 8080"], "what a killed daemon leaves");
    // The backend dies while no daemon runs.
    await topology.run("host", "bash", ["-c", stopPidfile(setup.dir, "nginx.pid")]);
    const restarted = await setup.restart();
    await restarted.waitForLine(/\[web\] asleep -> awake: adopted 10\.201\.2\.2:80/);
    assert.deepEqual(await setup.forwarded(), [], "no rule to a backend not proven up");
    // The first client finds it gone through sleepingd and wakes it again.
    await okCurl(topology, "client", URL);
    assert.equal(setup.lines("starts").length, 2);
    await restarted.waitForLine(/\[web\] the kernel forwards new connections/);
    Deno.kill(restarted.pid, "SIGKILL");
    await restarted.stop();
    assert.deepEqual(await setup.forwarded(), ["tcp . 8080"]);
    const cleanup = await setup.cli("cleanup");
    assert.equal(cleanup.code, 0, cleanup.stderr);
    const { code } = await topology.run("host", "nft", ["list", "table", "inet", setup.table]);
    assert.notEqual(code, 0, "the table is gone");
    await topology.run("host", "bash", ["-c", stopPidfile(setup.dir, "nginx.pid")]);
    setup.daemon = await setup.restart(); // for the disposal
  },
);

netnsTest(
  "FORWARD=kernel: a reload that sets FORWARD=proxy takes the rules out, and sleepingd carries the next connections",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    const text = await Deno.readTextFile(setup.file);
    await Deno.writeTextFile(setup.file, text.replace("FORWARD=kernel", "FORWARD=proxy"));
    const reload = await runCli(["-f", setup.file, "reload"]);
    assert.equal(reload.code, 0, reload.stderr);
    await setup.daemon.waitForLine(
      /\[web\] the kernel stopped forwarding \(FORWARD is proxy now\)/,
    );
    assert.deepEqual(await setup.forwarded(), []);
    await okCurl(topology, "client", URL);
    const status = await setup.status();
    assert.equal(status.totalConnections, 2);
    assert.equal(status.path, "proxy");
    assert.equal(status.state, "awake");
  },
);

netnsTest(
  "FORWARD=kernel: ALLOW, DENY, MAX_CONNECTIONS_PER_SOURCE and MAX_CONNECTIONS hold on the kernel path, refusals counted",
  [...NGINX, SOCAT],
  async (topology) => {
    await using setup = await setUp(
      topology,
      (dir) =>
        "METRICS_ADDRESS=127.0.0.1:9180\n" +
        WEB(
          dir,
          topology,
          `ALLOW=10.201.1.0/24\nDENY=${ADDRESSES.client2}\nMAX_CONNECTIONS_PER_SOURCE=2\n` +
            "MAX_CONNECTIONS=3\n",
        ),
    );
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    // DENY: not forwarded; sleepingd refuses it, says why and counts it.
    const denied = await curlFrom(topology, "client", URL, "--interface", ADDRESSES.client2);
    assert.notEqual(denied.code, 0);
    await setup.daemon.waitForLine(
      /\[web\] refused 10\.201\.1\.3:\d+: denied by DENY 10\.201\.1\.3/,
    );
    // ALLOW: the host's address on the backend's network is not in it.
    const outside = await curlFrom(topology, "host", URL, "--interface", ADDRESSES.hostBackend);
    assert.notEqual(outside.code, 0);
    await setup.daemon.waitForLine(/\[web\] refused 10\.201\.2\.1:\d+: not in ALLOW/);
    // Two connections held from the client: the third is refused by the kernel.
    const held = [await holdConnection(topology, URL), await holdConnection(topology, URL)];
    await waitFor(
      "2 connections through the kernel",
      async () => (await setup.status()).kernel!.openConnections === 2,
    );
    const third = await curlFrom(topology, "client", URL);
    assert.equal(third.code, 7, `refused at connect: ${third.stderr}`);
    // The next source connects once sleepingd has read the kernel's refusal of the third.
    await setup.daemon.waitForLine(
      /\[web\] the kernel refused 1 connection\(s\): 1 at MAX_CONNECTIONS_PER_SOURCE \(2\)/,
    );
    // Another source still gets in, up to MAX_CONNECTIONS for the service.
    await okCurl(topology, "host", URL);
    held.push(await holdConnection(topology, URL, ADDRESSES.host, "host"));
    await waitFor(
      "3 connections through the kernel",
      async () => (await setup.status()).kernel!.openConnections === 3,
    );
    const fourth = await curlFrom(topology, "host", URL);
    assert.equal(fourth.code, 7, `refused at connect: ${fourth.stderr}`);
    await setup.daemon.waitForLine(
      /\[web\] the kernel refused 1 connection\(s\): 1 at MAX_CONNECTIONS \(3\)/,
    );
    const metrics = (await curlFrom(topology, "host", "http://127.0.0.1:9180/metrics")).stdout;
    assert.match(metrics, /sleepingd_refused_total\{service="web",reason="deny"\} 1\n/);
    assert.match(
      metrics,
      /sleepingd_refused_total\{service="web",reason="max_connections_per_source"\} 1\n/,
    );
    assert.match(metrics, /sleepingd_refused_total\{service="web",reason="max_connections"\} 1\n/);
    assert.match(metrics, /sleepingd_refused_total\{service="web",reason="allow"\} 1\n/);
    assert.match(metrics, /sleepingd_forward_path\{service="web",path="kernel"\} 1\n/);
    for (const connection of held) await connection.close();
    assert.ok(!setup.lines("access.log").includes(ADDRESSES.client2));
  },
);

netnsTest(
  "FORWARD=kernel: a backend gone while awake loses its rules at once, and the next client wakes it again",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    await topology.run("host", "bash", ["-c", stopPidfile(setup.dir, "nginx.pid")]);
    const refused = await curlFrom(topology, "client", URL);
    assert.equal(refused.code, 7, "the dead backend refused it through the kernel");
    await setup.daemon.waitForLine(
      /\[web\] awake -> asleep: 10\.201\.2\.2:80 is gone: it refused a connection the kernel forwarded/,
    );
    await setup.daemon.waitForLine(/\[web\] the kernel stopped forwarding \(gone\)/);
    assert.deepEqual(await setup.forwarded(), []);
    await okCurl(topology, "client", URL);
    assert.equal(setup.lines("starts").length, 2);
  },
);

netnsTest(
  "FORWARD=kernel covers UDP ports: dnsmasq answers dig through the kernel and logs the client's address; sleepingd's datagram counters do not move",
  [
    { binary: "dnsmasq", package: "dnsmasq-base", dirs: ["/usr/sbin"] },
    { binary: "dig", package: "dnsutils" },
  ],
  async (topology, paths) => {
    await using setup = await setUp(topology, (dir) => {
      const inBackend = topology.prefix("backend").join(" ");
      const start = `${inBackend} ${paths.dnsmasq} --conf-file=/dev/null --no-resolv --no-hosts ` +
        `--listen-address=${ADDRESSES.backend} --bind-interfaces --port=53 --user=root ` +
        `--pid-file=${dir}/dnsmasq.pid --log-queries --log-facility=${dir}/queries.log ` +
        `--host-record=host.test,192.0.2.7 && echo ${ADDRESSES.backend} 53`;
      return `[dns]
PORT=5353
PROTOCOL=udp
FORWARD=kernel
START_CMD="${start}"
READY_CMD="${paths.dig} @${ADDRESSES.backend} +short +tries=1 +timeout=1 host.test | grep -q 192.0.2.7"
STOP_CMD="${stopPidfile(dir, "dnsmasq.pid").replaceAll('"', '\\"')}"
`;
    });
    const dig = () =>
      topology.run("client", paths.dig, [
        `@${ADDRESSES.host}`,
        "-p",
        "5353",
        "+short",
        "+tries=1",
        "+timeout=5",
        "host.test",
      ]);
    const first = await dig();
    assert.equal(first.stdout.trim(), "192.0.2.7", first.stderr);
    await setup.daemon.waitForLine(/\[dns\] the kernel forwards new connections \(5353->53\/udp\)/);
    const before = await setup.status();
    for (let i = 0; i < 3; i++) assert.equal((await dig()).stdout.trim(), "192.0.2.7");
    await waitFor(
      "the rule's counters to count 3 flows",
      async () => (await setup.status()).kernel!.totalFlows === 3,
    );
    const after = await setup.status();
    assert.equal(after.datagramsIn, before.datagramsIn);
    assert.equal(after.datagramsOut, before.datagramsOut);
    const queries = setup.lines("queries.log").filter((line) =>
      line.includes("query[A] host.test")
    );
    assert.equal(
      queries.filter((line) => line.endsWith(`from ${ADDRESSES.client}`)).length,
      3,
      queries.join("\n"),
    );
  },
);

netnsTest(
  "FORWARD=kernel: redis and iperf3 through the kernel see the client's own address; its bytes are the kernel's, not sleepingd's",
  [
    { binary: "redis-server", package: "redis-server" },
    { binary: "redis-cli", package: "redis-tools" },
    { binary: "iperf3", package: "iperf3" },
  ],
  async (topology, paths) => {
    await using setup = await setUp(topology, (dir) => {
      const inBackend = topology.prefix("backend").join(" ");
      const start =
        `${inBackend} ${paths["redis-server"]} --bind ${ADDRESSES.backend} --port 6379 ` +
        `--save '' --appendonly no --protected-mode no --daemonize yes --pidfile ${dir}/redis.pid --dir ${dir} ` +
        `--logfile ${dir}/redis.log && ${inBackend} ${paths.iperf3} -s -D -B ${ADDRESSES.backend} ` +
        `-p 5201 -I ${dir}/iperf3.pid --logfile ${dir}/iperf3.log && echo ${ADDRESSES.backend} 6379`;
      return `[cache]
PORT=6380
MORE_PORTS=5201
FORWARD=kernel
START_CMD="${start}"
READY_CMD="${paths["redis-cli"]} -h ${ADDRESSES.backend} ping | grep -q PONG"
STOP_CMD="${
        (stopPidfile(dir, "redis.pid") + "; " + stopPidfile(dir, "iperf3.pid")).replaceAll(
          '"',
          '\\"',
        )
      }"
`;
    });
    const redis = (...args: string[]) =>
      topology.run("client", paths["redis-cli"], ["-h", ADDRESSES.host, "-p", "6380", ...args]);
    const ping = await redis("ping");
    assert.equal(ping.stdout.trim(), "PONG", `${ping.stderr}\n${setup.daemon.lines.join("\n")}`);
    await setup.daemon.waitForLine(/\[cache\] the kernel forwards new connections/);
    const clients = (await redis("client", "list")).stdout;
    assert.match(
      clients,
      new RegExp(`addr=${ADDRESSES.client.replaceAll(".", "\\.")}:\\d+ .*cmd=client`),
    );
    const before = await setup.status();
    const iperf = await topology.run("client", paths.iperf3, [
      "-c",
      ADDRESSES.host,
      "-p",
      "5201",
      "-t",
      "1",
      "-J",
    ]);
    assert.equal(iperf.code, 0, iperf.stdout.slice(0, 2000));
    const report = JSON.parse(iperf.stdout);
    assert.ok(report.end.sum_received.bytes > 1_000_000);
    const received = report.end.sum_received.bytes;
    let seen = before;
    await waitFor(
      "the kernel's byte counters to pass iperf3's",
      async () => (seen = await setup.status()).kernel!.bytesIn > received,
    ).catch((error) => {
      // What each side counted, and what the daemon said meanwhile: enough to tell why.
      throw new Error(
        `${error.message}: iperf3 received ${received} bytes; the kernel counted ` +
          `${JSON.stringify(seen.kernel)} (path ${seen.path}: ${seen.pathNote}); sleepingd ` +
          `carried ${seen.bytesIn - before.bytesIn} bytes in; the log:\n` +
          setup.daemon.lines.join("\n"),
      );
    });
    const after = await setup.status();
    assert.equal(after.bytesIn, before.bytesIn, "sleepingd carried none of it");
    assert.match(
      setup.lines("iperf3.log").join("\n"),
      new RegExp(`Accepted connection from ${ADDRESSES.client.replaceAll(".", "\\.")}`),
    );
  },
);

Deno.test({
  name: "check refuses FORWARD=kernel at its line without CAP_NET_ADMIN",
  ignore: Deno.uid() !== 0 && !IN_CI,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-kernel-check-" });
    try {
      const file = `${dir}/t.conf`;
      await Deno.writeTextFile(file, "[web]\nPORT=8080\nSTART_CMD=go\nFORWARD=kernel\n");
      const { code, stderr } = await runCliWithout("net_admin", ["-f", file, "check"]);
      assert.equal(code, 1);
      assert.match(
        stderr,
        new RegExp(
          `sleepingd: error: ${file}:4: Cannot use FORWARD=kernel in \\[web\\] as the kernel path needs ` +
            "root or CAP_NET_ADMIN to change nftables; this runs as uid 0 without it",
        ),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** `sleepingd ARGS...` as root without the capability `cap`, through util-linux setpriv. */
function runCliWithout(cap: string, args: string[]) {
  return new Deno.Command("setpriv", {
    args: [
      `--inh-caps=-${cap}`,
      `--bounding-set=-${cap}`,
      Deno.execPath(),
      "run",
      "--quiet",
      "-A",
      `${Deno.cwd()}/src/main.ts`,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output().then(({ code, stdout, stderr }) => ({
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  }));
}

Deno.test({
  name:
    "FORWARD=kernel: a table nft cannot make at start ends the start, naming the table; nothing listens",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using dir = await tempFiles({
      // nft that removes tables but cannot make one; the host's own rules are never touched.
      "bin/nft": `#!/bin/sh
if [ "$1" = "-f" ]; then
  case "$(cat)" in *"map ports"*) echo "Error: Could not process rule: Operation not permitted" >&2; exit 1 ;; esac
fi
[ "$*" = "-j list ruleset" ] && echo '{"nftables": []}'
exit 0
`,
      "bin/conntrack": "#!/bin/sh\nexit 0\n",
    });
    await Deno.chmod(`${dir.path}/bin/nft`, 0o755);
    await Deno.chmod(`${dir.path}/bin/conntrack`, 0o755);
    const port = freePort();
    await Deno.writeTextFile(
      `${dir.path}/sleepingd.conf`,
      `VARRUN_PATH=${dir.path}/run\nSTATE_PATH=${dir.path}/state\n[web]\nPORT=${port}\n` +
        "FORWARD=kernel\nSTART_CMD=echo 127.0.0.1 1\n",
    );
    const { code, stderr } = await runCli(["-f", `${dir.path}/sleepingd.conf`, "run"], {
      env: { PATH: `${dir.path}/bin:${Deno.env.get("PATH")}` },
    });
    assert.equal(code, 1, stderr);
    const table = tableName(`${dir.path}/run`);
    assert.match(stderr, new RegExp(`Cannot make the nftables table ${table}: .*not permitted`));
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      Deno.errors.ConnectionRefused,
    );
  },
});

netnsTest(
  "FORWARD=kernel: MASQUERADE=yes makes the backend see the host's address on the kernel path too",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology, "MASQUERADE=yes\n"));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(
      /\[web\] the kernel forwards new connections .*masqueraded \(MASQUERADE=yes\)/,
    );
    for (let i = 0; i < 3; i++) await okCurl(topology, "client", URL);
    await waitFor(
      "the rule's counters to count 3 connections",
      async () => (await setup.status()).kernel!.totalConnections === 3,
    );
    assert.deepEqual(setup.lines("access.log"), Array(4).fill(ADDRESSES.hostBackend));
  },
);

netnsTest(
  "FORWARD=kernel: with IPv4 forwarding off, check warns and each wake stays on the proxy path, saying why; sleepingd never turns it on",
  NGINX,
  async (topology) => {
    await topology.run("host", "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    const check = await setup.cli("check");
    assert.equal(check.code, 0, check.stderr);
    assert.match(
      check.stderr,
      new RegExp(
        `sleepingd: warning: ${setup.file}:6: FORWARD=kernel in \\[web\\]: net\\.ipv4\\.ip_forward ` +
          "is 0: a backend on another host stays on the proxy path",
      ),
    );
    assert.match(check.stdout, /net\.ipv4\.ip_forward=0/);
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(
      /\[web\] stays on the proxy path for this wake: the backend 10\.201\.2\.2 is on another host and net\.ipv4\.ip_forward is 0 \(sleepingd never changes it\)/,
    );
    await okCurl(topology, "client", URL);
    const status = await setup.status();
    assert.equal(status.path, "proxy");
    assert.match(status.pathNote!, /net\.ipv4\.ip_forward is 0/);
    assert.equal(status.totalConnections, 2);
    assert.deepEqual(await setup.forwarded(), []);
    assert.equal(
      (await topology.run("host", "sysctl", ["-n", "net.ipv4.ip_forward"])).stdout.trim(),
      "0",
    );
  },
);

netnsTest(
  "FORWARD=kernel: check names another table's forward chain that drops, and the rule it suggests lets the kernel's connections through",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    const firewall =
      "table ip filter {\n  chain FORWARD {\n    type filter hook forward priority filter; " +
      "policy drop;\n  }\n}\n";
    const loaded = await topology.run("host", "bash", ["-c", `nft -f - <<'EOF'\n${firewall}EOF`]);
    assert.equal(loaded.code, 0, loaded.stderr);
    const check = await setup.cli("check");
    const warning = check.stderr.split("\n").find((line) =>
      line.includes("table ip filter, chain FORWARD")
    );
    assert.ok(warning, check.stderr);
    assert.match(
      warning,
      new RegExp(`^sleepingd: warning: ${setup.file}:6: FORWARD=kernel in \\[web\\]: `),
    );
    assert.match(warning, /has policy drop: a drop in any table wins over sleepingd's accept/);
    // The wake goes through sleepingd (its own connection to the backend is not forwarded)...
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    // ...but the kernel's connections are dropped by the other table, until its rule is added.
    const dropped = await curlFrom(topology, "client", URL, "--max-time", "1");
    assert.notEqual(dropped.code, 0);
    const rule = /e\.g\. (nft insert rule .*)$/.exec(warning)![1];
    const added = await topology.run("host", "bash", ["-c", rule]);
    assert.equal(added.code, 0, added.stderr);
    await okCurl(topology, "client", URL);
    const again = await setup.cli("check");
    assert.doesNotMatch(again.stderr, /chain FORWARD/);
  },
);

netnsTest(
  "FORWARD=kernel with an IPv6 backend: IPv6 clients go through the kernel with their own address, IPv4 clients through sleepingd",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology, "", ADDRESSES.backend6));
    const url6 = `http://[${ADDRESSES.host6}]:8080/`;
    await okCurl(topology, "client", url6);
    await setup.daemon.waitForLine(
      /\[web\] the kernel forwards new connections \(8080->80\/tcp\) to \[fd00:201:2::2\]:80/,
    );
    for (let i = 0; i < 3; i++) await okCurl(topology, "client", url6);
    await waitFor(
      "the rule's counters to count 3 connections",
      async () => (await setup.status()).kernel!.totalConnections === 3,
    );
    await okCurl(topology, "client", URL); // IPv4: the kernel cannot translate it to IPv6
    const status = await setup.status();
    assert.equal(status.totalConnections, 2);
    assert.deepEqual(setup.lines("access.log"), [
      ADDRESSES.hostBackend6,
      ...Array(3).fill(ADDRESSES.client6),
      ADDRESSES.hostBackend6,
    ]);
    assert.ok(
      setup.daemon.lines.some((line) =>
        line.endsWith("(proxied: a client the kernel does not forward)")
      ),
    );
  },
);

netnsTest(
  "FORWARD=kernel: a table flushed from outside (a firewall reload) leaves clients to sleepingd until its next reading puts the rules back",
  NGINX,
  async (topology) => {
    await using setup = await setUp(topology, (dir) => WEB(dir, topology));
    await okCurl(topology, "client", URL);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    const flushed = await topology.run("host", "nft", ["flush", "ruleset"]);
    assert.equal(flushed.code, 0, flushed.stderr);
    await okCurl(topology, "client", URL);
    assert.equal((await setup.status()).totalConnections, 2, "sleepingd served it meanwhile");
    await setup.daemon.waitForLine(
      /the table sleepingd_[0-9a-f]+ was removed by something else: putting it back/,
    );
    await waitFor("the rules back", async () => (await setup.forwarded()).includes("tcp . 8080"));
    await okCurl(topology, "client", URL);
    await waitFor(
      "the kernel to forward again",
      async () => (await setup.status()).kernel!.totalConnections >= 1,
    );
    assert.equal((await setup.status()).totalConnections, 2);
  },
);

netnsTest(
  "FORWARD=kernel: MAX_CONNECTIONS_PER_SOURCE counts an IPv6 client by its /64 on the kernel path",
  [...NGINX, SOCAT],
  async (topology) => {
    await using setup = await setUp(
      topology,
      (dir) => WEB(dir, topology, "MAX_CONNECTIONS_PER_SOURCE=2\n", ADDRESSES.backend6),
    );
    const url6 = `http://[${ADDRESSES.host6}]:8080/`;
    await okCurl(topology, "client", url6);
    await setup.daemon.waitForLine(/\[web\] the kernel forwards new connections/);
    const held = [
      await holdConnection(topology, url6, ADDRESSES.client6),
      await holdConnection(topology, url6, ADDRESSES.client6b),
    ];
    await waitFor(
      "2 connections through the kernel",
      async () => (await setup.status()).kernel!.openConnections === 2,
    );
    // A third address of the same /64 is the same source.
    const third = await curlFrom(topology, "client", url6, "--interface", ADDRESSES.client6);
    assert.equal(third.code, 7, `refused at connect: ${third.stderr}`);
    await setup.daemon.waitForLine(
      /\[web\] the kernel refused 1 connection\(s\): 1 at MAX_CONNECTIONS_PER_SOURCE \(2\)/,
    );
    for (const connection of held) await connection.close();
  },
);

/** A socat server on the backend at `port`, `address` its far side; resolves once it listens. */
async function socatServer(
  topology: Topology,
  socat: string,
  protocol: "tcp" | "udp",
  port: number,
  address: string,
): Promise<Deno.ChildProcess> {
  const listen = protocol === "tcp" ? "TCP-LISTEN" : "UDP-RECVFROM";
  const server = topology.spawn("backend", socat, [
    `${listen}:${port},bind=${ADDRESSES.backend},fork,reuseaddr`,
    address,
  ]);
  await waitFor(`the ${protocol} server to listen`, async () => {
    const flag = protocol === "tcp" ? "-tlnH" : "-ulnH";
    const { stdout } = await topology.run("backend", "ss", [flag, "sport", `= :${port}`]);
    return stdout.includes(`:${port}`);
  });
  return server;
}

/**
 * A FORWARD=kernel service on `port` whose START_CMD waits at the test's gate
 * (openGate), then names the backend at the same port.
 */
function gatedService(dir: string, name: string, port: number, more = ""): string {
  const start = `${waitForGate(dir)}\necho ${ADDRESSES.backend} ${port}`;
  return `[${name}]\nPORT=${port}\n${more}FORWARD=kernel\nSTART_CMD=${quoted(start)}\n`;
}

/** socat on the client host: one connection or flow, lines written, what came back read. */
interface SocatClient extends AsyncDisposable {
  /** Sends `text`. */
  send(text: string): Promise<void>;
  /** Reads until `enough` holds of everything read so far; false when the client ended first. */
  readUntil(enough: (received: string) => boolean): Promise<boolean>;
  /** Everything read so far. */
  readonly received: string;
}

/** Starts socat on the client host to `address` (`TCP:...` or `UDP:...`); killed at disposal. */
function socatClient(topology: Topology, socat: string, address: string): SocatClient {
  const child = topology.spawn("client", socat, ["-", address]);
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let received = "";
  return {
    get received() {
      return received;
    },
    send: (text) => writer.write(new TextEncoder().encode(text)),
    async readUntil(enough) {
      while (!enough(received)) {
        const { value, done } = await reader.read();
        if (done) return false;
        received += value;
      }
      return true;
    },
    async [Symbol.asyncDispose]() {
      // The child goes first: its pipes' reads and writes then end, whatever failed meanwhile.
      child.kill("SIGKILL");
      await child.status;
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
    },
  };
}

netnsTest(
  "FORWARD=kernel: a connection proxied while the service wakes still reaches the backend through sleepingd once the rules are in, even after conntrack forgot it (the kernel translates only a SYN)",
  [SOCAT],
  async (topology, paths) => {
    const echo = await socatServer(topology, paths.socat, "tcp", 7000, "EXEC:cat");
    try {
      await using setup = await setUp(topology, (dir) => gatedService(dir, "echo", 7000));
      await using client = socatClient(topology, paths.socat, `TCP:${ADDRESSES.host}:7000`);
      const echoed = (text: string) => client.readUntil((received) => received.endsWith(text));
      await client.send("before\n");
      await setup.daemon.waitForLine(/\[echo\] asleep -> starting/);
      await openGate(setup.dir);
      assert.ok(await echoed("before\n"), "the wake's connection is echoed through sleepingd");
      await setup.daemon.waitForLine(/\[echo\] the kernel forwards new connections/);
      // Conntrack forgets the connection (as `conntrack -F` or an expired entry would): its next
      // packet is one conntrack takes for new, in the middle of the connection's life.
      const flushed = await topology.run("host", "conntrack", ["-F"]);
      assert.equal(flushed.code, 0, flushed.stderr);
      await client.send("after\n");
      assert.ok(
        await echoed("after\n"),
        `the connection proxied before the rules went in ended instead of echoing (read ${
          JSON.stringify(client.received)
        })`,
      );
      const status = await setup.status();
      assert.equal(status.state, "awake", "the backend did not refuse a translated packet");
      assert.equal(status.kernel!.totalConnections, 0, "the kernel translated none of it");
      assert.ok(!setup.daemon.lines.some((line) => line.includes("is gone")));
    } finally {
      echo.kill("SIGKILL");
      await echo.status;
    }
  },
);

netnsTest(
  "FORWARD=kernel: a UDP flow proxied while the service wakes stays with sleepingd once the rules are in (the table, made at start, has conntrack track it from its first datagram)",
  [SOCAT],
  async (topology, paths) => {
    // An answer per datagram that says whom it came from.
    const answer = "SYSTEM:echo from $SOCAT_PEERADDR";
    const server = await socatServer(topology, paths.socat, "udp", 7001, answer);
    try {
      await using setup = await setUp(
        topology,
        (dir) => gatedService(dir, "game", 7001, "PROTOCOL=udp\n"),
      );
      // One client socket, one flow: socat sends each line as a datagram and prints each answer.
      await using client = socatClient(topology, paths.socat, `UDP:${ADDRESSES.host}:7001`);
      /** The answers, once there are `count`. */
      const answers = async (count: number) => {
        await client.readUntil((received) => received.split("\n").length > count);
        return client.received.trim().split("\n");
      };
      await client.send("first\n");
      await setup.daemon.waitForLine(/\[game\] asleep -> starting/);
      // Conntrack tracks the wake's own flow from its first datagram, before any rule: its
      // later datagrams are of a flow conntrack knows, which no rule of the table translates.
      const tracked = await topology.run("host", "conntrack", [
        "-L",
        "-p",
        "udp",
        "--dport",
        "7001",
      ]);
      assert.match(tracked.stdout, new RegExp(`src=${ADDRESSES.client} dst=${ADDRESSES.host} `));
      await openGate(setup.dir);
      const [first] = await answers(1);
      assert.equal(
        first,
        `from ${ADDRESSES.hostBackend}`,
        "the wake's datagram came through sleepingd",
      );
      await setup.daemon.waitForLine(/\[game\] the kernel forwards new connections/);
      await client.send("second\n");
      const [, second] = await answers(2);
      assert.equal(
        second,
        `from ${ADDRESSES.hostBackend}`,
        "the flow begun through sleepingd stays with sleepingd, not translated half-way",
      );
      assert.equal((await setup.status()).kernel!.totalFlows, 0, "the kernel forwarded no flow");
    } finally {
      server.kill("SIGKILL");
      await server.status;
    }
  },
);
