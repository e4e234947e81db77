import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Exchange } from '../../pipeline/exchange.js';

export type Generator = (ex: Exchange) => string;

/** The three Kong generators; state (counter, connection serials) lives in the returned closure. */
export function makeGenerator(kind: 'uuid' | 'uuid#counter' | 'tracker'): Generator {
  switch (kind) {
    case 'uuid':
      return () => randomUUID();
    case 'uuid#counter': {
      const base = randomUUID();
      let counter = 0;
      return () => `${base}#${++counter}`;
    }
    case 'tracker':
      return trackerGenerator();
  }
}

interface ConnectionInfo {
  serial: number;
  requests: number;
  /** The last request counted on this connection, so that one request is counted once. */
  last: Exchange | undefined;
}

// nginx's $connection and $connection_requests, counted by this plugin instance.
function trackerGenerator(): Generator {
  const connections = new WeakMap<Socket, ConnectionInfo>();
  let serial = 0;
  return (ex) => {
    // An HTTP/2 request's socket is a view of its stream; the connection is the session's.
    const socket = (ex.req as { stream?: { session?: { socket: Socket } } }).stream?.session?.socket ?? ex.req.socket;
    let info = connections.get(socket);
    if (!info) {
      info = { serial: ++serial, requests: 0, last: undefined };
      connections.set(socket, info);
    }
    if (info.last !== ex) {
      info.requests++;
      info.last = ex;
    }
    const addr = (socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
    return `${addr}-${socket.localPort ?? ''}-${process.pid}-${info.serial}-${info.requests}-${(Date.now() / 1000).toFixed(3)}`;
  };
}
