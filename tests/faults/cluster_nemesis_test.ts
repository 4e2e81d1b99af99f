/**
 * The nemesis of several instances, against a real etcd: three sleepingd
 * instances in front of one backend, each reaching etcd through a fault
 * proxy of its own, clients coming and going, while a nemesis fails, drops,
 * loses, delays and black-holes their requests to etcd, kills (-9) and
 * pauses (SIGSTOP) them, and kills and pauses etcd itself. Every START_CMD
 * and STOP_CMD records its beginning and end (with its instance) as it runs;
 * the clients record their sessions; a checker decides afterwards whether
 * the history breaks a rule (tests/faults/_cluster_checker.ts).
 *
 * Seeded: the run prints its seed; `NEMESIS_SEED=N` replays it,
 * `NEMESIS_SECONDS=S` sets how long the faults go on (45 by default).
 */
import assert from "node:assert/strict";
import { LEASE_TTL } from "../../src/cluster/cluster.ts";
import { ETCD } from "../_cluster.ts";
import { type Daemon, startDaemon } from "../_daemon.ts";
import { type EtcdServer, startEtcd } from "../_etcd.ts";
import { type EtcdProxy, type FaultKind, startEtcdProxy } from "../_etcd_proxy.ts";
import { freePort, isAlive, readExactly, writeAll } from "../_net.ts";
import { serverTest } from "../_servers.ts";
import {
  type Bounds,
  checkHistory,
  type ClusterHistory,
  type CommandRun,
  type Fault,
  idleStopDeadline,
  type Session,
  type StartingSpan,
} from "./_cluster_checker.ts";

const SOCAT = [...ETCD, { binary: "socat", package: "socat" }, {
  binary: "flock",
  package: "util-linux",
}];

const INSTANCES = 3;
const CLIENT_LOOPS = 4;
/** The settings of the run, and the bounds the checker holds them to (milliseconds). */
const BOUNDS: Bounds = {
  idleTime: 2_000,
  idleCheckInterval: 500,
  leaseTtl: LEASE_TTL * 1000,
  callTimeout: 2_000,
  publication: 1_000,
  readyTimeout: 5_000,
  holdTimeout: 20_000,
};

