import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const jwt = definePlugin({ name: 'jwt', priority: 1450, schema, check, create });
