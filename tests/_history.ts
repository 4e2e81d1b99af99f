/**
 * A daemon's folder for the history and dashboard tests: one echo service
 * that stops when idle, its history in `STATE_PATH`, its HTTP server on a
 * port of its own.
 *
 * @module
 */

import type { ChangeEvent } from "../src/history/event.ts";
import type { Daemon } from "./_daemon.ts";
import { freePort, isAlive } from "./_net.ts";
import { startEchoBackend, stopEchoBackend } from "./_service.ts";

/** What the tests vary: the echo service's name, idle time and cost, more sections. */
export interface HistorySetupOptions {
  /** The echo service's section name. */
  name: string;
  /** Its IDLE_TIME, in seconds (checked every 0.2 s). */
  idleTime: number;
  /** Its COST_PER_HOUR. */
  cost: string;
  /** Sections added after it. */
  more?: string;
  /** Global lines added before it, given the folder. */
  global?: (dir: string) => string;
  /** More lines of its section. */
  extra?: string;
}

/** The folder, the configuration file, the ports, and how to clean up. */
export interface HistorySetup {
  /** The folder: the configuration, VARRUN_PATH (`run`), STATE_PATH (`state`), the backend. */
  dir: string;
  /** The configuration file. */
  file: string;
  /** The echo service's port. */
  port: number;
  /** The HTTP server's port (METRICS_ADDRESS). */
  http: number;
  /** GETs `path` from the HTTP server: its status, headers and JSON body (an error by default). */
  api<T = { error: string }>(path: string): Promise<{ status: number; headers: Headers; body: T }>;
  /** The first `awake → stopping` change the daemons wrote to the event log, if any. */
  firstStop(): Promise<ChangeEvent | undefined>;
  /** Stops `daemons`, kills a backend left running and removes the folder. */
  cleanup(...daemons: Daemon[]): Promise<void>;
}

/** Writes the configuration; starts nothing. */
export async function historySetup(options: HistorySetupOptions): Promise<HistorySetup> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-history-" });
  const port = freePort();
  const http = freePort();
  const backend = `${dir}/${options.name}`;
  await Deno.mkdir(backend);
  await Deno.mkdir(`${dir}/state`);
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run
STATE_PATH=${dir}/state
METRICS_ADDRESS=127.0.0.1:${http}
${options.global?.(dir) ?? ""}
[${options.name}]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${startEchoBackend(backend, freePort())}'
STOP_CMD='${stopEchoBackend(backend)}'
IDLE_TIME=${options.idleTime}
IDLE_CHECK_INTERVAL=0.2
COST_PER_HOUR=${options.cost}
${options.extra ?? ""}
${options.more ?? ""}`,
  );
  return {
    dir,
    file,
    port,
    http,
    async api<T>(path: string) {
      const response = await fetch(`http://127.0.0.1:${http}${path}`);
      return {
        status: response.status,
        headers: response.headers,
        body: await response.json() as T,
      };
    },
    async firstStop() {
      const lines = (await Deno.readTextFile(`${dir}/state/events.jsonl`)).trim().split("\n");
      return lines.map((line) => JSON.parse(line) as ChangeEvent)
        .find((event) => event.from === "awake" && event.to === "stopping");
    },
    async cleanup(...daemons) {
      for (const daemon of daemons) await daemon.stop();
      try {
        const pid = Number(await Deno.readTextFile(`${backend}/backend.pid`));
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      } catch {
        // No backend left.
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}
