/**
 * A real etcd (Debian's etcd-server) on loopback for the tests of several
 * instances: one member, its own data folder and ports, stopped and started
 * again at will.
 *
 * @module
 */

import { waitFor } from "./_helpers.ts";
import { freePort } from "./_net.ts";

/** A running etcd member. */
export interface EtcdServer {
  /** Its client URL, for ETCD_ENDPOINTS. */
  url: string;
  /** Stops it (SIGKILL: as a crash, or a network cut). */
  stop(): Promise<void>;
  /** Starts it again on the same folder and ports. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/** Starts etcd at `binary` and waits until it answers. */
export async function startEtcd(binary: string): Promise<EtcdServer> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-etcd-" });
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command(binary, {
      args: [
        `--data-dir=${dir}/data`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor("etcd to answer", async () => {
      try {
        const response = await fetch(`${client}/health`, { signal: AbortSignal.timeout(500) });
        return (await response.json()).health === "true";
      } catch {
        return false;
      }
    });
  };
  const stop = async () => {
    if (!child) return;
    child.kill("SIGKILL");
    await child.status;
    child = undefined;
  };
  await start();
  return {
    url: client,
    stop,
    start,
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
