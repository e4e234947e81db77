import type { Credential } from '../../config/consumers.js';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous } from '../auth-common/anonymous.js';
import { decodeBase64, firstHeader, utf8 } from '../auth-common/request.js';
import { Fingerprinter } from '../auth-common/secrets.js';
import { decoyVerifier, verifierFor, type PasswordVerifier } from './passwords.js';
import type { BasicAuthConfig } from './schema.js';

interface User {
  credential: Credential;
  verifier: PasswordVerifier;
}

/** Successful checks remembered per snapshot (keyed by an HMAC of user and password), so a client's next requests skip the slow hash. */
const MEMO_LIMIT = 10_000;

const BASIC = /\s*[Bb]asic\s*(.+)/;
const USER_PASS = /([^:]+):(.*)/;

/** Kong's retrieve_credentials: `Basic base64(user:password)`; undefined when absent or malformed. */
function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = BASIC.exec(header);
  if (!m) return undefined;
  const bytes = decodeBase64(m[1]!);
  const decoded = bytes && utf8(bytes);
  if (decoded === undefined) return undefined;
  const parts = USER_PASS.exec(decoded);
  if (!parts) return undefined;
  return { username: parts[1]!, password: parts[2]! };
}

export function create(config: BasicAuthConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('basic-auth', config.anonymous, deps);
  const challenge = { 'www-authenticate': `Basic realm="${config.realm}"` };

  const users = new Map<string, User>();
  const problems: string[] = [];
  for (const credential of deps.consumers.credentials('basicauth_credentials')) {
    const username = String(credential.fields.username);
    try {
      users.set(username, { credential, verifier: verifierFor(String(credential.fields.password)) });
    } catch (err) {
      problems.push(`basicauth_credentials "${username}": password ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
  const decoy = decoyVerifier();
  const fingerprints = new Fingerprinter();
  const memo = new Map<string, Credential>();

  const unauthorized = (ex: Exchange, reason: string): LocalReply => errorReply(ex, 401, 'Unauthorized', `basic-auth: ${reason}`, challenge);

  function succeed(ex: Exchange, credential: Credential): undefined {
    setConsumer(ex, credential.consumer, credential, String(credential.fields.username));
    return undefined;
  }

  async function check(ex: Exchange, user: User | undefined, password: string, memoKey: string): Promise<Outcome> {
    let ok = false;
    try {
      // Unknown users cost a hash too, so timing does not tell which usernames exist.
      ok = (await (user ? user.verifier : decoy).verify(password)) && user !== undefined;
    } catch (err) {
      deps.logger.error({ err: { message: (err as Error).message }, plugin: 'basic-auth', request_id: ex.requestId }, 'password check failed');
    }
    if (!ok || !user) return anonymous.fail(ex, unauthorized(ex, user ? 'wrong password' : 'unknown user'));
    if (memo.size >= MEMO_LIMIT) memo.delete(memo.keys().next().value!);
    memo.set(memoKey, user.credential);
    return succeed(ex, user.credential);
  }

  function authenticate(ex: Exchange): Outcome | Promise<Outcome> {
    const proxyHeader = firstHeader(ex, 'proxy-authorization');
    const authHeader = firstHeader(ex, 'authorization');
    if (proxyHeader === undefined && authHeader === undefined) return anonymous.fail(ex, unauthorized(ex, 'no credentials'));

    // Kong: Proxy-Authorization first; Authorization when that names no known user.
    let given = parseBasic(proxyHeader);
    if (config.hide_credentials) delete ex.upstreamHeaders['proxy-authorization'];
    let user = given ? users.get(given.username) : undefined;
    if (!user) {
      given = parseBasic(authHeader);
      if (config.hide_credentials) delete ex.upstreamHeaders.authorization;
      if (!given) return anonymous.fail(ex, unauthorized(ex, 'malformed credentials'));
      user = users.get(given.username);
    }
    const memoKey = fingerprints.of(given!.username, given!.password);
    const remembered = memo.get(memoKey);
    if (remembered) return succeed(ex, remembered);
    return check(ex, user, given!.password, memoKey);
  }

  return {
    access(ex) {
      if (anonymous.skip(ex)) return undefined;
      return authenticate(ex);
    },
  };
}
