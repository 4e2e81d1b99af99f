/**
 * A service's commands as they run, kept for the state file: each from before
 * it runs (its run id) until it has ended, with its pid and start time once
 * it runs, and, while a wake is under way, whether START_CMD has run and the
 * target a command named (docs/ARCHITECTURE.md, "Crash recovery").
 *
 * @module
 */

import type { CommandSpec, ServiceConfig } from "../config/types.ts";
import type { Target } from "../net/address.ts";
import { readProcStat } from "../process/proc_stat.ts";
import type { ShellResult } from "../process/run_shell.ts";
import {
  type Action,
  type CommandContext,
  type RunCommand,
  runServiceCommand,
} from "./commands.ts";
import type { Change, State } from "./lifecycle.ts";
import type { Recorder } from "./recorder.ts";

/**
 * A command that runs, or is about to: which, its run id, and once it runs
 * its pid (and process group) and start time, to recognise it.
 */
export interface RunningCommand {
  /** Which of the service's commands it is. */
  action: Action;
  /** `SLEEPINGD_RUN_ID` in its environment, random for each run; absent when saved by an older version. */
  runId?: string;
  /** The pid, which is also the process group's id; absent until it runs. */
  pid?: number;
  /** From /proc/PID/stat, in clock ticks since boot; absent until it runs. */
  startTime?: number;
}

/** What a service is doing, as saved for a daemon that starts after this one died. */
export interface ServiceSnapshot {
  /** The service's name. */
  name: string;
  /** Its state. */
  state: State;
  /** The backend's target while known: awake, stopping, and starting once a command named it. */
  target?: Target;
  /** Starting: START_CMD has run (it may still run), so STOP_CMD must clean up after it. */
  startRan?: boolean;
  /** The service's commands running now, if any. */
  commands?: RunningCommand[];
}

/** What the runs read of their service, and whom they tell. */
export interface CommandRunsInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** Receives how each command ended, for metrics. */
  recorder: Recorder;
  /** Told whenever what is saved changes: a command begins, runs or ends; a target is named. */
  onChange(): void;
}

/** Runs one service's commands, keeping what runs and the wake under way for the state file. */
export class CommandRuns {
  readonly #inputs: CommandRunsInputs;
  /** The commands running now (or about to), by run id. */
  readonly #commands = new Map<string, RunningCommand>();
  /** While starting: whether START_CMD has run, and the target once a command named it. */
  #waking?: { startRan: boolean; target?: Target };

  /** Runs nothing until asked. */
  constructor(inputs: CommandRunsInputs) {
    this.#inputs = inputs;
  }

  /** Takes a change of state in: entering `starting` begins a wake's record, any other ends it. */
  changed(change: Change): void {
    this.#waking = change.to === "starting" ? { startRan: false } : undefined;
  }

  /** Keeps the target a wake's CHECK_CMD or START_CMD named, to save it; none outside a wake. */
  targetNamed(target: Target): void {
    if (!this.#waking) return;
    this.#waking.target = target;
    this.#inputs.onChange();
  }

  /** What the service is doing, to save it: `target` is the life cycle's, when it has one. */
  snapshot(state: State, target: Target | undefined): ServiceSnapshot {
    const snapshot: ServiceSnapshot = {
      name: this.#inputs.config().name,
      state,
      target: target ?? this.#waking?.target,
    };
    if (this.#waking?.startRan) snapshot.startRan = true;
    if (this.#commands.size > 0) {
      snapshot.commands = [...this.#commands.values()].map((command) => ({ ...command }));
    }
    return snapshot;
  }

  /**
   * Runs one of the service's commands and records how it ended. It is saved
   * with the state from before it runs (its run id) until it has ended, so
   * that a daemon started after this one died, however soon, finds and ends
   * it; a START_CMD marks the wake as one STOP_CMD cleans up after.
   */
  readonly run: RunCommand = async (
    action: Action,
    spec: CommandSpec,
    context: CommandContext = {},
  ): Promise<ShellResult> => {
    const { config, recorder, onChange } = this.#inputs;
    const told = context.onSpawn;
    const runId = crypto.randomUUID();
    const command: RunningCommand = { action, runId };
    const onSpawn = (pid: number) => {
      told?.(pid);
      if (action === "start" && this.#waking) this.#waking.startRan = true;
      command.pid = pid;
      command.startTime = readProcStat(pid)?.startTime ?? 0;
      onChange();
    };
    this.#commands.set(runId, command);
    onChange();
    let result;
    try {
      result = await runServiceCommand(config(), action, spec, { ...context, runId, onSpawn });
    } finally {
      this.#commands.delete(runId);
      onChange();
    }
    recorder.commandEnded(config().name, action, result.code, result.durationMs / 1000);
    return result;
  };
}
