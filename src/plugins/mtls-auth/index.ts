import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const mtlsAuth = definePlugin({
  name: 'mtls-auth',
  // Kong's priority: before every other authentication plugin.
  priority: 1600,
  schema,
  create,
  references: (config) => config.ca_certificates.map((id, i) => ({ field: `ca_certificates[${i}]`, table: 'ca_certificates' as const, id })),
  clientCertificateRequest: (config) => ({ caNames: config.send_ca_dn ? config.ca_certificates : [] }),
});
