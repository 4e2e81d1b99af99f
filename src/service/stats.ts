/**
 * The counters of one service that `status` shows and metrics export.
 *
 * @module
 */

/** Counters shown by `status` and exported as metrics. */
export interface ServiceStats {
  /** Wakes that ended awake. */
  wakes: number;
  /** Wakes that failed. */
  wakeFailures: number;
  /** Connections open now, including those waiting for a wake. */
  openConnections: number;
  /** Connections accepted since the daemon started. */
  totalConnections: number;
  /** Bytes forwarded from clients to the backend (direction `in`). */
  bytesIn: number;
  /** Bytes forwarded from the backend to clients (direction `out`). */
  bytesOut: number;
  /** Stops because the service was idle. */
  idleStops: number;
  /** UDP client flows open now. */
  openFlows: number;
  /** UDP client flows begun since the daemon started. */
  totalFlows: number;
  /** Datagrams forwarded from UDP clients to the backend. */
  datagramsIn: number;
  /** Datagrams forwarded from the backend to UDP clients. */
  datagramsOut: number;
  /** Datagrams waiting for a wake now. */
  queuedDatagrams: number;
  /** Bytes of the datagrams waiting for a wake now. */
  queuedBytes: number;
  /** Epoch milliseconds of the last connection or byte forwarded; 0 before any. */
  lastActivity: number;
  /** FORWARD=kernel: TCP connections the kernel forwards now (set up, not closing). */
  kernelConnections: number;
  /** FORWARD=kernel: TCP connections the kernel forwarded since the daemon started. */
  kernelConnectionsTotal: number;
  /** FORWARD=kernel: UDP flows the kernel forwarded since the daemon started. */
  kernelFlowsTotal: number;
  /** FORWARD=kernel: bytes of the packets from clients the kernel forwarded, headers included. */
  kernelBytesIn: number;
  /** FORWARD=kernel: bytes of the packets from the backend the kernel forwarded, headers included. */
  kernelBytesOut: number;
  /** Waiting pages served to browsers (WAITING_PAGE) while the service woke. */
  waitingPages: number;
  /** Pages served to browsers saying why the wake failed. */
  errorPages: number;
}

/** Counters all at zero, for a new service. */
export function newStats(): ServiceStats {
  return {
    wakes: 0,
    wakeFailures: 0,
    openConnections: 0,
    totalConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
    idleStops: 0,
    openFlows: 0,
    totalFlows: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    queuedDatagrams: 0,
    queuedBytes: 0,
    lastActivity: 0,
    kernelConnections: 0,
    kernelConnectionsTotal: 0,
    kernelFlowsTotal: 0,
    kernelBytesIn: 0,
    kernelBytesOut: 0,
    waitingPages: 0,
    errorPages: 0,
  };
}
