import { Type, type Static } from '@sinclair/typebox';

const METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

export const schema = Type.Object(
  {
    origins: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'List of allowed domains for the `Access-Control-Allow-Origin` header. Accepts `*` for all, exact origins (`https://example.com`, compared after dropping a default port) and regexes (any entry with a character outside `A-Za-z0-9.:/-`, anchored; without `:` a regex is matched against the host only). Unset: `*`.',
      }),
    ),
    headers: Type.Optional(
      Type.Array(Type.String({ pattern: HEADER_NAME, 'x-message': 'must be a valid header name' }), {
        description: 'Value for the `Access-Control-Allow-Headers` header. Unset: the request\'s `Access-Control-Request-Headers` is echoed.',
      }),
    ),
    exposed_headers: Type.Optional(
      Type.Array(Type.String({ pattern: HEADER_NAME, 'x-message': 'must be a valid header name' }), {
        description: 'Value for the `Access-Control-Expose-Headers` header. If not specified, no custom headers are exposed.',
      }),
    ),
    methods: Type.Array(
      Type.Union(METHODS.map((m) => Type.Literal(m)), { 'x-message': `must be one of: ${METHODS.join(', ')}` }),
      { default: [...METHODS], description: "Value for the `Access-Control-Allow-Methods` header." },
    ),
    max_age: Type.Optional(Type.Number({ description: 'Indicates how long the results of the preflight request can be cached, in seconds.' })),
    credentials: Type.Boolean({ default: false, description: 'Flag to determine whether the `Access-Control-Allow-Credentials` header should be sent with `true` as the value.' }),
    private_network: Type.Boolean({
      default: false,
      description: 'Flag to determine whether the `Access-Control-Allow-Private-Network` header should be sent with `true` as the value (only on preflights that ask with `Access-Control-Request-Private-Network: true`).',
    }),
    preflight_continue: Type.Boolean({ default: false, description: 'A boolean value that instructs the plugin to proxy the `OPTIONS` preflight request to the Upstream service (and add no CORS headers to its answer).' }),
    allow_origin_absent: Type.Boolean({ default: true, description: 'A boolean value that skip cors response headers when origin header of request is empty (`false`); `true` adds them regardless.' }),
  },
  {
    additionalProperties: false,
    description:
      'Cross-origin resource sharing: answers preflight requests (OPTIONS with Origin and Access-Control-Request-Method) itself, before authentication, and adds the Access-Control-* headers to other responses.',
  },
);

export type CorsConfig = Static<typeof schema>;

export function check(config: CorsConfig): string | undefined {
  for (let i = 0; i < (config.origins ?? []).length; i++) {
    const entry = config.origins![i]!;
    if (!/[^A-Za-z0-9.:/-]/.test(entry) || entry === '*') continue;
    try {
      new RegExp(entry);
    } catch {
      return `config.origins[${i}]: '${entry}' is not a valid regex`;
    }
  }
  return undefined;
}
