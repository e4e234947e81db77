import { createHash, createHmac } from 'node:crypto';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous } from '../auth-common/anonymous.js';
import { simpleChallenge } from '../auth-common/challenge.js';
import { parseHttpDate } from '../auth-common/http-date.js';
import { decodeBase64, firstHeader } from '../auth-common/request.js';
import { digestsEqual, secretsEqual } from '../auth-common/secrets.js';
import type { HmacAuthConfig } from './schema.js';

const DIGESTS: Record<string, string> = { 'hmac-sha1': 'sha1', 'hmac-sha256': 'sha256', 'hmac-sha384': 'sha384', 'hmac-sha512': 'sha512' };

const SIGNATURE_NOT_VALID = 'HMAC signature cannot be verified';
const SIGNATURE_NOT_SAME = 'HMAC signature does not match';
const DATE_REQUIRED = 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication';

// [^"] instead of Kong's greedy (.+): the same for well-formed headers, and linear on hostile ones.
const HMAC_FIELDS = /\s*[Hh]mac\s*username="([^"]+)",\s*algorithm="([^"]+)",\s*headers="([^"]+)",\s*signature="([^"]+)"/;

export interface HmacParams {
  username: string;
  algorithm: string;
  headers: string[];
  signature: string;
}

export function parseHmacHeader(value: string | undefined): HmacParams | undefined {
  if (value === undefined) return undefined;
  const m = HMAC_FIELDS.exec(value);
  if (!m) return undefined;
  return { username: m[1]!, algorithm: m[2]!, headers: m[3]!.split(' '), signature: m[4]! };
}

/** The string Kong signs: `name: value` per listed header (`name:` when absent), `request-line` as `METHOD uri HTTP/x.y`. */
export function signingString(ex: Exchange, headers: readonly string[], uri: string): string {
  const lines: string[] = [];
  for (const name of headers) {
    const value = firstHeader(ex, name);
    if (value !== undefined) lines.push(`${name}: ${value}`);
    else if (name === 'request-line') lines.push(`${ex.req.method} ${uri} HTTP/${Number(ex.req.httpVersion).toFixed(1)}`);
    else lines.push(`${name}:`);
  }
  return lines.join('\n');
}

export function create(config: HmacAuthConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('hmac-auth', config.anonymous, deps);
  const challenge = { 'www-authenticate': simpleChallenge('hmac', config.realm) };
  const byUsername = deps.consumers.indexBy('hmacauth_credentials', 'username');
  const algorithms = new Set<string>(config.algorithms);
  const unauthorized = (ex: Exchange, message: string, reason: string): LocalReply => errorReply(ex, 401, message, `hmac-auth: ${reason}`, challenge);

  function dateWithinSkew(ex: Exchange, name: string): boolean {
    const value = firstHeader(ex, name);
    const t = value === undefined ? undefined : parseHttpDate(value);
    return t !== undefined && Math.abs(Math.floor(Date.now() / 1000) - t) <= config.clock_skew;
  }

  function paramsProblem(p: HmacParams | undefined): string | undefined {
    if (!p) return 'no hmac parameters';
    for (const h of config.enforce_headers) if (!p.headers.includes(h)) return 'enforced header not signed';
    if (!algorithms.has(p.algorithm)) return 'algorithm not allowed';
    return undefined;
  }

  function bodyMatches(ex: Exchange): boolean {
    const body = ex.requestBody ?? Buffer.alloc(0);
    const digest = firstHeader(ex, 'digest');
    if (digest === undefined) return body.length === 0;
    return secretsEqual(`SHA-256=${createHash('sha256').update(body).digest('base64')}`, digest);
  }

  function authenticate(ex: Exchange): LocalReply | undefined {
    const authorization = firstHeader(ex, 'authorization');
    const proxyAuthorization = firstHeader(ex, 'proxy-authorization');
    if (authorization === undefined && proxyAuthorization === undefined) return unauthorized(ex, 'Unauthorized', 'no credentials');
    if (!dateWithinSkew(ex, 'x-date') && !dateWithinSkew(ex, 'date')) return unauthorized(ex, DATE_REQUIRED, 'date missing or skewed');

    let params = parseHmacHeader(proxyAuthorization);
    if (!params) {
      params = parseHmacHeader(authorization);
      if (config.hide_credentials) delete ex.upstreamHeaders.authorization;
    } else if (config.hide_credentials) {
      delete ex.upstreamHeaders['proxy-authorization'];
    }
    const problem = paramsProblem(params);
    if (problem || !params) return unauthorized(ex, SIGNATURE_NOT_VALID, problem ?? 'no hmac parameters');
    const credential = byUsername.get(params.username);
    if (!credential) return unauthorized(ex, SIGNATURE_NOT_VALID, 'unknown user');

    const given = decodeBase64(params.signature) ?? Buffer.alloc(0);
    const secret = String(credential.fields.secret);
    const digest = DIGESTS[params.algorithm]!;
    const sign = (uri: string) => createHmac(digest, secret).update(signingString(ex, params.headers, uri)).digest();
    // Kong accepts the request URI with its query, and (deprecated) the normalised path alone.
    const withQuery = digestsEqual(sign(ex.req.url ?? '/'), given);
    const pathOnly = digestsEqual(sign(ex.path), given);
    if (!withQuery && !pathOnly) return unauthorized(ex, SIGNATURE_NOT_SAME, 'signature mismatch');
    if (config.validate_request_body && !bodyMatches(ex)) return unauthorized(ex, SIGNATURE_NOT_SAME, 'body digest mismatch');

    setConsumer(ex, credential.consumer, credential, params.username);
    return undefined;
  }

  return {
    needsRequestBody() {
      return config.validate_request_body;
    },

    access(ex): Outcome {
      if (anonymous.skip(ex)) return undefined;
      const failure = authenticate(ex);
      return failure ? anonymous.fail(ex, failure) : undefined;
    },
  };
}
