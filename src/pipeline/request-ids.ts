import { randomBytes } from 'node:crypto';

/** 32 hex characters per request: a random per-process prefix and a counter (no syscall per request). */
export class RequestIds {
  private readonly prefix = randomBytes(8).toString('hex');
  private counter = 0;

  next(): string {
    this.counter = (this.counter + 1) % 0x1_0000_0000_0000;
    return this.prefix + this.counter.toString(16).padStart(16, '0');
  }
}
