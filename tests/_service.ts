/**
 * A harness for service tests: a Supervisor in this process serving one
 * service on a port-0 listener, with real shell commands that start a real
 * echo backend (tests/testdata/echo_server.ts) and count their runs.
 *
 * @module
 */

import { reset as resetLogging } from "@logtape/logtape";
import type { CommandSpec, Config, GlobalConfig, ServiceConfig } from "../src/config/types.ts";
import { setupLogging, type Verbosity } from "../src/log.ts";
import type { Coordinator } from "../src/service/coordinator.ts";
import type { Service } from "../src/service/service.ts";
import { Supervisor } from "../src/service/supervisor.ts";
import { Metrics } from "../src/control/metrics.ts";
import { freePort, isAlive, listenLocal, readAll, text, writeAll } from "./_net.ts";

const ECHO_SERVER = new URL("./testdata/echo_server.ts", import.meta.url).pathname;

/** A service's settings as the config loader makes them: the defaults, then `overrides`. */
export function serviceConfig(overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    name: "echo",
    source: { file: "test.conf", line: 1 },
    port: 1,
    listenAddresses: ["127.0.0.1"],
    readyTimeout: 20,
    connectTimeout: 5,
    allow: [],
    deny: [],
    holdTimeout: 300,
    wakeOn: "connect",
    routePerConnection: false,
    logConnections: true,
    protocol: "tcp",
    morePorts: [],
    udpFlowTimeout: 60,
    keepAwake: [],
    dependsOn: [],
    forward: "proxy",
    masquerade: "auto",
    ...overrides,
  };
}

/**
 * The global settings of a test's daemon, its files in `dir`: the defaults,
 * then `overrides`.
 */
export function globalConfig(dir: string, overrides: Partial<GlobalConfig> = {}): GlobalConfig {
  return {
    varrunPath: dir,
    statePath: dir,
    clusterName: "sleepingd",
    shutdownGrace: 2,
    logFormat: "text",
    hostnameTimeout: 10,
    logMaxSize: 4 * 1024 * 1024,
    logMaxFiles: 2,
    ...overrides,
  };
}

/** A command spec as the config loader would make it. */
export function command(text: string, timeout?: number): CommandSpec {
  return { text, timeout, source: { file: "test.conf", line: 1 } };
}

/** A running service under test and the files its commands write. */
export interface Harness {
  /** Folder with the `starts`/`stops` logs and the backend's pidfile. */
  dir: string;
  /** The backend's port (not listening until START_CMD ran). */
  backendPort: number;
  /** The proxy's port: connect here. */
  port: number;
  /** The supervisor serving the service. */
  supervisor: Supervisor;
  /** The value of a metric sample of the supervisor's, e.g. `sleepingd_refused_total{...}`; 0 when absent. */
  metric(sample: string): number;
  /** The service under test. */
  service: Service;
  /** How many times START_CMD ran. */
  starts(): number;
  /** How many times STOP_CMD ran. */
  stops(): number;
  /** The echo backend's pid, when it runs. */
  backendPid(): number | undefined;
  /** What the echo backends said on stderr (e.g. that their port was taken); "" when nothing. */
  backendErrors(): string;
  /** Shuts the supervisor down and kills the backend if still alive. */
  close(): Promise<void>;
}

