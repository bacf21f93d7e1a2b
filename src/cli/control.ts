/**
 * What the commands that talk to a running `tide up` share (`tide scale`, `restart`, `down`,
 * `logs`): the client flags plus their own, and the control client, connected only once the
 * command has checked its own arguments (a usage error needs no running `tide up`). The client
 * module loads only when such a command runs.
 */
import type { ControlClient } from '../app/client.js';
import { type Options, type Parsed, parse } from './args.js';
import { CLIENT_FLAGS } from './client-flags.js';

/** How one command extends the shared client flags. */
export interface ControlCommandSpec<T extends Options> {
  /** The command's own flags, next to CLIENT_FLAGS. */
  flags?: T;
  /** Whether the command takes positional arguments (default true). */
  positionals?: boolean;
}

/**
 * Parses `argv` with the client flags and the command's own: the parsed flags, the positionals
 * and `connect`, which finds the running `tide up` from those flags.
 */
export async function parseControlArgs<T extends Options = Record<never, never>>(
  argv: string[],
  spec: ControlCommandSpec<T> = {},
): Promise<Pick<Parsed<typeof CLIENT_FLAGS & T>, 'values' | 'positionals'> & { connect: () => Promise<ControlClient> }> {
  const { clientFromFlags } = await import('../app/client.js');
  const { values, positionals } = parse(argv, { ...CLIENT_FLAGS, ...spec.flags } as typeof CLIENT_FLAGS & T, spec.positionals ?? true);
  return { values, positionals, connect: (): Promise<ControlClient> => clientFromFlags(values) };
}
