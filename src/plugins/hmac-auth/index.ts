import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const hmacAuth = definePlugin({ name: 'hmac-auth', priority: 1030, schema, create });
