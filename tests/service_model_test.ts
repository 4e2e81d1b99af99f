/**
 * The life cycle against a model of it (fast-check's `commands`): random
 * sequences of clients coming and going, `wake`, `sleep` (with and without
 * --force), `keep-awake`, reloads that turn idle stops on and off, START_CMD
 * and STOP_CMD that succeed, fail or hang, a backend that dies, and another
 * instance (a Coordinator of the test's own) that refuses stops. After each
 * step the service is left to settle, and its state, its commands' runs,
 * its backend and its connections must be what the model says.
 *
 * Real parts throughout: a Supervisor with its listener, shell commands, a
 * socat echo backend, TCP clients. The run is seeded: it prints its seed, and
 * `SLEEPINGD_MODEL_SEED=N` (with `SLEEPINGD_MODEL_PATH` from a failure's
 * report) replays it; `SLEEPINGD_MODEL_RUNS` sets how many sequences run.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Config, ServiceConfig } from "../src/config/types.ts";
import { runAction } from "../src/control/actions.ts";
import { ALONE, type Coordinator, NO_CLAIM, type StopClaim } from "../src/service/coordinator.ts";
import type { Service } from "../src/service/service.ts";
import { Supervisor } from "../src/service/supervisor.ts";
import { waitFor } from "./_helpers.ts";
import { freePort, isAlive, listenLocal, writeAll } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { command, serviceConfig } from "./_service.ts";

/** How a command run ends, as the test decides before it runs. */
type Outcome = "ok" | "fail" | "hang";

/** What the service must be once it has settled. */
interface Model {
  state: "asleep" | "awake";
  /** Clients connected to the backend. */
  clients: number;
  /** A keep-awake is in force. */
  kept: boolean;
  /** IDLE_TIME is set (a reload turns it on and off). */
  idleStops: boolean;
  /** The other instance refuses every stop. */
  refuse: boolean;
  /** How the next START_CMD and STOP_CMD runs end. */
  start: Outcome;
  stop: Outcome;
  /** The backend runs (a STOP_CMD that failed leaves it running). */
  backendUp: boolean;
  /** START_CMD and STOP_CMD runs so far. */
  starts: number;
  stops: number;
}

/** The other instance, as far as stops go: it refuses them all while `refuse` is set. */
class Refuser implements Coordinator {
  refuse = false;
  /** Stops refused so far. */
  refused = 0;
  claimWake = ALONE.claimWake;
  othersBusy = ALONE.othersBusy;
  claimStop = (): Promise<StopClaim> => {
    if (!this.refuse) return Promise.resolve({ claim: NO_CLAIM });
    this.refused++;
    return Promise.resolve({ refusal: "the model's other instance refuses" });
  };
  gone() {}
  firstClient() {}
}

/** The system under test and the test's side of it. */
interface Real {
  dir: string;
  port: number;
  supervisor: Supervisor;
  service: Service;
  coordinator: Refuser;
  /** The service's settings with idle stops on. */
  config: ServiceConfig;
  /** The test's clients that are connected through to the backend. */
  clients: Deno.TcpConn[];
}

const IDLE_TIME = 0.05;

/** The service: START_CMD and STOP_CMD do what the outcome files say; socat is the backend. */
function modelService(dir: string, port: number, backend: number, socat: string): ServiceConfig {
  const pid = `${dir}/backend.pid`;
  const alive = `[ -f '${pid}' ] && [ -e "/proc/$(cat '${pid}')" ] && ` +
    `! grep -q '^State:[[:space:]]*Z' "/proc/$(cat '${pid}')/status"`;
  const obey = (action: string) =>
    `echo ${action} >> '${dir}/${action}s'
case "$(cat '${dir}/${action}-outcome')" in
  fail) echo "${action} fails, as the model says" >&2; exit 1 ;;
  hang) exec sleep 1000 ;;
esac`;
  return serviceConfig({
    name: "model",
    port,
    idleTime: IDLE_TIME,
    idleCheckInterval: 0.02,
    readyTimeout: 5,
    holdTimeout: 30,
    // The backend runs in a process group of its own: a stop ends it with its connections.
    startCmd: command(
      `${obey("start")}
if ! { ${alive}; }; then
  setsid '${socat}' TCP-LISTEN:${backend},bind=127.0.0.1,reuseaddr,fork PIPE > /dev/null 2>&1 &
  echo $! > '${pid}'
fi
echo "127.0.0.1 ${backend}"`,
      0.3,
    ),
    stopCmd: command(
      `${obey("stop")}
if [ -f '${pid}' ]; then
  kill -- -"$(cat '${pid}')" 2> /dev/null
  while ${alive}; do sleep 0.01; done
  rm -f '${pid}'
fi`,
      0.3,
    ),
  });
}

