import type { Credential } from '../../config/consumers.js';
import type { Exchange, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous } from '../auth-common/anonymous.js';
import { RequestBodyFields } from '../auth-common/body.js';
import { simpleChallenge } from '../auth-common/challenge.js';
import { headerValues, queryArgs, removeQueryArg, removeUpstreamHeader } from '../auth-common/request.js';
import { Fingerprinter } from '../auth-common/secrets.js';
import type { KeyAuthConfig } from './schema.js';

interface KeyEntry {
  credential: Credential;
  /** ms since the epoch; Infinity when the key has no ttl. */
  expiresAt: number;
}

type Found = { kind: 'key'; key: string; name: string } | { kind: 'duplicate' } | { kind: 'none' };

export function create(config: KeyAuthConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('key-auth', config.anonymous, deps);
  const challenge = { 'www-authenticate': simpleChallenge('Key', config.realm) };
  const names = config.key_names;
  const lowerNames = names.map((n) => n.toLowerCase());

  // Keys are indexed by a keyed hash: the lookup never compares the secret itself, and a
  // lookup's timing says nothing about stored keys.
  const fingerprints = new Fingerprinter();
  const keys = new Map<string, KeyEntry>();
  const loadedAt = Date.now();
  for (const credential of deps.consumers.credentials('keyauth_credentials')) {
    const key = credential.fields.key;
    if (typeof key !== 'string') continue;
    const ttl = typeof credential.fields.ttl === 'number' ? credential.fields.ttl : 0;
    const createdAt = typeof credential.fields.created_at === 'number' ? credential.fields.created_at * 1000 : loadedAt;
    keys.set(fingerprints.of(key), { credential, expiresAt: ttl > 0 ? createdAt + ttl * 1000 : Infinity });
  }

  /** Kong's search: for each name in order, the header, then the query, then the body. */
  function findKey(ex: Exchange, body: RequestBodyFields | undefined): Found {
    const args = config.key_in_query ? queryArgs(ex) : undefined;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (config.key_in_header) {
        const values = headerValues(ex, lowerNames[i]!);
        if (values !== undefined) {
          if (values.length > 1) return { kind: 'duplicate' };
          return { kind: 'key', key: values[0]!, name };
        }
      }
      const q = args?.get(name);
      if (typeof q === 'string') return { kind: 'key', key: q, name };
      if (Array.isArray(q)) return { kind: 'duplicate' };
      if (body) {
        const b = body.get(name);
        if (b.kind === 'string') return { kind: 'key', key: b.value, name };
        if (b.kind === 'many') return { kind: 'duplicate' };
      }
    }
    return { kind: 'none' };
  }

  function hide(ex: Exchange, name: string, body: RequestBodyFields | undefined): void {
    ex.upstreamQuery = removeQueryArg(ex.upstreamQuery, name);
    removeUpstreamHeader(ex.upstreamHeaders, name.toLowerCase());
    body?.remove(name);
  }

  function authenticate(ex: Exchange): Outcome {
    const body = config.key_in_body ? new RequestBodyFields(ex) : undefined;
    const found = findKey(ex, body);
    if (found.kind === 'duplicate') return errorReply(ex, 401, 'Duplicate API key found', 'key-auth: duplicate key', challenge);
    if (found.kind === 'key' && config.hide_credentials) hide(ex, found.name, body);
    if (found.kind === 'none' || found.key === '') {
      return errorReply(ex, 401, 'No API key found in request', 'key-auth: no key', challenge);
    }
    const entry = keys.get(fingerprints.of(found.key));
    if (!entry || entry.expiresAt <= Date.now()) return errorReply(ex, 401, 'Unauthorized', 'key-auth: invalid key', challenge);
    setConsumer(ex, entry.credential.consumer, entry.credential, entry.credential.id);
    return undefined;
  }

  return {
    needsRequestBody(ex) {
      if (!config.key_in_body) return false;
      if (config.hide_credentials) return true;
      // Only when the key is not in a header or the query already.
      const found = findKey(ex, undefined);
      return found.kind === 'none';
    },

    access(ex) {
      if (!config.run_on_preflight && ex.req.method === 'OPTIONS') return undefined;
      if (anonymous.skip(ex)) return undefined;
      const failure = authenticate(ex);
      return failure ? anonymous.fail(ex, failure) : undefined;
    },
  };
}
