import { Type, type Static } from '@sinclair/typebox';
import { checkIpOrCidr } from '../../lib/ip-matcher.js';

const list = (description: string) => Type.Optional(Type.Array(Type.String(), { description }));

export const schema = Type.Object(
  {
    allow: list('List of IPs or CIDR ranges to allow (IPv4 and IPv6). When set, any other client is refused. One of `allow` or `deny` is required.'),
    deny: list('List of IPs or CIDR ranges to deny (IPv4 and IPv6). Checked before `allow`. One of `allow` or `deny` is required.'),
    status: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 599, 'x-message': 'must be an integer between 100 and 599', description: 'The HTTP status of the requests that will be rejected by the plugin (default 403).' }),
    ),
    message: Type.Optional(Type.String({ description: 'The message to send as a response body to rejected requests (default `IP address not allowed: <client ip>`).' })),
  },
  {
    additionalProperties: false,
    description:
      'Allows or denies requests by client IP address or CIDR range (IPv4 and IPv6). The client address is the one the gateway trusts: the peer, or the real IP from `_gatehouse.trusted_ips` processing, so an X-Forwarded-For sent by an untrusted peer changes nothing.',
  },
);

export type IpRestrictionConfig = Static<typeof schema>;

export function check(config: IpRestrictionConfig): string | undefined {
  if (config.allow === undefined && config.deny === undefined) return "config: at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
  for (const field of ['allow', 'deny'] as const) {
    const entries = config[field] ?? [];
    for (let i = 0; i < entries.length; i++) {
      const problem = checkIpOrCidr(entries[i]!);
      if (problem) return `config.${field}[${i}]: ${problem}`;
    }
  }
  return undefined;
}
