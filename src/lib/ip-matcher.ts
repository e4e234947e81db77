import { BlockList, isIP } from 'node:net';

/** Parses "a.b.c.d", "a.b.c.d/n", IPv6 and IPv6/n; returns an error message or undefined. */
export function checkIpOrCidr(entry: string): string | undefined {
  const [addr, bits, extra] = entry.split('/');
  const family = isIP(addr ?? '');
  if (!family || extra !== undefined) return `invalid IP address or CIDR: ${entry}`;
  if (bits !== undefined) {
    const n = Number(bits);
    if (!/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)) return `invalid CIDR prefix length: ${entry}`;
  }
  return undefined;
}

/** Matches addresses against a list of IPs and CIDRs (IPv4, IPv6, IPv4-mapped IPv6). Built once per config. */
export class IpMatcher {
  readonly empty: boolean;
  private readonly list = new BlockList();

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [addr, bits] = entry.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  has(address: string): boolean {
    if (this.empty || !address) return false;
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7);
    const family = isIP(address);
    if (!family) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}
