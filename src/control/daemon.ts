/**
 * The daemon: the supervisor, the control socket, metrics, signals and
 * reloads, wired together for `sleepingd run` (and `start`, which runs it in
 * the background).
 *
 * @module
 */

import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { formatIssue, InvalidConfigError } from "../config/config_error.ts";
import { gatherWarnings, gatherWarningsFromNow, log } from "../log.ts";
import { raiseFileLimit } from "../process/file_limit.ts";
import { keepInheritedFilesFromCommands } from "../process/inherited_files.ts";
import { Budget } from "../net/budget.ts";
import { HttpSlots, MAX_HTTP_CONNECTIONS } from "../net/http_slots.ts";
import { type ReloadSummary, Supervisor } from "../service/supervisor.ts";
import { returnMemoryWhenQuiet } from "./memory_return.ts";
import { changeEvent, type DaemonEvent } from "../history/event.ts";
import { EventLog } from "../history/event_log.ts";
import { history } from "../history/timeline.ts";
import { typicalWakeSeconds } from "../history/typical_wake.ts";
import type { State } from "../service/lifecycle.ts";
import { runAction } from "./actions.ts";
import { readEtcdAccess } from "../cluster/access.ts";
import { Cluster } from "../cluster/cluster.ts";
import type { Service } from "../service/service.ts";
import type { KernelForwarder } from "../kernel/forwarder.ts";
import { requireTrustedFolder, UntrustedPathError } from "../fs/trusted_path.ts";
import { exposure, readToken } from "./api_token.ts";
import { serveHttp } from "./http.ts";
import { eventOf, Notifier } from "./notify.ts";
import { Metrics } from "./metrics.ts";
import type { ControlResponse } from "./protocol.ts";
import { AlreadyRunningError, claimRunDir, releaseRunDir, type RunDir, runDir } from "./run_dir.ts";
import { recover } from "./recovery.ts";
import { checkKernelPath, openKernelTable } from "./kernel.ts";
import { serveControl } from "./server.ts";
import { handleOtherSignals } from "./signals.ts";
import { readSavedState, removeSavedState, saveState } from "./state_file.ts";
import { type DaemonStatus, daemonStatus } from "./status.ts";

/** Global keys a reload cannot apply: the daemon has set them up at start. */
const RESTART_ONLY = [
  { name: "VARRUN_PATH", field: "varrunPath" },
  { name: "STATE_PATH", field: "statePath" },
  { name: "LOG_FORMAT", field: "logFormat" },
  { name: "LOG_FILE", field: "logFile" },
  { name: "LOG_MAX_SIZE", field: "logMaxSize" },
  { name: "LOG_MAX_FILES", field: "logMaxFiles" },
  { name: "METRICS_ADDRESS", field: "metricsAddress" },
  // The instance joined its cluster at start: it stays in it until it restarts.
  { name: "ETCD_ENDPOINTS", field: "etcdEndpoints" },
  { name: "CLUSTER_NAME", field: "clusterName" },
  { name: "ETCD_CA_FILE", field: "etcdCaFile" },
  { name: "ETCD_CERT_FILE or ETCD_KEY_FILE", field: "etcdClientCert" },
  { name: "ETCD_USER or ETCD_PASSWORD_FILE", field: "etcdUser" },
] as const;

/** Longest the shutdown waits for the last events (the stops) to reach ON_EVENT_CMD and webhooks. */
const EVENTS_AT_EXIT_MS = 3_000;

/**
 * Signals that ask the daemon to shut down gracefully: SIGQUIT (Ctrl-\, and
 * a graceful stop for nginx) and SIGPWR (lxc-stop's) too, which would
 * otherwise end it at once, its backends left awake.
 */
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM", "SIGQUIT", "SIGPWR"] as const;

/**
 * Set by `sleepingd start` for the daemon it spawns: the control socket is
 * then required (start waits on it), not optional as in the foreground.
 */
export const DAEMONIZED_ENV = "SLEEPINGD_DAEMONIZED";

/**
 * Runs every active service of `config` until SIGINT, SIGTERM or `sleepingd
 * stop`; SIGHUP and `sleepingd reload` re-read `configFiles`.
 *
 * @returns the exit code: 0 after a graceful shutdown, 1 when none can run
 * or a second signal cut the shutdown short
 * @throws {Error} when a service cannot listen or VARRUN_PATH cannot be
 * claimed (another daemon runs there, or `start` needs it and it is not writable),
 * when VARRUN_PATH or STATE_PATH could be changed by another user, or when
 * API_TOKEN_FILE is set and holds no usable token
 */
