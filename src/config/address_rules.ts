/**
 * ALLOW and DENY: client addresses and CIDR blocks, IPv4 and IPv6, and the
 * rule that decides whether a client may connect.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** An IPv4 address as rules write it: four decimal parts. */
const FOUR_PARTS = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** A parsed rule: an address range, and how the configuration wrote it. */
interface Rule {
  text: string;
  range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

/**
 * Reads one rule: an address (`192.0.2.7`, `2001:db8::7`) or a CIDR block
 * (`10.0.0.0/8`, `2001:db8::/32`). IPv4-mapped IPv6 forms count as IPv4.
 *
 * @throws {SyntaxError} when `text` is neither
 */
export function parseAddressRule(text: string): Rule {
  try {
    const [addressText] = text.split("/");
    // ipaddr.js also takes inet_aton's short forms (10.0.0 is 10.0.0.0): a rule spells all four.
    if (addressText.includes(".") && !addressText.includes(":") && !FOUR_PARTS.test(addressText)) {
      throw new SyntaxError("not four parts");
    }
    const [address, bits] = text.includes("/")
      ? ipaddr.parseCIDR(text)
      : [ipaddr.parse(text), undefined];
    const plain = address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()
      ? (address as ipaddr.IPv6).toIPv4Address()
      : address;
    const mappedBits = plain === address ? bits : Math.max(0, (bits ?? 128) - 96);
    const fullBits = plain.kind() === "ipv4" ? 32 : 128;
    return { text, range: [plain, mappedBits ?? fullBits] };
  } catch {
    throw new SyntaxError(`"${text}" is not an IP address or CIDR block`);
  }
}

/** Splits a rule list as written in the configuration: separated by spaces or commas. */
export function splitRules(text: string): string[] {
  return text.split(/[\s,]+/).filter((part) => part !== "");
}

/** Decides from ALLOW and DENY whether a client address may connect. */
export class AddressRules {
  readonly #allow: Rule[];
  readonly #deny: Rule[];

  /**
   * Creates the rules from the lists of ALLOW and DENY.
   *
   * @throws {SyntaxError} naming the first entry that is not an address or CIDR block
   */
  constructor(allow: readonly string[], deny: readonly string[]) {
    this.#allow = allow.map(parseAddressRule);
    this.#deny = deny.map(parseAddressRule);
  }

  /** Whether there is any rule at all: without one, every client may connect. */
  get empty(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }

  /**
   * Why the client at `hostname` may not connect (`denied by DENY 10.0.0.0/8`,
   * `not in ALLOW`) and which list says so, or undefined when it may. DENY
   * wins over ALLOW; with ALLOW set, only the clients it names may connect.
   */
  refusal(hostname: string): { list: "ALLOW" | "DENY"; message: string } | undefined {
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = ipaddr.process(hostname);
    } catch {
      return { list: "ALLOW", message: `its address "${hostname}" cannot be read` };
    }
    const denied = this.#deny.find((rule) => matches(address, rule));
    if (denied) return { list: "DENY", message: `denied by DENY ${denied.text}` };
    if (this.#allow.length > 0 && !this.#allow.some((rule) => matches(address, rule))) {
      return { list: "ALLOW", message: "not in ALLOW" };
    }
    return undefined;
  }
}

function matches(address: ipaddr.IPv4 | ipaddr.IPv6, rule: Rule): boolean {
  return address.kind() === rule.range[0].kind() && address.match(rule.range);
}
