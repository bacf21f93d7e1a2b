/** `tide logs [service] [-f]`: replica output kept by the running `tide up`. */
import { clientCommandHelp } from '../client-flags.js';
import { parseControlArgs } from '../control.js';
import type { Command } from '../main.js';

const HELP = `usage: tide logs [service] [options]

Prints the last lines each replica wrote (all services, or one), prefixed with the replica.
  -f, --follow          keep printing new lines until Ctrl-C
  -n, --tail <n>        lines to show first (default 200)`;

export const command: Command = {
  summary: 'show replica output (-f follows)',
  help: clientCommandHelp(HELP),
  async run(argv) {
    const [args, { numberArg }] = await Promise.all([
      parseControlArgs(argv, { flags: { follow: { type: 'boolean', short: 'f', default: false }, tail: { type: 'string', short: 'n' } } }),
      import('../args.js'),
    ]);
    const { values, positionals } = args;
    const tail = numberArg(values.tail, '--tail', 200);
    const client = await args.connect();
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    try {
      await client.logs({ service: positionals[0], tail, follow: values.follow }, (l) => {
        if (values.json) process.stdout.write(`${JSON.stringify(l)}\n`);
        else process.stdout.write(`${`${l.service}.${l.index}`.padEnd(12)}| ${l.stream === 'tide' ? `[tide] ${l.line}` : l.line}\n`);
      }, abort.signal);
    } finally {
      process.off('SIGINT', stop);
    }
    return 0;
  },
};
