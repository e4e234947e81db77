import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const requestTransformer = definePlugin({ name: 'request-transformer', priority: 801, schema, check, create });
