import type { TSchema } from '@sinclair/typebox';
import { ConsumerEntity, PluginEntity, RouteEntity, ServiceEntity } from '../config/schema.js';
import { AclEntry, BasicAuthCredential, HmacAuthCredential, JwtSecret, KeyAuthCredential } from '../config/credentials.js';

/**
 * The entity tables of the admin API, as they live in the declarative document: where they sit
 * (top level, or nested under a parent), what identifies them, what they refer to. One table of
 * facts drives the index, the views, the endpoints and the cascades.
 */

export type TableName =
  | 'services'
  | 'routes'
  | 'consumers'
  | 'plugins'
  | 'upstreams'
  | 'targets'
  | 'certificates'
  | 'snis'
  | 'ca_certificates'
  | 'keyauth_credentials'
  | 'basicauth_credentials'
  | 'jwt_secrets'
  | 'hmacauth_credentials'
  | 'acls';

export type ForeignField = 'service' | 'route' | 'consumer' | 'upstream' | 'certificate';

export interface ForeignKey {
  field: ForeignField;
  table: TableName;
  required: boolean;
  /** Deleting the parent: remove this entity too (Kong's cascade), or refuse (restrict). */
  onDelete: 'cascade' | 'restrict';
}

export interface Table {
  name: TableName;
  /** Schema of one entity in the declarative format (undefined: free-form, checked by `check`). */
  schema: TSchema | undefined;
  /** Besides the id, what a URL may name the entity by (Kong's endpoint_key). */
  endpointKey: string | undefined;
  /** Fields unique across the table (or within the parent when `uniqueWithin` is set). */
  unique: string[];
  uniqueWithin?: ForeignField;
  foreign: ForeignKey[];
  /** Child tables that may sit nested in this entity: document key -> table. */
  nested: Partial<Record<string, TableName>>;
  /** The schema has created_at / updated_at fields (others keep timestamps beside the document). */
  docTimestamps: { created: boolean; updated: boolean };
  /** The path segment of the collection in the admin API. */
  path: string;
  /** The path segment under /consumers/{c}/ (credentials only). */
  consumerPath?: string;
  /** Fields Kong lists with null when unset (so views show every field). */
  nullable: string[];
}

const CREDENTIAL_COMMON = ['tags'];

function credential(name: TableName, schema: TSchema, path: string, consumerPath: string, endpointKey: string, unique: string[], nullable: string[]): Table {
  return {
    name,
    schema,
    endpointKey,
    unique,
    ...(name === 'acls' ? { uniqueWithin: 'consumer' as const } : {}),
    foreign: [{ field: 'consumer', table: 'consumers', required: true, onDelete: 'cascade' }],
    nested: {},
    docTimestamps: { created: true, updated: false },
    path,
    consumerPath,
    nullable: [...CREDENTIAL_COMMON, ...nullable],
  };
}

