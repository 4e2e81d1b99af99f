/**
 * The checker of a cluster's history: what the nemesis run recorded (the
 * START_CMD and STOP_CMD runs, each with its instance and time, as the
 * commands wrote them; the client sessions; the faults; each instance's
 * incarnations and its `starting` spans) against the rules
 * docs/ARCHITECTURE.md states ("Several instances", "What the checker checks").
 * Pure, so that each rule is tested on histories made by hand.
 *
 * @module
 */

/** A fault the nemesis injected, from `begin` until it was healed (`end`). */
export interface Fault {
  /**
   * On an instance's link to etcd: `fail`, `drop`, `lose`, `delay`, `blackhole`;
   * on a process (an instance, or etcd): `kill` (until it runs again), `pause`.
   */
  kind: "fail" | "drop" | "lose" | "delay" | "blackhole" | "kill" | "pause";
  /** The instance (its index), or etcd. */
  target: number | "etcd";
  /** Epoch milliseconds. */
  begin: number;
  /** Epoch milliseconds. */
  end: number;
}

/** A START_CMD or STOP_CMD run, as the command itself recorded it. */
export interface CommandRun {
  /** Which. */
  kind: "start" | "stop";
  /** The instance (its index) whose daemon ran it. */
  instance: number;
  /** Epoch milliseconds it began. */
  begin: number;
  /** Epoch milliseconds it ended; undefined when it never did. */
  end?: number;
}

/** One client's session, through one instance. */
export interface Session {
  /** The instance (its index) it connected to. */
  instance: number;
  /** Epoch milliseconds the connection was made (or refused). */
  begin: number;
  /** Epoch milliseconds it ended (the client closed, or saw it fail). */
  end: number;
  /** Whether every byte came back, in order, until the client closed. */
  ok: boolean;
  /** Why not, when not. */
  error?: string;
}

/** An instance's `starting` state, from its event log. */
export interface StartingSpan {
  /** The instance (its index). */
  instance: number;
  /** Epoch milliseconds it entered `starting`. */
  begin: number;
  /** Epoch milliseconds it left it; undefined when it never did before the daemon ended. */
  end?: number;
}

/** The settings the rules are stated in, in milliseconds. */
export interface Bounds {
  /** IDLE_TIME. */
  idleTime: number;
  /** IDLE_CHECK_INTERVAL. */
  idleCheckInterval: number;
  /** The lease TTL: how long an instance's keys and locks outlive it. */
  leaseTtl: number;
  /** How long an etcd call may take before the instance gives up on it. */
  callTimeout: number;
  /**
   * How long a client may go unseen by another instance's idle stop: its
   * instance publishes a first client at once (and its counts every second);
   * this leaves a margin for a loaded machine.
   */
  publication: number;
  /** READY_TIMEOUT. */
  readyTimeout: number;
  /** HOLD_TIMEOUT. */
  holdTimeout: number;
}

/** What the run recorded. */
export interface ClusterHistory {
  commands: CommandRun[];
  sessions: Session[];
  faults: Fault[];
  starting: StartingSpan[];
  /** Epoch milliseconds when the last fault was healed and every instance ran again. */
  healed: number;
  /** Epoch milliseconds when the run ended. */
  ended: number;
  /** Whether the backend ran, with no STOP_CMD under way, at the deadline of the idle stop. */
  runningAtDeadline: boolean;
  /** The deadline checked: when the backend had to be stopped by. */
  deadline: number;
}

/** The checker's verdict. */
export interface Verdict {
  /** Each rule broken, in words. */
  violations: string[];
  /** Each event a rule would have flagged but a fault explains, in words. */
  excused: string[];
}

/**
 * When the idle stop must have begun once the faults are healed and the
 * last client left: IDLE_TIME + 2 × IDLE_CHECK_INTERVAL + the lease TTL later.
 */
export function idleStopDeadline(
  history: Omit<ClusterHistory, "deadline" | "runningAtDeadline">,
  bounds: Bounds,
): number {
  const lastClient = Math.max(0, ...history.sessions.map((session) => session.end));
  return Math.max(history.healed, lastClient) + bounds.idleTime + 2 * bounds.idleCheckInterval +
    bounds.leaseTtl;
}

/**
 * Checks the rules:
 * 1. no two START_CMDs, nor a START_CMD and a STOP_CMD, overlap;
 * 2. no STOP_CMD begins while a client of any instance is connected since
 *    before the publication the stopping instance read;
 * 3. the backend does not run past {@linkcode idleStopDeadline};
 * 4. no instance stays `starting` past READY_TIMEOUT + HOLD_TIMEOUT;
 * 5. no client fails while its instance runs and the backend is up.
 *
 * A fault excuses rules 1, 2 and 4 for the instances it disturbs (every
 * instance, for a fault of etcd), from its beginning until a lease TTL and
 * an etcd call after its end: a command of an instance killed, paused or cut
 * off from etcd outlives its lock. Rules 3 and 5 are never excused.
 */
