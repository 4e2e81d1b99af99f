/**
 * Turning runs into the bench's tables: medians, spreads, ratios between
 * variants, the CPU each process used, and the same numbers for the JSON
 * results.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import type { Outcome, Run, Workload } from "./measure.ts";

/** One variant's row of a table, as printed and as written to the JSON results. */
export interface Row {
  /** The variant. */
  variant: VariantName;
  /** Why it has no numbers, when its runs failed. */
  failed?: string;
  /** Median of the runs' main numbers. */
  median?: number;
  /** Every run's main number, in the order they ran. */
  values?: number[];
  /** Half the range of the runs, in percent of the median. */
  spreadPercent?: number;
  /** This row's median divided by each other variant's (tables that compare by ratio). */
  ratios?: Record<string, number>;
  /** This row's median minus each other variant's (tables that compare by difference). */
  differences?: Record<string, number>;
  /** Medians of the runs' further numbers, by `"label unit"`. */
  extras?: Record<string, number>;
  /** Median proxy CPU time per new connection, in µs. */
  proxyMicrosPerConnection?: number;
  /** Median CPU of `proxy`, `client` and `server`, in percent of one core. */
  cpuPercent?: Record<string, number>;
}

/** One workload's results. */
export interface Table {
  /** The heading. */
  title: string;
  /** Unit of the main number. */
  unit: string;
  /** Whether a smaller number (and ratio) is better. */
  lowerIsBetter: boolean;
  /** How rows compare: by ratio or by difference. */
  compare: "ratio" | "difference";
  /** Runs per variant. */
  runs: number;
  /** One row per variant. */
  rows: Row[];
}

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
  if (value >= 1) return value.toFixed(2);
  return value.toPrecision(3);
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

/** The medians, spreads, ratios and CPU of one workload's outcomes. */
export function summarize(
  workload: Workload,
  outcomes: Map<VariantName, Outcome>,
  runs: number,
): Table {
  const medians = new Map<VariantName, number>();
  for (const [name, outcome] of outcomes) {
    if ("runs" in outcome) medians.set(name, median(outcome.runs.map((run) => run.sample.value)));
  }
  const rows = [...outcomes].map(([variant, outcome]): Row => {
    if ("failed" in outcome) return { variant, failed: outcome.failed };
    const values = outcome.runs.map((run) => run.sample.value);
    const value = medians.get(variant)!;
    const byDifference = workload.compare === "difference";
    const compared = Object.fromEntries(
      [...medians].filter(([other]) => other !== variant)
        .map((
          [other, otherValue],
        ) => [other, byDifference ? value - otherValue : value / otherValue]),
    );
    const row: Row = {
      variant,
      median: value,
      values,
      spreadPercent: spreadPercent(values),
      ...(byDifference ? { differences: compared } : { ratios: compared }),
      cpuPercent: medianOf(outcome.runs, (run) => run.cpu),
    };
    const extras = medianOf(outcome.runs, (run) => run.sample.extras ?? {});
    if (Object.keys(extras).length > 0) row.extras = extras;
    const perConnection = outcome.runs.map((run) => run.proxyMicrosPerConnection)
      .filter((micros) => micros !== undefined);
    if (perConnection.length > 0) row.proxyMicrosPerConnection = median(perConnection);
    return row;
  });
  return {
    title: workload.title,
    unit: workload.unit,
    lowerIsBetter: workload.lowerIsBetter ?? false,
    compare: workload.compare ?? "ratio",
    runs,
    rows,
  };
}

/** Per key, the median over the runs of the numbers `pick` reads from each. */
function medianOf(runs: Run[], pick: (run: Run) => Record<string, number>): Record<string, number> {
  const keys = [...new Set(runs.flatMap((run) => Object.keys(pick(run))))];
  return Object.fromEntries(keys.map((key) => {
    const values = runs.map((run) => pick(run)[key]).filter((value) => value !== undefined);
    return [key, median(values)];
  }));
}

/**
 * The printed table: per variant the median, the spread of the runs (with
 * more than one), the ratio to every other variant (`0.62× direct` = 62 % of
 * direct's number), the further numbers, and the CPU of proxy, client, server.
 */
export function renderTable(table: Table): string {
  const rows: string[][] = [];
  const failures: string[] = [];
  const extraKeys = [...new Set(table.rows.flatMap((row) => Object.keys(row.extras ?? {})))];
  const perConnection = table.rows.some((row) => row.proxyMicrosPerConnection !== undefined);
  for (const row of table.rows) {
    if (row.failed !== undefined) {
      failures.push(`  ${row.variant}: failed: ${row.failed}`);
      continue;
    }
    const cells = [row.variant, formatNumber(row.median!), table.unit];
    if (table.runs > 1) {
      // A difference table's numbers may be 0: its runs are shown as they are.
      cells.push(
        table.compare === "difference"
          ? `runs ${row.values!.map(formatNumber).join(" ")}`
          : `±${row.spreadPercent!.toFixed(0)}%`,
      );
    }
    for (const other of table.rows) {
      const ratio = row.ratios?.[other.variant];
      const difference = row.differences?.[other.variant];
      if (other.variant === row.variant) cells.push("");
      else if (ratio !== undefined) cells.push(`${ratio.toFixed(2)}× ${other.variant}`);
      else if (difference !== undefined) {
        cells.push(
          `${difference < 0 ? "-" : "+"}${formatNumber(Math.abs(difference))} ${other.variant}`,
        );
      }
    }
    for (const key of extraKeys) {
      const [label, unit] = key.split(" ");
      const value = row.extras?.[key];
      cells.push(
        value === undefined ? "" : `${label} ${formatNumber(value)}${unit ? ` ${unit}` : ""}`,
      );
    }
    if (perConnection) {
      const micros = row.proxyMicrosPerConnection;
      cells.push(micros === undefined ? "proxy -" : `proxy ${formatNumber(micros)} µs/conn`);
    }
    const cpu = ["proxy", "client", "server"].map((process) => {
      const value = row.cpuPercent?.[process];
      return value === undefined ? "-" : value.toFixed(0);
    });
    cells.push(`cpu% ${cpu.join("/")}`);
    rows.push(cells);
  }
  return [columns(rows), ...failures].filter((text) => text !== "").join("\n");
}

/** The line under a table's title: how many runs, and which way is better. */
export function legend(table: Table): string {
  const runs = table.runs === 1 ? "1 run" : `median of ${table.runs} runs`;
  if (table.compare === "difference") {
    return `  ${runs}, ${table.lowerIsBetter ? "LOWER" : "higher"} is better; ` +
      `+N name: this row's number minus name's, in ${table.unit}`;
  }
  return table.lowerIsBetter
    ? `  ${runs}, LOWER is better: a ratio below 1 means this row is faster`
    : `  ${runs}, higher is better`;
}
