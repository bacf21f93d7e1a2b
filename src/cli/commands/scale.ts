/** `tide scale worker=5 api=3`: set replica counts on the running `tide up`. */
import { TideError } from '../../errors.js';
import { clientCommandHelp } from '../client-flags.js';
import { parseControlArgs } from '../control.js';
import type { Command } from '../main.js';

const HELP = `usage: tide scale <service>=<replicas>... [options]

Sets the replica count of services of the running \`tide up\` (within each service's
min..max) and returns when the change is done: new replicas healthy, removed ones drained
(api replicas leave the balancer first; workers finish or release their jobs).`;

export const command: Command = {
  summary: 'set replica counts: tide scale worker=5 api=3',
  help: clientCommandHelp(HELP),
  async run(argv) {
    const args = await parseControlArgs(argv);
    const { values, positionals } = args;
    if (positionals.length === 0) throw new TideError('TIDE_USAGE', 'Name at least one service=replicas, as in `tide scale worker=5`.');
    const replicas: Record<string, number> = {};
    for (const arg of positionals) {
      const match = /^([^=\s]+)=(\d+)$/.exec(arg);
      if (!match) throw new TideError('TIDE_USAGE', `"${arg}" is not service=replicas (a whole number), as in worker=5.`, { where: { arg } });
      replicas[match[1]!] = Number(match[2]);
    }
    const client = await args.connect();
    const result = await client.request<{ services: Array<{ name: string; desired: number; healthy: number; state: string }> }>('POST', '/v1/scale', { replicas });
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const s of result.services) process.stdout.write(`${s.name}: ${s.healthy}/${s.desired} healthy (${s.state})\n`);
    return 0;
  },
};
