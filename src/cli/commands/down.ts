/** `tide down`: stop the running `tide up` (drain, stop replicas, balancer, database). */
import { clientCommandHelp } from '../client-flags.js';
import { parseControlArgs, processAlive } from '../control.js';
import type { Command } from '../main.js';

const HELP = `usage: tide down [options]

Asks the running \`tide up\` to drain and stop every replica, the load balancer, and the
embedded database if it started one, and waits until it has exited.`;

export const command: Command = {
  summary: 'stop the running tide up (drains first)',
  help: clientCommandHelp(HELP, '  --timeout <s>         how long to wait for it to exit (default 120)\n'),
  async run(argv) {
    const args = await parseControlArgs(argv, { flags: { timeout: { type: 'string', default: '120' } }, positionals: false });
    const { values } = args;
    const client = await args.connect();
    const ps = await client.request<{ pid?: number }>('GET', '/v1/ps');
    await client.request('POST', '/v1/down');
    const pid = ps.pid;
    const deadline = Date.now() + Number(values.timeout) * 1000;
    // the pid is gone once everything, the database included, has stopped
    while (pid && processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const done = !pid || !processAlive(pid);
    if (values.json) process.stdout.write(`${JSON.stringify({ stopped: done, pid: pid ?? null })}\n`);
    else process.stdout.write(done ? 'stopped\n' : `asked to stop; pid ${pid} is still draining\n`);
    return done ? 0 : 1;
  },
};
