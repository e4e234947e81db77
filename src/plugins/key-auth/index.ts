import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { schema } from './schema.js';

export const keyAuth = definePlugin({ name: 'key-auth', priority: 1250, schema, create });
