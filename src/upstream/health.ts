import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { HealthchecksConfig } from './schema.js';
import type { Address } from './types.js';

/**
 * Active and passive health checks of one upstream, after Kong's lua-resty-healthcheck.
 *
 * `address.healthy` is the only state the balancer reads; this checker flips it. Each address has
 * two sets of counters, one per mode (active probes, passive reports from proxied traffic), each
 * holding consecutive successes, tcp failures, timeouts and http failures:
 *  - a success resets the failure counters of its mode; a failure resets its success counter;
 *  - a healthy address counts failures only, an unhealthy one successes only (as Kong: nothing
 *    else can change its state);
 *  - a counter reaching its non-zero threshold (`unhealthy.tcp_failures|timeouts|http_failures`,
 *    `healthy.successes`) flips the address, which resets its counters in both modes; a zero
 *    threshold disables that counter.
 * Differences from Kong: Kong does not reset the failure counters on a success when
 * `healthy.successes` is 0 (failures then add up across successes); here they are always "in a
 * row". `passive.type` is ignored (Kong uses it only to file `report_failure` calls, which the
 * proxy does not make: it reports statuses, tcp failures and timeouts).
 *
 * Passive cool-down (Gatehouse extension, `passive.unhealthy.cooldown`): an address tripped by
 * passive checks is made healthy again after the cool-down, half-open: every enabled passive
 * failure counter is set one below its threshold, so one more failure of any counted kind trips it
 * again at once, while a success resets them like any success. A timer per tripped address makes the flip
 * happen on time (the balancer only reads `address.healthy`); the injected clock is also checked
 * lazily by `status()` and by passive reports, so a caller (a test) moving the clock sees it at
 * once. Addresses made unhealthy by active checks or by hand have no cool-down.
 */

export type HealthState = 'HEALTHY' | 'UNHEALTHY' | 'HEALTHCHECKS_OFF';

export interface HealthStatus {
  health: HealthState;
  /** Why the address is in its state ("" when it never changed). */
  reason: string;
  /** Epoch ms of the last change, 0 if never. */
  since: number;
}

export interface HealthCheckerOptions {
  /** Upstream name, for logs. */
  upstream: string;
  /** Already validated, defaults filled. */
  config: HealthchecksConfig;
  logger: Logger;
  /** Host header for probes of an address (the gateway gives upstream.host_header or the target host[:port]). */
  hostHeader(address: Address): string;
  /** Monotonic ms, injectable for cool-down tests (default performance.now). */
  now?: () => number;
  /** Called after each change of `address.healthy` made by this checker. */
  onChange?(address: Address, healthy: boolean, reason: string): void;
}

type Mode = 'active' | 'passive';

// Counter slots (Uint16Array of 4 per mode and address).
const SUCCESSES = 0;
const TCP = 1;
const TIMEOUTS = 2;
const HTTP = 3;
type FailureKind = typeof TCP | typeof TIMEOUTS | typeof HTTP;

// Verdicts of a status, in a lookup table indexed by status (0..999); 0: neither, not counted.
const SUCCESS = 1;
const FAILURE = 2;

// Probe outcomes other than an HTTP status (>= 0; 0 = an unparsable response).
const CONNECTED = -1;
const TCP_FAILURE = -2;
const TIMED_OUT = -3;

/** Kong's `lua_socket_*_timeout` default, used when `active.timeout` is 0 (OpenResty's meaning of a 0 socket timeout). */
const DEFAULT_SOCKET_TIMEOUT_MS = 60_000;

const USER_AGENT = 'gatehouse-healthcheck';

/** What one mode counts and when it flips an address. */
interface ModeRules {
  readonly mode: Mode;
  /** Verdict per status; 0 (an invalid response) is a failure, as in Kong. */
  readonly statuses: Uint8Array;
  /** Thresholds by counter slot: [healthy.successes, unhealthy.tcp_failures, .timeouts, .http_failures]. */
  readonly need: readonly number[];
}

function statusTable(healthy: readonly number[], unhealthy: readonly number[]): Uint8Array {
  const table = new Uint8Array(1000);
  table[0] = FAILURE;
  for (const s of unhealthy) if (s >= 0 && s < 1000) table[s] = FAILURE;
  // A status in both lists is a success (Kong checks the healthy list first).
  for (const s of healthy) if (s >= 0 && s < 1000) table[s] = SUCCESS;
  return table;
}

