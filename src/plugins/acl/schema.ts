import { Type, type Static } from '@sinclair/typebox';

const groups = (description: string) => Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description }));

export const schema = Type.Object(
  {
    allow: groups('Arbitrary group names that are allowed to consume the service or route. One of `config.allow` or `config.deny` must be specified.'),
    deny: groups('Arbitrary group names that are not allowed to consume the service or route. One of `config.allow` or `config.deny` must be specified.'),
    hide_groups_header: Type.Boolean({
      default: false,
      description: 'If enabled (`true`), prevents the `X-Consumer-Groups` header from being sent in the request to the upstream service.',
    }),
    always_use_authenticated_groups: Type.Boolean({
      default: false,
      description:
        "If enabled (`true`), the authenticated groups will always be used even when an authenticated consumer already exists. If the authenticated groups don't exist, it will fallback to use the groups associated with the consumer. By default the authenticated groups will only be used when there is no consumer or the consumer is anonymous.",
    }),
  },
  {
    additionalProperties: false,
    description:
      "Restricts access to a service or route by consumer groups (the consumers' `acls`) or by groups another plugin authenticated; runs after the auth plugins. Denied: `403 You cannot consume this service`; nobody identified: `401 Unauthorized`.",
  },
);

export type AclConfig = Static<typeof schema>;

const present = (list: string[] | undefined): boolean => list !== undefined && list.length > 0;

/** Kong's only_one_of / at_least_one_of on allow and deny (empty lists count as absent). */
export function check(config: AclConfig): string | undefined {
  if (present(config.allow) && present(config.deny)) return "config: only one of these fields must be non-empty: 'config.allow', 'config.deny'";
  if (!present(config.allow) && !present(config.deny)) return "config: at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
  return undefined;
}