/** A small seeded generator (mulberry32): the same seed, the same run of choices. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** An integer from `min` to `max`, both included. */
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    /** One of `items`. */
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
    /** `items` in an order drawn at random. */
    shuffle<T>(items: readonly T[]): T[] {
      const order = [...items];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      return order;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The kinds of faults, as the run counts them. */
const KINDS = [
  "fail",
  "drop",
  "lose",
  "delay",
  "blackhole",
  "kill instance",
  "pause instance",
  "kill etcd",
  "pause etcd",
] as const;
type Kind = typeof KINDS[number];

/** The shell of START_CMD and STOP_CMD: the backend (socat echoing) under a flock, each run recorded. */
function commands(dir: string, index: number, port: number) {
  // `$$`, the pid of the command's shell, tells apart runs of one instance under way at once.
  const record = (what: string) => `echo "$(date +%s%3N) ${what} ${index} $$" >> '${dir}/history'`;
  const locked = (body: string) => `(\nflock 9\n${body}\n) 9>>'${dir}/backend.lock'`;
  const start = `${record("start begin")}
sleep 0.2
${
    locked(`pg="$(cat '${dir}/backend.pgid' 2>/dev/null)"
if [ -z "$pg" ] || ! kill -0 -- "-$pg" 2>/dev/null; then
  setsid socat TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork EXEC:cat </dev/null >/dev/null 2>&1 9>&- &
  echo $! > '${dir}/backend.pgid'
  for i in $(seq 300); do socat -u OPEN:/dev/null TCP:127.0.0.1:${port} 2>/dev/null && break; sleep 0.01; done
fi`)
  }
${record("start end")}
echo "127.0.0.1 ${port}"`;
  const stop = `${record("stop begin")}
sleep 0.2
${
    locked(`pg="$(cat '${dir}/backend.pgid' 2>/dev/null)"
if [ -n "$pg" ]; then
  kill -- "-$pg" 2>/dev/null
  for i in $(seq 200); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.01; done
  kill -KILL -- "-$pg" 2>/dev/null
  rm -f '${dir}/backend.pgid'
fi`)
  }
${record("stop end")}`;
  return { start, stop };
}

/** One instance: its configuration (whose VARRUN_PATH outlives each daemon), its daemon now, its proxy. */
interface Instance {
  index: number;
  port: number;
  file: string;
  stateDir: string;
  proxy: EtcdProxy;
  daemon?: Daemon;
  paused: boolean;
  /** Every daemon it ran, for their logs. */
  daemons: Daemon[];
}

serverTest(
  "the nemesis: three instances, clients coming and going, faults of etcd, its links and the instances; the history breaks no rule",
  SOCAT,
  async (paths) => {
    const seed = Number(Deno.env.get("NEMESIS_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    const chaosMs = Number(Deno.env.get("NEMESIS_SECONDS") ?? 45) * 1000;
    console.log(
      `nemesis seed ${seed} (replay: NEMESIS_SEED=${seed} deno test -A tests/faults/cluster_nemesis_test.ts)`,
    );
    // One generator per actor, so that each makes the same choices whatever the timing.
    const random = generator(seed);
    const trafficRandom = generator(seed + 1);
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-nemesis-" });
    const backendPort = freePort();
    const etcd: EtcdServer = await startEtcd(paths.etcd);
    let etcdPaused = false;
    const cluster = `nemesis-${seed}-${crypto.randomUUID()}`;
    const instances: Instance[] = [];
    const sessions: Session[] = [];
    const faults: Fault[] = [];
    const counts = Object.fromEntries(KINDS.map((kind) => [kind, 0])) as Record<Kind, number>;
    try {
      for (let index = 0; index < INSTANCES; index++) {
        const port = freePort();
        const own = `${dir}/instance${index}`;
        await Deno.mkdir(own);
        const proxy = startEtcdProxy(etcd.url);
        const { start, stop } = commands(dir, index, backendPort);
        const file = `${own}/sleepingd.conf`;
        await Deno.writeTextFile(
          file,
          `VARRUN_PATH=${own}/run
STATE_PATH=${own}/state
ETCD_ENDPOINTS=${proxy.url}
CLUSTER_NAME=${cluster}
[echo]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${start}'
STOP_CMD='${stop}'
START_CMD_TIMEOUT=15
STOP_CMD_TIMEOUT=15
CLUSTER_TARGETS=127.0.0.1:${backendPort}
IDLE_TIME=${BOUNDS.idleTime / 1000}
IDLE_CHECK_INTERVAL=${BOUNDS.idleCheckInterval / 1000}
READY_TIMEOUT=${BOUNDS.readyTimeout / 1000}
HOLD_TIMEOUT=${BOUNDS.holdTimeout / 1000}
`,
        );
        instances.push({
          index,
          port,
          file,
          stateDir: `${own}/state`,
          proxy,
          paused: false,
          daemons: [],
        });
      }
      const run = async (instance: Instance) => {
        instance.daemon = await startDaemon(instance.file, { args: ["-v"] });
        instance.daemons.push(instance.daemon);
      };
      for (const instance of instances) await run(instance);

      // Clients come in bursts, so that the backend also sleeps between them.
      const chaosEnd = Date.now() + chaosMs;
      let busy = true;
      const traffic = (async () => {
        while (Date.now() < chaosEnd) {
          busy = !busy;
          // Quiet spells long enough, often, for an idle stop (IDLE_TIME and a check or two).
          await sleep(busy ? trafficRandom.int(1_500, 5_000) : trafficRandom.int(2_000, 7_000));
        }
        busy = false;
      })();
      const client = async (loop: number) => {
        const random = generator(seed + 2 + loop);
        for (let n = 0; Date.now() < chaosEnd; n++) {
          if (!busy) {
            await sleep(200);
            continue;
          }
          const instance = random.pick(instances);
          const exchanges = random.int(1, 3);
          const holdMs = random.int(0, 1_500);
          sessions.push(
            await session(instance.port, instance.index, `${loop}:${n}`, exchanges, holdMs),
          );
          await sleep(random.int(0, 1_500));
        }
      };
      const clients = Promise.all([...Array(CLIENT_LOOPS).keys()].map(client));

      // The nemesis: one fault at a time, each healed before a calm spell; every kind in turn,
      // in an order drawn anew each round. A pause may outlast the lease TTL.
      const kinds: Kind[] = [];
      while (Date.now() < chaosEnd - 3_000) {
        await sleep(random.int(1_000, 2_000));
        if (kinds.length === 0) kinds.push(...random.shuffle(KINDS));
        const kind = kinds.shift()!;
        const instance = random.pick(instances);
        const durationMs = kind.startsWith("pause")
          ? random.int(1_000, 7_000)
          : random.int(1_000, 4_000);
        const begin = Date.now();
        counts[kind]++;
        switch (kind) {
          case "kill instance": {
            Deno.kill(instance.daemon!.pid, "SIGKILL");
            await instance.daemon!.stop();
            await sleep(random.int(200, 2_000));
            await run(instance);
            faults.push({ kind: "kill", target: instance.index, begin, end: Date.now() });
            break;
          }
          case "pause instance": {
            Deno.kill(instance.daemon!.pid, "SIGSTOP");
            instance.paused = true;
            await sleep(durationMs);
            Deno.kill(instance.daemon!.pid, "SIGCONT");
            instance.paused = false;
            faults.push({ kind: "pause", target: instance.index, begin, end: Date.now() });
            break;
          }
          case "kill etcd": {
            await etcd.stop();
            await sleep(random.int(200, 2_000));
            await etcd.start();
            faults.push({ kind: "kill", target: "etcd", begin, end: Date.now() });
            break;
          }
          case "pause etcd": {
            etcd.pause();
            etcdPaused = true;
            await sleep(durationMs);
            etcd.resume();
            etcdPaused = false;
            faults.push({ kind: "pause", target: "etcd", begin, end: Date.now() });
            break;
          }
          default: {
            const ms = kind === "delay" ? random.int(500, 3_000) : undefined;
            instance.proxy.set({ kind: kind as FaultKind, ms });
            await sleep(durationMs);
            instance.proxy.set(undefined);
            faults.push({ kind, target: instance.index, begin, end: Date.now() });
          }
        }
      }
      await traffic;
      await clients;
      const healed = Math.max(Date.now(), ...faults.map((fault) => fault.end));

      // Quiet: the backend must be stopped by the deadline.
      const partial = {
        commands: [],
        sessions,
        faults,
        starting: [],
        healed,
        ended: 0,
      };
      const deadline = idleStopDeadline(partial, BOUNDS);
      await sleep(Math.max(0, deadline - Date.now()));
      const runs = readCommands(await Deno.readTextFile(`${dir}/history`).catch(() => ""));
      const stopping = runs.some((run) => run.kind === "stop" && run.end === undefined);
      const runningAtDeadline = backendRuns(dir) && !stopping;
      const ended = Date.now();

      const starting: StartingSpan[] = [];
      for (const instance of instances) {
        starting.push(...await startingSpans(instance.stateDir, instance.index, ended));
      }
      const history: ClusterHistory = {
        commands: runs,
        sessions,
        faults,
        starting,
        healed,
        ended,
        runningAtDeadline,
        deadline,
      };
      const verdict = checkHistory(history, BOUNDS);
      const hits: Record<string, number> = {};
      for (const instance of instances) {
        for (const [kind, count] of Object.entries(instance.proxy.counts())) {
          hits[kind] = (hits[kind] ?? 0) + count;
        }
      }
      const failed = sessions.filter((one) => !one.ok).length;
      console.log(
        `nemesis seed ${seed}: faults injected: ${
          KINDS.map((kind) => `${kind} ${counts[kind]}`).join(", ")
        }`,
      );
      console.log(
        `nemesis seed ${seed}: etcd requests the proxies faulted: ${
          Object.entries(hits).map(([kind, count]) => `${kind} ${count}`).join(", ")
        }`,
      );
      console.log(
        `nemesis seed ${seed}: ${runs.filter((run) => run.kind === "start").length} START_CMD, ` +
          `${runs.filter((run) => run.kind === "stop").length} STOP_CMD, ${sessions.length} ` +
          `client sessions (${failed} failed), ${verdict.excused.length} events excused`,
      );
      for (const excused of verdict.excused) console.log(`  excused: ${excused}`);
      console.log(`nemesis seed ${seed}: ${verdict.violations.length} violations`);
      for (const violation of verdict.violations) console.log(`  VIOLATION: ${violation}`);
      const keep = Deno.env.get("NEMESIS_LOGS"); // "1": always; "failed": when a client failed
      if (verdict.violations.length > 0 || keep === "1" || (keep === "failed" && failed > 0)) {
        const logs = await Deno.makeTempFile({
          prefix: `sleepingd-nemesis-${seed}-`,
          suffix: ".log",
        });
        const text = instances.flatMap((instance) =>
          instance.daemons.flatMap((daemon) =>
            daemon.lines.map((line) => `${instance.index}/${daemon.pid} ${line}`)
          )
        );
        const history = await Deno.readTextFile(`${dir}/history`).catch(() => "");
        const injected = faults.map(({ kind, target, begin, end }) =>
          `${begin} ${end} ${kind} ${target}`
        );
        await Deno.writeTextFile(
          logs,
          `${injected.join("\n")}\n\n${history}\n${text.join("\n")}\n`,
        );
        console.log(`nemesis seed ${seed}: the commands' history and the daemons' logs: ${logs}`);
      }
      assert.deepEqual(verdict.violations, [], `seed ${seed}: the history breaks the rules`);
    } finally {
      if (etcdPaused) etcd.resume();
      for (const instance of instances) {
        if (instance.paused) Deno.kill(instance.daemon!.pid, "SIGCONT");
        await instance.daemon?.stop();
        await instance.proxy.close();
      }
      await etcd.close();
      const pgid = Number(await Deno.readTextFile(`${dir}/backend.pgid`).catch(() => "0"));
      if (pgid > 0 && isAlive(pgid)) Deno.kill(-pgid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * One client's session: connects, sends `exchanges` lines and reads each back,
 * keeps the connection `holdMs`, closes. It fails at the first byte that does
 * not come back, or after HOLD_TIMEOUT and a margin.
 */
async function session(
  port: number,
  instance: number,
  name: string,
  exchanges: number,
  holdMs: number,
): Promise<Session> {
  const begin = Date.now();
  let conn: Deno.TcpConn | undefined;
  const timeout = setTimeout(() => conn?.close(), BOUNDS.holdTimeout + 10_000);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    for (let n = 0; n < exchanges; n++) {
      const line = new TextEncoder().encode(`client ${name} line ${n}\n`);
      await writeAll(conn, line);
      const back = await readExactly(conn, line.length);
      if (new TextDecoder().decode(back) !== new TextDecoder().decode(line)) {
        throw new Error("other bytes came back");
      }
      if (n === 0) await sleep(holdMs);
    }
    return { instance, begin, end: Date.now(), ok: true };
  } catch (error) {
    return { instance, begin, end: Date.now(), ok: false, error: (error as Error).message };
  } finally {
    clearTimeout(timeout);
    try {
      conn?.close();
    } catch {
      // Closed by the timeout.
    }
  }
}

/** The START_CMD and STOP_CMD runs the commands recorded, each begin matched with its end. */
function readCommands(text: string): CommandRun[] {
  const runs: CommandRun[] = [];
  const open = new Map<string, CommandRun>();
  for (const line of text.split("\n").filter(Boolean)) {
    const [time, kind, edge, instance, shell] = line.split(" ");
    const key = `${kind} ${instance} ${shell}`;
    if (edge === "begin") {
      const run: CommandRun = {
        kind: kind as "start" | "stop",
        instance: Number(instance),
        begin: Number(time),
      };
      runs.push(run);
      open.set(key, run);
    } else {
      const run = open.get(key);
      open.delete(key);
      if (run) run.end = Number(time);
    }
  }
  return runs;
}

/** Whether the backend's process group runs. */
function backendRuns(dir: string): boolean {
  try {
    const pgid = Number(Deno.readTextFileSync(`${dir}/backend.pgid`));
    return pgid > 0 && isAlive(pgid);
  } catch {
    return false;
  }
}

/** The spans an instance spent `starting`, from the event logs of all its daemons. */
async function startingSpans(
  stateDir: string,
  instance: number,
  ended: number,
): Promise<StartingSpan[]> {
  const spans: StartingSpan[] = [];
  let open: StartingSpan | undefined;
  for (const name of ["events.jsonl.1", "events.jsonl"]) {
    const text = await Deno.readTextFile(`${stateDir}/${name}`).catch(() => "");
    for (const line of text.split("\n").filter(Boolean)) {
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        continue; // cut by a kill -9
      }
      const time = Date.parse(event.time);
      if (open && (event.daemon === "started" || event.service === "echo")) {
        // A new daemon (the last one was killed while starting) or any change ends the span.
        open.end = time;
        open = undefined;
      }
      if (event.service === "echo" && event.to === "starting") {
        open = { instance, begin: time };
        spans.push(open);
      }
    }
  }
  if (open) open.end = ended;
  return spans;
}
