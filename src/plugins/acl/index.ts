import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const acl = definePlugin({ name: 'acl', priority: 950, schema, check, create });
