import type { PluginDefinition } from './types.js';
import { correlationId } from './correlation-id/index.js';
import { requestTermination } from './request-termination/index.js';
import { requestTransformer } from './request-transformer/index.js';
import { responseTransformer } from './response-transformer/index.js';

/** The static list of plugins. Config names a plugin by key; nothing is loaded by string. */
export const PLUGINS: ReadonlyMap<string, PluginDefinition<any>> = new Map(
  [correlationId, requestTermination, requestTransformer, responseTransformer].map((p) => [p.name, p]),
);
