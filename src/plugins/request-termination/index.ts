import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const requestTermination = definePlugin({ name: 'request-termination', priority: 2, schema, check, create });
