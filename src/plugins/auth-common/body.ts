import type { Exchange } from '../../pipeline/exchange.js';
import { bodyKind, type BodyKind } from '../request-transformer/body.js';
import { decodeArgs } from '../request-transformer/args.js';
import { boundaryOf, MultipartBody } from '../request-transformer/multipart.js';
import { removeQueryArg } from './request.js';

/** One field of a request body: a string, "several values" (an array or object), or nothing usable. */
export type BodyField = { kind: 'string'; value: string } | { kind: 'many' } | { kind: 'none' };

const NONE: BodyField = { kind: 'none' };
const MANY: BodyField = { kind: 'many' };

/**
 * The buffered request body parsed as Kong's kong.request.get_body() does (JSON object, form or
 * multipart, by Content-Type), for reading and removing credential fields. Parsed on first use.
 */
export class RequestBodyFields {
  private readonly ex: Exchange;
  private readonly kind: BodyKind | undefined;
  private parsed: ((name: string) => BodyField) | undefined;

  constructor(ex: Exchange) {
    this.ex = ex;
    const ct = ex.req.headers['content-type'];
    this.kind = ex.requestBody !== undefined ? bodyKind(ct) : undefined;
  }

  get(name: string): BodyField {
    this.parsed ??= this.parse();
    return this.parsed(name);
  }

  private parse(): (name: string) => BodyField {
    const raw = this.ex.requestBody;
    if (!raw || !this.kind) return () => NONE;
    if (this.kind === 'form') {
      const args = decodeArgs(raw.toString('utf8'));
      return (name) => {
        const v = args.get(name);
        if (typeof v === 'string') return { kind: 'string', value: v };
        return Array.isArray(v) ? MANY : NONE;
      };
    }
    if (this.kind === 'json') {
      let doc: unknown;
      try {
        doc = JSON.parse(raw.toString('utf8'));
      } catch {
        return () => NONE;
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return () => NONE;
      const obj = doc as Record<string, unknown>;
      return (name) => {
        if (!Object.prototype.hasOwnProperty.call(obj, name)) return NONE;
        const v = obj[name];
        if (typeof v === 'string') return { kind: 'string', value: v };
        return typeof v === 'object' && v !== null ? MANY : NONE;
      };
    }
    const boundary = boundaryOf(String(this.ex.req.headers['content-type']));
    if (!boundary) return () => NONE;
    const body = MultipartBody.parse(raw, boundary);
    return (name) => {
      const parts = body.parts.filter((p) => p.name === name);
      if (parts.length > 1) return MANY;
      return parts.length === 1 ? { kind: 'string', value: parts[0]!.value.toString('utf8') } : NONE;
    };
  }

  /** Removes every `name` field and re-encodes the body (a body that does not parse is left alone). */
  remove(name: string): void {
    const raw = this.ex.requestBody;
    if (!raw || !this.kind) return;
    if (this.kind === 'form') {
      const next = removeQueryArg(raw.toString('utf8'), name) ?? '';
      this.ex.requestBody = Buffer.from(next);
    } else if (this.kind === 'json') {
      let doc: unknown;
      try {
        doc = JSON.parse(raw.toString('utf8'));
      } catch {
        return;
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return;
      delete (doc as Record<string, unknown>)[name];
      this.ex.requestBody = Buffer.from(JSON.stringify(doc));
    } else {
      const boundary = boundaryOf(String(this.ex.req.headers['content-type']));
      if (!boundary) return;
      const body = MultipartBody.parse(raw, boundary);
      const kept = body.parts.filter((p) => p.name !== name);
      if (kept.length === body.parts.length) return;
      body.parts.splice(0, body.parts.length, ...kept);
      this.ex.requestBody = body.toBuffer();
    }
    this.parsed = undefined;
  }
}
