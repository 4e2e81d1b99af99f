/**
 * Groups of sleepingd instances in front of one echo backend, coordinated
 * through a real etcd (directly, or each through a fault proxy of its own),
 * for the tests of several instances.
 *
 * @module
 */

import type { DaemonStatus } from "../src/control/status.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { type EtcdServer, type EtcdTls, startEtcd } from "./_etcd.ts";
import { startEtcdProxy } from "./_etcd_proxy.ts";
import { freePort, isAlive } from "./_net.ts";
import { startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

/** What the tests of several instances need. */
export const ETCD = [{ binary: "etcd", package: "etcd-server" }];

/** How a test's instances are set up. */
export interface GroupOptions {
  /** Arguments after `run`, e.g. `["-v"]`. */
  args?: string[];
  /** Each instance reaches etcd through a fault proxy of its own (`group.proxies`). */
  proxies?: boolean;
  /** Lines added to the global section. */
  global?: string;
  /** Lines added to the service's section (later lines win); `{backend}` is the backend's port. */
  service?: string;
  /** etcd over TLS with client certificates. */
  tls?: EtcdTls;
  /** Runs once etcd answers, before the instances start. */
  before?: (etcd: EtcdServer) => Promise<void>;
}

/** `count` instances of one echo service, its backend shared, its START_CMD gated. */
export async function instances(etcd: EtcdServer, count: number, options: GroupOptions = {}) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-cluster-" });
  const backend = freePort();
  await Deno.mkdir(`${dir}/backend`);
  const cluster = `test-${crypto.randomUUID()}`;
  const members = [...Array(count).keys()].map(() => ({ port: freePort(), http: freePort() }));
  const proxies = options.proxies ? members.map(() => startEtcdProxy(etcd.url)) : [];
  const daemons: Daemon[] = [];
  const files: string[] = [];
  const backendPid = () => {
    try {
      return Number(Deno.readTextFileSync(`${dir}/backend/backend.pid`)) || undefined;
    } catch {
      return undefined;
    }
  };
  const cleanup = async () => {
    for (const daemon of daemons) await daemon.stop();
    for (const proxy of proxies) await proxy.close();
    const pid = backendPid();
    if (pid && isAlive(pid)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  };
  try {
    for (const [index, member] of members.entries()) {
      const file = `${dir}/instance${index}.conf`;
      files.push(file);
      // A port found free may be taken by another test before the daemon binds it: then new ones.
      for (let attempt = 1;; attempt++) {
        const { port, http } = member;
        await Deno.writeTextFile(
          file,
          `VARRUN_PATH=${dir}/run${index}
ETCD_ENDPOINTS=${proxies[index]?.url ?? etcd.url}
CLUSTER_NAME=${cluster}
METRICS_ADDRESS=127.0.0.1:${http}
${options.global ?? ""}
[echo]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${waitForGate(dir)}
${startEchoBackend(`${dir}/backend`, backend)}'
STOP_CMD='${stopEchoBackend(`${dir}/backend`)}'
IDLE_TIME=1
IDLE_CHECK_INTERVAL=0.2
CLUSTER_TARGETS=127.0.0.1
${(options.service ?? "").replaceAll("{backend}", String(backend))}
`,
        );
        try {
          daemons.push(await startDaemon(file, { args: options.args }));
          break;
        } catch (error) {
          if (attempt === 3 || !/already in use/.test((error as Error).message)) throw error;
          Object.assign(member, { port: freePort(), http: freePort() });
        }
      }
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  const status = async (index: number) => {
    const response = await fetch(`http://127.0.0.1:${members[index].http}/api/status`);
    return (await response.json() as DaemonStatus).services[0];
  };
  const metric = async (index: number, sample: string) => {
    const response = await fetch(`http://127.0.0.1:${members[index].http}/metrics`);
    const line = (await response.text()).split("\n").find((one) => one.startsWith(`${sample} `));
    return line === undefined ? 0 : Number(line.slice(sample.length + 1));
  };
  const lines = (name: string) => {
    try {
      return Deno.readTextFileSync(`${dir}/backend/${name}`).split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return {
    dir,
    cluster,
    members,
    files,
    daemons,
    proxies,
    status,
    metric,
    backendPid,
    /** The port the backend listens on once started. */
    backendPort: backend,
    /** The etcd key of the service's `rest` (`lock`, `state`). */
    key: (rest: string) => `/sleepingd/${cluster}/services/echo/${rest}`,
    /** Whether every instance says the service is asleep. */
    allAsleep: async () => {
      for (const index of members.keys()) {
        if ((await status(index)).state !== "asleep") return false;
      }
      return true;
    },
    starts: () => lines("starts"),
    stops: () => lines("stops"),
    cleanup,
  };
}

/** A group of instances, as {@linkcode instances} makes it. */
export type Group = Awaited<ReturnType<typeof instances>>;

/** Runs `body` with a fresh etcd and `count` instances, then stops and removes them all. */
export async function withGroup(
  paths: Record<string, string>,
  count: number,
  options: GroupOptions,
  body: (group: Group, etcd: EtcdServer) => Promise<void>,
) {
  const etcd = await startEtcd(paths.etcd, { tls: options.tls });
  let group;
  try {
    await options.before?.(etcd);
    group = await instances(etcd, count, options);
  } catch (error) {
    await etcd.close();
    throw error;
  }
  try {
    await body(group, etcd);
  } finally {
    await group.cleanup();
    await etcd.close();
  }
}
