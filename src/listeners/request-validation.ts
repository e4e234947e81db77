import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/**
 * The one place that decides whether a request that node's parser (llhttp, strict mode) accepted
 * is valid enough to route and forward, and what the request looks like to everything after the
 * listener. llhttp already rejects malformed framing (CL/TE conflicts, bad chunking, obs-fold,
 * bare CR or LF, invalid header bytes); this adds the rules it leaves to the application.
 * The rules and the choices behind them are listed in docs/security.md ("HTTP/1.1 conformance").
 */
export interface Rejection {
  status: number;
  reason: string;
  /** Extra response headers (Allow on a 405). */
  headers?: Record<string, string>;
}

/** What the proxy answers for: every method except CONNECT and TRACE (RFC 9110 15.5.6 wants Allow on a 405). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * Host = uri-host [ ":" port ] (RFC 9110 7.2): an IP-literal or a reg-name without userinfo or path.
 * "," is a legal reg-name character but makes the value read as a list of hosts, so it is refused.
 */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+;=-]+)(?::(\d{1,5}))?$/;

/**
 * Fields that may appear once. node keeps the first of a repeated one in `req.headers` while the
 * upstream would get every copy (the forwarder copies `rawHeaders`), so a repeat would let the
 * gateway (routing, auth plugins, body parsing) and the upstream read different values.
 */
const SINGLETON_FIELDS = new Set(['host', 'content-length', 'content-type', 'authorization', 'proxy-authorization']);
const CHECKED_NAME_LENGTHS = new Set([...SINGLETON_FIELDS, 'transfer-encoding'].map((n) => n.length));

/**
 * Header names that must not be spelled with "_" instead of "-": framing, hop-by-hop, forwarding and
 * identity headers. CGI-style upstreams (PHP, WSGI, Rack) map "-" and "_" to the same variable, so
 * `X_Forwarded_For` or `Content_Length` would shadow what the gateway sets or checked. Other names
 * with "_" pass unchanged, as in Kong (`underscores_in_headers on`).
 */
const PROTECTED_ALIASES = new Set([
  'content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect',
  'forwarded', 'via', 'x-real-ip',
]);
const PROTECTED_ALIAS_PREFIXES = ['x-forwarded-', 'x-gatehouse-', 'x-consumer-', 'x-credential-', 'x-authenticated-', 'x-anonymous-'];

/** Percent-encoded C0 controls and DEL (%00, %0D%0A...) in a path never name a resource; they are injection payloads. */
const ENCODED_CONTROL = /%(?:[01][0-9A-Fa-f]|7[Ff])/;

/** Content-Length is 1*DIGIT (llhttp checks that); a leading zero is legal but read as octal by some parsers. */
const CANONICAL_LENGTH = /^(?:0|[1-9][0-9]*)$/;

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)/i;

/** Request line with a well-formed but unsupported version ("GET / HTTP/1.2", "HTTP/9.9"). */
const REQUEST_LINE_VERSION = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP\/(\d)\.(\d)\r?\n/;

function isProtectedAlias(lowerName: string): boolean {
  const dashed = lowerName.replaceAll('_', '-');
  if (PROTECTED_ALIASES.has(dashed)) return true;
  for (const p of PROTECTED_ALIAS_PREFIXES) if (dashed.startsWith(p)) return true;
  return false;
}

/**
 * Transfer-Encoding on a request must be exactly "chunked": llhttp parses chunked framing only, and
 * another coding ("gzip, chunked") would reach the upstream decoded of its chunks but still
 * gzip-coded, with the coding itself dropped as hop-by-hop. An unknown but well-formed coding gets
 * 501 (RFC 9112 6.1, as nginx answers); malformed framing (chunked not last or repeated, a bad
 * token) gets 400. HTTP/1.0 has no transfer codings: RFC 9112 6.1 calls such framing faulty.
 */
function checkTransferCodings(value: string, minor: number): Rejection | undefined {
  if (minor === 0) return { status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
  const list = value.split(',').map((c) => c.trim().toLowerCase());
  if (list.length === 1 && list[0] === 'chunked') return undefined;
  const chunked = list.indexOf('chunked');
  if (list.some((c) => !TOKEN.test(c))) return { status: 400, reason: 'malformed Transfer-Encoding' };
  if (chunked >= 0 && chunked !== list.length - 1) return { status: 400, reason: 'chunked is not the final transfer coding, or repeated' };
  return { status: 501, reason: `unsupported transfer coding "${list.join(', ')}"` };
}

function validHost(value: string): boolean {
  const m = HOST_VALUE.exec(value);
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65535);
}

