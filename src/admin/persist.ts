import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, extname } from 'node:path';
import { randomBytes } from 'node:crypto';

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Strings that read back as the same string when written unquoted. */
const PLAIN_STRING = /^[A-Za-z_/][\w./@+-]*(:[\w./@+-]+)*$/;
const RESERVED = /^(true|false|yes|no|on|off|y|n|null)$/i;

function scalar(v: unknown): string {
  if (typeof v === 'string' && PLAIN_STRING.test(v) && !RESERVED.test(v)) return v;
  // JSON strings are valid YAML double-quoted scalars, and JSON.stringify is fast and exact.
  return v === undefined ? 'null' : JSON.stringify(v);
}

function key(k: string): string {
  return PLAIN_KEY.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

/** Written on one line: scalars, lists of scalars, empty mappings. */
function inline(v: unknown): string | undefined {
  if (isScalar(v)) return scalar(v);
  if (Array.isArray(v)) return v.every(isScalar) ? JSON.stringify(v) : undefined;
  return Object.keys(v as object).length ? undefined : '{}';
}

/** The text being written (string concatenation: V8 joins the pieces once, at the end). */
interface Out {
  s: string;
}

/**
 * Appends a mapping's lines. `first` replaces the indentation of its first line (the "- " of a
 * list item), so no line is ever built twice.
 */
function emitMap(obj: Record<string, unknown>, indent: string, out: Out, first: string = indent): void {
  let lead = first;
  for (const k in obj) {
    const v = obj[k];
    if (v === undefined) continue;
    const one = inline(v);
    if (one !== undefined) out.s += `${lead}${key(k)}: ${one}\n`;
    else {
      out.s += `${lead}${key(k)}:\n`;
      if (Array.isArray(v)) emitList(v, indent, out);
      else emitMap(v as Record<string, unknown>, `${indent}  `, out);
    }
    lead = indent;
  }
}

function emitList(list: unknown[], indent: string, out: Out): void {
  for (const item of list) {
    const one = inline(item);
    if (one !== undefined) out.s += `${indent}- ${one}\n`;
    else if (Array.isArray(item)) {
      out.s += `${indent}-\n`;
      emitList(item, `${indent}  `, out);
    } else emitMap(item as Record<string, unknown>, `${indent}  `, out, `${indent}- `);
  }
}

/**
 * YAML for a JSON-shaped document, block style with JSON-quoted scalars. The yaml package's
 * stringify takes ~150 ms for 10,000 routes; this takes a few, and `yaml.parse` reads it back
 * to the same value (tested).
 */
export function toYaml(doc: Record<string, unknown>, header?: string): string {
  const out: Out = { s: header ? `# ${header}\n` : '' };
  emitMap(doc, '', out);
  return out.s;
}

/** The file's own format: JSON for .json, YAML otherwise. */
export function serializeFor(path: string, doc: Record<string, unknown>, header: string): string {
  return extname(path).toLowerCase() === '.json' ? `${JSON.stringify(doc, null, 2)}\n` : toYaml(doc, header);
}

/** A file written to a temporary name and synced, waiting to be renamed over the target. */
export interface StagedFile {
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/**
 * First half of an atomic replace: writes `text` next to `path` and fsyncs it. commit() renames it
 * over `path` and fsyncs the directory, so a crash leaves either the old file or the new one.
 */
export async function stageFile(path: string, text: string): Promise<StagedFile> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // Keep the file's permissions; a new file is private (it holds credentials).
  const mode = await stat(path).then((s) => s.mode & 0o777, () => 0o600);
  const fh = await open(temp, 'w', mode);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  let done = false;
  return {
    async commit() {
      if (done) return;
      done = true;
      await rename(temp, path);
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } catch {
        // Some filesystems refuse fsync on a directory; the rename itself is atomic.
      } finally {
        await d.close();
      }
    },
    async discard() {
      if (done) return;
      done = true;
      await unlink(temp).catch(() => undefined);
    },
  };
}

export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const staged = await stageFile(path, text);
  await staged.commit();
}
