import { Type, type Static } from '@sinclair/typebox';
import { compileUserAgentRegex } from './regex.js';

export const schema = Type.Object(
  {
    allow: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'An array of regular expressions that should be allowed. The regular expressions will be checked against the `User-Agent` header.',
    }),
    deny: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'An array of regular expressions that should be denied. The regular expressions will be checked against the `User-Agent` header.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Protects a service or route from common bots and HTTP client libraries by User-Agent: `allow` regexes are checked first (a match passes), then `deny`, then the built-in list (a match gets 403). Requests without User-Agent pass.',
  },
);

export type BotDetectionConfig = Static<typeof schema>;

export function check(config: BotDetectionConfig): string | undefined {
  for (const field of ['allow', 'deny'] as const) {
    for (let i = 0; i < config[field].length; i++) {
      try {
        compileUserAgentRegex(config[field][i]!);
      } catch {
        return `config.${field}[${i}]: not a valid regex: ${config[field][i]}`;
      }
    }
  }
  return undefined;
}
