/**
 * nftables through `nft`: applying the kernel path's scripts (each one
 * transaction: all of it or nothing), reading its counters, and finding the
 * other tables' forward chains that drop (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import { FAMILY } from "./rules.ts";
import { runTool } from "./tool.ts";

/** What a counter has counted. */
export interface Count {
  /** Packets. */
  packets: number;
  /** Bytes, headers included. */
  bytes: number;
}

/** Applies an nft script in one transaction. @throws {ToolError} with nft's message */
export async function applyScript(script: string): Promise<void> {
  await runTool("nft", ["-f", "-"], { input: script });
}

/** Every named counter of `table`, by name. @throws {ToolError} when the table is not there */
export async function readCounters(table: string): Promise<Map<string, Count>> {
  const { stdout } = await runTool("nft", ["-j", "list", "counters", "table", FAMILY, table]);
  return parseCounters(stdout);
}

/** The counters of `nft -j list counters` output, by name. */
export function parseCounters(json: string): Map<string, Count> {
  const counts = new Map<string, Count>();
  for (const item of (JSON.parse(json).nftables ?? []) as Record<string, unknown>[]) {
    const counter = item.counter as { name?: string; packets?: number; bytes?: number } | undefined;
    if (counter?.name === undefined) continue;
    counts.set(counter.name, { packets: counter.packets ?? 0, bytes: counter.bytes ?? 0 });
  }
  return counts;
}

/** The whole ruleset as `nft -j list ruleset` prints it. */
export async function listRuleset(): Promise<string> {
  return (await runTool("nft", ["-j", "list", "ruleset"])).stdout;
}

/** A forward chain of another table that may drop what the kernel path forwards. */
export interface ForwardDrop {
  /** `ip filter`: the table's family and name. */
  table: string;
  /** The base chain hooked on forward. */
  chain: string;
  /** Its policy is drop: whatever no rule accepts is dropped. */
  policyDrop: boolean;
  /** Rules that drop or reject, in it or in chains it jumps to. */
  dropRules: number;
}

type Json = Record<string, unknown>;

/**
 * The forward chains of tables other than `own` that drop: by policy or by a
 * rule (in them or in chains they jump to). A drop in any table wins over an
 * accept in another, so these may drop the kernel path's connections; a
 * chain with a rule that accepts connections marked with `tag` (or every
 * DNAT'd one, `ct status dnat`) is taken as letting them through.
 */
export function forwardDrops(rulesetJson: string, own: string, tag: number): ForwardDrop[] {
  const items = (JSON.parse(rulesetJson).nftables ?? []) as Json[];
  const chains = items.map((item) => item.chain as Json | undefined).filter((c) => c !== undefined);
  const rules = items.map((item) => item.rule as Json | undefined).filter((r) => r !== undefined);
  const key = (family: unknown, table: unknown, chain: unknown) => `${family} ${table} ${chain}`;
  const rulesOf = new Map<string, Json[]>();
  for (const rule of rules) {
    const at = key(rule.family, rule.table, rule.chain);
    rulesOf.set(at, [...(rulesOf.get(at) ?? []), rule]);
  }
  const drops: ForwardDrop[] = [];
  for (const chain of chains) {
    if (chain.hook !== "forward" || (chain.family === FAMILY && chain.table === own)) continue;
    const first = rulesOf.get(key(chain.family, chain.table, chain.name)) ?? [];
    if (first.some((rule) => acceptsOurs(rule, tag))) continue;
    const dropRules = countDrops(chain.family, chain.table, chain.name, rulesOf, new Set());
    const policyDrop = chain.policy === "drop";
    if (!policyDrop && dropRules === 0) continue;
    drops.push({
      table: `${chain.family} ${chain.table}`,
      chain: String(chain.name),
      policyDrop,
      dropRules,
    });
  }
  return drops;
}

/** Rules that drop or reject in a chain and the chains it jumps to (each counted once). */
function countDrops(
  family: unknown,
  table: unknown,
  name: unknown,
  rulesOf: Map<string, Json[]>,
  seen: Set<string>,
): number {
  const at = `${family} ${table} ${name}`;
  if (seen.has(at)) return 0;
  seen.add(at);
  let count = 0;
  for (const rule of rulesOf.get(at) ?? []) {
    const expr = (rule.expr ?? []) as Json[];
    if (expr.some((part) => "drop" in part || "reject" in part)) count++;
    for (const part of expr) {
      const target = ((part.jump ?? part.goto) as Json | undefined)?.target;
      if (target !== undefined) count += countDrops(family, table, target, rulesOf, seen);
    }
  }
  return count;
}

/** Whether a rule accepts what carries the daemon's mark tag, or every DNAT'd connection. */
function acceptsOurs(rule: Json, tag: number): boolean {
  const expr = (rule.expr ?? []) as Json[];
  if (!expr.some((part) => "accept" in part)) return false;
  const text = JSON.stringify(expr);
  return (text.includes('"key":"mark"') && text.includes(String(tag))) ||
    (text.includes('"key":"status"') && text.includes("dnat"));
}
