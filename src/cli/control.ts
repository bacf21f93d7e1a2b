/**
 * What the commands that talk to a running `tide up` share (`tide scale`, `restart`, `down`,
 * `logs`): the client flags plus their own, `--help` followed by the client options, and the
 * control client, connected only once the command has checked its own arguments (a usage
 * error needs no running `tide up`). The client module loads only when such a command runs.
 */
import type { CLIENT_FLAGS, ControlClient } from '../supervisor/client.js';
import { type Options, parse } from './args.js';

/** How one command extends the shared client flags. */
export interface ControlCommandSpec<T extends Options> {
  /** The command's own flags, next to CLIENT_FLAGS. */
  flags?: T;
  /** Lines for the command's own flags, printed after the client options (each ending in a newline). */
  flagsHelp?: string;
  /** Whether the command takes positional arguments (default true). */
  positionals?: boolean;
}

/**
 * Parses `argv` with the client flags and the command's own. With `--help` it prints `help`
 * and the options and resolves undefined (the command exits 0); otherwise the parsed flags,
 * the positionals and `connect`, which finds the running `tide up` from those flags.
 */
export async function parseControlArgs<T extends Options = Record<never, never>>(argv: string[], help: string, spec: ControlCommandSpec<T> = {}) {
  const { CLIENT_FLAGS: clientFlags, CLIENT_HELP, clientFromFlags } = await import('../supervisor/client.js');
  const { values, positionals } = parse(argv, { ...clientFlags, ...spec.flags } as typeof CLIENT_FLAGS & T, spec.positionals ?? true);
  // `help` is a client flag; the generic T keeps TypeScript from seeing it here
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${help}\n\noptions:\n${CLIENT_HELP}\n${spec.flagsHelp ?? ''}`);
    return undefined;
  }
  return { values, positionals, connect: (): Promise<ControlClient> => clientFromFlags(values) };
}

/** Whether a process with this pid exists and may be signalled by us (how `tide down` waits for `tide up`). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
