/** `tide decisions`: the autoscaler's decision journal, newest first, as a table or JSON. */
import path from 'node:path';

import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide decisions [options]

The autoscaler's decisions from the journal in the project's database, newest first: when,
which service, the count before and after, whether it was applied (or a dry run, or paused
after a manual scale), what bound it, and why.

options:
  -c, --config <file>   the project file (default tide.yaml): its database and schema
  --service <name>      only this service
  --limit <n>           at most this many rows (default 20)
  --json                one JSON object per line (with reasons, metrics and errors)
  --state-dir <dir>     where the embedded database lives (default: the config's state_dir)`;

export const command: Command = {
  summary: "the autoscaler's decisions and their reasons (--service, --json)",
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        config: { type: 'string', short: 'c', default: 'tide.yaml' },
        service: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean', default: false },
        'state-dir': { type: 'string' },
      },
      false,
    );
    const limit = numberArg(values.limit, '--limit', 20, 1);
    const [{ loadConfig }, { resolveDatabase }, { openJournal }] = await Promise.all([
      import('../../config/load.js'),
      import('../../db/connect.js'),
      import('../../controller/journal.js'),
    ]);
    const config = await loadConfig(values.config);
    const stateDir = values['state-dir'] ?? path.resolve(path.dirname(path.resolve(values.config)), config.stateDir);
    const database = await resolveDatabase({ stateDir, url: config.database.url ?? process.env.DATABASE_URL, source: config.database.url ? 'database.url' : 'DATABASE_URL' });
    try {
      const journal = await openJournal({ connectionString: database.url, schema: config.database.schema });
      try {
        const rows = await journal.list({ limit: Math.floor(limit), ...(values.service ? { service: values.service } : {}) });
        if (values.json) {
          for (const r of rows) process.stdout.write(`${JSON.stringify({ ...r, at: new Date(r.at).toISOString() })}\n`);
          return 0;
        }
        if (rows.length === 0) {
          process.stdout.write(`no decisions yet${values.service ? ` for ${values.service}` : ''} (the autoscaler runs inside \`tide up\` or as \`tide autoscale\`)\n`);
          return 0;
        }
        const head = ['TIME', 'SERVICE', 'FROM', 'TO', 'READY', 'ACTION', 'LIMITED BY', 'WHY'];
        const table = rows.map((r) => [
          new Date(r.at).toISOString().replace('T', ' ').slice(0, 19),
          r.service,
          String(r.current),
          String(r.desired),
          String(r.ready),
          action(r),
          r.limitedBy ?? '-',
          (r.reasons.at(-1)?.message ?? '') + (r.errors.length > 0 ? ` [${r.errors.map((e) => e.code).join(', ')}]` : ''),
        ]);
        const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => (i === head.length - 1 ? 0 : row[i]!.length))));
        for (const row of [head, ...table]) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()}\n`);
        return 0;
      } finally {
        await journal.close();
      }
    } finally {
      await database.stop();
    }
  },
};

function action(r: { current: number; desired: number; applied: boolean; dryRun: boolean; paused: boolean }): string {
  if (r.current === r.desired) return 'hold';
  if (r.dryRun) return 'dry-run';
  if (r.paused) return 'paused';
  return r.applied ? (r.desired > r.current ? 'scale-out' : 'scale-in') : 'not applied';
}
