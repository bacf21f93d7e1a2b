/** `tide down`: stop the running `tide up` (drain, stop replicas, balancer, database). */
import { clientCommandHelp } from '../client-flags.js';
import { processAlive } from '../../os/proc.js';
import { parseControlArgs } from '../control.js';
import type { Command } from '../main.js';

const HELP = `usage: tide down [options]

Asks the running \`tide up\` to drain and stop every replica, the load balancer, and the
embedded database if it started one, and waits until it has exited. With nothing in flight
that takes a second or two; every process \`tide up\` started ends, crash-looping or
starting replicas included.

--now stops without draining (also a drain already under way): workers release their jobs
in flight to the queue, where other workers (or the next \`tide up\`) run them again.`;

export const command: Command = {
  summary: 'stop the running tide up (drains first)',
  help: clientCommandHelp(HELP, '  --now                 stop at once, releasing the jobs in flight to the queue\n  --timeout <s>         how long to wait for it to exit (default 120)\n'),
  async run(argv) {
    const args = await parseControlArgs(argv, { flags: { timeout: { type: 'string', default: '120' }, now: { type: 'boolean', default: false } }, positionals: false });
    const { values } = args;
    const client = await args.connect();
    const ps = await client.request<{ pid?: number }>('GET', '/v1/ps');
    await client.request('POST', '/v1/down', values.now ? { now: true } : undefined);
    const pid = ps.pid;
    const deadline = Date.now() + Number(values.timeout) * 1000;
    // the pid is gone once everything, the database included, has stopped
    while (pid && processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const done = !pid || !processAlive(pid);
    if (values.json) process.stdout.write(`${JSON.stringify({ stopped: done, pid: pid ?? null })}\n`);
    else process.stdout.write(done ? 'stopped\n' : `asked to stop; pid ${pid} is still draining (\`tide down --now\` stops it without draining)\n`);
    return done ? 0 : 1;
  },
};
