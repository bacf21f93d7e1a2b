/**
 * The flags of the commands that talk to a running `tide up` (`ps`, `scale`, `restart`, `down`,
 * `logs`, `dashboard`) and their help lines. A module of its own, so a command's help needs no
 * control client loaded.
 */
export const CLIENT_FLAGS = {
  config: { type: 'string', short: 'c', default: 'tide.yaml' },
  'state-dir': { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const CLIENT_HELP = `  -c, --config <file>   the project's tide.yaml (default tide.yaml): finds its state_dir and control token
  --state-dir <dir>     where \`tide up\` wrote control.json (default: the config's state_dir, else .tide)
  --url <url>           the control API URL, instead of reading control.json
  --json                machine-readable output
  (TIDE_CONTROL_TOKEN: the bearer token when the control API listens beyond loopback)`;

/** A client command's help: its usage, then the client options, then its own flags' lines. */
export function clientCommandHelp(usage: string, flagsHelp = ''): string {
  return `${usage}\n\noptions:\n${CLIENT_HELP}\n${flagsHelp}`;
}
