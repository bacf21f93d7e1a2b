/**
 * The `tide` command: a thin shell over the library. Each command's module loads only when
 * that command runs; this one handler maps typed errors to exit codes.
 */
import { ERRORS, TideError, formatError, isTideError } from '../errors.js';

export interface Command {
  /** One line for `tide help`. */
  summary: string;
  /** What `tide <command> --help` (or -h, or `tide help <command>`) prints; `run` never sees those flags. */
  help: string;
  run(argv: string[]): Promise<number | void>;
}

/** The explicit command registry: name -> lazy module. */
const commands: Record<string, () => Promise<{ command: Command }>> = {
  version: () => import('./commands/version.js'),
  worker: () => import('./commands/worker.js'),
  init: () => import('./commands/init.js'),
  schema: () => import('./commands/schema.js'),
  api: () => import('./commands/api.js'),
  simulate: () => import('./commands/simulate.js'),
  up: () => import('./commands/up.js'),
  scale: () => import('./commands/scale.js'),
  ps: () => import('./commands/ps.js'),
  logs: () => import('./commands/logs.js'),
  restart: () => import('./commands/restart.js'),
  down: () => import('./commands/down.js'),
  demo: () => import('./commands/demo.js'),
  dashboard: () => import('./commands/dashboard.js'),
  load: () => import('./commands/load.js'),
  plan: () => import('./commands/plan.js'),
  autoscale: () => import('./commands/autoscale.js'),
  decisions: () => import('./commands/decisions.js'),
  export: () => import('./commands/export.js'),
  doctor: () => import('./commands/doctor.js'),
  health: () => import('./commands/health.js'),
};

/** `--help` or `-h` among a command's arguments (before a `--`, after which all are positional). */
function asksForHelp(args: string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** The command list with each one's summary (loading every command module: only `tide help` pays for it). */
async function usage(): Promise<string> {
  const names = Object.keys(commands).sort();
  const summaries = await Promise.all(names.map(async (n) => (await commands[n]!()).command.summary));
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n, i) => `  ${n.padEnd(width)}  ${summaries[i]}`);
  return ['usage: tide <command> [options]', '', 'commands:', ...lines, '', 'tide <command> --help for its options'].join('\n');
}

/** Run `tide ...argv`; `print` takes what this handler prints itself (usage and help). */
export async function main(argv: string[], print: (text: string) => void = (text) => process.stdout.write(text)): Promise<number> {
  const [name, ...rest] = argv;
  const json = argv.includes('--json');
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      if (name === 'help' && rest[0] && commands[rest[0]]) {
        const { command } = await commands[rest[0]]!();
        print(`${command.help.trimEnd()}\n`);
        return 0;
      }
      print(`${await usage()}\n`);
      return name ? 0 : 2;
    }
    if (name === '--version' || name === '-v') return main(['version'], print);
    const load = commands[name];
    if (!load) {
      throw new TideError('TIDE_UNKNOWN_COMMAND', `There is no command "${name}"; \`tide help\` lists them.`, { where: { arg: name } });
    }
    const { command } = await load();
    if (asksForHelp(rest)) {
      print(`${command.help.trimEnd()}\n`);
      return 0;
    }
    return (await command.run(rest)) ?? 0;
  } catch (err) {
    const typed = isTideError(err)
      ? err
      : new TideError('TIDE_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
    if (json) process.stderr.write(`${JSON.stringify({ error: typed.toJSON() })}\n`);
    else process.stderr.write(`${formatError(typed)}\n`);
    if (typed.code === 'TIDE_INTERNAL' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return ERRORS[typed.code].exit;
  }
}
