import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const correlationId = definePlugin({ name: 'correlation-id', priority: 100001, schema, create });
