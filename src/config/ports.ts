/**
 * The ports of a service: `PORT` (with `PROTOCOL`), whose backend port comes
 * from START_CMD's `IP PORT`, and `MORE_PORTS`, each `LISTEN[:BACKEND][/udp]`
 * on the same backend host (docs/ARCHITECTURE.md, "Ports and UDP").
 *
 * @module
 */

/** A transport protocol. */
export type Protocol = "tcp" | "udp";

/** One port a service listens on, and where it goes on the backend. */
export interface PortMapping {
  /** The port sleepingd listens on. */
  listen: number;
  /** The backend's port; undefined for `PORT`, whose backend port START_CMD prints. */
  backend?: number;
  /** Its protocol. */
  protocol: Protocol;
}

const ENTRY = /^(\d{1,5})(?::(\d{1,5}))?(?:\/(tcp|udp))?$/i;

/**
 * Reads one `MORE_PORTS` entry: `8443:443` (tcp), `27015/udp`, `5353:53/udp`.
 *
 * @throws {Error} saying what is wrong with it
 */
export function parsePortMapping(text: string): PortMapping {
  const match = ENTRY.exec(text);
  if (!match) {
    throw new Error(`"${text}" is not LISTEN[:BACKEND][/tcp|/udp], e.g. 8443:443 or 27015/udp`);
  }
  const [listen, backend] = [match[1], match[2] ?? match[1]].map(Number);
  for (const port of [listen, backend]) {
    if (port < 1 || port > 65535) throw new Error(`"${text}": ${port} is not a port (1-65535)`);
  }
  return { listen, backend, protocol: (match[3]?.toLowerCase() ?? "tcp") as Protocol };
}

/** `8443->443/tcp`, `27015/udp`, and `2222/tcp` for `PORT`. */
export function formatPortMapping(mapping: PortMapping): string {
  const backend = mapping.backend === undefined || mapping.backend === mapping.listen
    ? ""
    : `->${mapping.backend}`;
  return `${mapping.listen}${backend}/${mapping.protocol}`;
}

/** Every port a service listens on: `PORT` (its backend port unknown until START_CMD) first. */
export function listenPorts(
  config: { port: number; protocol: Protocol; morePorts: PortMapping[] },
): PortMapping[] {
  return [{ listen: config.port, protocol: config.protocol }, ...config.morePorts];
}
