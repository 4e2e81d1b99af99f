/**
 * The daemon's nftables table and what watches it: services' rules put in
 * and taken out one transaction at a time, and, while any service has rules,
 * readings of their counters every second and of conntrack every 5 s
 * (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import { log } from "../log.ts";
import { sleep } from "../timers.ts";
import { type Flow, forgetUdpFlows, listConnections } from "./conntrack.ts";
import { applyScript, type Count, readCounters } from "./nft.ts";
import {
  type CounterKind,
  counterName,
  COUNTERS,
  dropTableScript,
  installScript,
  markTag,
  removeScript,
  serviceId,
  type ServiceRules,
  tableScript,
  withdrawScript,
} from "./rules.ts";

/** How often the counters are read while a service has rules. */
const READ_INTERVAL_MS = 1000;
/**
 * Every how many readings conntrack is read too: each of its listings walks
 * every tracked connection in the kernel (tens of thousands under load), so
 * open connections are counted every 5 s, and at once when a stop asks.
 */
const CONNTRACK_EVERY = 5;

/** What one reading found for one service. */
export interface Reading {
  /** Each counter's totals since its rules were put in. */
  counters: Record<CounterKind, Count>;
  /** Its TCP connections that are set up and not closing; undefined when conntrack was not read. */
  established?: Flow[];
  /** Its TCP connections whose first packet got no answer yet; undefined as `established`. */
  unanswered?: Flow[];
}

/** Told of each reading of a service's rules. */
export type ReadingListener = (reading: Reading) => void;

/** A service's rules in the table, and who hears their readings. */
interface Entry {
  rules: ServiceRules;
  /** Whether new connections reach it (its ports are in the map). */
  forwarding: boolean;
  listener: ReadingListener;
}

/** The daemon's own nftables table: the only one it ever changes. */
export class KernelForwarder {
  /** The table's name. */
  readonly table: string;
  /** The upper 16 bits of every connection mark the daemon sets. */
  readonly tag: number;
  readonly #comment: string;
  readonly #entries = new Map<number, Entry>();
  /** Ids handed out, by service name: a service keeps its id while the daemon runs. */
  readonly #ids = new Map<string, number>();
  /** Every change, one after the other: nft transactions never interleave. */
  #queue: Promise<unknown> = Promise.resolve();
  #created = false;
  #reading?: AbortController;
  #closed = false;
  readonly #log = log("kernel");

  /** Creates the forwarder of `table`; nothing is changed until asked. */
  constructor(table: string, comment: string) {
    this.table = table;
    this.tag = markTag(table);
    this.#comment = comment;
  }

