/**
 * `tide health`: the container's HEALTHCHECK. Asks the tide process of this container (or
 * the port given) for its /health and exits 0 when it answers 2xx. Which port: --port, else
 * read from the container's main process (PID 1): a `tide api` listens on its --port, else
 * PORT, else 3000; a `tide worker` serves /health on its --metrics-port, else
 * TIDE_METRICS_PORT. A worker with no metrics port has no health endpoint: that is said, and
 * the check passes (the process being up is all Docker can know of it).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { TideError } from '../../errors.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide health [--port <n>] [--path <path>] [--timeout <seconds>]

Exits 0 when the tide process answers its health check with 2xx, 1 otherwise (a usage error
too: Docker reserves 2): a container's HEALTHCHECK (the Dockerfile of \`tide init --docker\`
runs it).

  --port <n>            the port to ask; default: from the container's main process
                        (tide api: --port, PORT, else 3000; tide worker: --metrics-port,
                        TIDE_METRICS_PORT; a worker without one passes with a note)
  --path <path>         default /health
  --timeout <seconds>   default 3
`;

/** The port a process's own command line and environment say its /health is on. */
export function healthPort(argv: string[], env: NodeJS.ProcessEnv): { port: number } | { none: string } {
  // read as the command's own parser reads them (node's parseArgs: --port=N, the last one counts)
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, 'metrics-port': { type: 'string' } }, strict: false, allowPositionals: true });
  const flag = (name: 'port' | 'metrics-port') => (typeof values[name] === 'string' ? values[name] : undefined);
  const command = argv.find((a) => a === 'api' || a === 'worker');
  if (command === 'api') return { port: numberArg(flag('port') ?? env.PORT, '--port', 3000) };
  if (command === 'worker') {
    const port = numberArg(flag('metrics-port') ?? env.TIDE_METRICS_PORT, '--metrics-port', 0);
    return port > 0 ? { port } : { none: 'this worker serves no /health (no --metrics-port or TIDE_METRICS_PORT); only its process is checked' };
  }
  return { none: 'the main process is neither tide api nor tide worker; nothing to ask' };
}

/** PID 1's arguments and environment (NUL-separated in /proc). */
function mainProcess(): { argv: string[]; env: NodeJS.ProcessEnv } {
  const read = (file: string) => readFileSync(`/proc/1/${file}`, 'utf8').split('\0').filter((s) => s !== '');
  try {
    const env = Object.fromEntries(read('environ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    return { argv: read('cmdline'), env };
  } catch (cause) {
    throw new TideError('TIDE_USAGE', 'tide health could not read the main process (/proc/1): give the port with --port.', { cause, where: { arg: '--port' } });
  }
}

export const command: Command = {
  summary: "a container's health check: exit 0 when tide api or tide worker answers /health",
  help: HELP,
  async run(argv) {
    // Docker reserves exit 2 in a health check: every failure here, a usage error too, is 1
    try {
      return await check(argv);
    } catch (err) {
      process.stdout.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
  },
};

/** The check itself: the port, then one GET. */
async function check(argv: string[]): Promise<number> {
  const { values } = parse(argv, { port: { type: 'string' }, path: { type: 'string' }, timeout: { type: 'string' } }, false);
  const timeoutMs = numberArg(values.timeout, '--timeout', 3, 0.1) * 1000;
  let found: ReturnType<typeof healthPort>;
  if (values.port !== undefined) found = { port: numberArg(values.port, '--port', 0, 1) };
  else {
    const main = mainProcess();
    found = healthPort(main.argv, main.env);
  }
  if ('none' in found) {
    process.stdout.write(`ok: ${found.none}\n`);
    return 0;
  }
  const url = `http://127.0.0.1:${found.port}${values.path ?? '/health'}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).slice(0, 300);
    process.stdout.write(`${res.ok ? 'ok' : 'unhealthy'}: ${url} answered ${res.status} ${body}\n`);
    return res.ok ? 0 : 1;
  } catch (err) {
    process.stdout.write(`unhealthy: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
