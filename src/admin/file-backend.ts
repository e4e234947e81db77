import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { serializeFor, stageFile } from './persist.js';
import type { ConfigBackend, ConfigState, Staged } from './manager.js';

/**
 * The config file as the store of one node: every admin change is written to a temporary file
 * and synced while the change is validated, then renamed over the file just before it goes live.
 */
export class FileBackend implements ConfigBackend {
  readonly path: string;
  /** The text last written or read, so the watcher can tell our writes from an edit. */
  lastText: string | undefined;

  constructor(path: string, lastText?: string) {
    this.path = path;
    this.lastText = lastText;
  }

  async stage(next: ConfigState): Promise<Staged> {
    const text = serializeFor(this.path, next.doc, `written by the gatehouse admin API (configuration version ${next.version}, ${new Date().toISOString()})`);
    const staged = await stageFile(this.path, text);
    return {
      publish: async () => {
        await staged.commit();
        this.lastText = text;
      },
      discard: () => staged.discard(),
    };
  }
}

/**
 * Calls `onChange` with the file's new text when it is edited (also when an editor or a deploy
 * replaces it by rename: the directory is watched, not the file). Quick successive events are
 * coalesced; text equal to `known()` (our own write) is ignored.
 */
export function watchConfigFile(path: string, known: () => string | undefined, onChange: (text: string) => void, logger: Logger, debounceMs = 100): () => void {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let last = known();
  const check = () => {
    timer = undefined;
    readFile(path, 'utf8').then(
      (text) => {
        if (text === last || text === known()) return;
        last = text;
        onChange(text);
      },
      (err: NodeJS.ErrnoException) => {
        // Mid-rename the file may be briefly absent; the next event brings it back.
        if (err.code !== 'ENOENT') logger.warn({ err: { message: err.message }, file: path }, 'cannot read the watched config file');
      },
    );
  };
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file !== null && file !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(check, debounceMs);
    });
  } catch (err) {
    logger.error({ err: { message: (err as Error).message }, file: path }, 'cannot watch the config file');
    return () => undefined;
  }
  watcher.on('error', (err) => logger.warn({ err: { message: err.message } }, 'config file watcher failed'));
  return () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