function reasonFor(rules: ModeRules, slot: number, n: number, status: number): string {
  const active = rules.mode === 'active';
  let what: string;
  if (slot === SUCCESSES) what = active ? (n === 1 ? 'successful probe' : 'successful probes') : n === 1 ? 'success' : 'successes';
  else if (slot === TCP) what = n === 1 ? 'tcp failure' : 'tcp failures';
  else if (slot === TIMEOUTS) what = active ? (n === 1 ? 'probe timeout' : 'probe timeouts') : n === 1 ? 'timeout' : 'timeouts';
  else what = n === 1 ? 'http failure' : 'http failures';
  const last = slot === HTTP ? ` (last status ${status === 0 ? 'invalid' : status})` : '';
  return `${rules.mode}: ${n} ${what} in a row${last}`;
}

/** Per-address state; the Address object itself carries `healthy`. */
class AddressState {
  readonly passive = new Uint16Array(4);
  readonly active = new Uint16Array(4);
  reason = '';
  since = 0;
  /** A passive cool-down is pending: the address comes back at `cooldownUntil` (injected clock). */
  coolingDown = false;
  cooldownUntil = 0;
  cooldownKind: FailureKind = HTTP;
  cooldownTimer: NodeJS.Timeout | undefined;
  /** Queued for or being probed (an address is never probed twice at once). */
  probing = false;

  constructor(public address: Address) {}
}

/**
 * Health checks of one upstream. Create it, give it the addresses (`setAddresses`), `start()` the
 * active probes, feed it the proxy's outcomes (`reportStatus`, `reportFailure`), `stop()` it when
 * its upstream is retired. Single event loop: no locking.
 */
export class HealthChecker {
  /** active.healthy.interval > 0 || active.unhealthy.interval > 0 */
  readonly activeEnabled: boolean;
  /** Any passive threshold > 0. */
  readonly passiveEnabled: boolean;

  private readonly upstream: string;
  private readonly config: HealthchecksConfig;
  private readonly logger: Logger;
  private readonly hostHeader: (address: Address) => string;
  private readonly now: () => number;
  private readonly onChange: ((address: Address, healthy: boolean, reason: string) => void) | undefined;
  private readonly activeRules: ModeRules;
  private readonly passiveRules: ModeRules;
  private readonly cooldownMs: number;
  private readonly probeTimeoutMs: number;
  private readonly probeHeaders: Readonly<Record<string, string | string[]>>;
  private readonly tls: boolean;

  private states = new Map<string, AddressState>();
  /** Passive reports count: passive checks on and not stopped (one test on the hot path). */
  private passiveLive: boolean;
  private started = false;
  private stopped = false;
  private readonly intervals: NodeJS.Timeout[] = [];
  private readonly queue: AddressState[] = [];
  private running = 0;
  /** Aborts of the probes in flight. */
  private readonly inflight = new Set<() => void>();

  constructor(options: HealthCheckerOptions) {
    this.upstream = options.upstream;
    this.config = options.config;
    this.logger = options.logger;
    this.hostHeader = options.hostHeader;
    this.now = options.now ?? (() => performance.now());
    this.onChange = options.onChange;
    const { active, passive } = options.config;
    this.activeEnabled = active.healthy.interval > 0 || active.unhealthy.interval > 0;
    this.passiveEnabled =
      passive.healthy.successes > 0 || passive.unhealthy.tcp_failures > 0 || passive.unhealthy.timeouts > 0 || passive.unhealthy.http_failures > 0;
    this.passiveLive = this.passiveEnabled;
    this.activeRules = {
      mode: 'active',
      statuses: statusTable(active.healthy.http_statuses, active.unhealthy.http_statuses),
      need: [active.healthy.successes, active.unhealthy.tcp_failures, active.unhealthy.timeouts, active.unhealthy.http_failures],
    };
    this.passiveRules = {
      mode: 'passive',
      statuses: statusTable(passive.healthy.http_statuses, passive.unhealthy.http_statuses),
      need: [passive.healthy.successes, passive.unhealthy.tcp_failures, passive.unhealthy.timeouts, passive.unhealthy.http_failures],
    };
    this.cooldownMs = passive.unhealthy.cooldown * 1000;
    this.probeTimeoutMs = active.timeout > 0 ? Math.max(1, Math.round(active.timeout * 1000)) : DEFAULT_SOCKET_TIMEOUT_MS;
    // Configured headers (names lower-cased) win over the defaults, Host and User-Agent included.
    const headers: Record<string, string | string[]> = { 'user-agent': USER_AGENT };
    for (const [name, values] of Object.entries(active.headers ?? {})) headers[name.toLowerCase()] = values.length === 1 ? values[0] : values;
    this.probeHeaders = headers;
    // grpc and grpcs probes are plain HTTP/1.1 GETs like http and https (documented limitation:
    // a gRPC server that only speaks HTTP/2 fails them; Kong's checker has no gRPC probe either).
    this.tls = active.type === 'https' || active.type === 'grpcs';
  }