export const TABLES: Record<TableName, Table> = {
  services: {
    name: 'services',
    schema: ServiceEntity,
    endpointKey: 'name',
    unique: ['name'],
    foreign: [],
    nested: { routes: 'routes', plugins: 'plugins' },
    docTimestamps: { created: true, updated: true },
    path: 'services',
    nullable: ['name', 'path', 'tags', 'client_certificate', 'tls_verify', 'tls_verify_depth', 'ca_certificates'],
  },
  routes: {
    name: 'routes',
    schema: RouteEntity,
    endpointKey: 'name',
    unique: ['name'],
    foreign: [{ field: 'service', table: 'services', required: false, onDelete: 'restrict' }],
    nested: { plugins: 'plugins' },
    docTimestamps: { created: true, updated: true },
    path: 'routes',
    nullable: ['name', 'methods', 'hosts', 'paths', 'headers', 'snis', 'sources', 'destinations', 'tags', 'service'],
  },
  consumers: {
    name: 'consumers',
    schema: ConsumerEntity,
    endpointKey: 'username',
    unique: ['username', 'custom_id'],
    foreign: [],
    nested: {
      plugins: 'plugins',
      keyauth_credentials: 'keyauth_credentials',
      basicauth_credentials: 'basicauth_credentials',
      jwt_secrets: 'jwt_secrets',
      hmacauth_credentials: 'hmacauth_credentials',
      acls: 'acls',
    },
    docTimestamps: { created: true, updated: true },
    path: 'consumers',
    nullable: ['username', 'custom_id', 'tags'],
  },
  plugins: {
    name: 'plugins',
    schema: PluginEntity,
    endpointKey: undefined,
    unique: [],
    foreign: [
      { field: 'service', table: 'services', required: false, onDelete: 'cascade' },
      { field: 'route', table: 'routes', required: false, onDelete: 'cascade' },
      { field: 'consumer', table: 'consumers', required: false, onDelete: 'cascade' },
    ],
    nested: {},
    docTimestamps: { created: false, updated: false },
    path: 'plugins',
    nullable: ['instance_name', 'service', 'route', 'consumer', 'tags', 'ordering'],
  },
  upstreams: {
    name: 'upstreams',
    schema: undefined,
    endpointKey: 'name',
    unique: ['name'],
    foreign: [],
    nested: { targets: 'targets' },
    docTimestamps: { created: true, updated: true },
    path: 'upstreams',
    nullable: ['tags', 'host_header', 'client_certificate', 'hash_on_header', 'hash_fallback_header', 'hash_on_cookie', 'hash_on_query_arg', 'hash_fallback_query_arg', 'hash_on_uri_capture', 'hash_fallback_uri_capture'],
  },
  targets: {
    name: 'targets',
    schema: undefined,
    endpointKey: 'target',
    unique: ['target'],
    uniqueWithin: 'upstream',
    foreign: [{ field: 'upstream', table: 'upstreams', required: true, onDelete: 'cascade' }],
    nested: {},
    docTimestamps: { created: true, updated: true },
    path: 'targets',
    nullable: ['tags'],
  },
  certificates: {
    name: 'certificates',
    schema: undefined,
    endpointKey: undefined,
    unique: [],
    foreign: [],
    nested: { snis: 'snis' },
    docTimestamps: { created: true, updated: true },
    path: 'certificates',
    nullable: ['tags', 'cert_alt', 'key_alt'],
  },
  snis: {
    name: 'snis',
    schema: undefined,
    endpointKey: 'name',
    unique: ['name'],
    foreign: [{ field: 'certificate', table: 'certificates', required: true, onDelete: 'cascade' }],
    nested: {},
    docTimestamps: { created: true, updated: true },
    path: 'snis',
    nullable: ['tags'],
  },
  ca_certificates: {
    name: 'ca_certificates',
    schema: undefined,
    endpointKey: undefined,
    unique: [],
    foreign: [],
    nested: {},
    docTimestamps: { created: true, updated: true },
    path: 'ca_certificates',
    nullable: ['tags', 'cert_digest'],
  },
  keyauth_credentials: credential('keyauth_credentials', KeyAuthCredential, 'key-auths', 'key-auth', 'key', ['key'], ['ttl']),
  basicauth_credentials: credential('basicauth_credentials', BasicAuthCredential, 'basic-auths', 'basic-auth', 'username', ['username'], []),
  jwt_secrets: credential('jwt_secrets', JwtSecret, 'jwts', 'jwt', 'key', ['key'], ['rsa_public_key']),
  hmacauth_credentials: credential('hmacauth_credentials', HmacAuthCredential, 'hmac-auths', 'hmac-auth', 'username', ['username'], []),
  acls: credential('acls', AclEntry, 'acls', 'acls', 'group', ['group'], []),
};

export const CREDENTIAL_TABLE_NAMES: TableName[] = ['keyauth_credentials', 'basicauth_credentials', 'jwt_secrets', 'hmacauth_credentials', 'acls'];

/** Document order of the tables (parents before children, as the index walks them). */
export const TABLE_ORDER: TableName[] = ['services', 'routes', 'consumers', 'upstreams', 'targets', 'certificates', 'snis', 'ca_certificates', ...CREDENTIAL_TABLE_NAMES, 'plugins'];

/** Admin collection path -> table (top-level collections). */
export const BY_PATH: ReadonlyMap<string, Table> = new Map(Object.values(TABLES).map((t) => [t.path, t]));

/** Child collections under a parent entity in the admin API: parent table -> path segment -> child table. */
export const CHILD_PATHS: Partial<Record<TableName, Record<string, TableName>>> = {
  services: { routes: 'routes', plugins: 'plugins' },
  routes: { plugins: 'plugins' },
  consumers: {
    plugins: 'plugins',
    'key-auth': 'keyauth_credentials',
    'basic-auth': 'basicauth_credentials',
    jwt: 'jwt_secrets',
    'hmac-auth': 'hmacauth_credentials',
    acls: 'acls',
  },
  upstreams: { targets: 'targets' },
  certificates: { snis: 'snis' },
};

/** The foreign field through which `child` belongs to `parent` (e.g. routes -> service). */
export function foreignFieldTo(child: TableName, parent: TableName): ForeignField | undefined {
  return TABLES[child].foreign.find((f) => f.table === parent)?.field;
}
