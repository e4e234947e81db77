/**
 * Admin API errors with Kong's bodies (kong/db/errors.lua): `{code, name, message, fields}` and the
 * HTTP status endpoints.lua maps each code to. Thrown by the entity layer, sent by the server.
 */
export class AdminError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(String(body.message ?? status));
    this.name = 'AdminError';
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export const CODES = {
  INVALID_PRIMARY_KEY: 1,
  SCHEMA_VIOLATION: 2,
  PRIMARY_KEY_VIOLATION: 3,
  FOREIGN_KEY_VIOLATION: 4,
  UNIQUE_VIOLATION: 5,
  NOT_FOUND: 6,
  INVALID_OFFSET: 7,
  INVALID_SIZE: 9,
  INVALID_OPTIONS: 11,
  OPERATION_UNSUPPORTED: 12,
  INVALID_DECLARATIVE_CONFIGURATION: 14,
} as const;

export function notFound(): AdminError {
  return new AdminError(404, { message: 'Not found' });
}

export function methodNotAllowed(): AdminError {
  return new AdminError(405, { message: 'Method not allowed' });
}

export function badRequest(message: string): AdminError {
  return new AdminError(400, { message });
}

/** "schema violation (host: required field missing)" / "2 schema violations (a: x; b: y)". */
export function schemaViolation(fields: Record<string, unknown>, pairs: string[], errors?: string[]): AdminError {
  const message = pairs.length === 1 ? `schema violation (${pairs[0]})` : `${pairs.length} schema violations (${pairs.join('; ')})`;
  return new AdminError(400, { code: CODES.SCHEMA_VIOLATION, name: 'schema violation', message, fields, ...(errors ? { errors } : {}) });
}

/** Sets `message` at `path` in a Kong `fields` object: {"config": {"minute": "..."}}, arrays for indexes. */
export function setNested(target: Record<string, unknown>, path: (string | number)[], message: string): void {
  let node: Record<string | number, unknown> = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    let child = node[key];
    if (child === undefined || child === null) {
      child = typeof path[i + 1] === 'number' ? [] : {};
      node[key] = child;
    }
    if (typeof child !== 'object') return;
    node = child as Record<string | number, unknown>;
  }
  const last = path[path.length - 1]!;
  if (node[last] === undefined) node[last] = message;
  if (Array.isArray(node)) for (let i = 0; i < node.length; i++) node[i] ??= null;
}

/** One field, one message: the common case for checks the admin layer makes itself. */
export function fieldViolation(field: string, message: string): AdminError {
  return schemaViolation({ [field]: message }, [`${field}: ${message}`]);
}

function luaish(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : value === null || value === undefined ? 'null' : typeof value === 'object' ? `{${Object.entries(value as object).map(([k, v]) => `${k}=${luaish(v)}`).join(',')}}` : String(value);
}

/** 409 `UNIQUE violation detected on '{name="foo"}'`. */
export function uniqueViolation(fields: Record<string, unknown>): AdminError {
  return new AdminError(409, {
    code: CODES.UNIQUE_VIOLATION,
    name: 'unique constraint violation',
    message: `UNIQUE violation detected on '${luaish(fields)}'`,
    fields,
  });
}

export function primaryKeyViolation(id: string): AdminError {
  return new AdminError(400, { code: CODES.PRIMARY_KEY_VIOLATION, name: 'primary key violation', message: `primary key violation on key '{id="${id}"}'`, fields: { id } });
}

export function invalidPrimaryKey(id: string): AdminError {
  return new AdminError(400, { code: CODES.INVALID_PRIMARY_KEY, name: 'invalid primary key', message: `invalid primary key: '{id="${id}"}'`, fields: { id: 'expected a valid UUID' } });
}

/** A reference to a parent that does not exist. */
export function foreignKeyViolation(field: string, ref: Record<string, unknown>, table: string): AdminError {
  return new AdminError(400, {
    code: CODES.FOREIGN_KEY_VIOLATION,
    name: 'foreign key violation',
    message: `the foreign key '${luaish(ref)}' does not reference an existing '${table}' entity.`,
    fields: { [field]: ref },
  });
}

/** Deleting a parent that children still reference (Kong's "restrict"). */
export function referencedBy(table: string, parent: string): AdminError {
  return new AdminError(400, {
    code: CODES.FOREIGN_KEY_VIOLATION,
    name: 'foreign key violation',
    message: `an existing '${table}' entity references this '${parent}' entity`,
    fields: { '@referenced_by': table },
  });
}

export function invalidOffset(offset: string): AdminError {
  return new AdminError(400, { code: CODES.INVALID_OFFSET, name: 'invalid offset', message: `'${offset}' is not a valid offset: bad offset` });
}

export function invalidSize(max: number): AdminError {
  return new AdminError(400, { code: CODES.INVALID_SIZE, name: 'invalid size', message: `size must be an integer between 1 and ${max}` });
}

export function invalidOptions(options: Record<string, string>): AdminError {
  const pairs = Object.entries(options).map(([k, v]) => `${k}: ${v}`);
  return new AdminError(400, { code: CODES.INVALID_OPTIONS, name: 'invalid options', message: `invalid option (${pairs.join('; ')})`, options });
}

/** Kong DB-less answers writes with this; here: --read-only-admin. */
export function operationUnsupported(verb: string, table: string, byKey?: string): AdminError {
  return new AdminError(405, {
    code: CODES.OPERATION_UNSUPPORTED,
    name: 'operation unsupported',
    message: `cannot ${verb} '${table}' entities${byKey ? ` by '${byKey}'` : ''} when the admin API is read-only (the config file is the only source)`,
  });
}

export function unavailable(message: string): AdminError {
  return new AdminError(503, { message });
}
