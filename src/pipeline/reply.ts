import type { Exchange, HeaderValue, LocalReply } from './exchange.js';

/** Kong's default messages for kong.response.error(status) without a message. */
const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  413: 'Payload too large',
  415: 'Unsupported media type',
  426: 'Upgrade required',
  429: 'Too many requests',
  500: 'An unexpected error occurred',
  502: 'An invalid response was received from the upstream server',
  503: 'The upstream server is currently unavailable',
  504: 'The upstream server is timing out',
};

export function defaultMessage(status: number): string {
  return DEFAULT_MESSAGES[status] ?? `The upstream server responded with ${status}`;
}

/**
 * Like kong.response.error: JSON `{"message": ..., "request_id": ...}`. Used by the router,
 * auth and traffic plugins and upstream failures.
 */
export function errorReply(
  ex: Exchange,
  status: number,
  message: string | undefined,
  reason: string,
  headers?: Record<string, HeaderValue>,
): LocalReply {
  return {
    status,
    body: { message: message ?? defaultMessage(status), request_id: ex.requestId },
    headers,
    reason,
  };
}

/** Like kong.response.exit(status, body): the body as given (objects as compact JSON), no request id. */
export function exitReply(status: number, body: unknown, reason: string, headers?: Record<string, HeaderValue>): LocalReply {
  return { status, body, headers, reason };
}