export function validateRequest(req: IncomingMessage): Rejection | undefined {
  if (req.httpVersionMajor !== 1) return { status: 505, reason: `HTTP/${req.httpVersion} on an HTTP/1.1 listener` };

  const raw = req.rawHeaders;
  let host: string | undefined;
  let singletonsSeen: Set<string> | undefined;
  let codings: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Lower-casing every name costs more than this length filter (4 host ... 19 proxy-authorization).
    if (!CHECKED_NAME_LENGTHS.has(name.length)) continue;
    const lower = name.toLowerCase();
    if (!SINGLETON_FIELDS.has(lower)) {
      if (lower === 'transfer-encoding') codings = codings === undefined ? raw[i + 1]! : `${codings},${raw[i + 1]!}`;
      continue;
    }
    singletonsSeen ??= new Set();
    if (singletonsSeen.has(lower)) return { status: 400, reason: `more than one ${lower} header` };
    singletonsSeen.add(lower);
    if (lower === 'host') host = raw[i + 1]!;
    else if (lower === 'content-length' && !CANONICAL_LENGTH.test(raw[i + 1]!)) return { status: 400, reason: 'Content-Length with leading zeros' };
  }
  if (codings !== undefined) {
    const rejection = checkTransferCodings(codings, req.httpVersionMinor);
    if (rejection) return rejection;
  }
  if (host === undefined) {
    if (req.httpVersionMinor >= 1) return { status: 400, reason: 'missing Host header' };
  } else if (!validHost(host)) return { status: 400, reason: 'invalid Host header' };
  return checkMethodAndTarget(req.method ?? '', req.url ?? '');
}

/** The rules on the method and the request target, for both protocol versions. */
function checkMethodAndTarget(method: string, url: string): Rejection | undefined {
  if (method === 'CONNECT' || method === 'TRACE') return { status: 405, reason: `${method} is not supported`, headers: { allow: ALLOWED_METHODS } };
  let path = url;
  if (url === '*') {
    if (method !== 'OPTIONS') return { status: 400, reason: 'asterisk-form is only valid with OPTIONS' };
    return undefined;
  }
  if (url.charCodeAt(0) !== 0x2f) {
    const m = ABSOLUTE_FORM.exec(url);
    if (!m || !validHost(m[1]!)) return { status: 400, reason: 'invalid request target' };
    path = url.slice(m[0].length);
  }
  if (path.includes('%')) {
    const end = path.search(/[?#]/);
    if (ENCODED_CONTROL.test(end < 0 ? path : path.slice(0, end))) return { status: 400, reason: 'encoded control character in path' };
  }
  return undefined;
}

/**
 * Brings a valid request to the form the rest of the gateway sees and forwards: an absolute-form
 * target becomes origin-form and its authority replaces Host (RFC 9112 3.2.2: the Host header is
 * ignored then); underscore aliases of protected header names are dropped. Mutates `req` only when
 * one of these applies.
 */
export function normalizeRequest(req: IncomingMessage): void {
  const url = req.url ?? '';
  const absolute = url.charCodeAt(0) !== 0x2f && url !== '*' ? ABSOLUTE_FORM.exec(url) : null;
  const raw = req.rawHeaders;
  let drop = false;
  for (let i = 0; i < raw.length && !drop; i += 2) {
    if (raw[i]!.includes('_') && isProtectedAlias(raw[i]!.toLowerCase())) drop = true;
  }
  if (!absolute && !drop) return;

  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (drop && name.includes('_') && isProtectedAlias(name.toLowerCase())) continue;
    out.push(name, absolute && name.length === 4 && name.toLowerCase() === 'host' ? absolute[1]! : raw[i + 1]!);
  }
  if (absolute) {
    const rest = url.slice(absolute[0].length);
    req.url = rest === '' ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
    // HTTP/1.0 may omit Host; the target's authority supplies it.
    if (!out.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'host')) out.unshift('Host', absolute[1]!);
  }
  // node builds `headers` and `headersDistinct` lazily from the header count it parsed, so both are set here.
  req.rawHeaders = out;
  req.headers = headersFromRaw(out);
  req.headersDistinct = distinctFromRaw(out);
}

