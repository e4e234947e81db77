/**
 * node's llhttp binding, the parser node:http runs on (strict unless told otherwise). The public
 * API has no standalone parser; the upstream client and the plain listener drive it directly.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

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

/** A socket's libuv stream handle, as node:http uses it to let llhttp read directly. */
export interface StreamHandle {
  isStreamBase?: boolean;
  _consumed?: boolean;
  readStart(): number;
  readStop(): number;
}

/** The parts of net.Socket node:http itself relies on for that. */
interface SocketInternals {
  _handle?: StreamHandle | null;
  _unrefTimer(): void;
}

/**
 * Lets llhttp read the socket's handle itself, as node:http's server does: a read reaches the
 * parser without the socket's stream machinery ('data' event, read-more tick; ~1.5 µs per request
 * measured). Results arrive at `onExecute`; EOF and errors still reach the socket ('end',
 * 'close'). Pause and resume reading through the returned handle. Returns undefined (nothing
 * done) when the socket has no such handle: the caller then reads 'data' events.
 */
export function consumeSocket(parser: HTTPParserInstance, socket: Socket, onExecute: (ret: number | ParserError) => void): StreamHandle | undefined {
  const handle = (socket as unknown as SocketInternals)._handle;
  if (handle?.isStreamBase !== true || handle._consumed === true) return undefined;
  handle._consumed = true;
  parser[HTTPParser.kOnExecute] = onExecute;
  parser.consume(handle);
  return handle;
}

/** Reads that bypass the socket do not restart its inactivity timer: this does (node:http too). */
export function socketReadActivity(socket: Socket): void {
  (socket as unknown as SocketInternals)._unrefTimer();
}
