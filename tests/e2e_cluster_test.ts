/**
 * Several sleepingd instances in front of one backend, coordinated through a
 * real etcd: one START for clients spread over them, no idle stop while any
 * instance has a client, a killed instance forgotten with its lease, and no
 * stop on a guess while etcd is away.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { ETCD, withGroup } from "./_cluster.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { base64, startEtcd } from "./_etcd.ts";
import { startEtcdProxy } from "./_etcd_proxy.ts";
import { bounded, exists, readPid, runCli, waitFor } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

serverTest(
  "100 clients spread over three instances during one wake: one START_CMD",
  ETCD,
  (paths) =>
    withGroup(paths, 3, {}, async (group) => {
      const answers = [...Array(100).keys()].map((n) =>
        exchange(group.members[n % 3].port, `client ${n}`)
      );
      await waitFor("100 clients held by the three instances", async () => {
        let held = 0;
        for (let index = 0; index < 3; index++) held += (await group.status(index)).openConnections;
        return held === 100;
      });
      await openGate(group.dir);
      (await Promise.all(answers)).forEach((answer, n) => assert.equal(answer, `client ${n}`));
      assert.equal(group.starts(), 1, "one START_CMD for the three instances");
      const adopted = group.daemons.filter((daemon) =>
        daemon.lines.some((line) => /\[echo\] starting -> awake: .* awake, woken by /.test(line))
      );
      assert.equal(adopted.length, 2, "two instances took the third one's wake");
      // Each instance lists the three, itself first.
      for (const member of group.members) {
        await waitFor("the instances listed", async () => {
          const response = await fetch(`http://127.0.0.1:${member.http}/api/status`);
          const { instances, pid } = await response.json() as DaemonStatus;
          return instances?.length === 3 && instances[0].id.endsWith(`:${pid}`);
        });
      }
    }),
);

serverTest(
  "a client held through one instance keeps the backend awake; killed, its lease expires and one idle stop follows",
  ETCD,
  (paths) =>
    withGroup(paths, 3, { args: ["-v"] }, async (group) => {
      await openGate(group.dir);
      const held = await Deno.connect({ hostname: "127.0.0.1", port: group.members[0].port });
      await held.write(new TextEncoder().encode("x"));
      await held.read(new Uint8Array(1));
      // The others wake too (sharing the backend), and see the held client.
      assert.equal(await exchange(group.members[1].port, "b"), "b");
      assert.equal(await exchange(group.members[2].port, "c"), "c");
      await group.daemons[1].waitForLine(/\[echo\] not idle: instance \S+ has 1 open connection$/);
      assert.equal(group.stops(), 0);
      Deno.kill(group.daemons[0].pid, "SIGKILL");
      held.close();
      // Its lease (5 s) expires: then one of the others stops the backend, once.
      await waitFor("one idle stop", () => group.stops() === 1, 30);
      await waitFor(
        "both others asleep",
        async () =>
          (await group.status(1)).state === "asleep" && (await group.status(2)).state === "asleep",
      );
      assert.equal(group.stops(), 1, "one STOP_CMD");
      assert.equal(group.starts(), 1);
    }),
);

serverTest(
  "an instance that shuts down leaves the backend to the others, which stop it once idle",
  ETCD,
  (paths) =>
    withGroup(paths, 2, {}, async (group, etcd) => {
      await openGate(group.dir);
      // A client held through the first instance keeps the backend from its idle stop meanwhile.
      const held = await Deno.connect({ hostname: "127.0.0.1", port: group.members[0].port });
      await held.write(new TextEncoder().encode("x"));
      await held.read(new Uint8Array(1));
      // The other instance never had a client; it learns the backend is awake all the same,
      // and says so in etcd.
      await group.daemons[1].waitForLine(/\[echo\] asleep -> awake: awake, woken by /);
      await waitFor("the other instance to publish the backend awake", async () =>
        (await etcd.range(group.key("busy/"))).some(({ key, value }) =>
          key.endsWith(`:${group.daemons[1].pid}`) && JSON.parse(value).state === "awake"
        ));
      held.close();
      const stopping = group.daemons[0].stop();
      await group.daemons[0].waitForLine(
        /\[echo\] not stopping \(sleepingd is shutting down\): instance \S+ has it awake/,
      );
      assert.equal(await stopping, 0);
      // STOP_CMD counts itself as it begins: wait for the state it ends in, then count.
      await waitFor("the one left asleep", async () =>
        (await group.status(1)).state === "asleep", 30);
      assert.equal(group.stops(), 1, "one idle stop, by the one left");
    }),
);

serverTest(
  "while etcd is away no backend is stopped on a guess; back, the idle stop happens once",
  ETCD,
  (paths) =>
    withGroup(paths, 2, {}, async (group, etcd) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      assert.equal(await exchange(group.members[1].port, "b"), "b");
      await etcd.stop();
      await group.daemons[0].waitForLine(/etcd cannot be reached .*no backend is stopped until/);
      // Idle far past IDLE_TIME, with etcd away: no stop.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.equal(group.stops(), 0, "no stop while etcd is away");
      await etcd.start();
      await waitFor("one idle stop once etcd is back", () => group.stops() === 1, 30);
      await waitFor(
        "both asleep",
        async () =>
          (await group.status(0)).state === "asleep" && (await group.status(1)).state === "asleep",
      );
      assert.equal(group.stops(), 1, "one STOP_CMD");
    }),
);

serverTest(
  "an etcd error as a wake frees its lock leaves no lock behind: the backend is still stopped once idle",
  ETCD,
  (paths) =>
    withGroup(paths, 2, { proxies: true }, async (group) => {
      await openGate(group.dir);
      // The first request that would delete the lock fails, once.
      const failed = group.proxies[0].once(
        (request) => request.deletes.includes(group.key("lock")),
        { kind: "fail" },
      );
      assert.equal(await bounded(exchange(group.members[0].port, "a"), "the client"), "a");
      await bounded(failed, "the lock's release to meet its fault");
      await waitFor("the idle stop", group.allAsleep, 30);
      assert.equal(group.stops(), 1, "one STOP_CMD");
    }),
);

serverTest(
  "an etcd error as a wake is published leaves no lock behind: a client of another instance is served",
  ETCD,
  (paths) =>
    withGroup(paths, 2, { proxies: true, service: "IDLE_TIME=60" }, async (group) => {
      await openGate(group.dir);
      const failed = group.proxies[0].once(
        (request) => request.puts.includes(group.key("state")),
        { kind: "fail" },
      );
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await bounded(failed, "the publication to meet its fault");
      assert.equal(
        await bounded(exchange(group.members[1].port, "b"), "the other instance's client"),
        "b",
      );
      assert.equal(group.starts(), 1, "the other instance took the published backend");
    }),
);

serverTest(
  "a wake that read no wake just before the lock's holder released it, publishing its wake, takes the published backend",
  ETCD,
  (paths) =>
    withGroup(paths, 2, { proxies: true, service: "IDLE_TIME=60" }, async (group, etcd) => {
      await openGate(group.dir);
      // Instance 0's release of the lock, which publishes its wake, waits at its proxy...
      const release = Promise.withResolvers<void>();
      const releasing = group.proxies[0].once(
        (request) =>
          request.puts.includes(group.key("state")) && request.deletes.includes(group.key("lock")),
        { kind: "hold", until: release.promise },
      );
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await bounded(releasing, "instance 0's release of the lock");
      // ...until instance 1, whose read of the state found no wake, asks who holds the lock: its
      // question waits in turn until the release has landed.
      const answer = Promise.withResolvers<void>();
      const asking = group.proxies[1].once(
        (request) =>
          request.path === "/v3/kv/range" && request.body.key === base64(group.key("lock")),
        { kind: "hold", until: answer.promise },
      );
      const client = exchange(group.members[1].port, "b");
      try {
        await bounded(asking, "instance 1 to ask who holds the lock");
        release.resolve();
        await waitFor("the release to land", async () => {
          const keys = new Map((await etcd.range(group.key(""))).map((kv) => [kv.key, kv.value]));
          return !keys.has(group.key("lock")) && /"awake"/.test(keys.get(group.key("state")) ?? "");
        });
      } finally {
        release.resolve();
        answer.resolve();
      }
      assert.equal(await bounded(client, "instance 1's client"), "b");
      assert.equal(group.starts(), 1, "instance 1 took the published backend, START_CMD ran once");
      const log = group.daemons[1].lines.join("\n");
      assert.match(log, /starting -> awake: 127\.0\.0\.1:\d+ awake, woken by /, log);
    }),
);

for (
  const [fault, what] of [
    ["lose", "etcd applies, but whose answer is lost"],
    ["delay", "etcd applies after the instance gave up on it"],
  ] as const
) {
  serverTest(
    `a lock request ${what} leaves no lock behind: the backend is still stopped once idle`,
    ETCD,
    (paths) =>
      withGroup(paths, 2, { proxies: true }, async (group) => {
        await openGate(group.dir);
        const hit = group.proxies[0].once(
          (request) => request.puts.includes(group.key("lock")),
          { kind: fault, ms: 2_500 },
        );
        assert.equal(await bounded(exchange(group.members[0].port, "a"), "the client"), "a");
        await bounded(hit, "the lock request to meet its fault");
        await waitFor("the idle stop", group.allAsleep, 30);
        assert.equal(group.stops(), 1, "one STOP_CMD");
      }),
  );
}

serverTest(
  "a backend found dead is published: a client of another instance wakes it instead of giving up",
  ETCD,
  (paths) =>
    withGroup(paths, 2, { service: "IDLE_TIME=60" }, async (group) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await group.daemons[1].waitForLine(/\[echo\] asleep -> awake: .*woken by /);
      // The backend dies on its own: no STOP_CMD, and the published state still says awake.
      const pid = group.backendPid()!;
      Deno.kill(pid, "SIGKILL");
      // Gone as a client sees it: its port refuses (for a moment after the kill, this machine's
      // loopback may answer a connection with a reset, which says nothing about the backend).
      await waitFor("the backend's port to refuse", async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: group.backendPort })).close();
          return false;
        } catch (error) {
          return !isAlive(pid) && error instanceof Deno.errors.ConnectionRefused;
        }
      });
      assert.equal(await bounded(exchange(group.members[1].port, "b"), "the client"), "b");
      assert.equal(group.starts(), 2, "woken again, once");
    }),
);

serverTest(
  "an instance that follows a stop made elsewhere counts it as elsewhere, not as a backend gone",
  ETCD,
  (paths) =>
    withGroup(paths, 2, {}, async (group) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await group.daemons[1].waitForLine(/\[echo\] asleep -> awake: .*woken by /);
      await waitFor("the idle stop", group.allAsleep, 30);
      assert.equal(group.stops(), 1);
      const count = async (reason: string) =>
        (await group.metric(0, `sleepingd_stops_total{service="echo",reason="${reason}"}`)) +
        (await group.metric(1, `sleepingd_stops_total{service="echo",reason="${reason}"}`));
      assert.equal(await count("gone"), 0, "no backend died");
      assert.equal(await count("idle"), 1, "one instance stopped it");
      assert.equal(await count("elsewhere"), 1, "the other followed");
    }),
);

serverTest(
  "a reload that changes ETCD_ENDPOINTS or CLUSTER_NAME says they take effect when sleepingd restarts",
  ETCD,
  (paths) =>
    withGroup(paths, 1, {}, async (group) => {
      const text = await Deno.readTextFile(group.files[0]);
      await Deno.writeTextFile(
        group.files[0],
        text.replace(/^CLUSTER_NAME=.*$/m, "CLUSTER_NAME=elsewhere")
          .replace(/^ETCD_ENDPOINTS=.*$/m, "ETCD_ENDPOINTS=http://127.0.0.1:1"),
      );
      Deno.kill(group.daemons[0].pid, "SIGHUP");
      const from = group.daemons[0].lines.length;
      await group.daemons[0].waitForLine(/reloaded /, from);
      for (const key of ["ETCD_ENDPOINTS", "CLUSTER_NAME"]) {
        assert.ok(
          group.daemons[0].lines.some((line) =>
            line.includes(`${key} changed: it takes effect when sleepingd restarts`)
          ),
          `${key} is said to need a restart`,
        );
      }
      // The instance goes on in the cluster it joined.
      const response = await fetch(`http://127.0.0.1:${group.members[0].http}/api/status`);
      assert.equal((await response.json() as DaemonStatus).instances?.length, 1);
    }),
);

serverTest(
  "crash recovery comes before any client can wake a service, while etcd has not answered yet",
  ETCD,
  async (paths) => {
    const etcd = await startEtcd(paths.etcd);
    const proxy = startEtcdProxy(etcd.url);
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-cluster-" });
    const port = freePort();
    const file = `${dir}/sleepingd.conf`;
    const settings = (global: string) =>
      `VARRUN_PATH=${dir}/run
STATE_PATH=${dir}/state
${global}
[echo]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo $$ > ${dir}/start.pid
${waitForGate(dir)}
${startEchoBackend(dir, freePort())}'
STOP_CMD='${stopEchoBackend(dir)}'
`;
    const daemons: Daemon[] = [];
    const pids: number[] = [];
    try {
      // A daemon killed mid-wake leaves its START_CMD behind.
      await Deno.writeTextFile(file, settings(""));
      daemons.push(await startDaemon(file));
      const first = Deno.connect({ hostname: "127.0.0.1", port });
      await waitFor("START_CMD to wait at the gate", () => exists(`${dir}/start.pid`));
      const leftover = await readPid(`${dir}/start.pid`);
      pids.push(leftover);
      Deno.kill(daemons[0].pid, "SIGKILL");
      await daemons[0].stop();
      (await first).close();
      await Deno.remove(`${dir}/start.pid`);

      // The next one joins a cluster whose etcd does not answer yet: a client comes meanwhile.
      await Deno.writeTextFile(
        file,
        settings(`ETCD_ENDPOINTS=${proxy.url}\nCLUSTER_NAME=test-${crypto.randomUUID()}`),
      );
      proxy.set({ kind: "blackhole" });
      const asked = proxy.once(() => true, { kind: "blackhole" });
      const second = startDaemon(file);
      await bounded(asked, "the daemon's first request to etcd");
      const client = exchange(port, "after the crash");
      await waitFor("the client held", async () => {
        const { stdout } = await runCli(["-f", file, "status", "--json"]);
        return stdout !== "" &&
          (JSON.parse(stdout) as DaemonStatus).services[0].openConnections === 1;
      });
      proxy.set(undefined);
      daemons.push(await second);
      await waitFor("the START_CMD left behind to be ended", () => !isAlive(leftover));
      await daemons[1].waitForLine(/ending START_CMD \(pid \d+\) left by the last daemon/);
      await openGate(dir);
      assert.equal(await bounded(client, "the client"), "after the crash");
    } finally {
      for (const daemon of daemons) await daemon.stop();
      for (const name of ["backend.pid", "start.pid"]) {
        pids.push(Number(await Deno.readTextFile(`${dir}/${name}`).catch(() => "0")));
      }
      for (const pid of pids.filter((pid) => pid > 0 && isAlive(pid))) Deno.kill(pid, "SIGKILL");
      await proxy.close();
      await etcd.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

serverTest(
  "instances that all shut down at once leave no backend running: the last to go stops it",
  ETCD,
  (paths) =>
    withGroup(paths, 3, { service: "IDLE_TIME=60" }, async (group) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      for (const daemon of group.daemons.slice(1)) {
        await daemon.waitForLine(/\[echo\] asleep -> awake: awake, woken by /);
      }
      const codes = await Promise.all(group.daemons.map((daemon) => daemon.stop()));
      assert.deepEqual(codes, [0, 0, 0]);
      assert.equal(group.stops(), 1, "one STOP_CMD, by the last to go");
      const pid = group.backendPid();
      assert.ok(pid === undefined || !isAlive(pid), "no backend left running");
    }),
);

serverTest(
  "sleepingd sleep that another instance, or etcd's silence, refuses says so and fails",
  ETCD,
  (paths) =>
    withGroup(paths, 2, { service: "IDLE_TIME=60" }, async (group, etcd) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await etcd.stop();
      const refused = await runCli(["-f", group.files[0], "sleep", "echo"]);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /echo is not asleep: etcd cannot be reached: no stop on a guess/,
      );
      assert.equal((await group.status(0)).state, "awake");
      await etcd.start();
      const done = await runCli(["-f", group.files[0], "sleep", "echo"]);
      assert.equal(done.code, 0, done.stderr);
      assert.equal(group.stops(), 1);
    }),
);
