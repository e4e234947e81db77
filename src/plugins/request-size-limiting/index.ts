import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const requestSizeLimiting = definePlugin({ name: 'request-size-limiting', priority: 951, schema, create });
