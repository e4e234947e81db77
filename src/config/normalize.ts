import { isIP } from 'node:net';
import type { Static } from '@sinclair/typebox';
import { DeclarativeConfigSchema, type DeclarativeConfig, type PluginConfig, type RouteConfig, type ServiceConfig } from './schema.js';
import { validateAgainst } from './validate.js';
import { ConfigError } from '../lib/errors.js';
import { declarativeId } from '../lib/uuid.js';
import { checkIpOrCidr } from '../lib/ip-matcher.js';
import type { PluginDefinition } from '../plugins/types.js';
import { CREDENTIAL_TABLES, type CredentialType } from './credentials.js';
import { randomBytes } from 'node:crypto';
import { checkCertificates, type NormalCertificate } from '../tls/certificates.js';
import { checkUpstreams, type NormalUpstream } from '../upstream/normalize.js';
import { checkCaCertificates, type NormalCaCertificate } from '../tls/ca-certificates.js';
import { checkTlsPolicy, DEFAULT_TLS_POLICY, type TlsPolicy } from '../tls/policy.js';
import { refKey } from '../lib/ref-key.js';

export interface NormalService {
  id: string;
  at: string;
  entity: ServiceConfig;
  protocol: 'http' | 'https';
  host: string;
  port: number;
  path: string | undefined;
  /** Id of the certificate presented to the upstream (client_certificate), https only. */
  clientCertificateId: string | undefined;
}

export interface NormalRoute {
  id: string;
  at: string;
  entity: RouteConfig;
  serviceId: string | undefined;
  /** Position in the config, the last tie-breaker of the router. */
  order: number;
}

export interface NormalPlugin {
  id: string;
  at: string;
  entity: PluginConfig;
  definition: PluginDefinition<any>;
  serviceId: string | undefined;
  routeId: string | undefined;
  consumerId: string | undefined;
}

export interface NormalConsumer {
  id: string;
  at: string;
  username: string | undefined;
  customId: string | undefined;
  tags: string[];
}

export interface NormalCredential {
  id: string;
  at: string;
  type: CredentialType;
  consumerId: string;
  fields: Record<string, unknown>;
}

/** The config after validation: flat entity lists with ids and resolved references. */
export interface NormalConfig {
  config: DeclarativeConfig;
  services: NormalService[];
  routes: NormalRoute[];
  plugins: NormalPlugin[];
  consumers: NormalConsumer[];
  credentials: NormalCredential[];
  certificates: NormalCertificate[];
  upstreams: NormalUpstream[];
  caCertificates: NormalCaCertificate[];
  /** `_gatehouse.ssl_protocols` and `ssl_ciphers`, checked. */
  tlsPolicy: TlsPolicy;
}

/** Service fields that only mean something for an https upstream (Kong refuses them otherwise). */
const UPSTREAM_TLS_FIELDS = ['tls_verify', 'tls_verify_depth', 'ca_certificates', 'client_certificate'] as const;

const HOST_PATTERN = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*(\.\*)?(:\d{1,5})?$/;
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** Kong's PCRE named groups (?P<name>...) become JS (?<name>...). */
export function toJsRegexSource(pcre: string): string {
  return pcre.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>');
}

export function checkRoutePath(path: string): string | undefined {
  if (path.startsWith('~')) {
    try {
      new RegExp(toJsRegexSource(path.slice(1)));
    } catch (err) {
      return `invalid regex: ${(err as Error).message}`;
    }
    return undefined;
  }
  if (!path.startsWith('/')) return 'must start with "/" or "~"';
  if (/[\s\x00-\x1f\x7f?#]/.test(path)) return 'must not contain whitespace, control characters, "?" or "#"';
  return undefined;
}

export function checkHost(host: string): string | undefined {
  const lower = host.toLowerCase();
  if (host.includes('*') && (host.indexOf('*') !== host.lastIndexOf('*') || !(lower.startsWith('*.') || /\.\*(:\d+)?$/.test(lower)))) {
    return 'invalid wildcard: only one "*" at the start or end of the host';
  }
  const bare = lower.replace(/:\d{1,5}$/, '');
  if (isIP(bare) || isIP(bare.replace(/^\[|\]$/g, ''))) return undefined;
  if (!HOST_PATTERN.test(lower)) return 'invalid hostname';
  return undefined;
}

function parseServiceUrl(url: string): { protocol: string; host: string; port: number | undefined; path: string | undefined } | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'invalid URL';
  }
  const protocol = u.protocol.replace(/:$/, '');
  if (u.username || u.password) return 'must not contain credentials';
  if (u.search || u.hash) return 'must not contain a query string or fragment';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) return 'missing host';
  return { protocol, host, port: u.port ? Number(u.port) : undefined, path: u.pathname && url.replace(/^[a-z]+:\/\/[^/]*/i, '') ? u.pathname : undefined };
}


