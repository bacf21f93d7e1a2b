import { TideError } from '../../errors.js';
import { proxyTrust } from '../../net/client-identity.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide api [options]

Run the jobs API (POST /v1/jobs, GET /v1/jobs/:id, GET /v1/queues, /health, /metrics) on
PostgreSQL: DATABASE_URL, or the embedded server under the state directory.

options:
  --port <n>          port to listen on (default: PORT, else 3000)
  --host <addr>       address to listen on (default 127.0.0.1)
  --schema <name>     PostgreSQL schema of the queue (default: TIDE_SCHEMA, else tide)
  --state-dir <dir>   state directory for the embedded database (default .tide)
  --routes <module>   a Fastify plugin module with your own routes (repeatable)
  --api-key <key>     require X-API-Key to be this key (repeatable; also API_KEYS=k1,k2)
  --handler <name>    refuse jobs for handlers not named (repeatable; default: accept any)
  --rate-limit <n>    requests per client per minute, per replica (default 1000; 0 turns it off);
                      a client is its verified API key, else its address
  --trusted-proxy <cidr>
                      a proxy in front whose forwarded header names the client (repeatable;
                      also TRUSTED_PROXIES=cidr,cidr; default: none, the socket's address)
  --forwarded-header <name>
                      the header those proxies set: x-forwarded-for (default) or forwarded
  --body-limit <n>    largest request body in bytes (default 1048576)
  --headers-timeout <ms>
                      a request head must arrive within this long, else 408 (default 10000)
  --max-connections <n>
                      connections held at most; the excess is closed at once (default: what
                      the file descriptor limit allows, less a reserve)
  --pool-size <n>     database connections of this replica (default: TIDE_DB_POOL_SIZE, else 10)

Behind PgBouncer in transaction mode (detected, or TIDE_DB_POOLER=pgbouncer) the queue uses
no prepared statements and no session state; the pooler's errors are 503s with Retry-After.

SIGTERM or SIGINT: stop accepting, finish the requests in flight, close the pool, exit 0.`;

export const command: Command = {
  summary: 'run the jobs API (HTTP) on the queue',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        json: { type: 'boolean', default: false },
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        schema: { type: 'string' },
        'state-dir': { type: 'string', default: '.tide' },
        routes: { type: 'string', multiple: true },
        'api-key': { type: 'string', multiple: true },
        handler: { type: 'string', multiple: true },
        'rate-limit': { type: 'string' },
        'body-limit': { type: 'string' },
        'trusted-proxy': { type: 'string', multiple: true },
        'forwarded-header': { type: 'string' },
        'headers-timeout': { type: 'string' },
        'max-connections': { type: 'string' },
        'pool-size': { type: 'string' },
      },
      false,
    );
    const port = numberArg(values.port ?? process.env.PORT, values.port === undefined ? 'PORT' : '--port', 3000);
    const rate = numberArg(values['rate-limit'], '--rate-limit', 1000);
    const bodyLimit = numberArg(values['body-limit'], '--body-limit', 1024 * 1024, 1);
    const headersTimeoutMs = numberArg(values['headers-timeout'], '--headers-timeout', 10_000, 1);
    const maxConnections = values['max-connections'] === undefined ? undefined : numberArg(values['max-connections'], '--max-connections', 0, 1);
    const forwardedHeader = values['forwarded-header'] ?? process.env.FORWARDED_HEADER ?? 'x-forwarded-for';
    if (forwardedHeader !== 'x-forwarded-for' && forwardedHeader !== 'forwarded') {
      throw new TideError('TIDE_USAGE', `--forwarded-header must be x-forwarded-for or forwarded, not "${forwardedHeader}".`, { where: { arg: '--forwarded-header' } });
    }
    const trustedProxies = [...(values['trusted-proxy'] ?? []), ...(process.env.TRUSTED_PROXIES ?? '').split(',')].map((p) => p.trim()).filter(Boolean);
    // checked here, so a typo stops the start with the flag's name
    proxyTrust({ trustedProxies }, values['trusted-proxy'] ? '--trusted-proxy' : 'TRUSTED_PROXIES');
    const poolSize = numberArg(values['pool-size'] ?? process.env.TIDE_DB_POOL_SIZE, '--pool-size', 10, 1);
    const apiKeys = [...(values['api-key'] ?? []), ...(process.env.API_KEYS ?? '').split(',')].map((k) => k.trim()).filter(Boolean);

    const [{ resolveDatabase }, { startApi }, { version }] = await Promise.all([
      import('../../db/connect.js'),
      import('../../runtime/api/start.js'),
      import('../../version.js'),
    ]);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const db = await resolveDatabase({ stateDir: values['state-dir'], log });
    let api;
    try {
      api = await startApi({
        databaseUrl: db.url,
        schema: values.schema ?? process.env.TIDE_SCHEMA ?? 'tide',
        port,
        host: values.host,
        version,
        apiKeys,
        rateLimit: rate === 0 ? false : { max: rate, windowMs: 60_000 },
        bodyLimit,
        headersTimeoutMs,
        ...(maxConnections !== undefined ? { maxConnections } : {}),
        trust: { trustedProxies, forwardedHeader },
        poolSize,
        ...(values.handler ? { knownHandlers: values.handler } : {}),
        ...(values.routes ? { plugins: values.routes } : {}),
        logger: { level: process.env.LOG_LEVEL ?? 'info' },
      });
    } catch (err) {
      await db.stop();
      throw err;
    }
    log(`tide api listening on ${api.url} (pid ${process.pid})`);

    // bounded, graceful shutdown: the first signal drains, a second one exits at once
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    log(`${signal}: finishing the requests in flight`);
    const force = () => process.exit(1);
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
    try {
      await api.close();
      await db.stop();
    } finally {
      process.off('SIGTERM', force);
      process.off('SIGINT', force);
    }
    log('tide api stopped');
    return 0;
  },
};