/** A new service and its model, both asleep, every command set to succeed. */
async function setup(socat: string): Promise<{ model: Model; real: Real }> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-model-" });
  for (const action of ["start", "stop"]) {
    await Deno.writeTextFile(`${dir}/${action}-outcome`, "ok");
  }
  const listener = listenLocal();
  const config = modelService(dir, listener.addr.port, freePort(), socat);
  const coordinator = new Refuser();
  const supervisor = new Supervisor(configWith(config), undefined, { coordinator });
  supervisor.serve(supervisor.services[0], listener);
  const model: Model = {
    state: "asleep",
    clients: 0,
    kept: false,
    idleStops: true,
    refuse: false,
    start: "ok",
    stop: "ok",
    backendUp: false,
    starts: 0,
    stops: 0,
  };
  const real: Real = {
    dir,
    port: listener.addr.port,
    supervisor,
    service: supervisor.services[0],
    coordinator,
    config,
    clients: [],
  };
  return { model, real };
}

/** A configuration of the one service, with the short grace the model's sleeps wait. */
function configWith(service: ServiceConfig): Config {
  return {
    files: ["model.conf"],
    global: { clusterName: "model", shutdownGrace: 0.1, logFormat: "text" } as Config["global"],
    services: [service],
    inactive: [],
    warnings: [],
  };
}

async function teardown(real: Real) {
  for (const client of real.clients) client.close();
  real.coordinator.refuse = false;
  await Deno.writeTextFile(`${real.dir}/stop-outcome`, "ok");
  await real.supervisor.shutdown();
  const pid = backendPid(real);
  if (pid !== undefined && isAlive(pid)) Deno.kill(-pid, "SIGKILL");
  await Deno.remove(real.dir, { recursive: true });
}

function backendPid(real: Real): number | undefined {
  try {
    return Number(Deno.readTextFileSync(`${real.dir}/backend.pid`).trim()) || undefined;
  } catch {
    return undefined;
  }
}

