/**
 * What sleepingd holds for others, in one budget (docs/ARCHITECTURE.md,
 * "Budget"): file descriptors, in one bound below the open file limit after a
 * reserve the daemon keeps for itself, with a cap per kind; and the bytes it
 * keeps for clients, counted by the memory that keeps them, in one bound.
 * Past a bound the asker is refused at once and the refusal counted; nothing
 * waits for room.
 *
 * Whoever holds a descriptor for a client asks first and gives back once:
 *
 * ```ts
 * if (!budget.acquire("http")) return refuse(conn, budget.full("http"));
 * try {
 *   await serve(conn);
 * } finally {
 *   budget.release("http");
 * }
 * ```
 *
 * @module
 */

/** What holds descriptors for others: the descriptors each one holds, and its name in words. */
const KINDS = {
  /** A TCP client and its backend connection, from accept to close (held ones included). */
  tcp: { files: 2, noun: "connections", key: "MAX_CONNECTIONS_TOTAL" },
  /** A UDP client's flow: its socket towards the backend. */
  udp_flow: { files: 1, noun: "UDP flows", key: "MAX_UDP_FLOWS_TOTAL" },
  /** A connection to the HTTP server of METRICS_ADDRESS, a live stream's included. */
  http: { files: 1, noun: "HTTP connections", key: undefined },
  /** A client of the control socket. */
  control: { files: 1, noun: "control clients", key: undefined },
} as const;

/** A kind of holder of descriptors for others. */
export type DescriptorKind = keyof typeof KINDS;

/** Every kind, in the order metrics list them. */
export const DESCRIPTOR_KINDS = Object.keys(KINDS) as DescriptorKind[];

/**
 * What holds bytes for clients, counted in MAX_HELD_BYTES_TOTAL: held TCP
 * clients, the first bytes read on a port shared by name, datagrams waiting
 * for a wake or for their socket.
 */
export type HeldKind = "tcp_held" | "tcp_first_bytes" | "udp_queued" | "udp_sending";

/** Every kind of held bytes, in the order metrics list them. */
export const HELD_KINDS: readonly HeldKind[] = [
  "tcp_held",
  "tcp_first_bytes",
  "udp_queued",
  "udp_sending",
];

/** The bounds of a budget. */
export interface BudgetLimits {
  /** The open file limit they come from; Infinity when it is unknown. */
  fileLimit: number;
  /** Descriptors all kinds may hold together: what the file limit leaves after the reserve. */
  descriptors: number;
  /** How many of each kind may be open at once, and whether its key set it. */
  caps: Record<DescriptorKind, { count: number; configured: boolean }>;
  /** Bytes held for clients, over all kinds (MAX_HELD_BYTES_TOTAL). */
  heldBytes: number;
}

/** What a budget holds now and has refused, for metrics and status. */
export interface BudgetUsage {
  /** Its bounds. */
  limits: BudgetLimits;
  /** Descriptors held for others now. */
  descriptors: number;
  /** Open now, by kind. */
  open: Record<DescriptorKind, number>;
  /** Refused since the start, by kind. */
  refused: Record<DescriptorKind, number>;
  /** Bytes held now, by kind. */
  held: Record<HeldKind, number>;
  /** Bytes refused since the start (a client refused, a datagram dropped, a read put off). */
  heldRefused: number;
}

/** Bytes held for clients unless MAX_HELD_BYTES_TOTAL says otherwise: 64 MiB. */
export const DEFAULT_HELD_BYTES = 64 * 1024 * 1024;
/** UDP flows of all services unless MAX_UDP_FLOWS_TOTAL says otherwise, at most. */
export const DEFAULT_UDP_FLOWS = 1024;
/** Clients of the control socket at once, at most. */
const CONTROL_CLIENTS = 16;
/** Descriptors kept for the daemon itself (commands, log, state files, reloads), at most. */
const MAX_RESERVE = 64;
/** ...and at least, under a very low limit. */
const MIN_RESERVE = 16;

/** A budget without bounds: for tests and for a service run without a daemon. */
export const UNBOUNDED: BudgetLimits = {
  fileLimit: Infinity,
  descriptors: Infinity,
  caps: {
    tcp: { count: Infinity, configured: false },
    udp_flow: { count: Infinity, configured: false },
    http: { count: Infinity, configured: false },
    control: { count: Infinity, configured: false },
  },
  heldBytes: Infinity,
};

/** What the bounds are made from. */
export interface BudgetPlanInput {
  /** The soft open file limit in force; Infinity or undefined when unknown. */
  fileLimit?: number;
  /** Files the daemon holds for itself now: listeners, its log, the control socket. */
  ownFiles: number;
  /** MAX_CONNECTIONS_TOTAL, when set. */
  connections?: number;
  /** MAX_UDP_FLOWS_TOTAL, when set. */
  udpFlows?: number;
  /** MAX_HELD_BYTES_TOTAL, when set. */
  heldBytes?: number;
  /** Whether a service has a UDP port: otherwise flows get no share. */
  udp: boolean;
  /** The HTTP server's cap on its connections, when it runs (METRICS_ADDRESS). */
  http?: number;
}

/**
 * The bounds for an open file limit and a configuration. After the files the
 * daemon holds and a reserve (an eighth of the limit, 16 to 64 files), the
 * rest is shared out so that no kind can starve another: the control socket
 * up to 16 clients, the HTTP server up to its own cap, UDP flows a
 * quarter of the rest up to 1024 when a service has a UDP port, TCP
 * connections what is left, two descriptors each. A key sets its kind's cap
 * instead; the descriptor bound still holds over all kinds.
 */
