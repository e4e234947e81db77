import type { IncomingMessage } from 'node:http';

/**
 * The one place that decides whether a request that node's parser (llhttp) accepted is valid
 * enough to route and forward. llhttp already rejects malformed framing (CL/TE conflicts, bad
 * chunking, invalid header bytes); this adds the rules it leaves to the application.
 * Returns undefined for a valid request, or the status and reason to refuse it with.
 */
export interface Rejection {
  status: number;
  reason: string;
}

const HOST_VALUE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~!$&'()*+;=-]+)(?::\d{1,5})?$/;

export function validateRequest(req: IncomingMessage): Rejection | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  let host = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts++;
      host = raw[i + 1]!;
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding' && raw[i + 1]!.trim() === '') {
      return { status: 400, reason: 'empty Transfer-Encoding' };
    }
  }
  if (hosts > 1) return { status: 400, reason: 'more than one Host header' };
  if (hosts === 0 && req.httpVersionMinor >= 1) return { status: 400, reason: 'missing Host header' };
  if (hosts === 1 && !HOST_VALUE.test(host)) return { status: 400, reason: 'invalid Host header' };

  const url = req.url ?? '';
  const method = req.method ?? '';
  if (url === '*') {
    if (method !== 'OPTIONS') return { status: 400, reason: 'asterisk-form is only valid with OPTIONS' };
  } else if (method === 'CONNECT') {
    return { status: 405, reason: 'CONNECT is not supported' };
  } else if (url.charCodeAt(0) !== 0x2f) {
    if (!/^https?:\/\/[^/?#@\s]+([/?].*)?$/i.test(url)) return { status: 400, reason: 'invalid request target' };
  }
  return undefined;
}
