/**
 * `tide worker`: a thin shell over startWorker(). Drains on SIGTERM/SIGINT: stops claiming,
 * lets in-flight jobs finish within the grace period, releases the rest, exits 0.
 */
import { parse, numberArg } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide worker [options]

Runs job handlers from the queue, --concurrency at a time.

  --handlers <module>    handlers module (.ts or .js) exporting name -> async (payload, ctx) => result
                         (env TIDE_HANDLERS); built-ins: hash, sleep
  --queues <a,b>         queues to take jobs from; * for all (default: default)
  --concurrency <n>      jobs at once in this process (env WORKER_CONCURRENCY, default 10)
  --schema <name>        database schema of the queue (env TIDE_SCHEMA, default tide)
  --grace <seconds>      on SIGTERM/SIGINT, how long in-flight jobs may finish (default 30);
                         a second signal releases them to the queue at once
  --lease <seconds>      lease per job, renewed by heartbeats; a killed worker's jobs run
                         again after about this long (default 5)
  --poll <ms>            polling fallback when NOTIFY does not arrive (default 1000)
  --retention <hours>    delete completed and dead jobs older than this (default 168; 0: keep)
  --metrics-port <port>  serve /health and /metrics on this port (env TIDE_METRICS_PORT; 0: off)
  --pool-size <n>        database connections of this worker (env TIDE_DB_POOL_SIZE, default 4),
                         plus one for LISTEN
  --state-dir <dir>      where the embedded database lives when DATABASE_URL is unset (default .tide)

Behind PgBouncer in transaction mode (detected, or TIDE_DB_POOLER=pgbouncer): no prepared
statements; LISTEN on DATABASE_DIRECT_URL when set, else --poll wakes the worker.
`;

export const command: Command = {
  summary: 'run job handlers from the queue (drains on SIGTERM)',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        handlers: { type: 'string' },
        queues: { type: 'string' },
        concurrency: { type: 'string' },
        schema: { type: 'string' },
        grace: { type: 'string' },
        lease: { type: 'string' },
        poll: { type: 'string' },
        retention: { type: 'string' },
        'metrics-port': { type: 'string' },
        'pool-size': { type: 'string' },
        'state-dir': { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    const concurrency = numberArg(values.concurrency ?? process.env.WORKER_CONCURRENCY, '--concurrency', 10, 1);
    if (!Number.isInteger(concurrency)) {
      const { TideError } = await import('../../errors.js');
      throw new TideError('TIDE_USAGE', `--concurrency takes a whole number, not "${concurrency}".`, { where: { arg: '--concurrency' } });
    }
    const graceMs = numberArg(values.grace, '--grace', 30) * 1000;
    const leaseMs = numberArg(values.lease, '--lease', 5, 0.05) * 1000;
    const pollMs = numberArg(values.poll, '--poll', 1000, 10);
    const retentionMs = numberArg(values.retention, '--retention', 168, 0) * 3_600_000;
    const metricsPort = numberArg(values['metrics-port'] ?? process.env.TIDE_METRICS_PORT, '--metrics-port', 0, 0);
    const poolSize = numberArg(values['pool-size'] ?? process.env.TIDE_DB_POOL_SIZE, '--pool-size', 4, 1);
    const queues = (values.queues ?? 'default').split(',').map((q) => q.trim()).filter(Boolean);
    const schema = values.schema ?? process.env.TIDE_SCHEMA ?? 'tide';
    const handlersPath = values.handlers ?? process.env.TIDE_HANDLERS;

    const [{ resolveDatabase }, { redactUrl }, { loadHandlers }, { startWorker }] = await Promise.all([
      import('../../db/connect.js'),
      import('../../db/embedded.js'),
      import('../../runtime/handlers/index.js'),
      import('../../runtime/worker/worker.js'),
    ]);
    // Signals are taken from the start: a replica scaled in while it is still starting must
    // not die by the default action with jobs it has just claimed (they would wait out a lease).
    let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
    let stopAsked: NodeJS.Signals | undefined;
    let signals = 0;
    let draining = false;
    // the first signal drains; a second one (a second Ctrl-C, `tide down --now`) releases
    // the jobs still running to the queue at once
    const onSignal = (signal: NodeJS.Signals) => {
      stopAsked ??= signal;
      signals++;
      act(signal);
    };
    const act = (signal: NodeJS.Signals) => {
      if (!worker) return;
      if (!draining) {
        draining = true;
        process.stderr.write(`tide worker ${worker.id}: ${signal}, draining (grace ${graceMs / 1000} s; again to release the jobs in flight now)\n`);
        void worker.stop(graceMs);
      }
      if (signals > 1) {
        process.stderr.write(`tide worker ${worker.id}: ${signal} again, releasing the jobs in flight to the queue\n`);
        void worker.stop(0);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    const handlers = handlersPath ? await loadHandlers(handlersPath) : {};
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const database = await resolveDatabase({ ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}), log });
    try {
      worker = await startWorker({ connectionString: database.url, schema, queues, concurrency, handlers, graceMs, leaseMs, pollMs, retentionMs, metricsPort, poolSize, log });
    } catch (err) {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      await database.stop();
      throw err;
    }
    const names = ['hash', 'sleep', ...Object.keys(handlers)].filter((n, i, all) => all.indexOf(n) === i).sort();
    process.stdout.write(
      `tide worker ${worker.id}: queues ${queues.join(',')}, concurrency ${concurrency}, handlers ${names.join(', ')}, ` +
        `database ${redactUrl(database.url)}${database.embedded ? ' (embedded)' : ''} schema ${schema}` +
        `${worker.metricsPort ? `, metrics on :${worker.metricsPort}` : ''}\n`,
    );
    if (stopAsked) act(stopAsked);
    await worker.stopped;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await database.stop();
    log(`tide worker ${worker.id}: stopped after ${worker.processed} job(s)`);
    // a handler that ignored the abort may still hold timers: its job was released, do not wait for it
    setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
    return 0;
  },
};
