/**
 * A UDP port's kernel receive buffer, raised through FFI on the real socket.
 */
import assert from "node:assert/strict";
import { bindAll, closeSocket } from "../src/net/datagram.ts";
import { enlargeReceiveBuffers } from "../src/process/socket_buffer.ts";

Deno.test("enlargeReceiveBuffers() raises the buffer of every UDP socket on the port, and finds none elsewhere", () => {
  // One port, two sockets: IPv4 and IPv6.
  const [v4] = bindAll(["127.0.0.1"], 0);
  const port = (v4.addr as Deno.NetAddr).port;
  const [v6] = bindAll(["::1"], port);
  try {
    const size = enlargeReceiveBuffers(port, 1024 * 1024);
    // The kernel doubles what it is asked for; without CAP_NET_ADMIN it stops at rmem_max.
    const rmemMax = Number(Deno.readTextFileSync("/proc/sys/net/core/rmem_max"));
    assert.equal(size, Deno.uid() === 0 ? 2 * 1024 * 1024 : 2 * Math.min(1024 * 1024, rmemMax));
    const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      assert.equal(
        enlargeReceiveBuffers(tcp.addr.port, 1024 * 1024),
        undefined,
        "no UDP socket there",
      );
    } finally {
      tcp.close();
    }
  } finally {
    for (const socket of [v4, v6]) closeSocket(socket);
  }
});
