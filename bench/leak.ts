/**
 * The leak test: rounds of opening and closing many connections through one
 * sleepingd, its RSS after each round once it has closed them all. Memory
 * that keeps growing from round to round is held for connections long gone.
 *
 * @module
 */

import { openHeld, sleep } from "./held.ts";
import { closeAll, connectionsFor, SETTLE_MS, withFreshProxy } from "./memory.ts";
import { rssKiB } from "./proc.ts";
import { throwIfInterrupted } from "./processes.ts";
import { formatNumber } from "./report.ts";
import type { VariantContext } from "./variants.ts";

/** How far the last round's RSS may be from the second's to count as flat, in percent. */
export const FLAT_PERCENT = 5;

/** What the leak test found. */
export interface LeakResult {
  /** Connections opened and closed per round. */
  connections: number;
  /** Why fewer than asked for. */
  note?: string;
  /** RSS before the first round, after a warm-up, in KiB. */
  startKiB: number;
  /** RSS after each round, in KiB. */
  roundsKiB: number[];
  /** How far the last round is from the second, in percent of the second. */
  changePercent: number;
  /** Whether that is within {@linkcode FLAT_PERCENT}. */
  flat: boolean;
}

/** Runs `rounds` rounds of `wanted` connections through a fresh sleepingd. */
export async function leakTest(
  context: VariantContext,
  wanted: number,
  rounds: number,
): Promise<LeakResult> {
  const { connections, note } = connectionsFor("sleepingd", wanted);
  const result = await withFreshProxy("sleepingd", context, async (base) => {
    const roundsKiB: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      throwIfInterrupted();
      await closeAll(await openHeld(base.variant.port, connections), base).catch((error) => {
        throw new Error(`round ${round}: sleepingd ${error.message}`);
      });
      await sleep(SETTLE_MS);
      roundsKiB.push(rssKiB(base.pid));
    }
    const second = roundsKiB[Math.min(1, roundsKiB.length - 1)];
    const changePercent = (roundsKiB.at(-1)! - second) / second * 100;
    const leak: LeakResult = {
      connections,
      startKiB: base.startKiB,
      roundsKiB,
      changePercent,
      flat: Math.abs(changePercent) <= FLAT_PERCENT,
    };
    if (note !== undefined) leak.note = note;
    return leak;
  });
  if ("skipped" in result) throw new Error(result.skipped);
  return result;
}

/** The leak test's lines: the RSS after each round, and whether the last is within 5 % of the second. */
export function renderLeak(result: LeakResult): string {
  const mib = (kib: number) => formatNumber(kib / 1024);
  const rounds = result.roundsKiB.length;
  const change = `${result.changePercent >= 0 ? "+" : ""}${result.changePercent.toFixed(1)} %`;
  return [
    `  RSS MiB: start ${mib(result.startKiB)}, after each round: ` +
    result.roundsKiB.map(mib).join(" "),
    `  round ${rounds} within ${FLAT_PERCENT} % of round 2: ${
      result.flat ? "yes" : "NO"
    } (${change})`,
  ].join("\n");
}
