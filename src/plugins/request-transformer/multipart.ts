/**
 * A multipart/form-data body as Kong's lua-multipart edits it: parts keep their raw headers and
 * bytes; `setSimple` writes a plain field (`Content-Disposition: form-data; name="x"`), in place
 * when the name exists, else at the end; lookups by name see the last part with that name.
 */

interface Part {
  name: string;
  headers: string[];
  value: Buffer;
}

const CRLF = Buffer.from('\r\n');

export function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary=([^\s;]+)/i.exec(contentType);
  if (!m) return undefined;
  let b = m[1]!;
  if (b.length >= 2 && ((b.startsWith('"') && b.endsWith('"')) || (b.startsWith("'") && b.endsWith("'")))) b = b.slice(1, -1);
  return b || undefined;
}

export class MultipartBody {
  readonly boundary: string;
  readonly parts: Part[];

  private constructor(boundary: string, parts: Part[]) {
    this.boundary = boundary;
    this.parts = parts;
  }

  static parse(body: Buffer, boundary: string): MultipartBody {
    const parts: Part[] = [];
    const delimiter = Buffer.from(`--${boundary}`);
    let pos = body.indexOf(delimiter);
    while (pos >= 0) {
      let start = pos + delimiter.length;
      if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing delimiter
      const lineEnd = body.indexOf(CRLF, start);
      if (lineEnd < 0) break;
      start = lineEnd + 2;
      const next = body.indexOf(Buffer.concat([CRLF, delimiter]), start - 2);
      const end = next < 0 ? body.length : next;
      const part = parsePart(body.subarray(start, Math.max(start, end)));
      if (part) parts.push(part);
      if (next < 0) break;
      pos = next + 2;
    }
    return new MultipartBody(boundary, parts);
  }

  static empty(boundary: string): MultipartBody {
    return new MultipartBody(boundary, []);
  }

  #index(name: string): number {
    for (let i = this.parts.length - 1; i >= 0; i--) if (this.parts[i]!.name === name) return i;
    return -1;
  }

  get(name: string): Buffer | undefined {
    const i = this.#index(name);
    return i < 0 ? undefined : this.parts[i]!.value;
  }

  delete(name: string): void {
    const i = this.#index(name);
    if (i >= 0) this.parts.splice(i, 1);
  }

  setSimple(name: string, value: string | Buffer): void {
    const part: Part = {
      name,
      headers: [`Content-Disposition: form-data; name="${name}"`],
      value: typeof value === 'string' ? Buffer.from(value) : value,
    };
    const i = this.#index(name);
    if (i >= 0) this.parts[i] = part;
    else this.parts.push(part);
  }

  toBuffer(): Buffer {
    if (this.parts.length === 0) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for (const part of this.parts) {
      chunks.push(Buffer.from(`--${this.boundary}\r\n${part.headers.map((h) => `${h}\r\n`).join('')}\r\n`), part.value, CRLF);
    }
    chunks.push(Buffer.from(`--${this.boundary}--\r\n`));
    return Buffer.concat(chunks);
  }
}

function parsePart(raw: Buffer): Part | undefined {
  let headerEnd: number;
  let valueStart: number;
  if (raw[0] === 0x0d && raw[1] === 0x0a) {
    headerEnd = 0;
    valueStart = 2;
  } else {
    headerEnd = raw.indexOf('\r\n\r\n');
    if (headerEnd < 0) return undefined;
    valueStart = headerEnd + 4;
  }
  const headers = raw.subarray(0, headerEnd).toString('utf8').split('\r\n').filter((h) => h !== '');
  let name: string | undefined;
  for (const h of headers) {
    if (!/^content-disposition\s*:/i.test(h)) continue;
    const m = /;\s*name=("([^"]*)"|[^;\s]*)/i.exec(h);
    if (m) name = m[2] ?? m[1];
  }
  if (name === undefined) return undefined;
  return { name, headers, value: raw.subarray(valueStart) };
}
