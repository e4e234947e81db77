import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { checkPairs } from './pairs.js';
import { compileTemplate, TemplateError } from './template.js';

const list = (description: string) => Type.Array(Type.String(), { default: [], description });

const TEMPLATE_NOTE = ' Values may use templates: `$(headers.name)`, `$(query_params.name)`, `$(uri_captures.name)`, `$(shared.name)`.';

const record = <T extends TProperties>(description: string, fields: T) =>
  Type.Object(fields, { additionalProperties: false, default: {}, description });

export const schema = Type.Object(
  {
    http_method: Type.Optional(
      Type.String({
        pattern: '^[A-Z]+$',
        'x-message': 'must be an HTTP method in upper case, e.g. POST',
        description: 'Changes the HTTP method of the upstream request. With GET, HEAD or TRACE, fields of a form-urlencoded body are also added to the query string.',
      }),
    ),
    remove: record('Removes from the request.', {
      body: list('Body parameter names to remove (JSON, form-urlencoded and multipart bodies).'),
      headers: list('Header names to remove.'),
      querystring: list('Query argument names to remove.'),
    }),
    rename: record('Renames, only when the old name is present (for the query string and body, an absent old name also clears the new one, as in Kong).', {
      body: list('"old:new" body parameter renames.' + TEMPLATE_NOTE),
      headers: list('"old:new" header renames; both must be valid header names.'),
      querystring: list('"old:new" query argument renames.' + TEMPLATE_NOTE),
    }),
    replace: record('Replaces values, only of keys already present (the `host` header is always replaced).', {
      body: list('"name:value" body parameters to replace.' + TEMPLATE_NOTE),
      headers: list('"name:value" headers to replace.' + TEMPLATE_NOTE),
      querystring: list('"name:value" query arguments to replace.' + TEMPLATE_NOTE),
      uri: Type.Optional(Type.String({ description: 'Replaces the whole upstream path (must render to a path starting with /).' + TEMPLATE_NOTE })),
    }),
    add: record('Adds keys, only when absent (adding the `host` header is ignored).', {
      body: list('"name:value" body parameters to add; values are written as strings.' + TEMPLATE_NOTE),
      headers: list('"name:value" headers to add.' + TEMPLATE_NOTE),
      querystring: list('"name:value" query arguments to add.' + TEMPLATE_NOTE),
    }),
    append: record('Appends values: an existing value becomes a list (repeated header lines or query arguments); an absent key is created.', {
      body: list('"name:value" body parameters to append (not for multipart bodies).' + TEMPLATE_NOTE),
      headers: list('"name:value" headers to append.' + TEMPLATE_NOTE),
      querystring: list('"name:value" query arguments to append.' + TEMPLATE_NOTE),
    }),
  },
  {
    additionalProperties: false,
    description:
      'Transforms the request before it is proxied: upstream path, method, headers, query string and body (JSON, form-urlencoded, multipart). Order: replace.uri, http_method, headers, body, query string; within each: remove, rename, replace, add, append.',
  },
);

export type RequestTransformerConfig = Static<typeof schema>;

/** Kong's field validators: "name:value" entries, header names and values, templates. */
export function check(config: RequestTransformerConfig): string | undefined {
  const c = 'config';
  const header = { headerName: true };
  const headerValue = { needValue: true, headerName: true, headerValue: true };
  const value = { needValue: true };
  const err =
    checkPairs(`${c}.remove.headers`, config.remove.headers, { needValue: false, ...header }) ??
    checkPairs(`${c}.rename.headers`, config.rename.headers, { needValue: true, headerName: true, valueIsHeaderName: true }) ??
    checkPairs(`${c}.rename.querystring`, config.rename.querystring, value) ??
    checkPairs(`${c}.rename.body`, config.rename.body, value);
  if (err) return err;
  for (const op of ['replace', 'add', 'append'] as const) {
    const e =
      checkPairs(`${c}.${op}.headers`, config[op].headers, headerValue) ??
      checkPairs(`${c}.${op}.querystring`, config[op].querystring, value) ??
      checkPairs(`${c}.${op}.body`, config[op].body, value);
    if (e) return e;
  }
  return checkTemplates(config);
}

function checkTemplates(config: RequestTransformerConfig): string | undefined {
  const fields: [string, readonly string[]][] = [];
  for (const op of ['rename', 'replace', 'add', 'append'] as const) {
    for (const target of ['headers', 'querystring', 'body'] as const) fields.push([`config.${op}.${target}`, config[op][target]]);
  }
  for (const [field, entries] of fields) {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const value = entry.slice(entry.indexOf(':')).replace(/^:+/, '');
      try {
        compileTemplate(value);
      } catch (e) {
        if (e instanceof TemplateError) return `${field}[${i}]: ${e.message}`;
        throw e;
      }
    }
  }
  if (config.replace.uri !== undefined) {
    try {
      compileTemplate(config.replace.uri);
    } catch (e) {
      if (e instanceof TemplateError) return `config.replace.uri: ${e.message}`;
      throw e;
    }
  }
  return undefined;
}