/**
 * validateRequest for an HTTP/2 request, with the rules nghttp2 leaves to the application.
 * nghttp2 already resets the stream of a request with malformed or repeated pseudo-headers,
 * connection-specific fields (Connection, Transfer-Encoding, ...), upper-case names, CR, LF or
 * NUL in a value, or DATA frames that contradict its Content-Length.
 */
export function validateHttp2Request(req: Http2ServerRequest): Rejection | undefined {
  const raw = req.rawHeaders;
  let authority: string | undefined;
  let host: string | undefined;
  let singletonsSeen: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // HTTP/2 field names arrive in lower case (nghttp2 refuses others).
    const name = raw[i]!;
    if (name === ':authority') authority = raw[i + 1]!;
    if (!SINGLETON_FIELDS.has(name)) continue;
    singletonsSeen ??= new Set();
    if (singletonsSeen.has(name)) return { status: 400, reason: `more than one ${name} header` };
    singletonsSeen.add(name);
    if (name === 'host') host = raw[i + 1]!;
    else if (name === 'content-length' && !CANONICAL_LENGTH.test(raw[i + 1]!)) return { status: 400, reason: 'Content-Length with leading zeros' };
  }
  // RFC 9113 8.3.1: a Host that names another authority than :authority makes the request malformed.
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return { status: 400, reason: 'Host differs from :authority' };
  const effective = authority ?? host;
  if (effective === undefined) return { status: 400, reason: 'missing :authority and Host' };
  if (!validHost(effective)) return { status: 400, reason: authority === undefined ? 'invalid Host header' : 'invalid :authority' };
  return checkMethodAndTarget(req.method, req.url);
}

/**
 * Gives an HTTP/2 request the HTTP/1.1 shape the rest of the gateway reads and forwards (RFC 9113
 * 8.3.1 and 8.2.3): no pseudo-headers, Host from :authority (else the Host field), the cookie
 * fields joined into one, underscore aliases of protected names dropped as in normalizeRequest.
 * A body without Content-Length is marked `Transfer-Encoding: chunked`, the HTTP/1.1 framing it
 * gets upstream. Call after validateHttp2Request.
 */
export function normalizeHttp2Request(req: Http2ServerRequest): void {
  const raw = req.rawHeaders;
  const out: string[] = ['host', req.authority || (req.headers.host ?? '')];
  let cookieAt = -1;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a || name === 'host') continue;
    if (name.includes('_') && isProtectedAlias(name)) continue;
    if (name === 'content-length') hasLength = true;
    if (name === 'cookie') {
      if (cookieAt >= 0) {
        out[cookieAt] = `${out[cookieAt]!}; ${raw[i + 1]!}`;
        continue;
      }
      cookieAt = out.length + 1;
    }
    out.push(name, raw[i + 1]!);
  }
  if (!hasLength && !req.stream.endAfterHeaders) out.push('transfer-encoding', 'chunked');
  // Own properties in place of the compatibility layer's getters, which hold the HTTP/2 form.
  Object.defineProperties(req, {
    rawHeaders: { value: out, writable: true, configurable: true },
    headers: { value: headersFromRaw(out), writable: true, configurable: true },
    headersDistinct: { value: distinctFromRaw(out), writable: true, configurable: true },
  });
}

/** node's rules for `req.headers` (joinDuplicateHeaders off): these keep the first copy, cookie joins with "; ". */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

export function headersFromRaw(raw: string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (prev as string[]).push(value);
    else if (!FIRST_WINS.has(name)) out[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}

export function distinctFromRaw(raw: string[]): NodeJS.Dict<string[]> {
  const out: NodeJS.Dict<string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    (out[name] ??= []).push(raw[i + 1]!);
  }
  return out;
}

/**
 * Status for a request llhttp refused with HPE_INVALID_VERSION: 505 when the request line is
 * well-formed and names a version other than 1.0 or 1.1 ("HTTP/1.2", "HTTP/9.9"), else undefined
 * (a malformed version such as "HTTP/01.1" stays a 400).
 */
export function unsupportedVersionStatus(rawPacket: Buffer | undefined): number | undefined {
  if (!rawPacket) return undefined;
  const m = REQUEST_LINE_VERSION.exec(rawPacket.toString('latin1', 0, Math.min(rawPacket.length, 8192)));
  return m && !(m[1] === '1' && (m[2] === '0' || m[2] === '1')) ? 505 : undefined;
}