  /**
   * The addresses to watch. Called again after a DNS change: the state and counters of an address
   * whose key is still present are kept (the caller passes the Address objects it carried over);
   * a new key starts with no counters and the `healthy` it comes with (normally true). Removed
   * addresses are forgotten: their cool-down is cancelled and a probe in flight is ignored.
   */
  setAddresses(addresses: readonly Address[]): void {
    const next = new Map<string, AddressState>();
    for (const address of addresses) {
      let state = this.states.get(address.key);
      if (state) state.address = address;
      else state = new AddressState(address);
      next.set(address.key, state);
    }
    for (const [key, state] of this.states) if (!next.has(key)) this.cancelCooldown(state);
    this.states = next;
  }

  /** The status of a proxied response from `address` (a no-op when passive checks are off). */
  reportStatus(address: Address, status: number): void {
    if (!this.passiveLive) return;
    const state = this.states.get(address.key);
    if (state === undefined) return;
    const verdict = this.passiveRules.statuses[status];
    if (verdict === SUCCESS) this.success(state, this.passiveRules, state.passive);
    else if (verdict === FAILURE) this.failure(state, this.passiveRules, state.passive, HTTP, status);
  }

  /** A proxied request to `address` could not connect / send / read ('tcp') or timed out. */
  reportFailure(address: Address, kind: 'tcp' | 'timeout'): void {
    if (!this.passiveLive) return;
    const state = this.states.get(address.key);
    if (state === undefined) return;
    this.failure(state, this.passiveRules, state.passive, kind === 'tcp' ? TCP : TIMEOUTS, 0);
  }

  /**
   * The admin API's PUT .../healthy|unhealthy: sets the state by hand and resets the counters of
   * both modes; cancels a pending cool-down (an address set unhealthy by hand stays out until set
   * healthy or recovered by active probes). Logged and notified only when the state changes.
   * Addresses not given to `setAddresses` are ignored.
   */
  setHealthy(address: Address, healthy: boolean, reason: string): void {
    const state = this.states.get(address.key);
    if (state === undefined) return;
    this.cancelCooldown(state);
    if (state.address.healthy !== healthy) {
      this.flip(state, healthy, reason, undefined);
      return;
    }
    state.passive.fill(0);
    state.active.fill(0);
    state.reason = reason;
  }

  /**
   * For GET /upstreams/{name}/health. HEALTHCHECKS_OFF when neither active nor passive checks are
   * on, unless the address is unhealthy (only the admin API can do that then).
   */
  status(address: Address): HealthStatus {
    const state = this.states.get(address.key);
    if (state === undefined) return { health: this.health(address), reason: '', since: 0 };
    if (state.coolingDown) this.endCooldownIfDue(state);
    return { health: this.health(state.address), reason: state.reason, since: state.since };
  }

  /**
   * Starts the active probes (unref'd timers). Each `active.healthy.interval` seconds the healthy
   * addresses are probed, each `active.unhealthy.interval` seconds the unhealthy ones (0: that
   * group is not probed); the first round comes one interval after start, as in Kong. At most
   * `active.concurrency` probes run at once; the others wait in a queue, and an address still
   * queued or being probed is skipped by the next round. No-op when active checks are off, when
   * started already, or after stop().
   */
  start(): void {
    if (this.started || this.stopped || !this.activeEnabled) return;
    this.started = true;
    const { healthy, unhealthy } = this.config.active;
    if (healthy.interval > 0) this.intervals.push(setInterval(() => this.round(true), healthy.interval * 1000).unref());
    if (unhealthy.interval > 0) this.intervals.push(setInterval(() => this.round(false), unhealthy.interval * 1000).unref());
  }

