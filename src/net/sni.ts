/**
 * The server name a TLS client asks for (SNI), read from its ClientHello
 * without terminating TLS: the bytes are only looked at, and go to the
 * backend as they came (docs/ARCHITECTURE.md, "Ports shared by name").
 *
 * The ClientHello may come in several TLS records (each up to 16 KiB) and
 * each record in several TCP segments: {@linkcode ClientHelloReader} takes
 * the bytes as they arrive and answers as soon as the server_name extension
 * has come, or the ClientHello is known to have none, or to be malformed.
 * Each byte is looked at a bounded number of times, whatever the
 * segmentation.
 *
 * @module
 */

/** The first byte of a TLS record that carries a handshake. */
export const TLS_HANDSHAKE = 0x16;

/** The handshake message type of a ClientHello. */
const CLIENT_HELLO = 1;
/** The extension that names the server (RFC 6066). */
const SERVER_NAME = 0;
/** The largest record payload of plaintext TLS. */
const MAX_RECORD = 16_384;
/** One character per byte: whatever is not a DNS name fails the name check later. */
const BYTES = new TextDecoder("latin1");

/** What a ClientHello says of the server it is for. */
export type TlsOutcome =
  /** The first host_name of its server_name extension, as sent (not yet checked as a DNS name). */
  | { kind: "name"; name: string }
  /** A ClientHello without a server name. */
  | { kind: "no-name" }
  /** Not a well-formed ClientHello: the reason says where it breaks. */
  | { kind: "malformed"; reason: string };

/** Reads a ClientHello as its bytes arrive. */
export class ClientHelloReader {
  /** The handshake bytes so far: the records' payloads, joined. */
  #handshake = new Uint8Array(512);
  #handshakeLength = 0;
  /** How far the connection's bytes have been taken in. */
  #offset = 0;
  /** Payload bytes of the current record still to come; 0 at a record's start. */
  #recordLeft = 0;
  /** Handshake bytes needed before the ClientHello is parsed again. */
  #need = 4;

  /**
   * Looks at the connection's bytes so far (`bytes` grows from one call to
   * the next: every byte the client sent, from the first).
   *
   * @returns what the ClientHello says, or undefined while more bytes are needed
   */
  update(bytes: Uint8Array): TlsOutcome | undefined {
    const broken = this.#takeRecords(bytes);
    // The ClientHello's own bytes decide first: what they say does not depend on where the
    // segments were cut, while a broken record after them is seen only once it has arrived.
    if (this.#handshakeLength >= this.#need) {
      const parsed = parseClientHello(this.#handshake.subarray(0, this.#handshakeLength));
      if (!("need" in parsed)) return parsed;
      this.#need = parsed.need;
    }
    return broken;
  }

  /** Takes the records' payloads in; says what is wrong with a record, if one is. */
  #takeRecords(bytes: Uint8Array): TlsOutcome | undefined {
    while (this.#offset < bytes.length) {
      if (this.#recordLeft === 0) {
        if (bytes.length - this.#offset < 5) break;
        const header = bytes.subarray(this.#offset, this.#offset + 5);
        if (header[0] !== TLS_HANDSHAKE) {
          return malformed(`a record of type ${header[0]} came before the ClientHello ended`);
        }
        if (header[1] !== 3) return malformed(`its record version ${header[1]}.${header[2]}`);
        const length = (header[3] << 8) | header[4];
        if (length === 0 || length > MAX_RECORD) {
          return malformed(`a record of ${length} bytes (1 to ${MAX_RECORD})`);
        }
        this.#offset += 5;
        this.#recordLeft = length;
        continue;
      }
      const take = Math.min(this.#recordLeft, bytes.length - this.#offset);
      this.#append(bytes.subarray(this.#offset, this.#offset + take));
      this.#offset += take;
      this.#recordLeft -= take;
    }
    return undefined;
  }

  #append(chunk: Uint8Array) {
    const length = this.#handshakeLength + chunk.length;
    if (length > this.#handshake.length) {
      const grown = new Uint8Array(Math.max(length, this.#handshake.length * 2));
      grown.set(this.#handshake.subarray(0, this.#handshakeLength));
      this.#handshake = grown;
    }
    this.#handshake.set(chunk, this.#handshakeLength);
    this.#handshakeLength = length;
  }
}

function malformed(reason: string): TlsOutcome {
  return { kind: "malformed", reason: `not a well-formed TLS ClientHello: ${reason}` };
}

function uint16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

/**
 * Parses the handshake bytes so far as a ClientHello (RFC 8446 4.1.2, the
 * same for TLS 1.0 to 1.3) as far as its server_name extension.
 *
 * @returns the outcome, or how many handshake bytes it needs to go on
 */
function parseClientHello(hs: Uint8Array): TlsOutcome | { need: number } {
  if (hs.length < 4) return { need: 4 };
  if (hs[0] !== CLIENT_HELLO) return malformed(`its first message is of type ${hs[0]}`);
  const end = 4 + ((hs[1] << 16) | (hs[2] << 8) | hs[3]);
  let at = 4 + 2 + 32; // legacy_version, random
  const fields: [what: string, size: 1 | 2, min: number, max: number][] = [
    ["session id", 1, 0, 32],
    ["cipher suites", 2, 2, 65_534],
    ["compression methods", 1, 1, 255],
  ];
  for (const [what, size, min, max] of fields) {
    if (at + size > end) return malformed(`it ends before its ${what}`);
    if (at + size > hs.length) return { need: at + size };
    const length = size === 1 ? hs[at] : uint16(hs, at);
    if (length < min || length > max) return malformed(`${length} bytes of ${what}`);
    at += size + length;
  }
  if (at > end) return malformed("its compression methods run past its end");
  if (at === end) return { kind: "no-name" }; // no extensions at all (TLS 1.0 allows it)
  if (at + 2 > end) return malformed("it ends inside the length of its extensions");
  if (at + 2 > hs.length) return { need: at + 2 };
  const extensionsEnd = at + 2 + uint16(hs, at);
  if (extensionsEnd !== end) return malformed("its extensions do not end with it");
  at += 2;
  while (at < extensionsEnd) {
    if (at + 4 > extensionsEnd) return malformed("it ends inside an extension's header");
    if (at + 4 > hs.length) return { need: at + 4 };
    const dataEnd = at + 4 + uint16(hs, at + 2);
    if (dataEnd > extensionsEnd) return malformed("an extension runs past its end");
    if (uint16(hs, at) === SERVER_NAME) {
      if (dataEnd > hs.length) return { need: dataEnd };
      return serverName(hs.subarray(at + 4, dataEnd));
    }
    at = dataEnd;
  }
  return { kind: "no-name" };
}

/** The first host_name of a server_name extension's data (RFC 6066 3). */
function serverName(data: Uint8Array): TlsOutcome {
  if (data.length < 2 || uint16(data, 0) !== data.length - 2) {
    return malformed("its server_name list does not fill its extension");
  }
  let at = 2;
  while (at < data.length) {
    if (at + 3 > data.length) return malformed("it ends inside a server_name entry");
    const type = data[at];
    const end = at + 3 + uint16(data, at + 1);
    if (end > data.length || end === at + 3) {
      return malformed("a server_name entry is empty or runs past its list");
    }
    if (type === 0) return { kind: "name", name: BYTES.decode(data.subarray(at + 3, end)) };
    at = end;
  }
  return { kind: "no-name" };
}
