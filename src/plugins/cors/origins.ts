/** One normalised origin: `scheme://host[:port]` without a default port, and its host. */
export interface NormalOrigin {
  origin: string;
  host: string;
}

/** Like Kong's normalize_origin: parse, drop :80 for http and :443 for https. Unparseable values stay as they are. */
export function normalizeOrigin(value: string): NormalOrigin {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[^\]]*\]|[^/:?#]*)(?::(\d*))?/.exec(value);
  if (!m || !m[2]) return { origin: value, host: value };
  const scheme = m[1]!;
  const host = m[2];
  let port = m[3] || undefined;
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = undefined;
  return { origin: `${scheme}://${host}${port ? `:${port}` : ''}`, host };
}

type Entry = { kind: 'plain'; origin: string } | { kind: 'regex'; re: RegExp; byHost: boolean };

/** The configured origins, compiled once per plugin instance. */
export class OriginPolicy {
  /** No origins, or a `*` among them: ACAO `*`. */
  readonly allowAll: boolean;
  /** Exactly one plain origin: always sent as is, whatever the request's Origin. */
  readonly single: string | undefined;
  private readonly entries: Entry[];

  constructor(origins: readonly string[] | undefined) {
    const list = origins ?? [];
    this.allowAll = list.length === 0 || list.includes('*');
    this.single = list.length === 1 && !/[^A-Za-z0-9.:/-]/.test(list[0]!) ? list[0] : undefined;
    this.entries = list.filter((entry) => entry !== '*').map((entry): Entry => {
      if (!/[^A-Za-z0-9.:/-]/.test(entry)) return { kind: 'plain', origin: normalizeOrigin(entry).origin };
      // Kong anchors: a leading ^ is dropped, a trailing $ added, and the match starts at the beginning.
      let source = entry.startsWith('^') ? entry.slice(1) : entry;
      if (!source.endsWith('$')) source += '$';
      return { kind: 'regex', re: new RegExp(`^(?:${source})`), byHost: !entry.includes(':') };
    });
  }

  /** The normalised request origin when it is allowed, else undefined. */
  match(requestOrigin: string): string | undefined {
    const n = normalizeOrigin(requestOrigin);
    for (const e of this.entries) {
      if (e.kind === 'plain' ? e.origin === n.origin : e.re.test(e.byHost ? n.host : n.origin)) return n.origin;
    }
    return undefined;
  }
}