export async function runDaemon(config: Config, configFiles: string[]): Promise<number> {
  const logger = log("daemon");
  // What the start warns of, for `sleepingd start` to show; then what the last reload did.
  const startWarnings = gatherWarningsFromNow();
  let warnings: string[] | undefined;
  logWarnings(config);
  const inherited = keepInheritedFilesFromCommands();
  if (!inherited.done) {
    logger.warn("cannot keep the files sleepingd inherited open from its commands: {how}", {
      how: inherited.how,
    });
  }
  if (config.services.length === 0) {
    logger.error("no service is active in {files}", { files: config.files.join(", ") });
    return 1;
  }
  if (config.global.metricsAddress) await checkTokenFile(config.global.apiTokenFile);
  const metrics = new Metrics();
  // Before anything listens: no rule of a daemon killed before this one may outlive it.
  const kernel = await openKernelTable(config);
  const dir = runDir(config.global.varrunPath);
  let saving = false; // once the run folder is this daemon's
  const save = () => {
    if (saving) saveServices(dir, supervisor);
  };
  const notifier = new Notifier();
  const { statePath, statePathSource } = config.global;
  requireTrustedFolder(statePath, "STATE_PATH");
  const events = new EventLog({
    folder: statePath,
    ...(statePathSource ? { folderSource: `${statePathSource.file}:${statePathSource.line}` } : {}),
    states: () => states(supervisor),
  });
  const { etcdEndpoints, clusterName } = config.global;
  const cluster: Cluster | undefined = etcdEndpoints
    ? new Cluster({
      endpoints: etcdEndpoints,
      name: clusterName,
      access: await readEtcdAccess(config.global),
      services: (): readonly Service[] => supervisor.services,
    })
    : undefined;
  const budget = new Budget();
  const supervisor = new Supervisor(config, metrics, {
    coordinator: cluster,
    kernel,
    typicalWake: (name: string): number | undefined => typicalWakeSeconds(events.events, name),
    budget,
    fileLimit: await fileLimit(),
    http: config.global.metricsAddress ? MAX_HTTP_CONNECTIONS : undefined,
    onChange: save,
    onTransition: (service, change) => {
      events.append(changeEvent(service.config.name, change));
      const target = change.target ?? service.target;
      const event = eventOf(service.config.name, change, target);
      if (event) notifier.notify(service.config, event, target);
    },
  });
  const startedAt = new Date();
  const status = () =>
    daemonStatus(
      supervisor.services,
      startedAt,
      supervisor.config.files,
      supervisor.config.global.apiTokenFile !== undefined,
      cluster?.instances,
      warnings,
      supervisor.sharedPorts,
    );
  const daemonEvent = (what: DaemonEvent["daemon"]) =>
    events.append({
      time: new Date().toISOString(),
      daemon: what,
      pid: Deno.pid,
      states: what === "stopped" ? {} : states(supervisor),
    });
  const stop = Promise.withResolvers<string>();
  const control = openControl(dir, {
    budget,
    configFiles,
    supervisor,
    status,
    requestStop: () => stop.resolve("sleepingd stop"),
    reloaded: (reloadWarnings) => {
      warnings = reloadWarnings;
      daemonEvent("reloaded");
    },
  });
  const saved = control ? readSavedState(dir) : undefined;
  saving = control !== undefined;
  let http: { shutdown(): Promise<void> } | undefined;
  try {
    await supervisor.listen();
    daemonEvent("started");
    // The schedules begin once recovery has adopted or cleaned up what a killed daemon left.
    // Recovery comes first of all, so that no client wakes a service it has to clean up, even
    // while etcd is slow to answer the join.
    recover(supervisor.services, saved).then(() => supervisor.startSchedules());
    save();
    await cluster?.start();
    if (config.global.metricsAddress) {
      http = serveHttp(config.global.metricsAddress, {
        metrics: () =>
          metrics.render(supervisor.services, { shared: supervisor.sharedPorts, budget }),
        status,
        history: (period, only) =>
          history(
            events.events,
            supervisor.services.map((service) => service.config)
              .filter((service) => only === undefined || service.name === only)
              .map(({ name, costPerHour }) => ({ name, cost: costPerHour })),
            period,
          ),
        subscribe: (listener) => events.subscribe(listener),
        act: (request, by) => runAction(supervisor, request, by),
        tokenFile: () => supervisor.config.global.apiTokenFile,
        allowedHosts: () => supervisor.config.global.metricsHosts ?? [],
      }, new HttpSlots(undefined, budget));
    }
    // Now that everything listens, the budget is what the file limit leaves after it.
    supervisor.planBudget();
  } catch (error) {
    await closeKernelTable(kernel);
    control?.close();
    events.close();
    releaseRunDir(dir);
    throw error;
  }

  // The first signal (or `sleepingd stop`) asks for a graceful shutdown; one more ends it.
  let stopping = false;
  const again = Promise.withResolvers<string>();
  const onSignal = (signal: string) => () => {
    (stopping ? again : stop).resolve(signal);
    stopping = true;
  };
  const handlers = SHUTDOWN_SIGNALS.map((signal) => [signal, onSignal(signal)] as const);
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  const onHangup = () =>
    reload(configFiles, supervisor).then((result) => {
      if (!result.ok) return;
      warnings = result.warnings;
      daemonEvent("reloaded");
    });
  Deno.addSignalListener("SIGHUP", onHangup);
  const stopOtherSignals = handleOtherSignals();

  const stopReturningMemory = returnMemoryWhenQuiet(() => supervisor.connectionEvents);
  logger.info("sleepingd is running {count} service(s)", { count: supervisor.services.length });
  warnings = startWarnings();
  const reason = await stop.promise;
  stopReturningMemory();
  stopping = true;
  logger.info("{reason}: shutting down (signal again to exit at once)", { reason });
  const forced = await Promise.race([supervisor.shutdown().then(() => undefined), again.promise]);
  if (forced) {
    logger.error("{signal} again: exiting without finishing the shutdown", { signal: forced });
    await closeKernelTable(kernel);
    events.close();
    releaseRunDir(dir);
    return 1;
  }
  await closeKernelTable(kernel);
  await cluster?.leave();
  daemonEvent("stopped");
  events.close();
  await http?.shutdown();
  await notifier.settled(EVENTS_AT_EXIT_MS);
  await control?.close(); // after the last answer (`sleepingd stop`'s) is written whole
  saving = false;
  removeSavedState(dir);
  releaseRunDir(dir);
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  Deno.removeSignalListener("SIGHUP", onHangup);
  stopOtherSignals();
  logger.info("sleepingd stopped");
  return 0;
}

