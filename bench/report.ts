/**
 * Turning samples into the bench's tables: medians, spreads, ratios between
 * variants and the CPU each process used.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import type { Sample } from "./workloads.ts";

/** One run of a workload for one variant, with the CPU each process used during it. */
export interface Run {
  /** What the workload measured. */
  sample: Sample;
  /** Percent of one core used during the run, by `proxy`, `client` and `backend`. */
  cpu: Record<string, number>;
}

/** What one variant got in one workload: its runs, or why it has none. */
export type Outcome = { runs: Run[] } | { failed: string };

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Half the range of `values`, in percent of their median: how much the runs disagree. */
export function spreadPercent(values: number[]): number {
  return (Math.max(...values) - Math.min(...values)) / 2 / median(values) * 100;
}

/** A number with 3 significant digits, or none after the point from 1000 on. */
export function formatNumber(value: number): string {
  if (value >= 1000) return Math.round(value).toString();
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Lays out rows of cells in columns: text left-aligned, cells starting with a digit right-aligned. */
export function columns(rows: string[][], indent = "  "): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    indent +
    row.map((cell, i) => /^[0-9±.]/.test(cell) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))
      .join("  ").trimEnd()
  ).join("\n");
}

/**
 * The table of one workload: per variant the median, the spread of the runs,
 * the ratio to every other variant (`0.62× direct` = 62 % of direct's number),
 * the latencies where measured, and the median CPU of proxy, client, backend.
 */
export function table(unit: string, outcomes: Map<VariantName, Outcome>): string {
  const medians = new Map<VariantName, number>();
  for (const [name, outcome] of outcomes) {
    if ("runs" in outcome) medians.set(name, median(outcome.runs.map((run) => run.sample.value)));
  }
  const rows: string[][] = [];
  const failures: string[] = [];
  for (const [name, outcome] of outcomes) {
    if ("failed" in outcome) {
      failures.push(`  ${name}: failed: ${outcome.failed}`);
      continue;
    }
    const values = outcome.runs.map((run) => run.sample.value);
    const value = medians.get(name)!;
    const row = [name, formatNumber(value), unit, `±${spreadPercent(values).toFixed(0)}%`];
    for (const [other, otherValue] of medians) {
      row.push(other === name ? "" : `${(value / otherValue).toFixed(2)}× ${other}`);
    }
    const latencies = outcome.runs.map((run) => run.sample);
    if (latencies.every((sample) => sample.medianMs !== undefined)) {
      row.push(
        `p50 ${median(latencies.map((sample) => sample.medianMs!)).toFixed(3)} ms`,
        `p99 ${median(latencies.map((sample) => sample.p99Ms!)).toFixed(3)} ms`,
      );
    }
    row.push(`cpu% ${cpuSummary(outcome.runs)}`);
    rows.push(row);
  }
  return [columns(rows), ...failures].filter((text) => text !== "").join("\n");
}

/** Median CPU percent of proxy/client/backend over the runs, e.g. `98/61/55`. */
function cpuSummary(runs: Run[]): string {
  return ["proxy", "client", "backend"].map((process) => {
    const values = runs.map((run) => run.cpu[process]).filter((value) => value !== undefined);
    return values.length === 0 ? "-" : median(values).toFixed(0);
  }).join("/");
}
