/**
 * The head of an HTTP/1.x request, read as its bytes arrive: the name it is
 * for (its `Host`, or the authority of an absolute-form target) and what
 * the waiting page needs to know (method, `Accept`, `Upgrade`). Only looked
 * at: the bytes go to the backend as they came (docs/ARCHITECTURE.md,
 * "Ports shared by name").
 *
 * @module
 */

/** An HTTP/1.x request head, as far as sleepingd reads it. */
export interface RequestHead {
  /** The method, e.g. `GET`. */
  method: string;
  /** The request target as sent, e.g. `/index.html`. */
  target: string;
  /** `1.0` or `1.1` (a later 1.x is read as 1.1). */
  version: "1.0" | "1.1";
  /**
   * The name the request is for, without its port: the authority of an
   * absolute-form target, else the `Host` header; undefined when there is
   * none (HTTP/1.0) or it is empty. An IPv6 literal keeps its brackets.
   */
  host?: string;
  /** The `Accept` header lines, joined with `, `; empty when none. */
  accept: string;
  /** Whether it asks to switch protocols (`Upgrade`, e.g. a websocket). */
  upgrade: boolean;
}

/** What the first bytes of a connection say as HTTP. */
export type HttpOutcome =
  /** A whole request head. */
  | { kind: "head"; head: RequestHead }
  /** The first line is no HTTP/1.x request line (another protocol, or HTTP/2 without TLS). */
  | { kind: "not-http"; reason: string }
  /** An HTTP/1.x request whose head breaks the rules sleepingd routes by. */
  | { kind: "malformed"; reason: string };

/** A token (RFC 9110 5.6.2): a method, a header's name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** `METHOD TARGET HTTP/1.x`. */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP\/(\d)\.(\d)$/;
/** A Host value: `name`, `name:port`, `[v6]`, `[v6]:port`. */
const HOST_VALUE = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]@/?#]*)(?::\d*)?$/;
/** An absolute-form target's authority: `scheme://[userinfo@]host[:port]`. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#@]*@)?([^/?#]*)/;
/** One character per byte: a head is ASCII, and other bytes must not stop the reading. */
const BYTES = new TextDecoder("latin1");
/** Empty lines taken before the request line (RFC 9112 2.2 asks to take at least one). */
const MAX_LEADING_EMPTY_LINES = 4;

/** Reads a request head as its bytes arrive. */
export class RequestHeadReader {
  /** How far the bytes have been read as whole lines. */
  #offset = 0;
  /** How far they have been searched for a line's end: each byte is searched once. */
  #searched = 0;
  #emptyLines = 0;
  #request?: { method: string; target: string; version: "1.0" | "1.1" };
  readonly #hosts: string[] = [];
  readonly #accept: string[] = [];
  #upgrade = false;

  /**
   * Looks at the connection's bytes so far (`bytes` grows from one call to
   * the next: every byte the client sent, from the first). Each line is read
   * once, when its end has come.
   *
   * @returns what the head says, or undefined while more bytes are needed
   */
  update(bytes: Uint8Array): HttpOutcome | undefined {
    while (true) {
      const end = bytes.indexOf(0x0a, Math.max(this.#offset, this.#searched));
      if (end < 0) {
        this.#searched = bytes.length;
        return undefined;
      }
      const cut = end > this.#offset && bytes[end - 1] === 0x0d ? end - 1 : end;
      const line = BYTES.decode(bytes.subarray(this.#offset, cut));
      this.#offset = end + 1;
      const outcome = this.#request ? this.#headerLine(line) : this.#requestLine(line);
      if (outcome) return outcome;
    }
  }

  #requestLine(line: string): HttpOutcome | undefined {
    if (line === "" && ++this.#emptyLines <= MAX_LEADING_EMPTY_LINES) return undefined;
    const match = REQUEST_LINE.exec(line);
    if (!match) return { kind: "not-http", reason: "its first line is no HTTP/1.x request" };
    const [, method, target, major] = match;
    if (major !== "1") return { kind: "not-http", reason: `it speaks HTTP/${major} without TLS` };
    this.#request = { method, target, version: match[4] === "0" ? "1.0" : "1.1" };
    return undefined;
  }

  #headerLine(line: string): HttpOutcome | undefined {
    if (line === "") return this.#end();
    if (line.includes("\r") || line.includes("\0")) {
      return malformed("a header line holds a CR or NUL");
    }
    if (line[0] === " " || line[0] === "\t") return malformed("a header line is folded");
    const colon = line.indexOf(":");
    const name = line.slice(0, Math.max(colon, 0));
    if (!TOKEN.test(name)) return malformed(`a header line is not NAME: value`);
    const value = line.slice(colon + 1).trim();
    switch (name.toLowerCase()) {
      case "host":
        this.#hosts.push(value);
        break;
      case "accept":
        this.#accept.push(value);
        break;
      case "upgrade":
        this.#upgrade = true;
    }
    return undefined;
  }

  /** The head has ended: its name is the target's authority, else the one Host. */
  #end(): HttpOutcome {
    const { method, target, version } = this.#request!;
    const authority = ABSOLUTE_FORM.exec(target)?.[1];
    if (this.#hosts.length > 1) return malformed("it has more than one Host header");
    if (authority === undefined && this.#hosts.length === 0 && version === "1.1") {
      return malformed("an HTTP/1.1 request needs a Host header");
    }
    const value = authority ?? this.#hosts[0] ?? "";
    const host = HOST_VALUE.exec(value)?.[1];
    if (host === undefined) return malformed(`its host "${value}" is not host[:port]`);
    const head: RequestHead = {
      method,
      target,
      version,
      accept: this.#accept.join(", "),
      upgrade: this.#upgrade,
    };
    if (host !== "") head.host = host;
    return { kind: "head", head };
  }
}

function malformed(reason: string): HttpOutcome {
  return { kind: "malformed", reason: `not a well-formed HTTP/1.x request head: ${reason}` };
}

/**
 * Whether the request is a browser's, asking for a page: a GET or HEAD that
 * accepts `text/html` (not only through `*\/*`) and upgrades to nothing.
 */
export function wantsHtml(head: RequestHead): boolean {
  if ((head.method !== "GET" && head.method !== "HEAD") || head.upgrade) return false;
  return head.accept.split(",").some((range) => {
    const [type, ...parameters] = range.split(";").map((part) => part.trim().toLowerCase());
    if (type !== "text/html") return false;
    const q = parameters.find((parameter) => /^q\s*=/.test(parameter));
    return q === undefined || Number(q.slice(q.indexOf("=") + 1).trim()) > 0;
  });
}
