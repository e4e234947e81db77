import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const rateLimiting = definePlugin({ name: 'rate-limiting', priority: 910, schema, check, create });
