/** `tide down`: stop the running `tide up` (drain, stop replicas, balancer, database). */
import { parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide down [options]

Asks the running \`tide up\` to drain and stop every replica, the load balancer, and the
embedded database if it started one, and waits until it has exited.`;

export const command: Command = {
  summary: 'stop the running tide up (drains first)',
  async run(argv) {
    const { CLIENT_FLAGS, CLIENT_HELP, clientFromFlags } = await import('../../supervisor/client.js');
    const { values } = parse(argv, { ...CLIENT_FLAGS, timeout: { type: 'string', default: '120' } }, false);
    if (values.help) {
      process.stdout.write(`${HELP}\n\noptions:\n${CLIENT_HELP}\n  --timeout <s>         how long to wait for it to exit (default 120)\n`);
      return 0;
    }
    const client = await clientFromFlags(values);
    const ps = await client.request<{ pid?: number }>('GET', '/v1/ps');
    await client.request('POST', '/v1/down');
    const pid = ps.pid;
    const deadline = Date.now() + Number(values.timeout) * 1000;
    // the pid is gone once everything, the database included, has stopped
    while (pid && alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const done = !pid || !alive(pid);
    if (values.json) process.stdout.write(`${JSON.stringify({ stopped: done, pid: pid ?? null })}\n`);
    else process.stdout.write(done ? 'stopped\n' : `asked to stop; pid ${pid} is still draining\n`);
    return done ? 0 : 1;
  },
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
