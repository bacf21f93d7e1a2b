/**
 * `tide autoscale`: the control loop on its own, for services Tidescale did not start (Compose,
 * Kubernetes, ECS): reads each autoscaled service's sources, decides, applies through its
 * configured actuator, and journals every decision. Runs until SIGINT/SIGTERM.
 */
import { createServer } from 'node:http';
import path from 'node:path';

import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide autoscale [options]

Runs the autoscaler for every service with a \`scale:\` block. Outside \`tide up\` each of them
needs an \`actuator:\` (compose, kubernetes or ecs). Prints a line per decision that changes
something; every decision goes to the journal (\`tide decisions\`). Ctrl-C stops it.

options:
  -c, --config <file>     the project file (default tide.yaml)
  --dry-run               decide and record, never scale (also autoscale.dry_run)
  --once                  one round for every service, then exit
  --json                  every decision as one JSON line
  --metrics-port <port>   serve the controller's Prometheus metrics on /metrics (0: off)`;

export const command: Command = {
  summary: 'run the autoscaler on its own (Compose, Kubernetes, ECS): --dry-run, --once, --json',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        config: { type: 'string', short: 'c', default: 'tide.yaml' },
        'dry-run': { type: 'boolean', default: false },
        once: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'metrics-port': { type: 'string' },
      },
      false,
    );
    const metricsPort = numberArg(values['metrics-port'], '--metrics-port', 0, 0);
    const [{ loadConfig }, { resolveDatabase }, { startController }] = await Promise.all([
      import('../../config/load.js'),
      import('../../db/connect.js'),
      import('../../controller/start.js'),
    ]);
    const config = await loadConfig(values.config);
    const stateDir = path.resolve(path.dirname(path.resolve(values.config)), config.stateDir);
    const log = (line: string) => process.stderr.write(`tide autoscale | ${line}\n`);
    const database = await resolveDatabase({ stateDir, url: config.database.url ?? process.env.DATABASE_URL, source: config.database.url ? 'database.url' : 'DATABASE_URL', log });
    try {
      // scaling to max must not end in "too many connections": refuse or warn with the numbers first
      const { checkConnectionBudget } = await import('../../db/budget-live.js');
      await checkConnectionBudget(Object.values(config.services), {
        url: database.url,
        pooler: config.database.pooler,
        directUrl: config.database.directUrl,
        maxConnections: config.database.maxConnections,
        log,
      });
      const running = await startController({
        config,
        databaseUrl: database.url,
        log,
        manual: true,
        ...(values['dry-run'] ? { dryRun: true } : {}),
        onDecision: (r) => {
          if (values.json) process.stdout.write(`${JSON.stringify({ ...r, at: new Date(r.at).toISOString() })}\n`);
          else if (r.desired !== r.current || r.errors.length > 0) {
            const what = r.desired === r.current ? 'holds' : r.dryRun ? 'would scale' : r.paused ? 'paused, would scale' : 'scales';
            const why = r.reasons.at(-1)?.message ?? '';
            const errs = r.errors.length > 0 ? ` [${r.errors.map((e) => `${e.source ?? ''} ${e.code}`.trim()).join(', ')}]` : '';
            process.stdout.write(`${new Date(r.at).toISOString()} ${r.service} ${what} ${r.current} -> ${r.desired}: ${why}${errs}\n`);
          }
        },
      });
      const names = running.controller.serviceNames();
      if (names.length === 0) log('no service has a `scale:` block: nothing to do');
      try {
        if (values.once) {
          await running.controller.tick();
          await running.controller.settled();
          return 0;
        }
        const server = metricsPort > 0 ? await serveMetrics(running.controller.registry, metricsPort) : undefined;
        log(`controlling ${names.join(', ') || 'nothing'} every ${config.autoscale.intervalMs / 1000} s${running.controller.dryRun ? ' (dry run)' : ''}${server ? `; metrics on :${metricsPort}/metrics` : ''}; Ctrl-C stops`);
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
          running.controller.start();
        });
        log(`${signal}: stopping`);
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        return 0;
      } finally {
        await running.stop();
      }
    } finally {
      await database.stop();
    }
  },
};

async function serveMetrics(registry: import('prom-client').Registry, port: number) {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