/** Removes the daemon's nftables table, saying so when it cannot. */
async function closeKernelTable(kernel: KernelForwarder | undefined): Promise<void> {
  try {
    await kernel?.close();
  } catch (error) {
    log("daemon").error("cannot remove the nftables table {table}: {error}", {
      table: kernel!.table,
      error: (error as Error).message,
    });
  }
}

/**
 * Reads API_TOKEN_FILE once at start, so that a missing file or a token too
 * short to resist guessing stops the daemon before it serves; warns when other
 * users may read it.
 *
 * @throws {TokenFileError} naming the file and the fix
 */
async function checkTokenFile(file: string | undefined): Promise<void> {
  if (file === undefined) return;
  await readToken(file);
  const exposed = exposure(file);
  if (exposed) log("daemon").warn("{message}", { message: exposed });
}

/** Each service's state, by name. */
function states(supervisor: Supervisor): Record<string, State> {
  return Object.fromEntries(
    supervisor.services.map((service) => [service.config.name, service.state]),
  );
}

/** Saves every service's state for a daemon that starts after this one, should it be killed. */
function saveServices(dir: RunDir, supervisor: Supervisor) {
  try {
    saveState(dir, supervisor.services.map((service) => service.snapshot()));
  } catch (error) {
    log("daemon").warn("cannot save the state in {path}: {error}", { path: dir.path, error });
  }
}

/**
 * Raises the open file limit as far as it goes (saying so at debug level)
 * and returns it, which the budget is planned within; undefined when unknown.
 */
async function fileLimit(): Promise<number | undefined> {
  const limit = await raiseFileLimit();
  if (!limit || !Number.isFinite(limit.soft)) return undefined;
  if (limit.raisedFrom !== undefined) {
    log("daemon").debug("open file limit raised from {from} to {soft}", {
      from: limit.raisedFrom,
      soft: limit.soft,
    });
  }
  return limit.soft;
}

/**
 * Claims VARRUN_PATH and serves the control socket. In the foreground a
 * VARRUN_PATH that cannot be written only disables status/reload/stop; for
 * `sleepingd start` it is fatal. A live daemon in the same VARRUN_PATH is
 * always fatal.
 */
