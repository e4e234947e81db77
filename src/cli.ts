import { parseArgs } from 'node:util';
import { readConfigFile } from './config/load.js';
import { normalizeConfig } from './config/normalize.js';
import { PLUGINS } from './plugins/registry.js';
import { ConfigError } from './lib/errors.js';
import { parseListen, parseWorkers, runNode } from './main.js';
import { validateConfig } from './runtime/gateway.js';
import { runDemo } from './demo/demo.js';
import { VERSION } from './lib/version.js';

const USAGE = `gatehouse ${VERSION}

Usage:
  gatehouse start [--config FILE] [--proxy-listen HOST:PORT] [--proxy-listen-tls HOST:PORT|off]
                  [--admin-listen HOST:PORT|off]
                  [--workers N|auto] [--grace-period SECONDS] [--admin-token TOKEN]
                  [--read-only-admin] [--no-write-back] [--watch]
                  [--cluster-redis redis://HOST:PORT[/DB]] [--cluster-prefix PREFIX]
  gatehouse config validate FILE
  gatehouse demo              start the demo services and a gateway in front of them
  gatehouse version

Environment: GATEHOUSE_CONFIG, GATEHOUSE_PROXY_LISTEN, GATEHOUSE_PROXY_LISTEN_TLS, GATEHOUSE_ADMIN_LISTEN,
GATEHOUSE_WORKERS, GATEHOUSE_GRACE_PERIOD, GATEHOUSE_ADMIN_TOKEN, GATEHOUSE_READ_ONLY_ADMIN, GATEHOUSE_WRITE_BACK,
GATEHOUSE_WATCH, GATEHOUSE_CLUSTER_REDIS, GATEHOUSE_CLUSTER_PREFIX, GATEHOUSE_CLUSTER_HEARTBEAT_MS,
GATEHOUSE_LOG_LEVEL. Flags win over the environment (prefer the environment for the token: command
lines are visible to every user of the machine).
Defaults: --config ./gatehouse.yaml, --proxy-listen 0.0.0.0:8000, --admin-listen 127.0.0.1:8001, --workers 1;
the HTTPS listener is off unless --proxy-listen-tls is given (Kong's default is 0.0.0.0:8443);
admin changes are written back to the config file unless --no-write-back or --read-only-admin.`;

/** "1", "true", "yes", "on" (environment switches). */
function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  return /^(1|true|yes|on)$/i.test(value);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'version' || command === '--version') {
    console.log(VERSION);
    return 0;
  }
  if (command === 'config') {
    const [sub, file, ...extra] = rest;
    if (sub !== 'validate' || !file || extra.length) {
      console.error('usage: gatehouse config validate FILE');
      return 2;
    }
    try {
      const document = await readConfigFile(file);
      const normal = normalizeConfig(document, PLUGINS);
      await validateConfig(document, PLUGINS);
      console.log(`${file}: valid (${normal.services.length} services, ${normal.routes.length} routes, ${normal.plugins.length} plugins, ${normal.consumers.length} consumers)`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`${file}: invalid`);
        for (const e of err.errors) console.error(`  ${e}`);
        return 1;
      }
      throw err;
    }
  }
  if (command === 'demo') {
    await runDemo();
    return -1;
  }
  if (command === 'start') {
    const { values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        'proxy-listen': { type: 'string' },
        'proxy-listen-tls': { type: 'string' },
        'admin-listen': { type: 'string' },
        workers: { type: 'string', short: 'w' },
        'grace-period': { type: 'string' },
        'admin-token': { type: 'string' },
        'read-only-admin': { type: 'boolean' },
        'no-write-back': { type: 'boolean' },
        watch: { type: 'boolean' },
        'cluster-redis': { type: 'string' },
        'cluster-prefix': { type: 'string' },
      },
      strict: true,
    });
    const env = process.env;
    const tlsListen = values['proxy-listen-tls'] ?? (env.GATEHOUSE_PROXY_LISTEN_TLS || undefined);
    const adminValue = values['admin-listen'] ?? env.GATEHOUSE_ADMIN_LISTEN ?? '127.0.0.1:8001';
    const grace = Number(values['grace-period'] ?? env.GATEHOUSE_GRACE_PERIOD ?? 10);
    try {
      if (!Number.isFinite(grace) || grace < 0) throw new ConfigError([`grace-period: expected seconds, got "${values['grace-period'] ?? env.GATEHOUSE_GRACE_PERIOD}"`]);
      const clusterUrl = values['cluster-redis'] ?? env.GATEHOUSE_CLUSTER_REDIS;
      if (clusterUrl !== undefined && !/^rediss?:\/\//.test(clusterUrl)) throw new ConfigError([`cluster-redis: expected redis://HOST:PORT[/DB], got "${clusterUrl}"`]);
      const heartbeat = env.GATEHOUSE_CLUSTER_HEARTBEAT_MS === undefined ? undefined : Number(env.GATEHOUSE_CLUSTER_HEARTBEAT_MS);
      if (heartbeat !== undefined && (!Number.isInteger(heartbeat) || heartbeat < 50)) throw new ConfigError([`GATEHOUSE_CLUSTER_HEARTBEAT_MS: expected milliseconds (>= 50), got "${env.GATEHOUSE_CLUSTER_HEARTBEAT_MS}"`]);
      await runNode({
        adminToken: values['admin-token'] ?? (env.GATEHOUSE_ADMIN_TOKEN || undefined),
        readOnlyAdmin: values['read-only-admin'] ?? envFlag(env.GATEHOUSE_READ_ONLY_ADMIN) ?? false,
        writeBack: values['no-write-back'] ? false : (envFlag(env.GATEHOUSE_WRITE_BACK) ?? true),
        watch: values.watch ?? envFlag(env.GATEHOUSE_WATCH) ?? false,
        cluster: clusterUrl ? { url: clusterUrl, prefix: values['cluster-prefix'] ?? env.GATEHOUSE_CLUSTER_PREFIX, heartbeatMs: heartbeat } : undefined,
        configPath: values.config ?? env.GATEHOUSE_CONFIG ?? './gatehouse.yaml',
        proxyListen: parseListen(values['proxy-listen'] ?? env.GATEHOUSE_PROXY_LISTEN ?? '0.0.0.0:8000', 'proxy listen'),
        proxyListenTls: tlsListen === undefined || tlsListen === 'off' ? undefined : parseListen(tlsListen, 'proxy listen tls'),
        adminListen: adminValue === 'off' ? null : parseListen(adminValue, 'admin listen'),
        workers: parseWorkers(values.workers ?? env.GATEHOUSE_WORKERS ?? '1'),
        graceMs: grace * 1000,
      });
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error('gatehouse: cannot start:');
        for (const e of err.errors) console.error(`  ${e}`);
        return 1;
      }
      throw err;
    }
    return -1;
  }
  console.error(`unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    console.error(`gatehouse: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
