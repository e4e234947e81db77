import type { PluginDefinition } from './types.js';
import { correlationId } from './correlation-id/index.js';
import { requestTermination } from './request-termination/index.js';
import { requestTransformer } from './request-transformer/index.js';
import { responseTransformer } from './response-transformer/index.js';
import { rateLimiting } from './rate-limiting/index.js';
import { ipRestriction } from './ip-restriction/index.js';
import { requestSizeLimiting } from './request-size-limiting/index.js';
import { cors } from './cors/index.js';
import { botDetection } from './bot-detection/index.js';
import { keyAuth } from './key-auth/index.js';
import { basicAuth } from './basic-auth/index.js';
import { jwt } from './jwt/index.js';
import { jwks } from './jwks/index.js';
import { hmacAuth } from './hmac-auth/index.js';
import { acl } from './acl/index.js';
import { proxyCache } from './proxy-cache/index.js';
import { mtlsAuth } from './mtls-auth/index.js';

/** The static list of plugins. Config names a plugin by key; nothing is loaded by string. */
export const PLUGINS: ReadonlyMap<string, PluginDefinition<any>> = new Map(
  [correlationId, requestTermination, requestTransformer, responseTransformer, rateLimiting, ipRestriction, requestSizeLimiting, cors, botDetection, keyAuth, basicAuth, jwt, jwks, hmacAuth, mtlsAuth, acl, proxyCache].map((p) => [p.name, p]),
);
