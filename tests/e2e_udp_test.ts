/**
 * UDP services and port groups through the real CLI, against real servers
 * and clients: a socat UDP echo, dnsmasq answering dig from cold, and one
 * backend on two TCP ports and a UDP port woken once by 50 clients.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { quoted, runProgram, waitFor } from "./_helpers.ts";
import { freePort, isAlive, udpClient } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { exchange, openGate, waitForGate } from "./_service.ts";

/** A daemon's folder: its configuration, VARRUN_PATH, STATE_PATH, and the backends' pids. */
async function folder(services: (dir: string, http: number) => string) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-udp-" });
  const http = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\nMETRICS_ADDRESS=127.0.0.1:${http}\n` +
      services(dir, http),
  );
  const status = async () => {
    const response = await fetch(`http://127.0.0.1:${http}/api/status`);
    return (await response.json() as DaemonStatus).services[0];
  };
  const cleanup = async (daemon?: Daemon) => {
    await daemon?.stop();
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.endsWith(".pid")) continue;
      const pid = Number(await Deno.readTextFile(`${dir}/${entry.name}`));
      if (pid && isAlive(pid)) Deno.kill(-pid, "SIGKILL");
    }
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, file, http, status, cleanup };
}

/**
 * Shell text that starts `socat` in its own process group in the background,
 * its pid in `pidfile`: its forked children go when the group is killed.
 */
function background(command: string, pidfile: string): string {
  return `setsid ${command} > /dev/null 2>&1 & echo $! > '${pidfile}'`;
}

/** A socat UDP echo on `port` that prefixes each line it returns with `prefix`. */
function udpEcho(port: number, prefix: string, pidfile: string): string {
  return background(
    `socat UDP4-RECVFROM:${port},bind=127.0.0.1,fork SYSTEM:"sed -u s/^/${prefix}=/"`,
    pidfile,
  );
}

/** A socat TCP echo on `port` that prefixes each line it returns with `prefix`. */
function tcpEcho(port: number, prefix: string, pidfile: string): string {
  return background(
    `socat TCP4-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128 ` +
      `SYSTEM:"sed -u s/^/${prefix}=/"`,
    pidfile,
  );
}

/** Kills the process groups of the pidfiles in `dir`, and counts the stop. */
function stopAll(dir: string): string {
  return `echo stop >> '${dir}/stops'; for f in '${dir}'/*.pid; do kill -- -"$(cat "$f")"; rm -f "$f"; done`;
}

