import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const basicAuth = definePlugin({ name: 'basic-auth', priority: 1100, schema, create });
