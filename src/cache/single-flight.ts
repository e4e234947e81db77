/**
 * Request coalescing: the first request for a key leads (goes upstream), later ones wait for its
 * outcome instead of going upstream too. Per process; waiting is bounded by a timeout after which
 * the waiters go upstream themselves.
 */

export interface Flight<T> {
  readonly key: string;
  /** Set once the leader finished: late joiners get it at once. */
  settled: boolean;
  result: T | undefined;
  /** The wait timed out: newcomers do not wait for this flight any more. */
  expired: boolean;
  waiters: ((value: T | undefined) => void)[];
  timer: NodeJS.Timeout | undefined;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Requests in flight (for tests). */
  get size(): number {
    return this.flights.size;
  }

  /**
   * Joins the flight for `key`: a promise of the leader's result (undefined when it had nothing to
   * share or the wait timed out), or undefined when there is no flight to wait for.
   */
  join(key: string): Promise<T | undefined> | undefined {
    const flight = this.flights.get(key);
    if (!flight || flight.expired) return undefined;
    if (flight.settled) return Promise.resolve(flight.result);
    return new Promise((resolve) => flight.waiters.push(resolve));
  }

  /** Starts leading `key`; undefined when another request leads it already. */
  lead(key: string): Flight<T> | undefined {
    if (this.flights.has(key)) return undefined;
    const flight: Flight<T> = { key, settled: false, result: undefined, expired: false, waiters: [], timer: undefined };
    flight.timer = setTimeout(() => {
      flight.expired = true;
      this.wake(flight, undefined);
    }, this.timeoutMs);
    flight.timer.unref();
    this.flights.set(key, flight);
    return flight;
  }

  /**
   * The leader's outcome: waiters get `result`. With `holdUntil`, newcomers keep getting the result
   * until that promise settles (e.g. while the response is written to a remote store).
   */
  finish(flight: Flight<T>, result: T | undefined, holdUntil?: Promise<unknown>): void {
    if (flight.settled) return;
    flight.settled = true;
    flight.result = result;
    if (flight.timer) clearTimeout(flight.timer);
    this.wake(flight, result);
    if (holdUntil && result !== undefined) {
      const done = () => {
        if (this.flights.get(flight.key) === flight) this.flights.delete(flight.key);
      };
      holdUntil.then(done, done);
    } else if (this.flights.get(flight.key) === flight) this.flights.delete(flight.key);
  }

  private wake(flight: Flight<T>, result: T | undefined): void {
    const waiters = flight.waiters;
    flight.waiters = [];
    for (const w of waiters) w(result);
  }
}
