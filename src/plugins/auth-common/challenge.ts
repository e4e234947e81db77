/** `Bearer`, `Bearer realm="r"`, `Bearer error="e"`, `Bearer realm="r", error="e"` (Kong master's jwt, with the comma). */
export function bearerChallenge(realm: string | undefined, error?: string, extra?: string): string {
  const params: string[] = [];
  if (realm !== undefined) params.push(`realm="${realm}"`);
  if (error !== undefined) params.push(`error="${error}"`);
  if (extra !== undefined) params.push(extra);
  return params.length ? `Bearer ${params.join(', ')}` : 'Bearer';
}

/** `<Scheme>` or `<Scheme> realm="r"` (key-auth's `Key`, hmac-auth's `hmac`). */
export function simpleChallenge(scheme: string, realm: string | undefined): string {
  return realm === undefined ? scheme : `${scheme} realm="${realm}"`;
}
