/**
 * The path sent upstream from the service path, the request path and what the route matched,
 * following Kong's v0 algorithm (the one its default router uses) and the older v1.
 */

/** After stripping, a leftover "." / ".." segment at the start is dropped, as Kong does. */
function cleanPostfix(postfix: string): string {
  if (postfix === '.' || postfix === '..') return '';
  if (postfix.startsWith('./')) return postfix.slice(2);
  if (postfix.startsWith('../')) return postfix.slice(3);
  return postfix;
}

export function upstreamPathV0(servicePath: string | undefined, requestPath: string, matchedPath: string, stripPath: boolean): string {
  const base = servicePath ?? '/';
  if (base.endsWith('/')) {
    if (!stripPath) return base + requestPath.slice(1);
    const postfix = cleanPostfix(requestPath.slice(matchedPath.length));
    if (postfix === '') {
      if (base === '/') return '/';
      return requestPath.endsWith('/') ? base : base.slice(0, -1);
    }
    return postfix.startsWith('/') ? base.slice(0, -1) + postfix : base + postfix;
  }
  if (!stripPath) return requestPath === '/' ? base : base + requestPath;
  const postfix = cleanPostfix(requestPath.slice(matchedPath.length));
  if (postfix === '') return requestPath.length > 1 && requestPath.endsWith('/') ? `${base}/` : base;
  return postfix.startsWith('/') ? base + postfix : `${base}/${postfix}`;
}

export function upstreamPathV1(servicePath: string | undefined, requestPath: string, matchedPath: string, stripPath: boolean): string {
  const base = servicePath ?? '/';
  if (!stripPath) return base + requestPath.slice(1);
  // A route without paths strips nothing but the leading "/".
  const postfix = cleanPostfix(requestPath.slice(matchedPath.length || 1));
  if (base.endsWith('/') && postfix.startsWith('/')) return base + postfix.slice(1);
  return base + postfix;
}