function lines(path: string): number {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

serverTest(
  "a UDP service wakes from cold on the first datagram; socat's echo answers each client its own",
  [{ binary: "socat", package: "socat" }],
  async () => {
    const port = freePort();
    const backend = freePort();
    const { dir, file, http, status, cleanup } = await folder((dir) =>
      `[echo]
PORT=${port}
PROTOCOL=udp
LISTEN_ADDRESS=127.0.0.1
START_CMD=${
        quoted(
          `${waitForGate(dir)}; echo start >> '${dir}/starts'; ` +
            `${udpEcho(backend, "U", `${dir}/echo.pid`)}; sleep 0.3; echo 127.0.0.1 ${backend}`,
        )
      }
STOP_CMD=${quoted(stopAll(dir))}
`
    );
    const daemon = await startDaemon(file);
    const clients = await Promise.all([...Array(8).keys()].map(() => udpClient()));
    try {
      clients.forEach((client, index) => client.send(port, `client ${index}\n`));
      await waitFor("8 datagrams waiting for the wake", async () => {
        const echo = await status();
        return echo.queuedDatagrams === 8 && echo.openFlows === 8 && echo.state === "starting";
      });
      await openGate(dir);
      for (const [index, client] of clients.entries()) {
        await waitFor(`client ${index}'s answer`, () => client.replies.length === 1);
        assert.deepEqual(client.replies, [`U=client ${index}\n`]);
      }
      assert.equal(lines(`${dir}/starts`), 1, "one START_CMD");
      const echo = await status();
      assert.deepEqual([echo.datagramsIn, echo.datagramsOut, echo.wakes], [8, 8, 1]);
      assert.deepEqual(echo.ports, [`${port}/udp`]);
      await daemon.waitForLine(/\[echo\] asleep -> starting: datagram from 127\.0\.0\.1:\d+/);
      const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      for (
        const sample of [
          `sleepingd_udp_datagrams_total{service="echo",direction="in"} 8`,
          `sleepingd_udp_datagrams_total{service="echo",direction="out"} 8`,
          `sleepingd_udp_flows_open{service="echo"} 8`,
          `sleepingd_udp_queued_datagrams{service="echo"} 0`,
          `sleepingd_service_info{service="echo",port="${port}",ports="${port}/udp",`,
        ]
      ) assert.ok(metrics.includes(sample), `${sample} in /metrics`);
    } finally {
      for (const client of clients) client.close();
      await cleanup(daemon);
    }
  },
);

serverTest(
  "dnsmasq woken from cold answers dig, several clients at once, each its own name",
  [
    { binary: "dnsmasq", package: "dnsmasq-base", dirs: ["/usr/sbin"] },
    { binary: "dig", package: "dnsutils" },
  ],
  async (paths) => {
    const port = freePort();
    const backend = freePort();
    const names = [...Array(6).keys()].map((n) => n + 1);
    const records = names.map((n) => `--host-record=host${n}.test,192.0.2.${n}`).join(" ");
    const { dir, file, status, cleanup } = await folder((dir) =>
      `[dns]
PORT=${port}
PROTOCOL=udp
LISTEN_ADDRESS=127.0.0.1
START_CMD=${
        quoted(
          `${waitForGate(dir)}; echo start >> '${dir}/starts'; ` +
            background(
              `${paths.dnsmasq} --keep-in-foreground --conf-file=/dev/null --no-resolv ` +
                `--no-hosts --bind-interfaces --listen-address=127.0.0.1 --port=${backend} ` +
                `--user=root ${records}`,
              `${dir}/dnsmasq.pid`,
            ) + `; echo 127.0.0.1 ${backend}`,
        )
      }
READY_CMD=${
        quoted(
          `${paths.dig} @127.0.0.1 -p ${backend} +short +tries=1 +timeout=1 host1.test | ` +
            "grep -q 192.0.2.1",
        )
      }
STOP_CMD=${quoted(stopAll(dir))}
`
    );
    const daemon = await startDaemon(file);
    try {
      const digs = names.map((n) =>
        runProgram(paths.dig, [
          `@127.0.0.1`,
          "-p",
          String(port),
          "+short",
          "+tries=1",
          "+timeout=20",
          `host${n}.test`,
        ])
      );
      await waitFor("every dig's query waiting for the wake", async () => {
        const dns = await status();
        return dns.queuedDatagrams === names.length && dns.state === "starting";
      });
      await openGate(dir);
      const answers = await Promise.all(digs);
      for (const [index, answer] of answers.entries()) {
        assert.equal(answer.code, 0, answer.stderr);
        assert.equal(answer.stdout.trim(), `192.0.2.${names[index]}`);
      }
      assert.equal(lines(`${dir}/starts`), 1, "one START_CMD");
    } finally {
      await cleanup(daemon);
    }
  },
);

serverTest(
  "a backend on two TCP ports and a UDP port: 50 clients over the three wake it once; one port alone keeps it awake",
  [{ binary: "socat", package: "socat" }],
  async () => {
    const [port, more, udp] = [freePort(), freePort(), freePort()];
    const [backendA, backendB, backendU] = [freePort(), freePort(), freePort()];
    const { dir, file, status, cleanup } = await folder((dir) =>
      `[vm]
PORT=${port}
MORE_PORTS=${more}:${backendB} ${udp}:${backendU}/udp
LISTEN_ADDRESS=127.0.0.1
START_CMD=${
        quoted(
          `${waitForGate(dir)}; echo start >> '${dir}/starts'; ` +
            `${tcpEcho(backendA, "A", `${dir}/a.pid`)}; ${
              tcpEcho(backendB, "B", `${dir}/b.pid`)
            }; ` +
            `${udpEcho(backendU, "U", `${dir}/u.pid`)}; sleep 0.3; echo 127.0.0.1 ${backendA}`,
        )
      }
STOP_CMD=${quoted(stopAll(dir))}
IDLE_TIME=1
IDLE_CHECK_INTERVAL=0.2
`
    );
    const daemon = await startDaemon(file);
    const udpClients = await Promise.all([...Array(16).keys()].map(() => udpClient()));
    try {
      const tcp = [...Array(34).keys()].map((n) => exchange(n % 2 ? more : port, `client ${n}\n`));
      udpClients.forEach((client, n) => client.send(udp, `udp ${n}\n`));
      await waitFor("all 50 clients waiting for one wake", async () => {
        const vm = await status();
        return vm.openConnections === 34 && vm.queuedDatagrams === 16 && vm.state === "starting";
      });
      await openGate(dir);
      const answers = await Promise.all(tcp);
      answers.forEach((answer, n) => assert.equal(answer, `${n % 2 ? "B" : "A"}=client ${n}\n`));
      for (const [n, client] of udpClients.entries()) {
        await waitFor(`UDP client ${n}'s answer`, () => client.replies.length === 1);
        assert.deepEqual(client.replies, [`U=udp ${n}\n`]);
      }
      assert.equal(lines(`${dir}/starts`), 1, "one START_CMD for the three ports");
      const vm = await status();
      assert.deepEqual(vm.ports, [
        `${port}/tcp`,
        `${more}->${backendB}/tcp`,
        `${udp}->${backendU}/udp`,
      ]);

      // The UDP port alone, a datagram every 0.3 s for three times IDLE_TIME: no stop.
      const keeper = udpClients[0];
      for (let n = 0; n < 10; n++) {
        keeper.send(udp, `keep ${n}\n`);
        await waitFor(`the answer to keep ${n}`, () => keeper.replies.includes(`U=keep ${n}\n`));
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      assert.equal((await status()).state, "awake");
      assert.equal(lines(`${dir}/stops`), 0, "traffic on one port kept the service awake");
      // Quiet on every port: one idle stop, one STOP_CMD.
      await daemon.waitForLine(/\[vm\] awake -> stopping: idle for/);
      await daemon.waitForLine(/\[vm\] stopping -> asleep/);
      assert.equal(lines(`${dir}/stops`), 1);
    } finally {
      for (const client of udpClients) client.close();
      await cleanup(daemon);
    }
  },
);
