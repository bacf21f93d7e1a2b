/** `tide ps`: services and replicas of the running `tide up`, as a table or JSON. */
import { parse } from '../args.js';
import { CLIENT_FLAGS, clientCommandHelp } from '../client-flags.js';
import type { Command } from '../main.js';

const HELP = `usage: tide ps [options]

One row per service (desired and healthy replicas, state, the last scale and by whom, and how
long a manual scale still pauses the autoscaler), then one per replica (pid, port, state, restarts, uptime, CPU seconds, memory).`;

export const command: Command = {
  summary: 'list services and replicas (--json for scripts)',
  help: clientCommandHelp(HELP),
  async run(argv) {
    const { clientFromFlags } = await import('../../supervisor/client.js');
    const { values } = parse(argv, CLIENT_FLAGS, false);
    const client = await clientFromFlags(values);
    const ps = await client.request<import('../../supervisor/supervisor.js').PsResult & { project?: string; balancer?: string | null }>('GET', '/v1/ps');
    if (values.json) {
      process.stdout.write(`${JSON.stringify(ps)}\n`);
      return 0;
    }
    const ago = (ms: number | null) => (ms === null ? '-' : `${Math.round((Date.now() - ms) / 1000)}s ago`);
    const scaled = (s: import('../../supervisor/supervisor.js').ServiceStatus) =>
      (s.scaledAt ? `${s.scaledBy} ${ago(s.scaledAt)}` : '-') +
      (s.pausedUntil ? `; autoscaling paused ${Math.max(0, Math.ceil((s.pausedUntil - Date.now()) / 1000))}s more` : '');
    process.stdout.write(
      table(
        ['SERVICE', 'KIND', 'HEALTHY', 'DESIRED', 'MIN..MAX', 'STATE', 'SCALED'],
        ps.services.map((s) => [s.name, s.kind, String(s.healthy), String(s.desired), `${s.min}..${s.max}`, s.state, scaled(s)]),
      ),
    );
    process.stdout.write('\n');
    process.stdout.write(
      table(
        ['REPLICA', 'PID', 'PORT', 'STATE', 'RESTARTS', 'UPTIME', 'CPU', 'MEM'],
        ps.replicas.map((r) => [
          r.id,
          r.pid === null ? '-' : String(r.pid),
          r.port === null ? '-' : String(r.port),
          r.state,
          String(r.restarts),
          r.uptimeSeconds === null ? '-' : duration(r.uptimeSeconds),
          r.cpuSeconds === null ? '-' : `${r.cpuSeconds.toFixed(1)}s`,
          r.rssBytes === null ? '-' : `${Math.round(r.rssBytes / 1048576)}MB`,
        ]),
      ),
    );
    if (ps.balancer) process.stdout.write(`\nbalancer ${ps.balancer}\n`);
    return 0;
  },
};

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
