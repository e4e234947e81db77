import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const jwks = definePlugin({ name: 'jwks', priority: 1440, schema, check, create });