export function planBudget(input: BudgetPlanInput): BudgetLimits {
  const fileLimit = input.fileLimit ?? Infinity;
  const reserve = Math.min(MAX_RESERVE, Math.max(MIN_RESERVE, Math.floor(fileLimit / 8)));
  const descriptors = Math.max(0, fileLimit - input.ownFiles - reserve);
  const share = (most: number, part: number) => Math.min(most, Math.floor(descriptors * part));
  const control = share(CONTROL_CLIENTS, 1 / 8);
  const http = input.http === undefined ? 0 : share(input.http, 1 / 8);
  const udpFlows = input.udpFlows ?? (input.udp ? share(DEFAULT_UDP_FLOWS, 1 / 4) : 0);
  const left = descriptors - control - http - Math.min(udpFlows, share(Infinity, 1 / 4));
  const connections = input.connections ?? Math.max(0, Math.floor(left / KINDS.tcp.files));
  return {
    fileLimit,
    descriptors,
    caps: {
      tcp: { count: connections, configured: input.connections !== undefined },
      udp_flow: { count: udpFlows, configured: input.udpFlows !== undefined },
      http: { count: http, configured: false },
      control: { count: control, configured: false },
    },
    heldBytes: input.heldBytes ?? DEFAULT_HELD_BYTES,
  };
}

/**
 * The budget of the descriptors and bytes sleepingd holds for others. One per
 * daemon; every holder asks it before it takes, and gives back what it took.
 */
export class Budget {
  #limits: BudgetLimits;
  #descriptors = 0;
  readonly #open: Record<DescriptorKind, number> = { tcp: 0, udp_flow: 0, http: 0, control: 0 };
  readonly #refused: Record<DescriptorKind, number> = { tcp: 0, udp_flow: 0, http: 0, control: 0 };
  readonly #held: Record<HeldKind, number> = {
    tcp_held: 0,
    tcp_first_bytes: 0,
    udp_queued: 0,
    udp_sending: 0,
  };
  #heldTotal = 0;
  #heldRefused = 0;

  /** Creates a budget with `limits`, unbounded by default. */
  constructor(limits: BudgetLimits = UNBOUNDED) {
    this.#limits = limits;
  }

  /** The bounds in force. */
  get limits(): BudgetLimits {
    return this.#limits;
  }

  /**
   * Takes new bounds (a reload, or the files the daemon holds once it
   * listens). What is held stays held; past a lowered bound, new askers are
   * refused until enough is given back.
   */
  reconfigure(limits: BudgetLimits): void {
    this.#limits = limits;
  }

  /**
   * Takes one `kind` (a connection, a flow, a client) and its descriptors, if
   * its cap and the descriptor bound allow; otherwise counts the refusal.
   * Pair each `true` with one {@linkcode release}.
   */
  acquire(kind: DescriptorKind): boolean {
    const files = KINDS[kind].files;
    if (
      this.#open[kind] >= this.#limits.caps[kind].count ||
      this.#descriptors + files > this.#limits.descriptors
    ) {
      this.#refused[kind]++;
      return false;
    }
    this.#open[kind]++;
    this.#descriptors += files;
    return true;
  }

  /** Gives back one `kind` that {@linkcode acquire} took. */
  release(kind: DescriptorKind): void {
    this.#open[kind]--;
    this.#descriptors -= KINDS[kind].files;
  }

  /** Why `kind` is refused now, in words, e.g. `sleepingd holds MAX_UDP_FLOWS_TOTAL (64) UDP flows already`. */
  full(kind: DescriptorKind): string {
    const { noun, key } = KINDS[kind];
    const cap = this.#limits.caps[kind];
    if (this.#open[kind] >= cap.count) {
      return cap.configured && key
        ? `sleepingd holds ${key} (${cap.count}) ${noun} already`
        : `sleepingd holds ${cap.count} ${noun} already, their share of the open file limit ` +
          `(${this.#limits.fileLimit})${key ? `: ${key} sets another` : ""}`;
    }
    return `sleepingd holds ${this.#descriptors} descriptors for clients already, as many as ` +
      `the open file limit (${this.#limits.fileLimit}) leaves after its own`;
  }

  /**
   * Counts `bytes` more held for clients as `kind`, if they fit in
   * MAX_HELD_BYTES_TOTAL; otherwise counts the refusal. Pair each `true`
   * with {@linkcode free} of the same bytes.
   */
  hold(kind: HeldKind, bytes: number): boolean {
    if (this.#heldTotal + bytes > this.#limits.heldBytes) {
      this.#heldRefused += bytes;
      return false;
    }
    this.#held[kind] += bytes;
    this.#heldTotal += bytes;
    return true;
  }

  /** Gives back `bytes` that {@linkcode hold} counted as `kind`. */
  free(kind: HeldKind, bytes: number): void {
    this.#held[kind] -= bytes;
    this.#heldTotal -= bytes;
  }

  /** Why bytes are refused now, in words: `MAX_HELD_BYTES_TOTAL (64 MiB) is held for clients already`. */
  heldFull(): string {
    return `MAX_HELD_BYTES_TOTAL (${formatBytes(this.#limits.heldBytes)}) is held for clients ` +
      "already";
  }

  /** What it holds now and has refused. */
  usage(): BudgetUsage {
    return {
      limits: this.#limits,
      descriptors: this.#descriptors,
      open: { ...this.#open },
      refused: { ...this.#refused },
      held: { ...this.#held },
      heldRefused: this.#heldRefused,
    };
  }
}

/** `bytes` in the largest binary unit that writes it whole or with one decimal: `64 MiB`, `1.5 KiB`, `100 bytes`. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}
