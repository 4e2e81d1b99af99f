/**
 * A real etcd (Debian's etcd-server) on loopback for the tests of several
 * instances: one member, its own data folder and ports, killed, paused and
 * started again at will; over TLS with client certificates when asked.
 *
 * @module
 */

import { waitFor } from "./_helpers.ts";
import { freePort } from "./_net.ts";

/** TLS for etcd's clients: its certificate and key, and the authority its clients' certificates need. */
export interface EtcdTls {
  /** etcd's certificate (PEM file), for 127.0.0.1. */
  certFile: string;
  /** Its key. */
  keyFile: string;
  /** The authority that signs the clients' certificates (etcd's --client-cert-auth). */
  clientCaFile: string;
  /** What the test's own requests show etcd. */
  client: Deno.HttpClient;
}

/** A running etcd member. */
export interface EtcdServer {
  /** Its client URL, for ETCD_ENDPOINTS. */
  url: string;
  /** Its pid while it runs. */
  pid(): number | undefined;
  /** Stops it (SIGKILL: as a crash, or a network cut). */
  stop(): Promise<void>;
  /** Starts it again on the same folder and ports. */
  start(): Promise<void>;
  /** Pauses it (SIGSTOP): it holds its connections and answers nothing. */
  pause(): void;
  /** Lets a paused etcd go on (SIGCONT). */
  resume(): void;
  /** Sets `key` to `value` through the gateway, as any client of etcd may (`token`: as an etcd user). */
  put(key: string, value: string, token?: string): Promise<void>;
  /** The keys that start with `prefix`, with their values. */
  range(prefix: string): Promise<{ key: string; value: string }[]>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** `text` in base64, as the gateway takes keys and values. */
export function base64(text: string): string {
  return btoa(String.fromCharCode(...encoder.encode(text)));
}

function unbase64(text: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));
}

/** Starts etcd at `binary` and waits until it answers. */
export async function startEtcd(
  binary: string,
  options: { tls?: EtcdTls } = {},
): Promise<EtcdServer> {
  const { tls } = options;
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-etcd-" });
  const client = `${tls ? "https" : "http"}://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  let child: Deno.ChildProcess | undefined;
  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${client}${path}`, {
      method: "POST",
      headers: token ? { authorization: token } : {},
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(2_000),
      ...(tls ? { client: tls.client } : {}),
    });
  const start = async () => {
    child = new Deno.Command(binary, {
      args: [
        `--data-dir=${dir}/data`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
        ...(tls
          ? [
            `--cert-file=${tls.certFile}`,
            `--key-file=${tls.keyFile}`,
            `--trusted-ca-file=${tls.clientCaFile}`,
            "--client-cert-auth",
          ]
          : []),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor("etcd to answer", async () => {
      try {
        const response = await post("/v3/kv/range", { key: base64("/") });
        await response.body?.cancel();
        return response.status === 200 || response.status === 400; // 400: auth on, no user
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
    pid: () => child?.pid,
    stop,
    start,
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    async put(key, value, token) {
      const response = await post("/v3/kv/put", { key: base64(key), value: base64(value) }, token);
      if (!response.ok) throw new Error(`etcd refused the put: ${await response.text()}`);
      await response.body?.cancel();
    },
    async range(prefix) {
      const end = encoder.encode(prefix);
      end[end.length - 1]++;
      const response = await post("/v3/kv/range", {
        key: base64(prefix),
        range_end: btoa(String.fromCharCode(...end)),
      });
      const { kvs = [] } = await response.json();
      return kvs.map((kv: { key: string; value: string }) => ({
        key: unbase64(kv.key),
        value: unbase64(kv.value),
      }));
    },
    async close() {
      child?.kill("SIGCONT");
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
