import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const responseTransformer = definePlugin({ name: 'response-transformer', priority: 800, schema, check, create });