/**
 * Validates a parsed config document whole and returns the flat model, or throws ConfigError
 * listing every bad field by path. The input object is not modified.
 */
export function normalizeConfig(document: unknown, plugins: ReadonlyMap<string, PluginDefinition<any>>): NormalConfig {
  if (!document || typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigError(['(root): expected a mapping with "_format_version" and entity lists']);
  }
  const config = structuredClone(document) as Static<typeof DeclarativeConfigSchema>;
  const errors = validateAgainst(DeclarativeConfigSchema, config, '');
  const schemaErrors = errors.length;
  try {
    return checkEntities(config, plugins, errors);
  } catch (err) {
    // The entity checks assume a schema-valid document; with schema errors, report those.
    if (schemaErrors && !(err instanceof ConfigError)) throw new ConfigError(errors);
    throw err;
  }
}

function checkEntities(config: DeclarativeConfig, plugins: ReadonlyMap<string, PluginDefinition<any>>, errors: string[]): NormalConfig {

  const services: NormalService[] = [];
  const routes: NormalRoute[] = [];
  const pluginList: NormalPlugin[] = [];
  const consumers: NormalConsumer[] = [];
  const credentials: NormalCredential[] = [];
  const pendingCredentials: { table: CredentialType; fields: Record<string, unknown>; at: string; consumerId: string }[] = [];
  const serviceByKey = new Map<string, string>();
  const routeByKey = new Map<string, string>();
  const consumerByKey = new Map<string, string>();
  const ids = new Map<string, string>();
  const err = (at: string, message: string) => errors.push(`${at}: ${message}`);
  // Ids of certificates named by services and plugins, checked once those tables are read.
  const references: { at: string; table: 'certificates' | 'ca_certificates'; id: string }[] = [];

  const claimId = (table: string, at: string, id: string | undefined, key: string | undefined): string => {
    const resolved = id ?? declarativeId(table, key ?? at);
    const prev = ids.get(`${table}:${resolved}`);
    // A derived id repeats only when the name does, which claimName reports.
    if (prev && id !== undefined) err(`${at}.id`, `duplicate id ${resolved} (also used by ${prev})`);
    ids.set(`${table}:${resolved}`, at);
    return resolved;
  };
  const names = new Map<Map<string, string>, Set<string>>();
  const claimName = (map: Map<string, string>, at: string, field: string, value: string | undefined, id: string) => {
    if (value === undefined) return;
    let taken = names.get(map);
    if (!taken) names.set(map, (taken = new Set()));
    if (taken.has(value)) err(`${at}.${field}`, `UNIQUE violation: "${value}" is already used`);
    taken.add(value);
    map.set(value, id);
  };

  // Services first, so routes and plugins can refer to them by name.
  const pendingRoutes: { entity: RouteConfig; at: string; serviceId: string | undefined; serviceRef: string | undefined }[] = [];
  const pendingPlugins: { entity: PluginConfig; at: string; serviceId?: string; routeAt?: string; consumerId?: string }[] = [];

  config.services.forEach((svc, i) => {
    const at = `services[${i}]`;
    const id = claimId('services', at, svc.id, svc.name);
    claimName(serviceByKey, at, 'name', svc.name, id);
    serviceByKey.set(id, id);
    let protocol = svc.protocol as string | undefined;
    let host = svc.host;
    let port = svc.port;
    let path = svc.path;
    if (svc.url !== undefined) {
      if (svc.host !== undefined || svc.protocol !== undefined || svc.port !== undefined || svc.path !== undefined) {
        err(`${at}.url`, 'cannot be set together with protocol, host, port or path');
      }
      const parsed = parseServiceUrl(svc.url);
      if (typeof parsed === 'string') err(`${at}.url`, parsed);
      else ({ protocol, host, port, path } = { protocol: parsed.protocol, host: parsed.host, port: parsed.port, path: parsed.path });
    } else if (host === undefined) {
      err(`${at}.host`, 'required field missing (set url, or protocol/host/port/path)');
    }
    protocol ??= 'http';
    if (protocol !== 'http' && protocol !== 'https') {
      err(svc.url !== undefined ? `${at}.url` : `${at}.protocol`, `protocol "${protocol}" is not supported yet (http and https are)`);
    }
    if (host !== undefined && checkHost(host)) err(`${at}.host`, `invalid host "${host}"`);
    for (const field of UPSTREAM_TLS_FIELDS) {
      if (svc[field] !== undefined && protocol !== 'https') err(`${at}.${field}`, 'can only be set when the protocol is "https"');
    }
    svc.ca_certificates?.forEach((caId, j) => references.push({ at: `${at}.ca_certificates[${j}]`, table: 'ca_certificates', id: caId }));
    const clientCertificateId = svc.client_certificate === undefined ? undefined : typeof svc.client_certificate === 'string' ? svc.client_certificate : svc.client_certificate.id;
    if (clientCertificateId !== undefined) references.push({ at: `${at}.client_certificate`, table: 'certificates', id: clientCertificateId });
    if (path !== undefined && /[\s\x00-\x1f\x7f?#]/.test(path)) err(`${at}.path`, 'must not contain whitespace, control characters, "?" or "#"');
    services.push({
      id,
      at,
      entity: svc,
      protocol: protocol === 'https' ? 'https' : 'http',
      host: host ?? '',
      port: port ?? DEFAULT_PORTS[protocol] ?? 80,
      path,
      clientCertificateId,
    });
    svc.routes?.forEach((route, j) => pendingRoutes.push({ entity: route as RouteConfig, at: `${at}.routes[${j}]`, serviceId: id, serviceRef: undefined }));
    svc.plugins?.forEach((p, j) => pendingPlugins.push({ entity: p, at: `${at}.plugins[${j}]`, serviceId: id }));
  });
  config.routes.forEach((route, i) => {
    pendingRoutes.push({ entity: route, at: `routes[${i}]`, serviceId: undefined, serviceRef: refKey(route.service) });
  });

  pendingRoutes.forEach(({ entity: route, at, serviceId, serviceRef }, order) => {
    const id = claimId('routes', at, route.id, route.name);
    claimName(routeByKey, at, 'name', route.name, id);
    routeByKey.set(id, id);
    let resolvedService = serviceId;
    if (serviceRef !== undefined) {
      resolvedService = serviceByKey.get(serviceRef);
      if (!resolvedService) err(`${at}.service`, `no service named "${serviceRef}"`);
    }
    const r = route;
    if (!r.hosts?.length && !r.paths?.length && !r.methods?.length && !r.headers && !r.snis?.length) {
      err(at, 'must set one of "methods", "hosts", "headers", "paths", "snis"');
    }
    r.paths?.forEach((p, k) => {
      const problem = checkRoutePath(p);
      if (problem) err(`${at}.paths[${k}]`, problem);
    });
    r.hosts?.forEach((h, k) => {
      const problem = checkHost(h);
      if (problem) err(`${at}.hosts[${k}]`, problem);
    });
    for (const [name, values] of Object.entries(r.headers ?? {})) {
      if (name.toLowerCase() === 'host') err(`${at}.headers.${name}`, 'use "hosts" to match on the Host header');
      if (!values.length) err(`${at}.headers.${name}`, 'must list at least one value');
      values.forEach((v, k) => {
        if (v.startsWith('~*')) {
          try {
            new RegExp(toJsRegexSource(v.slice(2)), 'i');
          } catch (e) {
            err(`${at}.headers.${name}[${k}]`, `invalid regex: ${(e as Error).message}`);
          }
        }
      });
    }
    if (r.snis?.length && !r.protocols.some((p) => p === 'https' || p === 'tls' || p === 'grpcs')) {
      err(`${at}.snis`, 'can only be set when "protocols" includes "https"');
    }
    const unsupported = r.protocols.filter((p) => p !== 'http' && p !== 'https');
    if (unsupported.length) err(`${at}.protocols`, `protocol "${unsupported[0]}" is not supported yet (http and https are)`);
    routes.push({ id, at, entity: r, serviceId: resolvedService, order });
    r.plugins?.forEach((p, j) => pendingPlugins.push({ entity: p, at: `${at}.plugins[${j}]`, routeAt: id }));
  });

  config.consumers.forEach((c, i) => {
    const at = `consumers[${i}]`;
    if (c.username === undefined && c.custom_id === undefined) err(at, 'at least one of "username" or "custom_id" is required');
    const id = claimId('consumers', at, c.id, c.username ?? c.custom_id);
    claimName(consumerByKey, at, 'username', c.username, id);
    consumerByKey.set(id, id);
    if (c.custom_id !== undefined) consumerByKey.set(c.custom_id, id);
    consumers.push({ id, at, username: c.username, customId: c.custom_id, tags: c.tags ?? [] });
    c.plugins?.forEach((p, j) => pendingPlugins.push({ entity: p, at: `${at}.plugins[${j}]`, consumerId: id }));
    for (const table of Object.keys(CREDENTIAL_TABLES) as CredentialType[]) {
      (c[table] as Record<string, unknown>[] | undefined)?.forEach((fields, j) => pendingCredentials.push({ table, fields, at: `${at}.${table}[${j}]`, consumerId: id }));
    }
  });
  for (const table of Object.keys(CREDENTIAL_TABLES) as CredentialType[]) {
    (config[table] as Record<string, unknown>[]).forEach((fields, j) => {
      const at = `${table}[${j}]`;
      const ref = refKey(fields.consumer);
      if (ref === undefined) return err(`${at}.consumer`, 'required field missing');
      const consumerId = consumerByKey.get(ref);
      if (!consumerId) return err(`${at}.consumer`, `no consumer named "${ref}"`);
      pendingCredentials.push({ table, fields, at, consumerId });
    });
  }
  const credentialKeys = new Map<string, string>();
  for (const { table, fields, at, consumerId } of pendingCredentials) {
    // Kong generates missing keys and secrets.
    if (table === 'keyauth_credentials' && fields.key === undefined) fields.key = randomBytes(16).toString('hex');
    if (table === 'jwt_secrets') {
      fields.key ??= randomBytes(16).toString('hex');
      if (String(fields.algorithm).startsWith('HS')) fields.secret ??= randomBytes(16).toString('hex');
      else if (typeof fields.rsa_public_key !== 'string') err(`${at}.rsa_public_key`, `required for algorithm ${String(fields.algorithm)}`);
    }
    if (table === 'hmacauth_credentials' && fields.secret === undefined) fields.secret = randomBytes(16).toString('hex');
    const keyField = CREDENTIAL_TABLES[table].keyField;
    const value = String(fields[keyField]);
    const unique = table === 'acls' ? `${table}:${consumerId}:${value}` : `${table}:${value}`;
    if (credentialKeys.has(unique)) err(`${at}.${keyField}`, `UNIQUE violation: "${table === 'keyauth_credentials' ? '<key>' : value}" is already used at ${credentialKeys.get(unique)}`);
    credentialKeys.set(unique, at);
    // A key-auth id must not be derived from the key itself: the id goes upstream as X-Credential-Identifier.
    const idKey = table === 'acls' ? `${consumerId}:${value}` : table === 'keyauth_credentials' ? `${consumerId}:${at}` : value;
    const id = claimId(table, at, fields.id as string | undefined, idKey);
    credentials.push({ id, at, type: table, consumerId, fields });
  }
  config.plugins.forEach((p, i) => pendingPlugins.push({ entity: p, at: `plugins[${i}]` }));

  const pluginKeys = new Map<string, string>();
  for (const pending of pendingPlugins) {
    const { entity: p, at } = pending;
    const definition = plugins.get(p.name);
    if (!definition) {
      err(`${at}.name`, `plugin "${p.name}" is not installed (known: ${[...plugins.keys()].sort().join(', ')})`);
      continue;
    }
    let serviceId = pending.serviceId;
    let routeId = pending.routeAt;
    let consumerId = pending.consumerId;
    const serviceRef = refKey(p.service);
    const routeRef = refKey(p.route);
    const consumerRef = refKey(p.consumer);
    if (serviceRef !== undefined) {
      serviceId = serviceByKey.get(serviceRef);
      if (!serviceId) err(`${at}.service`, `no service named "${serviceRef}"`);
    }
    if (routeRef !== undefined) {
      routeId = routeByKey.get(routeRef);
      if (!routeId) err(`${at}.route`, `no route named "${routeRef}"`);
    }
    if (consumerRef !== undefined) {
      consumerId = consumerByKey.get(consumerRef);
      if (!consumerId) err(`${at}.consumer`, `no consumer named "${consumerRef}"`);
    }
    const configErrors = validateAgainst(definition.schema, p.config, `${at}.config`);
    configErrors.forEach((e) => errors.push(e));
    if (!configErrors.length && definition.check) {
      const problem = definition.check(p.config);
      if (problem) errors.push(problem.startsWith('config') ? `${at}.${problem}` : `${at}.config: ${problem}`);
    }
    if (!configErrors.length && definition.references) {
      for (const ref of definition.references(p.config)) references.push({ at: `${at}.config.${ref.field}`, table: ref.table, id: ref.id });
    }
    const key = `${p.name}:${routeId ?? ''}:${serviceId ?? ''}:${consumerId ?? ''}:${p.instance_name ?? ''}`;
    if (pluginKeys.has(key)) err(at, `plugin "${p.name}" is already configured on the same scope at ${pluginKeys.get(key)}`);
    pluginKeys.set(key, at);
    const id = claimId('plugins', at, p.id, key);
    pluginList.push({ id, at, entity: p, definition, serviceId, routeId, consumerId });
  }

  (config._gatehouse.trusted_ips ?? []).forEach((entry, i) => {
    const problem = checkIpOrCidr(entry);
    if (problem) err(`_gatehouse.trusted_ips[${i}]`, problem);
  });

  config._gatehouse.dns_resolver.forEach((entry, i) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(entry) ?? (isIP(entry) === 6 ? [entry, entry, undefined, undefined] : null);
    const ip = m ? (m[1] ?? m[2]) : undefined;
    const port = m?.[3] === undefined ? 53 : Number(m[3]);
    if (!ip || !isIP(ip) || port < 1 || port > 65535) err(`_gatehouse.dns_resolver[${i}]`, 'must be "ip" or "ip:port" ("[v6]:port")');
  });

  const certificates = checkCertificates(config.certificates, config.snis, err, claimId);
  const upstreams = checkUpstreams(config.upstreams, config.targets, err, claimId);
  const caCertificates = checkCaCertificates(config.ca_certificates, err, claimId, Date.now());
  // An entity with an error of its own still exists: a reference to it is not a second error.
  const known = {
    certificates: new Set(certificates.map((c) => c.id)),
    ca_certificates: new Set([...caCertificates.map((c) => c.id), ...config.ca_certificates.flatMap((c) => c.id ?? [])]),
  };
  for (const ref of references) {
    if (!known[ref.table].has(ref.id)) err(ref.at, `no ${ref.table === 'certificates' ? 'certificate' : 'ca_certificate'} with id "${ref.id}"`);
  }

  const tlsPolicy = checkTlsPolicy(config._gatehouse, err) ?? DEFAULT_TLS_POLICY;

  if (errors.length) throw new ConfigError([...new Set(errors)]);
  return { config, services, routes, plugins: pluginList, consumers, credentials, certificates, caCertificates, upstreams, tlsPolicy };
}
