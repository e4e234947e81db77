import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const cors = definePlugin({ name: 'cors', priority: 2000, schema, check, create });