export function checkHistory(history: ClusterHistory, bounds: Bounds): Verdict {
  const verdict: Verdict = { violations: [], excused: [] };
  const disturbance = (instances: number[], from: number, to: number) =>
    history.faults.filter((fault) =>
      (fault.target === "etcd" || instances.includes(fault.target)) &&
      fault.begin <= to && fault.end + bounds.leaseTtl + bounds.callTimeout >= from
    );
  const judge = (what: string, faults: Fault[]) => {
    if (faults.length === 0) verdict.violations.push(what);
    else {
      const why = faults.map((fault) => describe(fault, history)).join(", ");
      verdict.excused.push(`${what} (excused: ${why})`);
    }
  };
  const t = (time: number) => `+${((time - start(history)) / 1000).toFixed(3)}s`;
  const running = (command: CommandRun) =>
    `${command.kind.toUpperCase()}_CMD of instance ${command.instance} at ${t(command.begin)}`;

  // 1. Overlapping commands.
  const commands = history.commands.toSorted((a, b) => a.begin - b.begin);
  for (const [index, first] of commands.entries()) {
    for (const second of commands.slice(index + 1)) {
      if (second.begin >= (first.end ?? history.ended)) break;
      if (first.kind === "stop" && second.kind === "stop") continue;
      judge(
        `${running(second)} overlaps ${running(first)}`,
        disturbance([first.instance, second.instance], first.begin, second.begin),
      );
    }
  }

  // 2. A STOP_CMD while a client is connected.
  for (const stop of commands.filter((command) => command.kind === "stop")) {
    for (const session of history.sessions) {
      if (!(session.begin <= stop.begin - bounds.publication && session.end >= stop.begin)) {
        continue;
      }
      judge(
        `${running(stop)} while a client of instance ${session.instance} connected at ` +
          `${t(session.begin)} was still there`,
        disturbance([stop.instance, session.instance], session.begin, stop.begin),
      );
    }
  }

  // 3. A backend left running.
  if (history.runningAtDeadline) {
    verdict.violations.push(
      `the backend still ran at ${t(history.deadline)}, IDLE_TIME + 2 x IDLE_CHECK_INTERVAL + ` +
        "the lease TTL after the faults ended and the last client left",
    );
  }

  // 4. Stuck in starting.
  const longest = bounds.readyTimeout + bounds.holdTimeout;
  for (const span of history.starting) {
    const end = span.end ?? history.ended;
    if (end - span.begin <= longest) continue;
    judge(
      `instance ${span.instance} stayed starting from ${t(span.begin)} for ` +
        `${((end - span.begin) / 1000).toFixed(1)}s`,
      history.faults.filter((fault) =>
        fault.target === span.instance && (fault.kind === "pause" || fault.kind === "kill") &&
        fault.begin <= end && fault.end >= span.begin
      ),
    );
  }

  // 5. A client refused while its instance and the backend were up.
  const up = backendUp(commands, history.ended);
  for (const session of history.sessions.filter((session) => !session.ok)) {
    const instanceDown = history.faults.some((fault) =>
      fault.target === session.instance && (fault.kind === "kill" || fault.kind === "pause") &&
      fault.begin <= session.end && fault.end >= session.begin
    );
    const backendRan = up.some(([from, to]) => from <= session.begin && to >= session.end);
    const what = `a client of instance ${session.instance} at ${t(session.begin)} failed`;
    if (!instanceDown && backendRan) {
      verdict.violations.push(`${what} while it and the backend were up: ${session.error}`);
    } else {
      const why = instanceDown ? "its instance was killed or paused" : "the backend was not up";
      verdict.excused.push(`${what}: ${session.error} (excused: ${why})`);
    }
  }
  return verdict;
}

/** The spans the backend was surely up: from the end of a START_CMD to the beginning of the next STOP_CMD. */
function backendUp(commands: CommandRun[], ended: number): [number, number][] {
  const spans: [number, number][] = [];
  for (const start of commands.filter((command) => command.kind === "start")) {
    if (start.end === undefined) continue;
    // The first STOP_CMD not over when the START_CMD ended: the backend is surely up until it begins.
    const next = commands.find((command) =>
      command.kind === "stop" && (command.end ?? ended) > start.end!
    );
    const until = next ? next.begin : ended;
    if (until > start.end) spans.push([start.end, until]);
  }
  return spans;
}

function start(history: ClusterHistory): number {
  return Math.min(
    ...history.commands.map((command) => command.begin),
    ...history.sessions.map((session) => session.begin),
    ...history.faults.map((fault) => fault.begin),
    history.healed,
  );
}

function describe(fault: Fault, history: ClusterHistory): string {
  const from = ((fault.begin - start(history)) / 1000).toFixed(3);
  const to = ((fault.end - start(history)) / 1000).toFixed(3);
  const target = fault.target === "etcd" ? "etcd" : `instance ${fault.target}`;
  return `${fault.kind} of ${target} from +${from}s to +${to}s`;
}
