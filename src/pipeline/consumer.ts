import type { Exchange } from './exchange.js';
import type { Consumer, Credential } from '../config/consumers.js';

/** Identity headers the gateway owns: a client's copies are dropped when the upstream headers are built, before any plugin runs. */
export const IDENTITY_HEADERS = [
  'x-consumer-id',
  'x-consumer-username',
  'x-consumer-custom-id',
  'x-credential-identifier',
  'x-anonymous-consumer',
  'x-consumer-groups',
  'x-authenticated-groups',
  // mtls-auth's verified client certificate.
  'x-client-cert-subject',
  'x-client-cert-fingerprint',
] as const;

/**
 * Records who the request is from and sets Kong's upstream identity headers. `identifier` is what
 * Kong sends as X-Credential-Identifier (the credential id for key-auth, the username for
 * basic-auth, the key for jwt). Anonymous consumers get X-Anonymous-Consumer: true and no
 * credential.
 */
export function setConsumer(ex: Exchange, consumer: Consumer, credential: Credential | undefined, identifier: string | undefined): void {
  ex.consumer = consumer;
  ex.credential = credential;
  const h = ex.upstreamHeaders;
  h['x-consumer-id'] = consumer.id;
  if (consumer.username !== undefined) h['x-consumer-username'] = consumer.username;
  else delete h['x-consumer-username'];
  if (consumer.custom_id !== undefined) h['x-consumer-custom-id'] = consumer.custom_id;
  else delete h['x-consumer-custom-id'];
  if (credential && identifier !== undefined) {
    h['x-credential-identifier'] = identifier;
    delete h['x-anonymous-consumer'];
  } else {
    delete h['x-credential-identifier'];
    h['x-anonymous-consumer'] = 'true';
  }
}
