import { Type, type Static } from '@sinclair/typebox';

export const schema = Type.Object(
  {
    allowed_payload_size: Type.Integer({
      default: 128,
      minimum: 0,
      'x-message': 'must be an integer >= 0',
      description: 'Allowed request payload size in megabytes (default `128`), or in the unit of `size_unit`. Bodies larger than this are refused.',
    }),
    size_unit: Type.Union([Type.Literal('megabytes'), Type.Literal('kilobytes'), Type.Literal('bytes')], {
      default: 'megabytes',
      'x-message': 'must be one of: megabytes, kilobytes, bytes',
      description: 'Size unit of `allowed_payload_size`: `megabytes` (1048576 bytes), `kilobytes` (1024 bytes) or `bytes`.',
    }),
    require_content_length: Type.Boolean({
      default: false,
      description: 'Refuse requests (411) that have no Content-Length header, unless their Transfer-Encoding is exactly `chunked`.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Blocks requests whose body is larger than a limit: at once from Content-Length, or, for chunked bodies, by counting the bytes as they stream to the upstream and cutting the request at the limit (nothing is buffered).',
  },
);

export type RequestSizeLimitingConfig = Static<typeof schema>;
