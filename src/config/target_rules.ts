/**
 * CLUSTER_TARGETS: the backend addresses a target published by another
 * instance may be, each an address or CIDR block with an optional port.
 *
 * @module
 */

import { AddressRules, parseAddressRule } from "./address_rules.ts";

/** One entry: the addresses it covers, and its port (undefined: any). */
interface TargetRule {
  addresses: AddressRules;
  port?: number;
}

/**
 * Reads one entry: `10.0.0.5`, `10.0.0.0/24`, `10.0.0.5:5432`,
 * `10.0.0.0/24:5432`, `2001:db8::5`, `[2001:db8::5]:5432`, `[2001:db8::/64]:22`.
 *
 * @throws {SyntaxError} naming the entry when it is none of these
 */
export function parseTargetRule(text: string): TargetRule {
  const bracketed = /^\[(?<address>[^\]]+)\](?::(?<port>\d+))?$/.exec(text);
  const withPort = /^(?<address>[^:]+):(?<port>\d+)$/.exec(text);
  const { address, port } = (bracketed ?? withPort)?.groups ?? { address: text, port: undefined };
  const number = port === undefined ? undefined : Number(port);
  if (number !== undefined && (number < 1 || number > 65535)) {
    throw new SyntaxError(`"${text}" has a port outside 1-65535`);
  }
  try {
    parseAddressRule(address);
  } catch {
    throw new SyntaxError(
      `"${text}" is not an IP address or CIDR block, with or without a port (10.0.0.5:5432)`,
    );
  }
  return { addresses: new AddressRules([address], []), port: number };
}

/** Whether `target` (an IP address, never a host name) is one that `rules` names. */
export function targetAllowed(
  rules: readonly string[],
  target: { hostname: string; port: number },
): boolean {
  return rules.map(parseTargetRule).some((rule) =>
    (rule.port === undefined || rule.port === target.port) &&
    rule.addresses.refusal(target.hostname) === undefined
  );
}