  /**
   * Stops the probe timers and the cool-down timers, aborts the probes in flight (their sockets
   * are destroyed, their outcome dropped). Final: afterwards passive reports are ignored and
   * start() does nothing; `address.healthy` is left as it is. Idempotent.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.passiveLive = false;
    for (const timer of this.intervals) clearInterval(timer);
    this.intervals.length = 0;
    for (const abort of [...this.inflight]) abort();
    this.inflight.clear();
    for (const state of this.queue) state.probing = false;
    this.queue.length = 0;
    for (const state of this.states.values()) this.cancelCooldown(state);
  }

  private health(address: Address): HealthState {
    if (!address.healthy) return 'UNHEALTHY';
    return this.activeEnabled || this.passiveEnabled ? 'HEALTHY' : 'HEALTHCHECKS_OFF';
  }

  // --- counting ----------------------------------------------------------------------------

  private success(state: AddressState, rules: ModeRules, counts: Uint16Array): void {
    if (state.coolingDown) this.endCooldownIfDue(state);
    counts[TCP] = 0;
    counts[TIMEOUTS] = 0;
    counts[HTTP] = 0;
    if (state.address.healthy) return;
    const need = rules.need[SUCCESSES];
    if (need === 0) return;
    const n = ++counts[SUCCESSES];
    if (n >= need) this.flip(state, true, reasonFor(rules, SUCCESSES, n, 0), undefined);
  }

  private failure(state: AddressState, rules: ModeRules, counts: Uint16Array, kind: FailureKind, status: number): void {
    if (state.coolingDown) this.endCooldownIfDue(state);
    counts[SUCCESSES] = 0;
    if (!state.address.healthy) return;
    const need = rules.need[kind];
    if (need === 0) return;
    const n = ++counts[kind];
    if (n >= need) this.flip(state, false, reasonFor(rules, kind, n, status), rules.mode === 'passive' ? kind : undefined);
  }

  /**
   * Sets `address.healthy`, resets both modes' counters, records, logs and notifies the change.
   * `passiveTrip`: the passive counter that made it unhealthy (arms the cool-down when configured).
   */
  private flip(state: AddressState, healthy: boolean, reason: string, passiveTrip: FailureKind | undefined): void {
    const address = state.address;
    address.healthy = healthy;
    state.passive.fill(0);
    state.active.fill(0);
    state.reason = reason;
    state.since = Date.now();
    this.cancelCooldown(state);
    if (passiveTrip !== undefined && this.cooldownMs > 0 && !this.stopped) {
      state.coolingDown = true;
      state.cooldownUntil = this.now() + this.cooldownMs;
      state.cooldownKind = passiveTrip;
      this.armCooldownTimer(state, this.cooldownMs);
    }
    const fields = { upstream: this.upstream, target: address.target, address: address.key, reason };
    if (healthy) this.logger.info(fields, 'upstream address healthy');
    else this.logger.warn(fields, 'upstream address unhealthy');
    if (this.onChange) {
      try {
        this.onChange(address, healthy, reason);
      } catch (err) {
        this.logger.error({ err: { message: (err as Error).message }, upstream: this.upstream, address: address.key }, 'health change callback failed');
      }
    }
  }

  // --- passive cool-down ---------------------------------------------------------------------

  private armCooldownTimer(state: AddressState, ms: number): void {
    state.cooldownTimer = setTimeout(() => {
      state.cooldownTimer = undefined;
      // Timers follow the real clock; the injected one decides. Not due yet: wait for the rest.
      if (state.coolingDown && !this.endCooldownIfDue(state)) this.armCooldownTimer(state, Math.max(1, state.cooldownUntil - this.now()));
    }, ms).unref();
  }

  /** Brings a cooled-down address back half-open when its time is up; true when it did. */
  private endCooldownIfDue(state: AddressState): boolean {
    if (this.now() < state.cooldownUntil) return false;
    this.flip(state, true, 'passive: cool-down over (half-open)', undefined);
    // Half-open, as a circuit breaker: one more failure of any counted kind trips it again.
    for (const kind of [TCP, TIMEOUTS, HTTP] as const) {
      const need = this.passiveRules.need[kind]!;
      if (need > 0) state.passive[kind] = need - 1;
    }
    return true;
  }

