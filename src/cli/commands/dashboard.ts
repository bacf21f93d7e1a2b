/**
 * `tide dashboard`: where the live dashboard is. The running `tide up` serves it on its
 * control API, so without --connect this prints that address. With `--connect URL` it serves
 * the page here and passes the events and scale calls to that (remote) control API.
 */
import { parse } from '../args.js';
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-flags.js';
import type { Command } from '../main.js';

const HELP = `usage: tide dashboard [options]
       tide dashboard --connect <control-url> [--token <token>] [--port <n>]

The live dashboard: per service the desired and ready replicas, queue depth, oldest job age,
jobs/s, API p95 and error rate as live charts, the autoscaler's decisions with their reasons,
and scale controls. \`tide up\` serves it at <control URL>/dashboard/; this prints that
address. With --connect, serve the page on this machine for a control API elsewhere.

options:
  --connect <url>       a remote control API (http(s)://host:port); serve the page here
  --token <token>       its bearer token (default TIDE_CONTROL_TOKEN; else the page asks)
  --host <host>         where to serve the page with --connect (loopback only; default 127.0.0.1)
  --port <n>            its port (default 0: a free one)
${CLIENT_HELP}`;

export const command: Command = {
  summary: 'the live dashboard: where `tide up` serves it, or serve one for a remote control API (--connect)',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        ...CLIENT_FLAGS,
        connect: { type: 'string' },
        token: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
      },
      false,
    );
    if (!values.connect) {
      const { clientFromFlags } = await import('../../app/client.js');
      const client = await clientFromFlags(values);
      // ask it, so "not running" is said here rather than by the browser
      await client.request('GET', '/v1/ps');
      const url = `${client.url}/dashboard/`;
      process.stdout.write(values.json ? `${JSON.stringify({ url })}\n` : `dashboard: ${url}\n`);
      return 0;
    }
    const { numberArg } = await import('../args.js');
    const port = numberArg(values.port, '--port', 0);
    const { probeRemote, startDashboardProxy } = await import('../../dashboard/proxy.js');
    const token = values.token ?? process.env.TIDE_CONTROL_TOKEN;
    const proxy = await startDashboardProxy({ remote: values.connect, token, host: values.host, port });
    let status: number;
    try {
      status = await probeRemote(values.connect, token);
    } catch (err) {
      await proxy.close();
      throw err;
    }
    const url = `${proxy.url}/dashboard/`;
    process.stdout.write(values.json ? `${JSON.stringify({ url, remote: values.connect })}\n` : `dashboard: ${url} (for the control API at ${values.connect}); Ctrl-C stops\n`);
    if (status === 401) process.stderr.write(`note: the control API wants a token${token ? ' and refused this one' : ''}; the page will ask for it\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await proxy.close();
    return 0;
  },
};
