/** `tide ps`: services and replicas of the running `tide up`, as a table or JSON. */
import { parse } from '../args.js';
import { CLIENT_FLAGS, clientCommandHelp } from '../client-flags.js';
import type { Command } from '../main.js';

const HELP = `usage: tide ps [options]

The database first (the embedded PostgreSQL is supervised: running, down, restarting or
failed, with its restarts), then one row per service (desired and healthy replicas, state,
the last scale and by whom, and how long a manual scale still pauses the autoscaler), then one
per replica (pid, port, state, the balancer's view of an api replica: in rotation, out after
failed health checks, or draining; restarts, uptime, CPU seconds, memory). A replica that
crashed or could not start shows the last lines of its error below the table.

A service is \`running\` when its replicas are healthy and, for an api service, the balancer
sends them requests; \`unavailable\` when every replica is out of rotation (its health
answers 503 while the database is away, say), \`degraded\` when some are out or crashed.`;

export const command: Command = {
  summary: 'list services and replicas (--json for scripts)',
  help: clientCommandHelp(HELP),
  async run(argv) {
    const { clientFromFlags } = await import('../../app/client.js');
    const { values } = parse(argv, CLIENT_FLAGS, false);
    const client = await clientFromFlags(values);
    type Ps = import('../../supervisor/supervisor.js').PsResult & {
      project?: string;
      balancer?: string | null;
      database?: Partial<import('../../supervisor/database.js').DatabaseStatus> & { embedded?: boolean; schema?: string };
    };
    const ps = await client.request<Ps>('GET', '/v1/ps');
    if (values.json) {
      process.stdout.write(`${JSON.stringify(ps)}\n`);
      return 0;
    }
    const ago = (ms: number | null) => (ms === null ? '-' : `${Math.round((Date.now() - ms) / 1000)}s ago`);
    const scaled = (s: import('../../supervisor/supervisor.js').ServiceStatus) =>
      (s.scaledAt ? `${s.scaledBy} ${ago(s.scaledAt)}` : '-') +
      (s.pausedUntil ? `; autoscaling paused ${Math.max(0, Math.ceil((s.pausedUntil - Date.now()) / 1000))}s more` : '');
    if (ps.database) process.stdout.write(`${databaseLine(ps.database)}\n\n`);
    process.stdout.write(
      table(
        ['SERVICE', 'KIND', 'HEALTHY', 'DESIRED', 'MIN..MAX', 'STATE', 'SCALED'],
        ps.services.map((s) => [s.name, s.kind, String(s.healthy), String(s.desired), `${s.min}..${s.max}`, s.state, scaled(s)]),
      ),
    );
    process.stdout.write('\n');
    process.stdout.write(
      table(
        ['REPLICA', 'PID', 'PORT', 'STATE', 'BALANCER', 'RESTARTS', 'UPTIME', 'CPU', 'MEM'],
        ps.replicas.map((r) => [
          r.id,
          r.pid === null ? '-' : String(r.pid),
          r.port === null ? '-' : String(r.port),
          r.state,
          r.balancer ?? '-',
          String(r.restarts),
          r.uptimeSeconds === null ? '-' : duration(r.uptimeSeconds),
          r.cpuSeconds === null ? '-' : `${r.cpuSeconds.toFixed(1)}s`,
          r.rssBytes === null ? '-' : `${Math.round(r.rssBytes / 1048576)}MB`,
        ]),
      ),
    );
    for (const r of ps.replicas) {
      if (!r.lastError || r.state === 'healthy') continue;
      process.stdout.write(`\n${r.id} ${r.state === 'failed' ? 'failed' : 'exited'}; its last error lines:\n${r.lastError.map((l) => `  ${l}`).join('\n')}\n`);
    }
    if (ps.balancer) process.stdout.write(`\nbalancer ${ps.balancer}\n`);
    return 0;
  },
};

/** `DATABASE embedded, running (pid 123, port 5432, schema tide, restarted 1x, last down 2.3 s, 40s ago)` */
function databaseLine(db: Partial<import('../../supervisor/database.js').DatabaseStatus> & { embedded?: boolean; schema?: string }): string {
  const where = db.kind === 'external' || !db.supervised ? 'DATABASE external (not supervised by tide up)' : `DATABASE embedded, ${db.state ?? '?'}`;
  const parts: string[] = [];
  if (db.pid) parts.push(`pid ${db.pid}`);
  if (db.port) parts.push(`port ${db.port}`);
  if (db.schema) parts.push(`schema ${db.schema}`);
  if (db.restarts) parts.push(`restarted ${db.restarts}x`);
  if (db.lastCrash) {
    const ago = Math.round((Date.now() - db.lastCrash.at) / 1000);
    parts.push(db.lastCrash.downMs === null ? `down since ${ago}s ago` : `last down ${(db.lastCrash.downMs / 1000).toFixed(1)} s, ${ago}s ago`);
  }
  if (db.lastError) parts.push(`last error: ${db.lastError}`);
  return `${where}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
