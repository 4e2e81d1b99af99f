/**
 * A larger kernel receive buffer for this process's UDP sockets on a port.
 *
 * A datagram that arrives while the socket's buffer is full is lost. The
 * kernel's default (`net.core.rmem_default`, 208 KiB: about 90 datagrams of
 * 1400 bytes, 2 ms at 500 Mbit/s) is less than a pause of a busy machine's
 * scheduler or of the garbage collector. Deno has no `setsockopt`, so the
 * socket is found among this process's files (`/proc/self/fd`, then
 * `getsockname`) and its `SO_RCVBUF` set through FFI: with `SO_RCVBUFFORCE`
 * where the process may (root, CAP_NET_ADMIN), else within
 * `net.core.rmem_max` (docs/ARCHITECTURE.md, "Ports and UDP").
 *
 * @module
 */

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOCK_DGRAM = 2;
const AF_INET = 2;
const AF_INET6 = 10;

/** The libc calls this needs. */
type Libc = ReturnType<typeof openLibc>;

/** The libc calls, or undefined where there is no glibc or no FFI permission; null before the first try. */
let libc: Libc | undefined | null = null;

function openLibc() {
  return Deno.dlopen("libc.so.6", {
    getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  }).symbols;
}

function calls(): Libc | undefined {
  if (libc === null) {
    try {
      libc = openLibc();
    } catch {
      libc = undefined;
    }
  }
  return libc;
}

/**
 * Sets the receive buffer of every UDP socket of this process bound to
 * `port` to `bytes` (the kernel doubles it for its own accounting).
 *
 * @returns the buffer size the kernel reports for the last socket, or
 * undefined when none was found or FFI is not there
 */
export function enlargeReceiveBuffers(port: number, bytes: number): number | undefined {
  const c = calls();
  if (!c) return undefined;
  let size: number | undefined;
  for (const fd of socketFiles()) {
    if (optionOf(c, fd, SO_TYPE) !== SOCK_DGRAM || localPort(c, fd) !== port) continue;
    const value = new Uint8Array(new Int32Array([bytes]).buffer);
    if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, value, 4) !== 0) {
      c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4);
    }
    size = optionOf(c, fd, SO_RCVBUF);
  }
  return size;
}

/** The descriptors of this process that are sockets. */
function socketFiles(): number[] {
  const sockets: number[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`).startsWith("socket:")) {
        sockets.push(Number(entry.name));
      }
    } catch {
      // Closed meanwhile.
    }
  }
  return sockets;
}

/** An integer socket option of `fd`, or undefined when it cannot be read. */
function optionOf(c: Libc, fd: number, option: number): number | undefined {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const failed = c.getsockopt(
    fd,
    SOL_SOCKET,
    option,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return failed ? undefined : value[0];
}

/** The local port an IPv4 or IPv6 socket is bound to, or undefined. */
function localPort(c: Libc, fd: number): number | undefined {
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.length]);
  if (c.getsockname(fd, address, new Uint8Array(length.buffer)) !== 0) return undefined;
  const family = address[0] | (address[1] << 8);
  return family === AF_INET || family === AF_INET6 ? (address[2] << 8) | address[3] : undefined;
}