/** Counts lines of a file that may not exist yet. */
function countLines(path: string): number {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

/**
 * Shell text that starts the echo backend on `port` in the background and
 * prints its target; what the backend says on stderr (a port another process
 * took) goes to `backend.err`.
 */
export function startEchoBackend(dir: string, port: number): string {
  return `echo start >> '${dir}/starts'
'${Deno.execPath()}' run -A '${ECHO_SERVER}' ${port} '${dir}/backend.pid' > /dev/null 2>> '${dir}/backend.err' &
echo "127.0.0.1 ${port}"`;
}

/** Seconds a command waits at the gate before it gives up (a bound, should the test die). */
const GATE_BOUND_S = 300;

/**
 * Shell text that waits until the test opens the gate ({@linkcode openGate}):
 * put before a START_CMD, it holds the wake until every client the test
 * meant to race is waiting. A command the test never lets through (its
 * process killed, or the test gone) fails after 5 minutes instead of
 * polling forever.
 */
export function waitForGate(dir: string): string {
  return `while [ ! -f '${dir}/gate' ] && [ "$SECONDS" -lt ${GATE_BOUND_S} ]; do sleep 0.01; done
[ -f '${dir}/gate' ] || { echo "the gate was never opened" >&2; exit 1; }`;
}

/** Lets the commands waiting at {@linkcode waitForGate} go on. */
export async function openGate(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/gate`, "");
}

/**
 * Shell condition, true while the process `$pid` has a thread that has not
 * ended. A zombie left to a PID 1 that does not reap counts as ended, but
 * only once it is its process's last thread: the leader of a threaded
 * process (Deno, Redis) is a zombie as soon as it exits itself, while its
 * other threads still tear the process down, its listening socket still
 * open and taking connections that are then reset.
 */
export const RUNS_STILL = `[ -e "/proc/$pid" ] && ` +
  `{ ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2> /dev/null || ` +
  `[ "$(ls "/proc/$pid/task" 2> /dev/null | wc -l)" -gt 1 ]; }`;

/**
 * Shell text that kills the echo backend, waits until every thread of it has
 * ended (so that the next START_CMD finds its port free and no wake connects
 * to a backend on its way out, as a real STOP_CMD must; see
 * {@linkcode RUNS_STILL}), 30 s at most, and counts the stop.
 */
export function stopEchoBackend(dir: string): string {
  return `echo stop >> '${dir}/stops'
if [ -f '${dir}/backend.pid' ]; then
  pid="$(cat '${dir}/backend.pid')"
  if kill "$pid"; then
    for _ in $(seq 3000); do { ${RUNS_STILL}; } || break; sleep 0.01; done
    if ${RUNS_STILL}; then echo "the echo backend (pid $pid) still runs" >&2; exit 1; fi
  fi
fi
rm -f '${dir}/backend.pid'`;
}

/**
 * Starts a service whose START_CMD launches an echo backend and whose
 * STOP_CMD kills it; `overrides` change any setting (or the commands),
 * `options` the listening address (127.0.0.1 unless set), the global
 * settings and the other instances (a test's own {@linkcode Coordinator}).
 */
export async function startHarness(
  overrides: (dir: string, backendPort: number) => Partial<ServiceConfig> = () => ({}),
  options: {
    listenOn?: string;
    global?: Partial<GlobalConfig>;
    coordinator?: Coordinator;
  } = {},
): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-test-" });
  const backendPort = freePort();
  const listener = options.listenOn === undefined
    ? listenLocal()
    : Deno.listen({ hostname: options.listenOn, port: 0 });
  const service = serviceConfig({
    port: listener.addr.port,
    startCmd: command(startEchoBackend(dir, backendPort)),
    stopCmd: command(stopEchoBackend(dir)),
    ...overrides(dir, backendPort),
  });
  const config: Config = {
    files: ["test.conf"],
    global: globalConfig(dir, options.global),
    services: [service],
    inactive: [],
    warnings: [],
  };
  const metrics = new Metrics();
  const supervisor = new Supervisor(config, metrics, { coordinator: options.coordinator });
  supervisor.serve(supervisor.services[0], listener);
  const backendPid = () => {
    try {
      return Number(Deno.readTextFileSync(`${dir}/backend.pid`).trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    dir,
    backendPort,
    port: listener.addr.port,
    supervisor,
    metric(sample) {
      const line = metrics.render(supervisor.services).split("\n")
        .find((text) => text.startsWith(`${sample} `));
      return line === undefined ? 0 : Number(line.slice(sample.length + 1));
    },
    service: supervisor.services[0],
    starts: () => countLines(`${dir}/starts`),
    stops: () => countLines(`${dir}/stops`),
    backendPid,
    backendErrors() {
      try {
        return Deno.readTextFileSync(`${dir}/backend.err`);
      } catch {
        return "";
      }
    },
    async close() {
      await supervisor.shutdown();
      const pid = backendPid();
      if (pid && isAlive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The log lines of this process, as long as the capture is in use. */
export interface LogCapture extends AsyncDisposable {
  /** Every line logged so far. */
  lines(): string[];
}

/**
 * Sends this process's log (at `verbosity`) to a file until disposed, then
 * back to nothing: the log is read as an operator reads it.
 */
export async function captureLog(verbosity: Verbosity = "debug"): Promise<LogCapture> {
  const file = await Deno.makeTempFile({ prefix: "sleepingd-log-" });
  await setupLogging(verbosity, "text", file);
  return {
    lines: () => Deno.readTextFileSync(file).split("\n").filter(Boolean),
    async [Symbol.asyncDispose]() {
      await resetLogging();
      await Deno.remove(file);
    },
  };
}

/** Sends `message` to the proxy, half-closes, and returns everything that came back. */
export async function exchange(port: number, message: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, new TextEncoder().encode(message));
    await conn.closeWrite();
    return text(await readAll(conn));
  } finally {
    conn.close();
  }
}
