/**
 * `tide up`: run the project's services on this machine, in the foreground (Ctrl-C drains and
 * stops everything) or detached (`-d`: the same command re-spawned in the background, output
 * to <state_dir>/up.log).
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse } from '../args.js';
import type { PsResult } from '../../supervisor/supervisor.js';
import type { Command } from '../main.js';

const HELP = `usage: tide up [options]

Starts the database (embedded unless DATABASE_URL or database.url), runs the migrations,
starts the load balancer and every service's replicas, and serves the control API that
\`tide ps/scale/logs/restart/down\` talk to. Replica output is prefixed with its name.
The embedded database is supervised: killed, it is started again on its port (\`tide ps\`
shows it). Ctrl-C (or SIGTERM, or \`tide down\`) drains and stops everything; a second
Ctrl-C (or \`tide down --now\`) stops at once, workers releasing their jobs in flight.

options:
  -c, --config <file>   the project file (default tide.yaml)
  -d, --detach          run in the background; output goes to <state_dir>/up.log
  --no-color            plain replica prefixes (also NO_COLOR)`;

const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92];

export const command: Command = {
  summary: 'run the services on this machine (database, balancer, replicas, control API)',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        config: { type: 'string', short: 'c', default: 'tide.yaml' },
        detach: { type: 'boolean', short: 'd', default: false },
        'no-color': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      false,
    );
    const { loadConfig } = await import('../../config/load.js');
    const config = await loadConfig(values.config);
    const configDir = path.dirname(path.resolve(values.config));
    const stateDir = path.resolve(configDir, config.stateDir);
    if (values.detach) return detach(argv.filter((a) => a !== '-d' && a !== '--detach'), stateDir);

    const { startSystem } = await import('../../app/system.js');
    const log = (line: string) => process.stderr.write(`tide | ${line}\n`);
    const colour = !values['no-color'] && !process.env.NO_COLOR && process.stdout.isTTY;
    const names = Object.keys(config.services);
    const width = Math.max(...names.map((n) => n.length)) + 3;
    let stopSystem: ((reason: string, options?: { now?: boolean }) => Promise<void>) | undefined;
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      // a third means "now, whatever is left": the supervisor's exit hook SIGKILLs the replicas
      if (signals > 2 || (signals > 1 && !stopSystem)) process.exit(130);
      // while starting, stop once started, so the embedded database is stopped too
      if (!stopSystem) return log(`${signal}: stopping once started (again to stop at once)`);
      // the second: no more draining, workers release their jobs in flight to the queue
      void stopSystem(signal, { now: signals > 1 });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      log(`starting ${config.project} from ${values.config}`);
      const system = await startSystem(config, {
        configDir,
        log,
        dashboardEager: true,
        onLog: (l) => {
          const id = `${l.service}.${l.index}`.padEnd(width);
          const code = COLOURS[(names.indexOf(l.service) * 3 + l.index - 1) % COLOURS.length];
          const prefix = colour ? `\u001b[${code}m${id}|\u001b[0m` : `${id}|`;
          process.stdout.write(`${prefix} ${l.stream === 'tide' ? `[tide] ${l.line}` : l.line}\n`);
        },
      });
      stopSystem = system.stop;
      const ps = system.supervisor.ps();
      log(
        `up: ${ps.services.map((s) => `${s.name} ${s.healthy}/${s.desired}${s.state === 'running' ? '' : ` ${s.state}`}`).join(', ')}` +
          `${system.balancer ? `; balancer ${system.balancer.url}` : ''}; control ${system.control.url}; Ctrl-C stops`,
      );
      log(`dashboard: ${system.control.url}/dashboard/`);
      if (signals > 0) void system.stop('signal while starting');
      await system.stopped;
      // everything this process started has ended; a handle someone forgot must not keep it up
      setTimeout(() => process.exit(process.exitCode ?? 0), 1_000).unref();
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

/** Re-spawns `tide up` in the background and returns once its control API answers. */
async function detach(argv: string[], stateDir: string): Promise<number> {
  const [{ readControlState, connectControl }, { TideError }] = await Promise.all([import('../../app/client.js'), import('../../errors.js')]);
  await mkdir(stateDir, { recursive: true });
  const logFile = path.join(stateDir, 'up.log');
  const out = openSync(logFile, 'a');
  const bin = fileURLToPath(new URL('../../../bin/tide.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'up', '--no-color', ...argv], { detached: true, stdio: ['ignore', out, out], env: process.env });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  for (let waited = 0; waited < 120_000; waited += 200) {
    if (exited !== null) break;
    const state = await readControlState(stateDir);
    if (state && state.pid === child.pid) {
      let ps: PsResult | undefined;
      try {
        ps = await (await connectControl({ stateDir })).request<PsResult>('GET', '/v1/ps');
      } catch {
        // not answering yet
      }
      // the control API answers while replicas start; return once none is still starting,
      // so a script that runs `tide up -d` and then sends traffic finds the replicas ready
      if (ps && !ps.services.some((s) => s.state === 'starting')) {
        const summary = ps.services.map((s) => `${s.name} ${s.healthy}/${s.desired}${s.state === 'running' ? '' : ` ${s.state}`}`).join(', ');
        // a replica that cannot start: say why here, not only in up.log
        const errors = ps.replicas
          .filter((r) => r.lastError && r.state !== 'healthy')
          .map((r) => `${r.id} ${r.state === 'failed' ? 'failed' : 'cannot start'}; its last error lines:\n${r.lastError!.map((l) => `  ${l}`).join('\n')}\n`)
          .join('');
        process.stdout.write(
          `tide up runs in the background (pid ${state.pid}): ${summary}; control ${state.url}${state.balancer ? `, balancer ${state.balancer}` : ''}\n` +
            errors +
            `dashboard: ${state.url}/dashboard/\n` +
            `output: ${logFile}; \`tide ps\` shows it, \`tide down\` stops it\n`,
        );
        return ps.services.every((s) => s.state === 'running' || s.state === 'stopped') ? 0 : 1;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
  if (exited === null && child.pid) process.kill(child.pid, 'SIGTERM');
  throw new TideError('TIDE_SUPERVISOR_NOT_RUNNING', `The background \`tide up\` ${exited === null ? 'did not answer within 2 minutes' : `exited (code ${exited})`}; the end of ${logFile}:\n${tail}`);
}