  /** The id of the service named `name`, 1 to 0xffff, the same for its whole life in this daemon. */
  idOf(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = serviceId(name, new Set(this.#ids.values()));
      this.#ids.set(name, id);
    }
    return id;
  }

  /** The connection mark of a service's connections. */
  markOf(id: number): number {
    return (this.tag | id) >>> 0;
  }

  /**
   * Makes the table, without any service's rules, unless it is there. The
   * kernel tracks a namespace's connections (conntrack) once a table with NAT
   * chains is in it, so from then on every connection and UDP flow sleepingd
   * proxies has an entry, and stays with sleepingd when a service's rules go
   * in; made only at a service's first wake, the table would come after the
   * wake's own connection, whose later packets conntrack would take for new.
   */
  prepare(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#closed) return;
      await this.#create();
    });
  }

  /** Deletes the table if it is there: what a daemon before this one may have left. */
  reset(): Promise<void> {
    return this.#enqueue(async () => {
      await applyScript(dropTableScript(this.table));
      this.#created = false;
    });
  }

  /**
   * Puts a service's rules in (replacing those it has, its counters kept), so
   * that the kernel forwards its new connections; `listener` hears each reading.
   */
  install(rules: ServiceRules, listener: ReadingListener): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#closed) throw new Error("sleepingd is shutting down");
      await this.#create();
      const before = this.#entries.get(rules.id);
      try {
        await applyScript(installScript(this.table, rules, before?.rules));
      } catch (error) {
        if (!await this.#recreateIfGone()) throw error;
        await applyScript(installScript(this.table, rules, before?.rules));
      }
      this.#entries.set(rules.id, { rules, forwarding: true, listener });
      this.#startReading();
    });
  }

  /**
   * Stops new connections of the service `id` from reaching it through the
   * kernel; those it forwards already go on, and are still read.
   */
  withdraw(id: number): Promise<void> {
    return this.#enqueue(async () => {
      const entry = this.#entries.get(id);
      if (!entry?.forwarding) return;
      await applyScript(withdrawScript(this.table, entry.rules));
      entry.forwarding = false;
    });
  }

  /** Lets new connections reach the service `id` through the kernel again, after a withdrawal. */
  restore(id: number): Promise<void> {
    return this.#enqueue(async () => {
      const entry = this.#entries.get(id);
      if (!entry || entry.forwarding) return;
      await applyScript(installScript(this.table, entry.rules, entry.rules));
      entry.forwarding = true;
    });
  }

  /**
   * Takes a service's rules out, and forgets its UDP flows so that their next
   * datagrams reach sleepingd; its TCP connections already forwarded go on
   * until they end (the kernel keeps their translation).
   */
  remove(id: number): Promise<void> {
    return this.#enqueue(async () => {
      const entry = this.#entries.get(id);
      if (!entry) return;
      this.#entries.delete(id);
      if (this.#created) await this.#removeOrDropTable(entry.rules);
      if (entry.rules.ports.some((port) => port.protocol === "udp")) {
        await forgetUdpFlows(entry.rules.mark);
      }
      if (this.#entries.size === 0) this.#stopReading();
    });
  }

  /**
   * Reads the counters and conntrack now, telling every service's listener;
   * the reading of `id`, if it has rules.
   */
  readNow(id?: number): Promise<Reading | undefined> {
    return this.#enqueue(() => this.#readAndTell(true)).then((readings) =>
      id === undefined ? undefined : readings.get(id)
    );
  }

  /** One reading (of conntrack too with `connections`), told to every service's listener. */
  async #readAndTell(connections: boolean): Promise<Map<number, Reading>> {
    const readings = await this.#read(connections);
    for (const [id, reading] of readings) this.#entries.get(id)?.listener(reading);
    return readings;
  }

  /** Makes the table unless it was made. */
  async #create() {
    if (this.#created) return;
    await applyScript(tableScript(this.table, this.#comment));
    this.#created = true;
  }

  /** Deletes the table (at shutdown) and stops reading; nothing is put in afterwards. */
  close(): Promise<void> {
    this.#closed = true;
    this.#stopReading();
    return this.#enqueue(async () => {
      this.#entries.clear();
      await applyScript(dropTableScript(this.table));
      this.#created = false;
    });
  }

  /**
   * Takes a service's rules out; when nft fails to, the whole table goes
   * rather than a rule that would outlive its backend: every service falls
   * back to sleepingd's listeners until the next reading puts the others back.
   */
  async #removeOrDropTable(rules: ServiceRules) {
    try {
      await applyScript(removeScript(this.table, rules));
    } catch (error) {
      this.#log.error(
        "cannot take the rules of [{service}] out ({error}): removing the table {table}",
        {
          service: rules.name,
          error: (error as Error).message,
          table: this.table,
        },
      );
      await applyScript(dropTableScript(this.table));
      this.#created = false;
    }
  }

  /** Runs `step` after every change asked before it. */
  #enqueue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(step);
    this.#queue = run.catch(() => {});
    return run;
  }

  #startReading() {
    if (this.#reading) return;
    const loop = new AbortController();
    this.#reading = loop;
    this.#readEverySecond(loop.signal).catch(() => {}); // ends when aborted
  }

  #stopReading() {
    this.#reading?.abort();
    this.#reading = undefined;
  }

  async #readEverySecond(signal: AbortSignal) {
    let failing = false;
    for (let count = 0;; count++) {
      await sleep(READ_INTERVAL_MS, signal);
      try {
        const connections = count % CONNTRACK_EVERY === 0;
        await this.#enqueue(() => this.#readAndTell(connections));
        if (failing) this.#log.info("reading the kernel path's counters works again");
        failing = false;
      } catch (error) {
        signal.throwIfAborted();
        if (!failing) {
          this.#log.error("cannot read the kernel path's counters: {error}", {
            error: (error as Error).message,
          });
        }
        failing = true;
        await this.#enqueue(() => this.#recreateIfGone()).catch(() => {});
      }
    }
  }

  /**
   * Puts the table and every service's rules back when the table is gone
   * (`nft flush ruleset`, a firewall reload): meanwhile new connections reached
   * sleepingd's own listeners, which served them. Call it from a queued step.
   *
   * @returns whether it made the table again
   */
  async #recreateIfGone(): Promise<boolean> {
    try {
      await readCounters(this.table);
      return false;
    } catch {
      // gone, or nft does not answer: try to make it again
    }
    if (this.#closed) return false;
    this.#log.warn(
      "the table {table} was removed by something else: putting it back with the rules of " +
        "{count} service(s)",
      { table: this.table, count: this.#entries.size },
    );
    await applyScript(tableScript(this.table, this.#comment));
    this.#created = true;
    for (const entry of this.#entries.values()) {
      await applyScript(installScript(this.table, entry.rules));
      if (!entry.forwarding) await applyScript(withdrawScript(this.table, entry.rules));
    }
    return true;
  }

  /** One reading of the counters (and of conntrack, with `connections`), by service id. */
  async #read(connections: boolean): Promise<Map<number, Reading>> {
    const readings = new Map<number, Reading>();
    if (this.#entries.size === 0) return readings;
    const [counts, established, unanswered] = await Promise.all([
      readCounters(this.table),
      connections ? listConnections(this.tag, "ESTABLISHED") : undefined,
      connections ? listConnections(this.tag, "SYN_SENT") : undefined,
    ]);
    for (const [id, entry] of this.#entries) {
      const counters = Object.fromEntries(
        COUNTERS.map((
          kind,
        ) => [kind, counts.get(counterName(kind, id)) ?? { packets: 0, bytes: 0 }]),
      ) as Record<CounterKind, Count>;
      const mark = entry.rules.mark;
      readings.set(id, {
        counters,
        established: established?.filter((flow) => flow.mark === mark),
        unanswered: unanswered?.filter((flow) => flow.mark === mark && flow.unreplied),
      });
    }
    return readings;
  }
}
