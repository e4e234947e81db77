import { definePlugin } from '../types.js';
import { create } from './plugin.js';
import { check, schema } from './schema.js';

export const botDetection = definePlugin({ name: 'bot-detection', priority: 2500, schema, check, create });
