import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';

/** One Ajv instance per process is fine: it holds compiled validators, not request state. */
function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
  ajv.addVocabulary(['x-message']);
  return ajv;
}

const validators = new WeakMap<TSchema, ValidateFunction>();
let sharedAjv: Ajv | undefined;

/** Compiles (once per schema object) and returns the validator. */
export function validatorFor(schema: TSchema): ValidateFunction {
  let v = validators.get(schema);
  if (!v) {
    sharedAjv ??= createAjv();
    v = sharedAjv.compile(schema);
    validators.set(schema, v);
  }
  return v;
}

/** "/services/2/routes/0/paths/1" -> "services[2].routes[0].paths[1]" */
export function formatPath(prefix: string, pointer: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

function describe(err: ErrorObject): { at: string; message: string } {
  const custom = (err.parentSchema as Record<string, unknown> | undefined)?.['x-message'];
  switch (err.keyword) {
    case 'required':
      return { at: `/${(err.params as { missingProperty: string }).missingProperty}`, message: 'required field missing' };
    case 'additionalProperties':
      return { at: `/${(err.params as { additionalProperty: string }).additionalProperty}`, message: 'unknown field' };
    case 'enum':
    case 'const':
      return { at: '', message: typeof custom === 'string' ? custom : `must be one of: ${((err.params as { allowedValues?: unknown[] }).allowedValues ?? [(err.params as { allowedValue: unknown }).allowedValue]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'anyOf': {
      if (typeof custom === 'string') return { at: '', message: custom };
      const branches = ((err.parentSchema as { anyOf?: { const?: unknown }[] } | undefined)?.anyOf ?? []);
      if (branches.length && branches.every((b) => 'const' in b)) {
        return { at: '', message: `must be one of: ${branches.map((b) => String(b.const)).join(', ')}` };
      }
      return { at: '', message: 'invalid value' };
    }
    default:
      return { at: '', message: typeof custom === 'string' ? custom : (err.message ?? 'invalid value') };
  }
}

/**
 * Validates `value` against `schema` (defaults are filled in place) and returns one message per
 * bad field, each prefixed with its path, e.g. `services[0].port: must be <= 65535`.
 */
export function validateAgainst(schema: TSchema, value: unknown, prefix: string): string[] {
  const validate = validatorFor(schema);
  if (validate(value)) return [];
  const out = new Set<string>();
  const errors = validate.errors ?? [];
  // A failed union reports every branch; keep the union's own message when it has one.
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const err of errors) {
    if (err.keyword !== 'anyOf' && unionPaths.has(err.instancePath)) continue;
    const { at, message } = describe(err);
    out.add(`${formatPath(prefix, err.instancePath + at) || '(root)'}: ${message}`);
  }
  return [...out];
}