function runs(real: Real, action: "start" | "stop"): number {
  try {
    return Deno.readTextFileSync(`${real.dir}/${action}s`).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** STOP_CMD runs, as the model says it ends. */
function stopped(model: Model) {
  model.stops++;
  if (model.stop === "ok") model.backendUp = false;
}

/** START_CMD runs, as the model says it ends: awake, or the wake fails and STOP_CMD cleans up. */
function started(model: Model): boolean {
  model.starts++;
  if (model.start === "ok") {
    model.state = "awake";
    model.backendUp = true;
    return true;
  }
  model.state = "asleep";
  stopped(model);
  return false;
}

/** Awake with nothing keeping it so, but IDLE_TIME: its idle checks want it stopped. */
function idle(model: Readonly<Model>): boolean {
  return model.state === "awake" && model.clients === 0 && !model.kept && model.idleStops;
}

/** What follows on its own: the idle stop, when nothing keeps the service awake. */
function settleModel(model: Model) {
  if (idle(model) && !model.refuse) {
    model.state = "asleep";
    stopped(model);
  }
}

/** What the real system shows of what the model says. */
function observed(real: Real) {
  const pid = backendPid(real);
  return {
    state: real.service.state,
    clients: real.service.stats.openConnections,
    kept: real.service.whyAwake.keptAwakeUntil > 0,
    backendUp: pid !== undefined && isAlive(pid),
    starts: runs(real, "start"),
    stops: runs(real, "stop"),
  };
}

/**
 * Waits (bounded) until the real system settles where the model says; fails
 * naming both. Idle but refused, the idle checks must go on asking: one more
 * refusal is awaited.
 */
async function settle(model: Model, real: Real) {
  settleModel(model);
  if (idle(model) && model.refuse) {
    const refused = real.coordinator.refused;
    await waitFor("the idle checks to ask again", () => real.coordinator.refused > refused, 10);
  }
  const { state, clients, kept, backendUp, starts, stops } = model;
  const expected = { state, clients, kept, backendUp, starts, stops };
  try {
    await waitFor("the service to settle", () => {
      try {
        assert.deepEqual(observed(real), expected);
        return true;
      } catch {
        return false;
      }
    }, 10);
  } catch {
    assert.deepEqual(observed(real), expected, "the service did not settle where the model says");
  }
}

/** Reads until `bytes` bytes came or the connection ended (a reset counts as the end). */
async function readUpTo(conn: Deno.Conn, bytes: number): Promise<string> {
  const buffer = new Uint8Array(bytes);
  let got = 0;
  while (got < bytes) {
    const n = await conn.read(buffer.subarray(got)).catch(() => null);
    if (n === null) break;
    got += n;
  }
  return new TextDecoder().decode(buffer.subarray(0, got));
}

/** A step of the model: `apply` acts on both sides, then both settle and are compared. */
abstract class Step implements fc.AsyncCommand<Model, Real> {
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    await this.apply(model, real);
    await settle(model, real);
  }
  abstract apply(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

/** The next START_CMD or STOP_CMD runs end as `outcome` says. */
class SetOutcome extends Step {
  constructor(readonly action: "start" | "stop", readonly outcome: Outcome) {
    super();
  }
  async apply(model: Model, real: Real) {
    await Deno.writeTextFile(`${real.dir}/${this.action}-outcome`, this.outcome);
    model[this.action] = this.outcome;
  }
  toString = () => `${this.action}:${this.outcome}`;
}

/** A client connects and sends a line: echoed through a backend, or closed when the wake fails. */
class ClientArrives extends Step {
  override check = (model: Readonly<Model>) => model.clients < 3;
  async apply(model: Model, real: Real) {
    const served = model.state === "awake" && model.backendUp
      ? true
      : (model.state = "asleep", started(model));
    if (served) model.clients++;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: real.port });
    await writeAll(conn, new TextEncoder().encode("ping"));
    const echoed = await readUpTo(conn, 4);
    if (served) {
      assert.equal(echoed, "ping", "a client of an awake backend is served");
      real.clients.push(conn);
    } else {
      assert.equal(echoed, "", "a client of a failed wake is closed");
      conn.close();
    }
  }
  toString = () => "client+";
}

/** The oldest client leaves. */
class ClientLeaves extends Step {
  override check = (model: Readonly<Model>) => model.clients > 0;
  apply(model: Model, real: Real) {
    real.clients.shift()!.close();
    model.clients--;
    return Promise.resolve();
  }
  toString = () => "client-";
}

/** `sleepingd wake`: ready once it answers, or the wake failed. */
class Wake extends Step {
  async apply(model: Model, real: Real) {
    const woken = model.state === "awake" || started(model);
    const action = runAction(real.supervisor, { action: "wake", service: "model" }, "the model");
    if (woken) await action;
    else await assert.rejects(action, /wake failed/);
  }
  toString = () => "wake";
}

/** `sleepingd sleep [--force]`: asleep, unless the other instance refuses. */
class Sleep extends Step {
  constructor(readonly force: boolean) {
    super();
  }
  async apply(model: Model, real: Real) {
    model.kept = false;
    const action = runAction(
      real.supervisor,
      { action: "sleep", service: "model", force: this.force },
      "the model",
    );
    if (model.state === "awake" && model.refuse) {
      await assert.rejects(action, /model is not asleep: the model's other instance refuses/);
      return;
    }
    assert.equal(await action, "model is asleep");
    for (const client of real.clients.splice(0)) client.close();
    model.clients = 0;
    if (model.state === "awake") {
      model.state = "asleep";
      stopped(model);
    }
  }
  toString = () => this.force ? "sleep --force" : "sleep";
}

/** `sleepingd keep-awake`: an hour, or no more. */
class KeepAwake extends Step {
  constructor(readonly on: boolean) {
    super();
  }
  async apply(model: Model, real: Real) {
    const seconds = this.on ? 3600 : 0;
    await runAction(real.supervisor, { action: "keep-awake", service: "model", seconds }, "model");
    model.kept = this.on;
  }
  toString = () => `keep-awake ${this.on ? "1h" : "0"}`;
}

/** A reload that sets IDLE_TIME, or blanks it (no idle stops). */
class Reload extends Step {
  constructor(readonly idleStops: boolean) {
    super();
  }
  async apply(model: Model, real: Real) {
    const idleTime = this.idleStops ? IDLE_TIME : undefined;
    await real.supervisor.reload(configWith({ ...real.config, idleTime }));
    model.idleStops = this.idleStops;
  }
  toString = () => `reload ${this.idleStops ? "with" : "without"} IDLE_TIME`;
}

/** The other instance starts or stops refusing stops. */
class Refuse extends Step {
  constructor(readonly on: boolean) {
    super();
  }
  apply(model: Model, real: Real) {
    real.coordinator.refuse = this.on;
    model.refuse = this.on;
    return Promise.resolve();
  }
  toString = () => this.on ? "refuse stops" : "allow stops";
}

/** The backend dies with its connections; nobody tells sleepingd. */
class BackendDies extends Step {
  override check = (model: Readonly<Model>) => model.backendUp;
  async apply(model: Model, real: Real) {
    const pid = backendPid(real)!;
    Deno.kill(-pid, "SIGKILL");
    await waitFor("the backend to die", () => !isAlive(pid));
    model.backendUp = false;
    model.clients = 0;
    for (const client of real.clients.splice(0)) client.close();
  }
  toString = () => "backend dies";
}

const outcome = fc.constantFrom<Outcome>("ok", "ok", "fail", "hang");
const steps = [
  outcome.map((end) => new SetOutcome("start", end)),
  outcome.map((end) => new SetOutcome("stop", end)),
  fc.constant(new ClientArrives()),
  fc.constant(new ClientArrives()),
  fc.constant(new ClientLeaves()),
  fc.constant(new ClientLeaves()),
  fc.constant(new Wake()),
  fc.boolean().map((force) => new Sleep(force)),
  fc.boolean().map((on) => new KeepAwake(on)),
  fc.boolean().map((on) => new Reload(on)),
  fc.boolean().map((on) => new Refuse(on)),
  fc.constant(new BackendDies()),
];

const seed = Number(Deno.env.get("SLEEPINGD_MODEL_SEED") ?? 20_201_115);
const numRuns = Number(Deno.env.get("SLEEPINGD_MODEL_RUNS") ?? 30);
const path = Deno.env.get("SLEEPINGD_MODEL_PATH");

serverTest(
  "the life cycle matches its model through random clients, actions, reloads, failures and refusals",
  [{ binary: "socat", package: "socat" }],
  async ({ socat }) => {
    console.log(`model: seed ${seed}, ${numRuns} runs (SLEEPINGD_MODEL_SEED replays it)`);
    await fc.assert(
      fc.asyncProperty(fc.commands(steps, { maxCommands: 30, size: "max" }), async (commands) => {
        const { model, real } = await setup(socat);
        try {
          await fc.asyncModelRun(() => ({ model, real }), commands);
        } finally {
          await teardown(real);
        }
      }),
      { seed, numRuns, path, endOnFailure: true },
    );
  },
);
