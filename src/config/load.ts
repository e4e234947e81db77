import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../lib/errors.js';
import { normalizeConfig, type NormalConfig } from './normalize.js';
import type { PluginDefinition } from '../plugins/types.js';

/** Parses YAML or JSON text (JSON is YAML, but JSON.parse gives better errors for .json files). */
export function parseConfigText(text: string, source = 'config'): unknown {
  try {
    if (/^\s*[{[]/.test(text)) return JSON.parse(text);
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([`${source}: cannot parse: ${(err as Error).message.split('\n')[0]}`]);
  }
}

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfigText(text, path);
}

/** Reads, parses and validates a config file. Throws ConfigError with every bad field. */
export async function loadConfigFile(path: string, plugins: ReadonlyMap<string, PluginDefinition<any>>): Promise<NormalConfig> {
  return normalizeConfig(await readConfigFile(path), plugins);
}
