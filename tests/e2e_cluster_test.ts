/**
 * Several sleepingd instances in front of one backend, coordinated through a
 * real etcd: one START for clients spread over them, no idle stop while any
 * instance has a client, a killed instance forgotten with its lease, and no
 * stop on a guess while etcd is away.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { type EtcdServer, startEtcd } from "./_etcd.ts";
import { waitFor } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

const ETCD = [{ binary: "etcd", package: "etcd-server" }];

/** `count` instances of one echo service, its backend shared, its START_CMD gated. */
async function instances(etcd: EtcdServer, count: number, args: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-cluster-" });
  const backend = freePort();
  await Deno.mkdir(`${dir}/backend`);
  const cluster = `test-${crypto.randomUUID()}`;
  const members = [...Array(count).keys()].map(() => ({ port: freePort(), http: freePort() }));
  const daemons: Daemon[] = [];
  for (const [index, { port, http }] of members.entries()) {
    const file = `${dir}/instance${index}.conf`;
    await Deno.writeTextFile(
      file,
      `ETCD_ENDPOINTS=${etcd.url}
CLUSTER_NAME=${cluster}
METRICS_ADDRESS=127.0.0.1:${http}
[echo]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${waitForGate(dir)}
${startEchoBackend(`${dir}/backend`, backend)}'
STOP_CMD='${stopEchoBackend(`${dir}/backend`)}'
IDLE_TIME=1
IDLE_CHECK_INTERVAL=0.2
`,
    );
    daemons.push(await startDaemon(file, { args }));
  }
  const status = async (index: number) => {
    const response = await fetch(`http://127.0.0.1:${members[index].http}/api/status`);
    return (await response.json() as DaemonStatus).services[0];
  };
  const lines = (name: string) => {
    try {
      return Deno.readTextFileSync(`${dir}/backend/${name}`).split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  const cleanup = async () => {
    for (const daemon of daemons) await daemon.stop();
    try {
      const pid = Number(await Deno.readTextFile(`${dir}/backend/backend.pid`));
      if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    } catch {
      // No backend left.
    }
    await Deno.remove(dir, { recursive: true });
  };
  return {
    dir,
    members,
    daemons,
    status,
    starts: () => lines("starts"),
    stops: () => lines("stops"),
    cleanup,
  };
}

/** Runs `body` with a fresh etcd and `count` instances, then stops and removes them all. */
async function withGroup(
  paths: Record<string, string>,
  count: number,
  args: string[],
  body: (group: Awaited<ReturnType<typeof instances>>, etcd: EtcdServer) => Promise<void>,
) {
  const etcd = await startEtcd(paths.etcd);
  const group = await instances(etcd, count, args);
  try {
    await body(group, etcd);
  } finally {
    await group.cleanup();
    await etcd.close();
  }
}

serverTest(
  "100 clients spread over three instances during one wake: one START_CMD",
  ETCD,
  (paths) =>
    withGroup(paths, 3, [], async (group) => {
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
    withGroup(paths, 3, ["-v"], async (group) => {
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
    withGroup(paths, 2, [], async (group) => {
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      // The other instance never had a client; it learns the backend is awake all the same.
      await group.daemons[1].waitForLine(/\[echo\] asleep -> awake: awake, woken by /);
      const stopping = group.daemons[0].stop();
      await group.daemons[0].waitForLine(
        /\[echo\] not stopping \(sleepingd is shutting down\): other/,
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
    withGroup(paths, 2, [], async (group, etcd) => {
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
