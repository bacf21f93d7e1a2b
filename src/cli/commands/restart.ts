/** `tide restart <service>`: a rolling restart, one replica at a time. */
import { TideError } from '../../errors.js';
import { clientCommandHelp } from '../client-flags.js';
import { parseControlArgs } from '../control.js';
import type { Command } from '../main.js';

const HELP = `usage: tide restart <service> [options]

Rolling restart: for each replica, starts a new one, waits until it is healthy (and in the
load balancer), then drains and stops the old one. No request fails on the way.`;

export const command: Command = {
  summary: 'rolling restart of a service, one replica at a time',
  help: clientCommandHelp(HELP),
  async run(argv) {
    const args = await parseControlArgs(argv);
    const { values, positionals } = args;
    if (positionals.length !== 1) throw new TideError('TIDE_USAGE', 'Name one service to restart, as in `tide restart api`.');
    const client = await args.connect();
    const result = await client.request<{ service: { name: string; healthy: number; desired: number } }>('POST', '/v1/restart', { service: positionals[0] });
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${result.service.name}: restarted, ${result.service.healthy}/${result.service.desired} healthy\n`);
    return 0;
  },
};
