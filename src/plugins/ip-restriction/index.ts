import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const ipRestriction = definePlugin({ name: 'ip-restriction', priority: 990, schema, check, create });
