import type { Consumer } from '../../config/consumers.js';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps } from '../types.js';

/**
 * Where an auth plugin records an authentication that has no consumer credential entity (a JWKS
 * token not mapped to a consumer), so the logical OR and acl still see "a credential exists".
 */
export const EXTERNAL_CREDENTIAL = 'authenticated_credential';

/** What an auth plugin without a credential entity records in ex.shared[EXTERNAL_CREDENTIAL]. */
export interface ExternalCredential {
  /** The plugin that authenticated the request. */
  plugin: string;
  /** Its identifier (e.g. the token subject). */
  id: string;
}

/** Kong's kong.client.get_credential(): a credential entity, or an external one (never an anonymous consumer). */
export function isAuthenticated(ex: Exchange): boolean {
  return ex.credential !== undefined || ex.shared[EXTERNAL_CREDENTIAL] !== undefined;
}

/**
 * The `anonymous` setting of an auth plugin, resolved once per snapshot. Kong's logical OR:
 * a plugin with `anonymous` does nothing when an earlier plugin already authenticated the
 * request, and on failure lets the request through as the anonymous consumer.
 */
export class Anonymous {
  /** The configured value (id or username), undefined when not set. */
  readonly ref: string | undefined;
  /** The consumer it names; undefined when not set or when no such consumer exists. */
  readonly consumer: Consumer | undefined;
  private readonly plugin: string;

  constructor(plugin: string, ref: string | undefined, deps: PluginDeps) {
    this.plugin = plugin;
    this.ref = ref;
    this.consumer = ref === undefined ? undefined : deps.consumers.find(ref);
    if (ref !== undefined && !this.consumer) {
      // Kong (master) answers 500 at request time rather than refusing the config.
      deps.logger.warn({ plugin }, `anonymous consumer ${ref} is configured but doesn't exist`);
    }
  }

  get configured(): boolean {
    return this.ref !== undefined;
  }

  /** True when this plugin should not run: anonymous is set and another plugin already authenticated. */
  skip(ex: Exchange): boolean {
    return this.ref !== undefined && isAuthenticated(ex);
  }

  /**
   * Called when authentication failed with `reply`: without `anonymous`, the reply is sent;
   * with it, the anonymous consumer is set (X-Anonymous-Consumer: true) and the request goes on.
   */
  fail(ex: Exchange, reply: LocalReply): Outcome {
    if (this.ref === undefined) return reply;
    if (!this.consumer) {
      const message = `anonymous consumer ${this.ref} is configured but doesn't exist`;
      return errorReply(ex, 500, message, `${this.plugin}: anonymous consumer missing`);
    }
    setConsumer(ex, this.consumer, undefined, undefined);
    return undefined;
  }
}
