import { Type, type Static } from '@sinclair/typebox';

export const schema = Type.Object(
  {
    status_code: Type.Integer({
      default: 503,
      minimum: 100,
      maximum: 599,
      'x-message': 'must be an integer between 100 and 599',
      description: 'The response code to send. Must be an integer between 100 and 599.',
    }),
    message: Type.Optional(Type.String({ description: 'The message to send, if using the default response generator.' })),
    content_type: Type.Optional(Type.String({ description: 'Content type of the raw response configured with `config.body`.' })),
    body: Type.Optional(
      Type.String({ description: 'The raw response body to send. This is mutually exclusive with the `config.message` field.' }),
    ),
    echo: Type.Boolean({
      default: false,
      description:
        'When set, the plugin will echo a copy of the request back to the client. The main usecase for this is debugging. It can be combined with `trigger` in order to debug requests on live systems without disturbing real traffic.',
    }),
    trigger: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]+$',
        'x-message': "must be a header name (allowed characters are A-Z, a-z, 0-9, '_', and '-')",
        description:
          'When set, the plugin only acts on requests that have a header or a query argument of this name; other requests pass through.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Terminates requests with a fixed status and message or body, or echoes the request back (debugging); optionally only for requests carrying a trigger header or query argument.',
  },
);

export type RequestTerminationConfig = Static<typeof schema>;

const present = (v: string | undefined): boolean => typeof v === 'string' && v.length > 0;

export function check(config: RequestTerminationConfig): string | undefined {
  if (present(config.message)) {
    if (present(config.body)) return 'config.message: cannot be set together with config.body';
    if (present(config.content_type)) return 'config.message: cannot be set together with config.content_type';
  }
  if (present(config.content_type) && !present(config.body)) return 'config.content_type: requires config.body';
  if (config.echo) {
    if (present(config.body)) return 'config.echo: cannot be set together with config.body';
    if (present(config.content_type)) return 'config.echo: cannot be set together with config.content_type';
  }
  return undefined;
}
