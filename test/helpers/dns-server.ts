// Test support (not used by the gateway): a tiny authoritative DNS server over UDP on 127.0.0.1,
// port 0, answering A and AAAA queries from an in-memory table with the TTLs the test sets.
// Unknown names get NXDOMAIN; a known name without records of the asked type gets an empty
// NOERROR answer (what resolvers report as ENODATA). Wire format per RFC 1035 (AAAA: RFC 3596);
// answers point back to the question name with the compression pointer 0xC00C. No TCP, no
// truncation: keep a name under ~25 records so the answer fits the 512-byte UDP limit.
import dgram from 'node:dgram';
import net from 'node:net';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE_FORMERR = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

export interface TestDnsRecord {
  ip: string;
  ttl: number;
}

interface Question {
  /** Lower case, no trailing dot. */
  name: string;
  type: number;
  qclass: number;
  /** Offset just after the question (the raw question is copied into the answer). */
  end: number;
}

/** The first question of a query, or undefined when the message is malformed. */
function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    if (offset >= msg.length) return undefined;
    const len = msg[offset]!;
    offset += 1;
    if (len === 0) break;
    if (len > 63 || offset + len > msg.length) return undefined; // no compression in questions
    labels.push(msg.toString('latin1', offset, offset + len));
    offset += len;
  }
  if (offset + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(offset), qclass: msg.readUInt16BE(offset + 2), end: offset + 4 };
}

/** 16 bytes of an IPv6 address in text form (with "::" and an optional dotted IPv4 tail). */
function ipv6Bytes(ip: string): Buffer {
  let text = ip;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    for (const part of text.slice(lastColon + 1).split('.')) tail.push(Number(part));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(rest);
  const all = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length === 4) for (let i = 0; i < 4; i++) out[12 + i] = tail[i]!;
  return out;
}

function rdata(ip: string): Buffer {
  return net.isIPv4(ip) ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip);
}

function normalizeName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

export class TestDnsServer {
  /** "127.0.0.1:port", as HostResolver `servers` takes it. */
  readonly address: string;
  /** Well-formed queries answered so far (NXDOMAIN and empty answers included). */
  queries = 0;
  private readonly socket: dgram.Socket;
  private readonly table = new Map<string, TestDnsRecord[]>();

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    this.address = `127.0.0.1:${socket.address().port}`;
    socket.on('message', (msg, rinfo) => {
      const reply = this.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
  }

  static start(): Promise<TestDnsServer> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new TestDnsServer(socket));
      });
    });
  }

  /** Replaces the records of `name`: A for IPv4 addresses, AAAA for IPv6 ones. An empty list keeps the name (NOERROR, no data). */
  set(name: string, records: readonly TestDnsRecord[]): void {
    for (const r of records) if (!net.isIP(r.ip)) throw new Error(`not an IP address: ${r.ip}`);
    this.table.set(normalizeName(name), records.map((r) => ({ ...r })));
  }

  /** Forgets `name`: NXDOMAIN from now on. */
  remove(name: string): void {
    this.table.delete(normalizeName(name));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(query: Buffer): Buffer | undefined {
    if (query.length < 12 || (query[2]! & 0x80) !== 0) return undefined; // too short, or a response
    const id = query.readUInt16BE(0);
    const opcode = (query[2]! >> 3) & 0x0f;
    const rd = query[2]! & 0x01;
    const question = parseQuestion(query);
    const header = (rcode: number, qd: number, an: number) => {
      const h = Buffer.alloc(12);
      h.writeUInt16BE(id, 0);
      h[2] = 0x80 | (opcode << 3) | 0x04 | rd; // QR, opcode, AA, RD copied
      h[3] = 0x80 | rcode; // RA
      h.writeUInt16BE(qd, 4);
      h.writeUInt16BE(an, 6);
      return h;
    };
    if (opcode !== 0) return header(RCODE_NOTIMP, 0, 0);
    if (!question) return header(RCODE_FORMERR, 0, 0);
    const rawQuestion = query.subarray(12, question.end);
    this.queries++;

    const records = this.table.get(question.name);
    if (!records) return Buffer.concat([header(RCODE_NXDOMAIN, 1, 0), rawQuestion]);
    const answers: Buffer[] = [];
    if (question.qclass === CLASS_IN && (question.type === TYPE_A || question.type === TYPE_AAAA)) {
      for (const r of records) {
        const family = net.isIPv4(r.ip) ? TYPE_A : TYPE_AAAA;
        if (family !== question.type) continue;
        const data = rdata(r.ip);
        const rr = Buffer.alloc(12 + data.length);
        rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
        rr.writeUInt16BE(family, 2);
        rr.writeUInt16BE(CLASS_IN, 4);
        rr.writeUInt32BE(Math.max(0, Math.floor(r.ttl)), 6);
        rr.writeUInt16BE(data.length, 10);
        data.copy(rr, 12);
        answers.push(rr);
      }
    }
    return Buffer.concat([header(0, 1, answers.length), rawQuestion, ...answers]);
  }
}
