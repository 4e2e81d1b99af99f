/**
 * Whether a service may send its clients to a target another instance
 * published in etcd: anyone who can write etcd could have written it, so it
 * is used only when something this instance trusts vouches for it
 * (docs/ARCHITECTURE.md, "Several instances").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { targetAllowed } from "../config/target_rules.ts";
import { log } from "../log.ts";
import { formatTarget, type Target } from "../net/address.ts";
import type { RunCommand } from "./commands.ts";
import { checkBackend } from "./wake.ts";

const logger = log("service");

/** What the rule needs beside the configuration. */
export interface TrustContext {
  /** Runs the service's commands (CHECK_CMD). */
  run: RunCommand;
  /** Aborting ends CHECK_CMD. */
  signal: AbortSignal;
  /** The target this instance's own wake gave last (or that it trusted last), if any. */
  known?: Target;
}

/**
 * Decides whether `target`, published by instance `by`, may be used:
 * - it is the target this instance knew already (its own wake gave it);
 * - else, with CHECK_CMD, when CHECK_CMD (told the target) exits 0: the
 *   target it prints, or the published one when it prints none;
 * - else, with CLUSTER_TARGETS, when the target is one it names;
 * - else never: this instance wakes the backend itself.
 *
 * @returns the target to use, or undefined (said in the log)
 */
export async function trustPublished(
  config: ServiceConfig,
  target: Target,
  by: string,
  context: TrustContext,
): Promise<Target | undefined> {
  const { known } = context;
  if (known && known.hostname === target.hostname && known.port === target.port) return target;
  const refuse = (why: string, level: "warn" | "debug" = "warn") => {
    logger[level]("[{service}] not using {target}, which instance {by} published: {why}", {
      service: config.name,
      target: formatTarget(target),
      by,
      why,
    });
    return undefined;
  };
  if (config.checkCmd) {
    const found = await checkBackend(config, context.run, context.signal, target)
      .catch(() => null);
    return found ?? refuse("CHECK_CMD does not confirm it: waking it here");
  }
  if (config.clusterTargets) {
    return targetAllowed(config.clusterTargets, target)
      ? target
      : refuse("it is not in CLUSTER_TARGETS: waking it here");
  }
  return refuse("neither CHECK_CMD nor CLUSTER_TARGETS vouches for it: waking it here", "debug");
}
