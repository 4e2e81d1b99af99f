/**
 * TLS for the tests of ports shared by name: ClientHellos built byte by byte
 * (RFC 8446 4.1.2), split into records as a client may, and self-signed
 * certificates made by `openssl req`.
 *
 * @module
 */

import { runProgram } from "./_helpers.ts";

/** What a built ClientHello holds. */
export interface HelloOptions {
  /** The server_name's host_name; none when undefined. */
  name?: string;
  /** Extensions (type, data) before server_name, e.g. to push it past a record's end. */
  before?: [number, Uint8Array][];
  /** Extensions after it. */
  after?: [number, Uint8Array][];
}

function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}

function extension(type: number, data: Uint8Array | number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data];
}

/** A ClientHello handshake message (without its record layer). */
export function helloMessage(options: HelloOptions = {}): Uint8Array {
  const extensions: number[] = [];
  for (const [type, data] of options.before ?? []) extensions.push(...extension(type, data));
  if (options.name !== undefined) {
    const name = [...new TextEncoder().encode(options.name)];
    const entry = [0, ...u16(name.length), ...name];
    extensions.push(...extension(0, [...u16(entry.length), ...entry]));
  }
  for (const [type, data] of options.after ?? []) extensions.push(...extension(type, data));
  const body = [
    0x03,
    0x03,
    ...new Array(32).fill(7), // random
    32,
    ...new Array(32).fill(9), // session id
    ...u16(4),
    0x13,
    0x01,
    0x13,
    0x02, // cipher suites
    1,
    0, // compression: null
    ...u16(extensions.length),
    ...extensions,
  ];
  return new Uint8Array([
    1,
    body.length >> 16,
    (body.length >> 8) & 0xff,
    body.length & 0xff,
    ...body,
  ]);
}

/** `message` in TLS handshake records of at most `size` bytes of payload each. */
export function inRecords(message: Uint8Array, size = 16_384): Uint8Array {
  const out: number[] = [];
  for (let at = 0; at < message.length; at += size) {
    const part = message.subarray(at, Math.min(at + size, message.length));
    out.push(0x16, 0x03, 0x01, ...u16(part.length), ...part);
  }
  return new Uint8Array(out);
}

/** A ClientHello as a client sends it: one record. */
export function clientHello(options: HelloOptions = {}): Uint8Array {
  return inRecords(helloMessage(options));
}

/** A self-signed certificate for `name` and its key, as PEM files in `dir`. */
export async function selfSigned(
  dir: string,
  name: string,
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  const { code, stderr } = await runProgram("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  if (code !== 0) throw new Error(`openssl req failed: ${stderr}`);
  return { cert, key };
}
