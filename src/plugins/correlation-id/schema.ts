import { Type, type Static } from '@sinclair/typebox';

export const schema = Type.Object(
  {
    header_name: Type.String({
      default: 'Kong-Request-ID',
      minLength: 1,
      pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
      'x-message': 'must be a valid header name',
      description: 'The HTTP header that carries the correlation ID.',
    }),
    generator: Type.Union([Type.Literal('uuid'), Type.Literal('uuid#counter'), Type.Literal('tracker')], {
      default: 'uuid#counter',
      'x-message': 'must be one of uuid, uuid#counter, tracker',
      description:
        'How an ID is generated: `uuid` (a v4 UUID), `uuid#counter` (a UUID per plugin instance followed by `#` and a counter starting at 1), `tracker` (`<server addr>-<server port>-<pid>-<connection serial>-<requests on the connection>-<unix time with 3 decimals>`).',
    }),
    echo_downstream: Type.Boolean({
      default: false,
      description: 'Also set the header on the response sent to the client (local replies included).',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Correlates requests and responses with an ID in a header: a non-empty incoming value is kept and forwarded unchanged, otherwise one is generated and set on the upstream request.',
  },
);

export type CorrelationIdConfig = Static<typeof schema>;