  private cancelCooldown(state: AddressState): void {
    state.coolingDown = false;
    if (state.cooldownTimer !== undefined) {
      clearTimeout(state.cooldownTimer);
      state.cooldownTimer = undefined;
    }
  }

  // --- active probes -------------------------------------------------------------------------

  private round(healthy: boolean): void {
    for (const state of this.states.values()) {
      if (state.address.healthy === healthy && !state.probing) {
        state.probing = true;
        this.queue.push(state);
      }
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.config.active.concurrency && this.queue.length > 0) {
      const state = this.queue.shift()!;
      if (this.states.get(state.address.key) !== state) {
        state.probing = false;
        continue;
      }
      this.running++;
      this.probe(state.address, (outcome) => {
        this.running--;
        state.probing = false;
        if (this.stopped) return;
        try {
          if (this.states.get(state.address.key) === state) this.judge(state, outcome);
        } catch (err) {
          this.logger.error({ err: { message: (err as Error).message }, upstream: this.upstream, address: state.address.key }, 'health check failed');
        }
        this.pump();
      });
    }
  }

  private judge(state: AddressState, outcome: number): void {
    const rules = this.activeRules;
    if (outcome === CONNECTED) this.success(state, rules, state.active);
    else if (outcome === TCP_FAILURE) this.failure(state, rules, state.active, TCP, 0);
    else if (outcome === TIMED_OUT) this.failure(state, rules, state.active, TIMEOUTS, 0);
    else {
      const verdict = rules.statuses[outcome];
      if (verdict === SUCCESS) this.success(state, rules, state.active);
      else if (verdict === FAILURE) this.failure(state, rules, state.active, HTTP, outcome);
    }
  }

  /**
   * One probe; `done` gets its outcome exactly once, asynchronously, unless stop() aborts it first.
   * tcp: a connect (then closed). http/https (and grpc/grpcs): a fresh connection (no pooling),
   * `GET active.http_path`; the status is judged once the whole response is read (the body is
   * discarded) or, if the body outlasts the timeout, at the timeout. The timeout covers the whole
   * probe, connect included, and counts in `timeouts` when no status arrived. Connection and TLS
   * errors (certificate verification included) are tcp failures; an unparsable response is an
   * http failure (status 0, as Kong's bad status line).
   */
  private probe(address: Address, done: (outcome: number) => void): void {
    let finished = false;
    let status: number | undefined;
    let socket: net.Socket | undefined;
    let request: http.ClientRequest | undefined;
    const close = (): void => {
      finished = true;
      clearTimeout(timer);
      this.inflight.delete(abort);
      request?.destroy();
      socket?.destroy();
    };
    const finish = (outcome: number): void => {
      if (finished) return;
      close();
      done(outcome);
    };
    const abort = (): void => {
      if (!finished) close();
    };
    const timer = setTimeout(() => finish(status ?? TIMED_OUT), this.probeTimeoutMs).unref();
    this.inflight.add(abort);
    try {
      if (this.config.active.type === 'tcp') {
        socket = net.connect({ host: address.ip, port: address.port });
        socket.on('connect', () => finish(CONNECTED));
        socket.on('error', () => finish(TCP_FAILURE));
        return;
      }
      const headers: Record<string, string | string[]> = { host: this.hostHeader(address), ...this.probeHeaders };
      const options: https.RequestOptions = { host: address.ip, port: address.port, method: 'GET', path: this.config.active.http_path, headers, agent: false };
      if (this.tls) {
        // '' = no SNI (an IP is not a server name); verification then checks the IP.
        options.servername = this.config.active.https_sni ?? (net.isIP(address.hostname) ? '' : address.hostname);
        options.rejectUnauthorized = this.config.active.https_verify_certificate;
      }
      request = (this.tls ? https : http).request(options, (res) => {
        status = res.statusCode ?? 0;
        res.resume();
        res.on('end', () => finish(status!));
        res.on('error', () => finish(status!));
      });
      request.on('error', (err: NodeJS.ErrnoException) => finish(status ?? (err.code?.startsWith('HPE_') ? 0 : TCP_FAILURE)));
      request.end();
    } catch {
      // A synchronous throw (a bad port, a throwing hostHeader) is a tcp failure, reported later like the others.
      queueMicrotask(() => finish(TCP_FAILURE));
    }
  }
}
