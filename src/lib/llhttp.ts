/**
 * node's llhttp binding, the parser node:http runs on (strict unless told otherwise). The public
 * API has no standalone parser; the upstream client and the plain listener drive it directly.
 */
import { createRequire } from 'node:module';

export interface HTTPParserInstance {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  free(): void;
  /** Reads a net socket's handle directly (C++), as node:http does; results arrive at kOnExecute. */
  consume(handle: object): void;
  unconsume(): void;
  /** A copy of the bytes of the read being executed. */
  getCurrentBuffer(): Buffer;
  [key: number]: unknown;
}

export interface HTTPParserClass {
  new (): HTTPParserInstance;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

/** A parse error as the binding returns it (not thrown). */
export type ParserError = Error & { code?: string; reason?: string; bytesParsed?: number; rawPacket?: Buffer };

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: HTTPParserClass; methods: string[] };

export const HTTPParser: HTTPParserClass = common.HTTPParser;
/** Method names by the binding's method number (not http.METHODS, which is sorted). */
export const PARSER_METHODS: readonly string[] = common.methods;