function openControl(
  dir: RunDir,
  parts: {
    budget: Budget;
    configFiles: string[];
    supervisor: Supervisor;
    status: () => DaemonStatus;
    requestStop: () => void;
    /** Told of each reload that succeeded, with what it warned of. */
    reloaded: (warnings: string[]) => void;
  },
): { close(): Promise<void> } | undefined {
  const { budget, configFiles, supervisor, status, requestStop, reloaded } = parts;
  try {
    claimRunDir(dir);
  } catch (error) {
    if (
      Deno.env.get(DAEMONIZED_ENV) === "1" || error instanceof AlreadyRunningError ||
      error instanceof UntrustedPathError
    ) {
      throw error;
    }
    log("daemon").warn(
      "{reason}; sleepingd status, reload and stop will not reach this daemon",
      { reason: (error as Error).message },
    );
    return undefined;
  }
  const close = serveControl(dir.socket, budget, async (request): Promise<ControlResponse> => {
    if (request.command === "status") return { ok: true, status: status() };
    if (request.command === "action") {
      try {
        const by = `sleepingd ${request.action.action}`;
        const message = await runAction(supervisor, request.action, by);
        return { ok: true, status: status(), message };
      } catch (error) {
        return { ok: false, error: (error as Error).message };
      }
    }
    if (request.command === "stop") {
      setTimeout(requestStop, 0);
      return { ok: true, status: status() };
    }
    const result = await reload(configFiles, supervisor);
    if (!result.ok) return result;
    reloaded(result.warnings);
    return {
      ok: true,
      status: status(),
      message: result.message,
      reload: result.summary,
      warnings: result.warnings,
    };
  });
  return { close };
}

/**
 * Re-reads the configuration files and applies them; a broken configuration
 * changes nothing. Either way it says what it warned of: the warnings it
 * logged, or those found beside the errors.
 */
async function reload(
  configFiles: string[],
  supervisor: Supervisor,
): Promise<
  { ok: true; message: string; summary: ReloadSummary; warnings: string[] } | {
    ok: false;
    error: string;
    warnings: string[];
  }
> {
  const { result, warnings } = await gatherWarnings(() => applyReload(configFiles, supervisor));
  return result.ok ? { ...result, warnings } : result;
}

/** {@linkcode reload} without gathering its warnings. */
async function applyReload(
  configFiles: string[],
  supervisor: Supervisor,
): Promise<
  { ok: true; message: string; summary: ReloadSummary } | {
    ok: false;
    error: string;
    warnings: string[];
  }
> {
  const logger = log("daemon");
  try {
    const config = await loadConfig(configFiles);
    await checkKernelPath(config);
    const before = supervisor.config.global;
    const summary = await supervisor.reload(config);
    logWarnings(config);
    for (const key of RESTART_ONLY) {
      if (JSON.stringify(before[key.field]) !== JSON.stringify(config.global[key.field])) {
        logger.warn("{key} changed: it takes effect when sleepingd restarts", { key: key.name });
      }
    }
    const parts = (["added", "removed", "changed", "unchanged"] as const)
      .filter((kind) => summary[kind].length > 0)
      .map((kind) => `${kind}: ${nameList(summary[kind])}`);
    if (summary.renamed.length > 0) {
      parts.push(
        `renamed: ${summary.renamed.map(({ from, to }) => `${from} -> ${to}`).join(", ")}`,
      );
    }
    const message = `reloaded ${config.files.join(", ")} (${parts.join("; ") || "no services"})`;
    logger.info("{message}", { message });
    return { ok: true, message, summary };
  } catch (error) {
    const message = (error as Error).message;
    logger.error("reload refused, the running configuration stays: {error}", { error: message });
    const warnings = error instanceof InvalidConfigError ? error.warnings.map(formatIssue) : [];
    return { ok: false, error: message, warnings };
  }
}

/** Names a reload's message lists one by one; more are counted ("1,000 services"). */
const NAMES_LISTED = 10;

/** `a, b, c`, or past {@linkcode NAMES_LISTED} names, `1,000 services`. */
function nameList(names: string[]): string {
  if (names.length <= NAMES_LISTED) return names.join(", ");
  return `${names.length.toLocaleString("en-US")} services`;
}

function logWarnings(config: Config) {
  const logger = log("daemon");
  for (const warning of config.warnings) {
    logger.warn("{file}:{line}: {message}", {
      file: warning.location.file,
      line: warning.location.line,
      message: warning.message,
    });
  }
}
