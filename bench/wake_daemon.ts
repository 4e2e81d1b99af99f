/**
 * The sleepingd the wake measurements run against: two services in front of
 * the echo backend, whose START_CMDs leave traces in files, and its metrics.
 *
 * - `wake`: START_CMD notes its own start and end time (bash's
 *   `$EPOCHREALTIME`) and names the backend; it sleeps again after 0.1 s idle.
 * - `gate`: START_CMD notes each run, then waits (30 s at most) until the
 *   bench creates the gate file, then names the backend.
 *
 * @module
 */

import { freePort } from "./processes.ts";
import { startSleepingdWith } from "./variants.ts";

/** Longest the gate's START_CMD waits for the gate file, in seconds. */
const GATE_WAIT_SECONDS = 30;

/** The running daemon, its services' ports and the files their START_CMDs write. */
export interface WakeDaemon {
  /** The process id of sleepingd. */
  pid: number;
  /** Port of the `wake` service. */
  wakePort: number;
  /** Port of the `gate` service. */
  gatePort: number;
  /** One line per run of the wake START_CMD: its start and end, in seconds since the epoch. */
  wakeTimesFile: string;
  /** One line per run of the gate START_CMD. */
  gateStartsFile: string;
  /** The file that lets the gate START_CMD go on once it exists. */
  gateFile: string;
  /** The value of a metric of sleepingd's `/metrics` with these labels, 0 when absent. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  /** Stops sleepingd. */
  stop(): Promise<void>;
}

/** Starts sleepingd with the `wake` and `gate` services, its files in `dir`. */
export async function startWakeDaemon(dir: string, backendPort: number): Promise<WakeDaemon> {
  const metricsPort = freePort();
  const wakePort = freePort();
  const gatePort = freePort();
  const wakeTimesFile = `${dir}/wake-times`;
  const gateStartsFile = `${dir}/gate-starts`;
  const gateFile = `${dir}/gate`;
  const target = `127.0.0.1 ${backendPort}`;
  const child = await startSleepingdWith([
    `METRICS_ADDRESS=127.0.0.1:${metricsPort}`,
    "[wake]",
    `PORT=${wakePort}`,
    "LISTEN_ADDRESS=127.0.0.1",
    `START_CMD='s=$EPOCHREALTIME; echo "${target}"; echo "$s $EPOCHREALTIME" >> ${wakeTimesFile}'`,
    "IDLE_TIME=0.1",
    "IDLE_CHECK_INTERVAL=0.05",
    "[gate]",
    `PORT=${gatePort}`,
    "LISTEN_ADDRESS=127.0.0.1",
    `START_CMD='echo start >> ${gateStartsFile}; ` +
    `for i in $(seq ${
      GATE_WAIT_SECONDS * 20
    }); do [ -e ${gateFile} ] && break; sleep 0.05; done; ` +
    `[ -e ${gateFile} ] && echo "${target}"'`,
    `START_CMD_TIMEOUT=${GATE_WAIT_SECONDS + 10}`,
  ], dir);
  const metric = async (name: string, labels: Record<string, string>) => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await response.text();
    const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
    const line = text.split("\n").find((line) =>
      line.startsWith(`${name}{`) && wanted.every((label) => line.includes(label))
    );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  return {
    pid: child.pid,
    wakePort,
    gatePort,
    wakeTimesFile,
    gateStartsFile,
    gateFile,
    metric,
    stop: () => child.stop(),
  };
}
