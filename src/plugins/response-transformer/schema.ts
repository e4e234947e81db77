import { Type, type Static } from '@sinclair/typebox';
import { checkPairs } from '../request-transformer/pairs.js';

const list = (description: string) => Type.Array(Type.String(), { default: [], description });

const jsonTypes = Type.Array(
  Type.Union([Type.Literal('boolean'), Type.Literal('number'), Type.Literal('string')], { 'x-message': 'must be boolean, number or string' }),
  {
    default: [],
    description:
      'JSON types of the values, matched by index with `json` (missing entries mean string). `number` parses the value, `boolean` is true only for "true".',
  },
);

const valueRecord = (description: string, what: string) =>
  Type.Object(
    {
      json: list(`"name:value" top-level JSON keys to ${what}.`),
      json_types: jsonTypes,
      headers: list(`"name:value" headers to ${what}.`),
    },
    { additionalProperties: false, default: {}, description },
  );

export const schema = Type.Object(
  {
    remove: Type.Object(
      {
        json: list('Top-level JSON keys to remove.'),
        headers: list('Header names to remove.'),
      },
      { additionalProperties: false, default: {}, description: 'Removes from the response.' },
    ),
    rename: Type.Object(
      {
        json: list('"old:new" top-level JSON key renames.'),
        headers: list('"old:new" header renames; both must be valid header names.'),
      },
      { additionalProperties: false, default: {}, description: 'Renames, only when the old name is present.' },
    ),
    replace: valueRecord('Replaces values: headers only when present, JSON keys only when the current value is not false (null counts as present).', 'replace'),
    add: valueRecord('Adds values: headers only when absent, JSON keys only when absent or false.', 'add'),
    append: valueRecord('Appends: another header line; for JSON a string becomes an array, an array gets the value, anything else becomes [value].', 'append'),
  },
  {
    additionalProperties: false,
    description:
      'Transforms the response: headers, and top-level keys of application/json bodies. Order: remove, rename, replace, add, append. Header conditions are checked against the headers as they came from the upstream (or the local reply).',
  },
);

export type ResponseTransformerConfig = Static<typeof schema>;

export function check(config: ResponseTransformerConfig): string | undefined {
  const c = 'config';
  const err =
    checkPairs(`${c}.rename.headers`, config.rename.headers, { needValue: true, headerName: true, valueIsHeaderName: true }) ??
    checkPairs(`${c}.rename.json`, config.rename.json, { needValue: true });
  if (err) return err;
  for (const op of ['replace', 'add', 'append'] as const) {
    const e =
      checkPairs(`${c}.${op}.headers`, config[op].headers, { needValue: true, headerName: true, headerValue: true }) ??
      checkPairs(`${c}.${op}.json`, config[op].json, { needValue: true });
    if (e) return e;
  }
  return undefined;
}
