/**
 * `tide doctor`: checks a running system for the runbooks' troubleshooting symptoms and
 * prints findings with their fix, most severe first; exits 1 when one is critical. A thin
 * shell over src/doctor (gather once, pure checks, format).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide doctor [options]

Looks at the running system for the runbooks' troubleshooting symptoms and "when to scale"
indicators, and prints what is wrong with the fix, most severe first: workers not consuming,
a service pinned at its max (or stuck at its min) while short, database connections near
max_connections, clients waiting in a pool, queue depth or age over their lines, API p95 over
500 ms or errors over 5%, uneven load across API replicas, flapping, failing metric sources.
It watches for --window seconds (two snapshots), because most symptoms are rates.
Exit 1 when a finding is critical, 0 otherwise.

  -c, --config <file>     the project's tide.yaml (default tide.yaml): bounds, SLOs, sources
  --state-dir <dir>       where \`tide up\` wrote control.json (default: the config's state_dir)
  --url <url>             the control API of a running tide up, instead of control.json
  --balancer <url>        a load balancer to read /lb/stats from
  --api <url>             an API replica to read (/metrics, /db/pool/stats, /v1/queues); repeatable
  --api-key <key>         X-API-Key for the API replicas (default: the first of API_KEYS)
  --database-url <url>    for pg_stat_activity and the journal (default: database.url, DATABASE_URL)
  --window <seconds>      time between the two snapshots (default 5)
  --json                  the findings and facts as one JSON document
  (without a running tide up, the config's metric \`sources:\` are read instead)`;

export const command: Command = {
  summary: 'check a running system for the runbooks\' symptoms and print findings with the fix',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        config: { type: 'string', short: 'c', default: 'tide.yaml' },
        'state-dir': { type: 'string' },
        url: { type: 'string' },
        balancer: { type: 'string' },
        api: { type: 'string', multiple: true },
        'api-key': { type: 'string' },
        'database-url': { type: 'string' },
        window: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      false,
    );
    const windowMs = numberArg(values.window, '--window', 5, 0) * 1000;
    const [{ gatherFacts }, { diagnose, hasCritical }, { findingsJson, formatFindings }, { connectControl, readControlState }, { createSource }] = await Promise.all([
      import('../../doctor/gather.js'),
      import('../../doctor/diagnose.js'),
      import('../../doctor/format.js'),
      import('../../app/client.js'),
      import('../../sources/registry.js'),
    ]);

    const configPath = values.config;
    const config = existsSync(configPath) ? await (await import('../../config/load.js')).loadConfig(configPath) : undefined;
    const stateDir = values['state-dir'] ?? (config ? path.resolve(path.dirname(path.resolve(configPath)), config.stateDir) : '.tide');

    // a running tide up, when one answers for this project (or at --url)
    const state = values.url ? undefined : await readControlState(stateDir);
    const control = values.url || state ? await connectControl({ stateDir, url: values.url, token: process.env.TIDE_CONTROL_TOKEN ?? config?.control.token }) : undefined;
    let embedded = false;
    if (control) {
      try {
        const ps = await control.request<{ database?: { embedded?: boolean } }>('GET', '/v1/ps');
        embedded = ps.database?.embedded === true;
      } catch (err) {
        if (!values.url && !values.api?.length && !values.balancer) throw err;
      }
    }
    const apis = (values.api ?? []).map((url) => {
      try {
        return { id: new URL(url).host, url: url.replace(/\/$/, '') };
      } catch (cause) {
        throw new TideError('TIDE_USAGE', `--api takes a URL (http://host:port), not "${url}".`, { where: { arg: '--api' }, cause });
      }
    });
    // the database URL a worker's builtin queue source would read, when nothing else says
    const configuredDatabase = values['database-url'] ?? config?.database.url ?? process.env.DATABASE_URL;
    const hasSources = Object.values(config?.services ?? {}).some((s) => Object.keys(s.sources ?? {}).length > 0 || (s.kind === 'worker' && configuredDatabase));
    if (!control && apis.length === 0 && !values.balancer && !hasSources) {
      throw new TideError(
        'TIDE_DOCTOR_NO_TARGET',
        `Nothing to examine: no \`tide up\` runs for ${config ? configPath : 'this directory'} (no ${path.join(stateDir, 'control.json')}), no --api or --balancer was given, and ${config ? 'the config names no metric sources' : `there is no ${configPath}`}.`,
        { where: { arg: '--api' } },
      );
    }

    // the database: named, configured, or the embedded one a running tide up uses
    let databaseUrl = configuredDatabase;
    let stopDatabase: () => Promise<void> = async () => undefined;
    if (!databaseUrl && embedded) {
      const { resolveDatabase } = await import('../../db/connect.js');
      const db = await resolveDatabase({ stateDir, url: undefined });
      databaseUrl = db.url;
      stopDatabase = db.stop;
    }
    try {
      const facts = await gatherFacts({
        ...(control ? { control } : {}),
        ...(values.balancer ? { balancerUrl: values.balancer } : {}),
        apis,
        ...(values['api-key'] ?? process.env.API_KEYS ? { apiKey: values['api-key'] ?? process.env.API_KEYS!.split(',')[0]!.trim() } : {}),
        ...(databaseUrl ? { databaseUrl } : {}),
        ...(config ? { config, schema: config.database.schema } : {}),
        // a running tide up's own queues come from its API; the config's sources are for the rest
        createSource: (cfg, field) => createSource(cfg, { ...(config ? { file: config.file } : {}), field }),
        windowMs,
      });
      const findings = diagnose(facts);
      process.stdout.write(values.json ? `${JSON.stringify(findingsJson(findings, facts))}\n` : formatFindings(findings, facts));
      return hasCritical(findings) ? 1 : 0;
    } finally {
      await stopDatabase();
    }
  },
};
