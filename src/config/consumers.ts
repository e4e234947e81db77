import type { CredentialType } from './credentials.js';

export interface Consumer {
  id: string;
  username: string | undefined;
  custom_id: string | undefined;
  tags: readonly string[];
}

/** One credential entity, bound to its consumer. `fields` is the validated entity (defaults filled). */
export interface Credential {
  id: string;
  /** A config table, or (mtls-auth) a credential that stands for a verified client certificate. */
  type: CredentialType | 'mtls_auth_credentials';
  consumer: Consumer;
  fields: Readonly<Record<string, unknown>>;
}

/**
 * Consumers and their credentials for one snapshot: lookups by id, username and custom_id, and
 * per-table indexes built on first use and kept for the snapshot's life (never per request).
 */
export class ConsumerIndex {
  private readonly byId = new Map<string, Consumer>();
  private readonly byUsername = new Map<string, Consumer>();
  private readonly byCustomId = new Map<string, Consumer>();
  private readonly tables = new Map<Credential['type'], Credential[]>();
  private readonly indexes = new Map<string, ReadonlyMap<string, Credential>>();
  private readonly groupsByConsumer = new Map<string, string[]>();

  constructor(consumers: Consumer[], credentials: Credential[]) {
    for (const c of consumers) {
      this.byId.set(c.id, c);
      if (c.username !== undefined) this.byUsername.set(c.username, c);
      if (c.custom_id !== undefined) this.byCustomId.set(c.custom_id, c);
    }
    for (const cred of credentials) {
      let list = this.tables.get(cred.type);
      if (!list) this.tables.set(cred.type, (list = []));
      list.push(cred);
      if (cred.type === 'acls') {
        let groups = this.groupsByConsumer.get(cred.consumer.id);
        if (!groups) this.groupsByConsumer.set(cred.consumer.id, (groups = []));
        groups.push(String(cred.fields.group));
      }
    }
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Consumer | undefined {
    return this.byId.get(id);
  }

  /** By id, then username (how Kong resolves `anonymous` and plugin `consumer` references). */
  find(idOrUsername: string): Consumer | undefined {
    return this.byId.get(idOrUsername) ?? this.byUsername.get(idOrUsername);
  }

  byCustom(customId: string): Consumer | undefined {
    return this.byCustomId.get(customId);
  }

  /** By username only (not by id). */
  withUsername(username: string): Consumer | undefined {
    return this.byUsername.get(username);
  }

  credentials(type: CredentialType): readonly Credential[] {
    return this.tables.get(type) ?? [];
  }

  /** Credentials of `type` keyed by the string value of `field` (built once, then cached). */
  indexBy(type: CredentialType, field: string): ReadonlyMap<string, Credential> {
    const key = `${type}\u0000${field}`;
    let index = this.indexes.get(key);
    if (!index) {
      const map = new Map<string, Credential>();
      for (const c of this.credentials(type)) {
        const v = c.fields[field];
        if (typeof v === 'string') map.set(v, c);
      }
      this.indexes.set(key, (index = map));
    }
    return index;
  }

  /** ACL groups of a consumer, in config order. */
  groups(consumerId: string): readonly string[] {
    return this.groupsByConsumer.get(consumerId) ?? [];
  }
}
