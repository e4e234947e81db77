import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const proxyCache = definePlugin({ name: 'proxy-cache', priority: 100, schema, check, create });
